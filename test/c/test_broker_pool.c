/* Tests of the broker's books on the shared pool (broker_pool.h), driven
 * directly, with no broker, socket or loop: taking and giving back regions
 * (generations, the offer that never arrived), a slot's unread count and
 * when it goes back to its publisher, the rings of handed deliveries
 * (checked against a model through a long random run), a count out of step,
 * the limit on what one reader may have unread, and when a gone
 * connection's region is free again: once its process is done with it
 * (said so in its header, or exited) and nothing of it is unread. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_pool.h"
#include "check.h"

static broker_pool pool;

static shm_header *header(uint32_t r) {
  return shm_header_at(pool.map->base, r);
}

static uint32_t slot_id(uint32_t r, uint32_t slot) {
  return r * SHM_SLOTS + slot;
}

/* A gone connection's process, as far as the books are concerned, says in
 * its header how many it has read (SHM_COUNT_ALL: done). */
static void say_consumed(uint32_t r, uint64_t count) {
  atomic_store(&header(r)->consumed, shm_consumed_pack(pool.regions[r].generation, count));
}

static void test_no_pool(void) {
  broker_pool none;
  broker_pool_init(&none, 0);
  CHECK(none.map == NULL);
  CHECK(broker_pool_take(&none) == -1);
  CHECK(broker_pool_waiting(&none) == 0);
  broker_pool_collect_gone(&none); /* nothing to do, nothing to touch */
  broker_pool_destroy(&none);
}

static void test_take_and_withdraw(void) {
  int r = broker_pool_take(&pool);
  CHECK(r == 0);
  CHECK(pool.regions_taken == 1);
  CHECK(pool.regions[0].taken && pool.regions[0].attached);
  uint32_t generation = pool.regions[0].generation;
  CHECK(generation == 1);
  /* Written in the header before the offer goes. */
  CHECK(atomic_load(&header(0)->generation) == generation);
  CHECK(broker_pool_take(&pool) == 1);
  /* The offer of 0 never reached its process: free at once, and the next
   * use of it is a new generation. */
  broker_pool_withdraw(&pool, 0);
  CHECK(!pool.regions[0].taken);
  CHECK(pool.regions_taken == 1);
  CHECK(broker_pool_waiting(&pool) == 0);
  CHECK(broker_pool_take(&pool) == 0);
  CHECK(pool.regions[0].generation == generation + 1);
  CHECK(atomic_load(&header(0)->generation) == generation + 1);
  /* Every region taken: none more to give. */
  int taken = 2, failed = 0;
  while (taken < (int)SHM_REGIONS) {
    if (broker_pool_take(&pool) != taken) failed++;
    taken++;
  }
  CHECK(failed == 0);
  CHECK(broker_pool_take(&pool) == -1);
  CHECK(pool.regions_taken == SHM_REGIONS);
  for (uint32_t i = 0; i < SHM_REGIONS; i++)
    broker_pool_withdraw(&pool, i);
  CHECK(pool.regions_taken == 0);
}

/* A publisher's slot handed to two readers goes back to the publisher (its
 * busy word cleared) only once both read it; one handed to nobody goes back
 * when it is settled. */
