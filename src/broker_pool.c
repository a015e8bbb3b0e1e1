/* broker_pool: the broker's books on the shared pool (see broker_pool.h).
 *
 * Nothing here touches a socket or the loop: the broker calls in when a
 * region is offered, a shared publish is routed, a process says what it
 * read, a connection goes, and once a loop turn for the gone ones. The
 * books live in the broker's thread only; what a process sees of them is
 * its region's header (generation, busy slots, why it was cut off). */
#define _GNU_SOURCE
#include "broker_pool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void broker_pool_init(broker_pool *p, int shared) {
  memset(p, 0, sizeof(*p));
  for (size_t i = 0; i < SHM_REGIONS; i++)
    p->regions[i].pidfd = -1;
  /* Without shared memory here, every payload simply takes the sockets. */
  if (shared) p->map = shm_pool_create();
}

void broker_pool_destroy(broker_pool *p) {
  for (size_t i = 0; i < SHM_REGIONS; i++) {
    free(p->regions[i].handed);
    if (p->regions[i].pidfd >= 0) close(p->regions[i].pidfd);
  }
  shm_map_release(p->map);
  p->map = NULL;
}

int broker_pool_take(broker_pool *p) {
  if (!p->map) return -1;
  for (uint32_t r = 0; r < SHM_REGIONS; r++) {
    broker_region *g = &p->regions[r];
    if (g->taken) continue;
    g->taken = 1;
    g->done = 0;
    g->generation++;
    g->attached = 1;
    g->busy = 0;
    g->unread = 0;
    g->handed_head = 0;
    g->handed_count = 0;
    g->consumed = 0;
    /* Before the offer: the process checks it against the offer's. */
    atomic_store_explicit(&shm_header_at(p->map->base, r)->generation, g->generation,
                          memory_order_release);
    p->regions_taken++;
    return (int)r;
  }
  return -1;
}

/* Gives region r back once nothing refers to it: its connection is gone and
 * its process is done with it (it may still read the header, to learn why it
 * was cut off), none of its payloads is unread, none of its deliveries is. */
static void broker_pool_maybe_free(broker_pool *p, uint32_t r) {
  broker_region *g = &p->regions[r];
  if (!g->taken || g->attached || !g->done || g->unread > 0 || g->handed_count > 0) return;
  shm_region_reset(p->map, r);
  if (g->pidfd >= 0) close(g->pidfd);
  g->pidfd = -1;
  g->pid = 0;
  free(g->handed);
  g->handed = NULL;
  g->handed_capacity = 0;
  g->taken = 0;
  p->regions_taken--;
}

void broker_pool_withdraw(broker_pool *p, uint32_t r) {
  p->regions[r].attached = 0;
  p->regions[r].done = 1;
  broker_pool_maybe_free(p, r);
}

void broker_pool_say_cut(broker_pool *p, uint32_t r, uint32_t why) {
  atomic_store_explicit(&shm_header_at(p->map->base, r)->cut, why, memory_order_release);
}

static void broker_pool_slot_free(broker_pool *p, uint32_t r, uint32_t slot) {
  p->regions[r].busy &= ~((uint64_t)1 << slot);
  /* The publisher may write over it from now on (sequentially consistent,
   * against the publisher's waiting word: see shm_writer_wait). */
  atomic_store(&shm_header_at(p->map->base, r)->busy[slot], 0);
  shm_wake(p->map, r);
}

int broker_pool_slot_busy(const broker_pool *p, uint32_t r, uint32_t slot) {
  return (p->regions[r].busy >> slot) & 1u;
}

void broker_pool_slot_take(broker_pool *p, uint32_t r, uint32_t slot) {
  p->regions[r].busy |= (uint64_t)1 << slot;
}

void broker_pool_slot_settle(broker_pool *p, uint32_t r, uint32_t slot) {
  if (p->regions[r].slot_unread[slot] == 0) broker_pool_slot_free(p, r, slot);
}

/* One delivery of the payload in pool-wide slot id has been read. */
static void broker_pool_slot_read(broker_pool *p, uint32_t id) {
  uint32_t r = id / SHM_SLOTS;
  uint32_t slot = id % SHM_SLOTS;
  broker_region *g = &p->regions[r];
  g->unread--;
  if (--g->slot_unread[slot] == 0) broker_pool_slot_free(p, r, slot);
  if (g->unread == 0) broker_pool_maybe_free(p, r);
}

/* Room in g's list of handed deliveries for one more; 0, or -1 when out of
 * memory. */
