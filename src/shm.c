/* shm: the shared pool for large payloads (see shm.h). */
#define _GNU_SOURCE
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#endif

/* After a failure: lets go of what was mapped and of fd, keeping errno. */
static shm_map *shm_fail(int fd, void *base, void *region) {
  int saved = errno;
  if (region) munmap(region, SHM_REGION_SIZE);
  if (base) munmap(base, SHM_POOL_SIZE);
  close(fd);
  errno = saved;
  return NULL;
}

/* A map that owns fd and its mappings, or NULL (ENOMEM, all let go). */
static shm_map *shm_map_new(int fd, uint8_t *base, uint8_t *region, uint32_t region_index) {
  shm_map *m = calloc(1, sizeof(*m));
  if (!m) {
    errno = ENOMEM;
    return shm_fail(fd, base, region);
  }
  m->fd = fd;
  m->base = base;
  m->region = region;
  m->region_index = region_index;
  atomic_init(&m->refs, 1);
  return m;
}

shm_map *shm_pool_create(void) {
#ifdef __linux__
  int fd = memfd_create("socket.io-cluster-store", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return NULL;
  /* Sparse: pages exist only once a payload is written into them. Sealed
   * at that size: every process gets this descriptor, and one that cut the
   * pool short would make every mapping of it fault. */
  if (ftruncate(fd, (off_t)SHM_POOL_SIZE) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return shm_fail(fd, NULL, NULL);
  void *base = mmap(NULL, SHM_POOL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return shm_fail(fd, NULL, NULL);
  return shm_map_new(fd, base, NULL, UINT32_MAX);
#else
  errno = ENOSYS;
  return NULL;
#endif
}

shm_map *shm_pool_map(int fd, uint32_t region_index) {
  struct stat st;
  if (region_index >= SHM_REGIONS || fstat(fd, &st) != 0 || (uint64_t)st.st_size != SHM_POOL_SIZE) {
    errno = EINVAL;
    return shm_fail(fd, NULL, NULL);
  }
  void *base = mmap(NULL, SHM_POOL_SIZE, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return shm_fail(fd, NULL, NULL);
  void *region = mmap(NULL, SHM_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                      (off_t)region_index * SHM_REGION_SIZE);
  if (region == MAP_FAILED) return shm_fail(fd, base, NULL);
  return shm_map_new(fd, base, region, region_index);
}

void shm_map_retain(shm_map *m) {
  atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void shm_map_release(shm_map *m) {
  if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
  if (m->region) munmap(m->region, SHM_REGION_SIZE);
  munmap(m->base, SHM_POOL_SIZE);
  close(m->fd);
  free(m);
}

void shm_region_reset(shm_map *m, uint32_t region) {
  shm_header *h = shm_header_at(m->base, region);
  atomic_store_explicit(&h->consumed, 0, memory_order_relaxed);
  atomic_store_explicit(&h->waiting, 0, memory_order_relaxed);
  atomic_store_explicit(&h->cut, SHM_CUT_NONE, memory_order_relaxed);
  atomic_store_explicit(&h->generation, 0, memory_order_relaxed);
  atomic_store_explicit(&h->pid, 0, memory_order_relaxed);
  for (uint32_t i = 0; i < SHM_SLOTS; i++)
    atomic_store_explicit(&h->busy[i], 0, memory_order_relaxed);
#ifdef __linux__
  /* The last owner's payloads are dead: their pages go back to the system
   * (harmless if the kernel cannot punch holes here). */
  (void)fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)shm_data_offset(region),
                  SHM_DATA_SIZE);
#endif
}

/* ---- writer -------------------------------------------------------------- */

void shm_writer_init(shm_writer *w, shm_map *map) {
  memset(w, 0, sizeof(*w));
  w->map = map;
  w->header = (shm_header *)(void *)map->region;
  w->data = map->region + SHM_HEADER_SIZE;
}

/* Drops the oldest payloads the broker has freed. */
static void shm_writer_reclaim(shm_writer *w) {
  while (w->count > 0) {
    uint32_t slot = w->order[w->first];
    if (atomic_load_explicit(&w->header->busy[slot], memory_order_acquire) != 0) break;
    w->used &= ~((uint64_t)1 << slot);
    w->first = (w->first + 1) % SHM_SLOTS;
    w->count--;
  }
  if (w->count == 0) {
    w->first = 0;
    w->tail = 0;
  }
}

void shm_writer_wait(shm_writer *w, uint64_t timeout_ns) {
#ifdef __linux__
  struct timespec t = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
  /* Returns at once if the broker cleared the word already; EINTR, EAGAIN
   * and ETIMEDOUT all mean: look again. Not a private futex: the word is
   * shared with the broker's process. */
  (void)syscall(SYS_futex, (uint32_t *)&w->header->waiting, FUTEX_WAIT, 1u, &t, NULL, 0);
#else
  (void)w;
  (void)timeout_ns;
#endif
}

void shm_wake(shm_map *m, uint32_t region) {
  shm_header *h = shm_header_at(m->base, region);
  if (atomic_exchange(&h->waiting, 0) == 0) return;
#ifdef __linux__
  (void)syscall(SYS_futex, (uint32_t *)&h->waiting, FUTEX_WAKE, 1, NULL, NULL, 0);
#endif
}

uint32_t shm_writer_in_flight(shm_writer *w) {
  shm_writer_reclaim(w);
  return w->count;
}

static uint32_t shm_round(uint32_t len) {
  return (len + SHM_ALIGN - 1) & ~(SHM_ALIGN - 1);
}

uint8_t *shm_writer_reserve(shm_writer *w, uint32_t len, uint32_t *slot, uint32_t *offset) {
  if (len == 0 || len > SHM_PAYLOAD_MAX) return NULL;
  shm_writer_reclaim(w);
  if (w->count == SHM_SLOTS) return NULL;
  uint32_t size = shm_round(len);
  uint32_t at;
  if (w->count == 0) {
    at = 0;
  } else {
    uint32_t head = w->start[w->order[w->first]];
    uint32_t newest = w->start[w->order[(w->first + w->count - 1) % SHM_SLOTS]];
    if (newest >= head) {
      /* In flight: [head, tail). Room after it, or else at the start. */
      if (size <= SHM_DATA_SIZE - w->tail)
        at = w->tail;
      else if (size <= head)
        at = 0;
      else
        return NULL;
    } else {
      /* Wrapped: in flight are [head, end) and [0, tail); room between. */
      if (size > head - w->tail) return NULL;
      at = w->tail;
    }
  }
  *slot = (uint32_t)__builtin_ctzll(~w->used);
  *offset = at;
  return w->data + at;
}

void shm_writer_commit(shm_writer *w, uint32_t slot, uint32_t offset, uint32_t len) {
  w->order[(w->first + w->count) % SHM_SLOTS] = slot;
  w->start[slot] = offset;
  w->count++;
  w->used |= (uint64_t)1 << slot;
  w->tail = offset + shm_round(len);
  /* Before the descriptor leaves: the broker may free it at once. */
  atomic_store_explicit(&w->header->busy[slot], 1, memory_order_release);
}