static void test_slot_accounting(void) {
  int pub = broker_pool_take(&pool), r1 = broker_pool_take(&pool), r2 = broker_pool_take(&pool);
  CHECK(pub >= 0 && r1 >= 0 && r2 >= 0);
  if (pub < 0 || r1 < 0 || r2 < 0) return;
  uint32_t p = (uint32_t)pub, a = (uint32_t)r1, b = (uint32_t)r2;

  atomic_store(&header(p)->busy[3], 1); /* the publisher wrote it */
  CHECK(!broker_pool_slot_busy(&pool, p, 3));
  broker_pool_slot_take(&pool, p, 3);
  CHECK(broker_pool_slot_busy(&pool, p, 3));
  CHECK(broker_pool_hand_room(&pool, a) == 0);
  broker_pool_hand(&pool, a, slot_id(p, 3));
  CHECK(broker_pool_hand_room(&pool, b) == 0);
  broker_pool_hand(&pool, b, slot_id(p, 3));
  CHECK(pool.regions[p].unread == 2 && pool.regions[p].slot_unread[3] == 2);
  broker_pool_slot_settle(&pool, p, 3);
  CHECK(broker_pool_slot_busy(&pool, p, 3));
  CHECK(atomic_load(&header(p)->busy[3]) == 1);

  CHECK(broker_pool_collect(&pool, a, 1, 0) == 0);
  CHECK(pool.regions[a].handed_count == 0);
  CHECK(broker_pool_slot_busy(&pool, p, 3));
  CHECK(broker_pool_collect(&pool, b, 1, 0) == 0);
  CHECK(!broker_pool_slot_busy(&pool, p, 3));
  CHECK(atomic_load(&header(p)->busy[3]) == 0);
  CHECK(pool.regions[p].unread == 0);
  /* A count that did not move takes nothing. */
  CHECK(broker_pool_collect(&pool, a, 1, 0) == 0);

  /* Handed to no one (no subscriber reads the pool): back at once. */
  atomic_store(&header(p)->busy[4], 1);
  broker_pool_slot_take(&pool, p, 4);
  broker_pool_slot_settle(&pool, p, 4);
  CHECK(!broker_pool_slot_busy(&pool, p, 4));
  CHECK(atomic_load(&header(p)->busy[4]) == 0);

  /* A count out of step (more than was handed): -1, and everything it was
   * handed comes back. */
  broker_pool_slot_take(&pool, p, 5);
  CHECK(broker_pool_hand_room(&pool, a) == 0);
  broker_pool_hand(&pool, a, slot_id(p, 5));
  broker_pool_slot_settle(&pool, p, 5);
  CHECK(broker_pool_collect(&pool, a, 5, 0) == -1);
  CHECK(pool.regions[a].handed_count == 0);
  CHECK(!broker_pool_slot_busy(&pool, p, 5));

  /* Saying why a connection was cut off. */
  broker_pool_say_cut(&pool, a, SHM_CUT_STALLED);
  CHECK(atomic_load(&header(a)->cut) == SHM_CUT_STALLED);

  broker_pool_withdraw(&pool, p);
  broker_pool_withdraw(&pool, a);
  broker_pool_withdraw(&pool, b);
  CHECK(pool.regions_taken == 0);
  CHECK(atomic_load(&header(a)->cut) == SHM_CUT_NONE); /* reset for the next use */
}

/* Random hands and reads among a few publishers and readers, against a
 * model: each reader's ring gives back the deliveries in the order they
 * were handed (through growth and wrap-around), and every slot's unread
 * count is the model's. */