static int broker_pool_make_room(broker_region *g) {
  if (g->handed_count < g->handed_capacity) return 0;
  size_t capacity = g->handed_capacity ? g->handed_capacity * 2 : 64;
  uint32_t *grown = malloc(capacity * sizeof(*grown));
  if (!grown) return -1;
  for (size_t i = 0; i < g->handed_count; i++)
    grown[i] = g->handed[(g->handed_head + i) % g->handed_capacity];
  free(g->handed);
  g->handed = grown;
  g->handed_head = 0;
  g->handed_capacity = capacity;
  return 0;
}

int broker_pool_hand_room(broker_pool *p, uint32_t r) {
  broker_region *g = &p->regions[r];
  if (g->handed_count >= BROKER_HANDED_MAX || broker_pool_make_room(g) != 0) return -1;
  return 0;
}

void broker_pool_hand(broker_pool *p, uint32_t r, uint32_t id) {
  broker_region *tg = &p->regions[r];
  tg->handed[(tg->handed_head + tg->handed_count) % tg->handed_capacity] = id;
  tg->handed_count++;
  broker_region *g = &p->regions[id / SHM_SLOTS];
  g->slot_unread[id % SHM_SLOTS]++;
  g->unread++;
}

int broker_pool_collect(broker_pool *p, uint32_t r, uint64_t consumed, int everything) {
  broker_region *g = &p->regions[r];
  uint64_t n = consumed - g->consumed;
  int rc = 0;
  if (n > g->handed_count) {
    /* Counted more than it was handed: the process is broken, and nothing
     * it says can be trusted any more. */
    rc = -1;
    everything = 1;
  }
  if (everything) n = g->handed_count;
  g->consumed = consumed;
  while (n-- > 0) {
    uint32_t id = g->handed[g->handed_head];
    g->handed_head = (g->handed_head + 1) % g->handed_capacity;
    g->handed_count--;
    broker_pool_slot_read(p, id);
  }
  return rc;
}

/* Whether region g's last process has exited: its pidfd is readable, or
 * (without pidfds) its pid is gone. A process not known, or a pid another
 * process was given since, counts as alive: the region then waits for its
 * process to say it is done, which may cost a region, never a wrong read. */
static int broker_pool_exited(const broker_region *g) {
  if (g->pidfd >= 0) {
    struct pollfd pfd = {.fd = g->pidfd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
  }
  return g->pid > 0 && kill((pid_t)g->pid, 0) != 0 && errno == ESRCH;
}

void broker_pool_collect_gone(broker_pool *p) {
  if (p->regions_taken == 0) return;
  for (uint32_t r = 0; r < SHM_REGIONS; r++) {
    broker_region *g = &p->regions[r];
    if (!g->taken || g->attached) continue;
    uint64_t said =
        atomic_load_explicit(&shm_header_at(p->map->base, r)->consumed, memory_order_acquire);
    /* A count from another use of the region says nothing about this one;
     * SHM_COUNT_ALL: the process will read nothing more (its channel is
     * closed); and a process that no longer exists reads nothing more. */
    uint64_t consumed = g->consumed;
    int done = 0;
    if (said >> SHM_COUNT_BITS == (g->generation & SHM_GENERATION_MASK)) {
      if ((said & SHM_COUNT_ALL) == SHM_COUNT_ALL)
        done = 1;
      else
        consumed = said & SHM_COUNT_ALL;
    }
    if (!g->done && (done || broker_pool_exited(g))) {
      g->done = 1;
      /* Nothing more to learn from the process: its descriptor goes now,
       * not when the last reader of its payloads is done. */
      if (g->pidfd >= 0) close(g->pidfd);
      g->pidfd = -1;
    }
    (void)broker_pool_collect(p, r, consumed, g->done); /* gone: no one to tell */
    broker_pool_maybe_free(p, r);
  }
}

int broker_pool_waiting(const broker_pool *p) {
  if (p->regions_taken == 0) return 0;
  for (uint32_t r = 0; r < SHM_REGIONS; r++) {
    const broker_region *g = &p->regions[r];
    if (g->taken && !g->attached && !g->done) return 1;
  }
  return 0;
}

void broker_pool_release(broker_pool *p, uint32_t r, uint32_t pid) {
  broker_region *g = &p->regions[r];
  if (pid == 0)
    pid = atomic_load_explicit(&shm_header_at(p->map->base, r)->pid, memory_order_acquire);
  g->attached = 0;
  g->pid = pid <= INT32_MAX ? pid : 0; /* not a pid: kill() would take it for a group */
#ifdef SYS_pidfd_open
  if (g->pid > 0 && !p->no_pidfd) {
    long fd = syscall(SYS_pidfd_open, (pid_t)g->pid, 0u);
    if (fd >= 0)
      g->pidfd = (int)fd;
    else if (errno == ESRCH)
      g->done = 1; /* exited already */
    else if (errno == ENOSYS)
      p->no_pidfd = 1;
  }
#endif
  broker_pool_maybe_free(p, r);
}