#define MODEL_READERS 3u
#define MODEL_PUBLISHERS 2u
#define MODEL_MAX 5000u
static void test_rings_random(void) {
  uint32_t readers[MODEL_READERS], publishers[MODEL_PUBLISHERS];
  for (uint32_t i = 0; i < MODEL_READERS; i++)
    readers[i] = (uint32_t)broker_pool_take(&pool);
  for (uint32_t i = 0; i < MODEL_PUBLISHERS; i++)
    publishers[i] = (uint32_t)broker_pool_take(&pool);
  static uint32_t handed[MODEL_READERS][MODEL_MAX];
  size_t head[MODEL_READERS] = {0}, tail[MODEL_READERS] = {0};
  uint64_t consumed[MODEL_READERS] = {0};
  static uint32_t unread[SHM_REGIONS * SHM_SLOTS];
  memset(unread, 0, sizeof(unread));
  uint64_t seed = 11;
  unsigned long mismatches = 0;
  for (int step = 0; step < 40000; step++) {
    uint32_t i = (uint32_t)check_below(&seed, MODEL_READERS);
    if (check_below(&seed, 100) < 55) {
      if (tail[i] == MODEL_MAX) continue;
      uint32_t p = publishers[check_below(&seed, MODEL_PUBLISHERS)];
      uint32_t id = slot_id(p, (uint32_t)check_below(&seed, SHM_SLOTS));
      if (broker_pool_hand_room(&pool, readers[i]) != 0) {
        mismatches++;
        continue;
      }
      broker_pool_hand(&pool, readers[i], id);
      handed[i][tail[i]++] = id;
      unread[id]++;
    } else {
      uint64_t n = check_below(&seed, tail[i] - head[i] + 1);
      consumed[i] += n;
      if (broker_pool_collect(&pool, readers[i], consumed[i], 0) != 0) mismatches++;
      while (n-- > 0)
        unread[handed[i][head[i]++]]--;
    }
    if (head[i] == tail[i]) head[i] = tail[i] = 0; /* the model's own space */
    for (uint32_t k = 0; k < MODEL_READERS; k++)
      if (pool.regions[readers[k]].handed_count != tail[k] - head[k]) mismatches++;
    for (uint32_t k = 0; k < MODEL_PUBLISHERS; k++) {
      uint32_t p = publishers[k], total = 0;
      for (uint32_t s = 0; s < SHM_SLOTS; s++) {
        total += unread[slot_id(p, s)];
        if (pool.regions[p].slot_unread[s] != unread[slot_id(p, s)]) mismatches++;
      }
      if (pool.regions[p].unread != total) mismatches++;
    }
  }
  CHECK(mismatches == 0);
  for (uint32_t i = 0; i < MODEL_READERS; i++) {
    CHECK(broker_pool_collect(&pool, readers[i], consumed[i], 1) == 0);
    CHECK(pool.regions[readers[i]].handed_count == 0);
  }
  for (uint32_t i = 0; i < MODEL_PUBLISHERS; i++)
    CHECK(pool.regions[publishers[i]].unread == 0);
  for (uint32_t i = 0; i < MODEL_READERS; i++)
    broker_pool_withdraw(&pool, readers[i]);
  for (uint32_t i = 0; i < MODEL_PUBLISHERS; i++)
    broker_pool_withdraw(&pool, publishers[i]);
  CHECK(pool.regions_taken == 0);
}

/* A reader that never says it read gets no more than BROKER_HANDED_MAX
 * descriptors (then copies). */
static void test_handed_max(void) {
  uint32_t pub = (uint32_t)broker_pool_take(&pool), r = (uint32_t)broker_pool_take(&pool);
  unsigned long refused = 0;
  for (uint32_t n = 0; n < BROKER_HANDED_MAX; n++) {
    if (broker_pool_hand_room(&pool, r) != 0) refused++;
    broker_pool_hand(&pool, r, slot_id(pub, n % SHM_SLOTS));
  }
  CHECK(refused == 0);
  CHECK(broker_pool_hand_room(&pool, r) == -1);
  CHECK(broker_pool_collect(&pool, r, 1, 0) == 0);
  CHECK(broker_pool_hand_room(&pool, r) == 0);
  CHECK(broker_pool_collect(&pool, r, 1, 1) == 0);
  CHECK(pool.regions[pub].unread == 0);
  broker_pool_withdraw(&pool, pub);
  broker_pool_withdraw(&pool, r);
}

/* A gone connection's region that its live process says it is done with:
 * free only once that is said in this use's generation. */
static void test_done_when_said(void) {
  uint32_t r = (uint32_t)broker_pool_take(&pool);
  broker_pool_release(&pool, r, (uint32_t)getpid()); /* alive: this very process */
  CHECK(pool.regions[r].taken && !pool.regions[r].attached && !pool.regions[r].done);
  CHECK(broker_pool_waiting(&pool) == 1);
  broker_pool_collect_gone(&pool);
  CHECK(pool.regions[r].taken);
  /* A count from the last use of the region says nothing about this one. */
  atomic_store(&header(r)->consumed,
               shm_consumed_pack(pool.regions[r].generation - 1, SHM_COUNT_ALL));
  broker_pool_collect_gone(&pool);
  CHECK(pool.regions[r].taken);
  say_consumed(r, SHM_COUNT_ALL);
  broker_pool_collect_gone(&pool);
  CHECK(!pool.regions[r].taken);
  CHECK(broker_pool_waiting(&pool) == 0);
  CHECK(pool.regions_taken == 0);
}

/* A gone reader still reads what it was handed (its header's count), and
 * the rest comes back once it is done; a gone publisher's region stays
 * until its payloads are read, even once its process is done. */
static void test_gone_reader_and_publisher(void) {
  uint32_t pub = (uint32_t)broker_pool_take(&pool), r = (uint32_t)broker_pool_take(&pool);
  for (uint32_t s = 0; s < 3; s++) {
    broker_pool_slot_take(&pool, pub, s);
    CHECK(broker_pool_hand_room(&pool, r) == 0);
    broker_pool_hand(&pool, r, slot_id(pub, s));
    broker_pool_slot_settle(&pool, pub, s);
  }
  /* The publisher goes and is done at once; its slots are still unread. */
  atomic_store(&header(pub)->pid, (uint32_t)getpid()); /* pid 0: the header's */
  broker_pool_release(&pool, pub, 0);
  CHECK(pool.regions[pub].pid == (uint32_t)getpid());
  say_consumed(pub, SHM_COUNT_ALL);
  broker_pool_collect_gone(&pool);
  CHECK(pool.regions[pub].done && pool.regions[pub].taken);
  CHECK(broker_pool_waiting(&pool) == 0); /* done: waits for readers, not for its process */
  /* The reader goes too, having read one, then one more. */
  broker_pool_release(&pool, r, (uint32_t)getpid());
  say_consumed(r, 1);
  broker_pool_collect_gone(&pool);
  CHECK(pool.regions[r].handed_count == 2);
  CHECK(!broker_pool_slot_busy(&pool, pub, 0) && broker_pool_slot_busy(&pool, pub, 1));
  say_consumed(r, 2);
  broker_pool_collect_gone(&pool);
  CHECK(pool.regions[r].handed_count == 1);
  CHECK(pool.regions[pub].taken);
  /* Done: the rest comes back, and both regions are free. */
  say_consumed(r, SHM_COUNT_ALL);
  broker_pool_collect_gone(&pool);
  CHECK(!pool.regions[r].taken && !pool.regions[pub].taken);
  CHECK(pool.regions_taken == 0);
}

/* A gone connection's process that exits is done with its region, though
 * it never said so. */
static void test_done_when_exited(void) {
  int fds[2];
  CHECK(pipe(fds) == 0);
  pid_t child = fork();
  CHECK(child >= 0);
  if (child < 0) return;
  if (child == 0) {
    char byte;
    close(fds[1]);
    (void)!read(fds[0], &byte, 1); /* until the parent closes its end */
    _exit(0);
  }
  close(fds[0]);
  uint32_t r = (uint32_t)broker_pool_take(&pool);
  broker_pool_release(&pool, r, (uint32_t)child);
  broker_pool_collect_gone(&pool);
  CHECK(pool.regions[r].taken && !pool.regions[r].done);
  CHECK(broker_pool_waiting(&pool) == 1);
  close(fds[1]);
  CHECK(waitpid(child, NULL, 0) == child);
  broker_pool_collect_gone(&pool);
  CHECK(!pool.regions[r].taken);
  CHECK(pool.regions[r].pidfd == -1);
  CHECK(broker_pool_waiting(&pool) == 0);

  /* A process gone before its connection was reaped: done at once. */
  child = fork();
  CHECK(child >= 0);
  if (child < 0) return;
  if (child == 0) _exit(0);
  CHECK(waitpid(child, NULL, 0) == child);
  r = (uint32_t)broker_pool_take(&pool);
  broker_pool_release(&pool, r, (uint32_t)child);
  broker_pool_collect_gone(&pool);
  CHECK(!pool.regions[r].taken);
  CHECK(pool.regions_taken == 0);
}

int main(void) {
  test_no_pool();
  broker_pool_init(&pool, 1);
  CHECK(pool.map != NULL);
  if (!pool.map) return check_report("broker_pool");
  test_take_and_withdraw();
  test_slot_accounting();
  test_rings_random();
  test_handed_max();
  test_done_when_said();
  test_gone_reader_and_publisher();
  test_done_when_exited();
  broker_pool_destroy(&pool);
  return check_report("broker_pool");
}
