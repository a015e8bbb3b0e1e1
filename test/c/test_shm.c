/* Tests of the shared pool's pieces that need no broker: mapping it as a
 * process does, the publisher's ring (checked against a model through long
 * random runs: payloads in flight never overlap, never leave the data area,
 * and space comes back only in write order), the waiting word, and passing
 * the pool's descriptor over a socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "fdpass.h"
#include "shm.h"

static shm_map *pool;

/* A process's view of region r of the pool. */
static shm_map *process_map(uint32_t r) {
  return shm_pool_map(dup(pool->fd), r);
}

static void test_mapping(void) {
  shm_map *m = process_map(3);
  CHECK(m != NULL);
  if (!m) return;
  CHECK(m->region_index == 3);
  /* What the process writes in its region, the broker sees where the pool
   * says, and the other way round. */
  m->region[SHM_HEADER_SIZE + 5] = 0xab;
  CHECK(pool->base[shm_data_offset(3) + 5] == 0xab);
  pool->base[shm_data_offset(3) + 6] = 0xcd;
  CHECK(m->base[shm_data_offset(3) + 6] == 0xcd);
  /* A region past the pool, or a descriptor that is not the pool. */
  errno = 0;
  CHECK(shm_pool_map(dup(pool->fd), SHM_REGIONS) == NULL && errno == EINVAL);
  int fds[2];
  CHECK(pipe(fds) == 0);
  close(fds[1]);
  errno = 0;
  CHECK(shm_pool_map(fds[0], 0) == NULL && errno == EINVAL);
  /* The pool's size is sealed: no process can cut it short (which would
   * make every mapping of it fault) or grow it. */
  errno = 0;
  CHECK(ftruncate(pool->fd, 0) != 0 && errno == EPERM);
  CHECK(ftruncate(pool->fd, (off_t)SHM_POOL_SIZE * 2) != 0 && errno == EPERM);
  /* Reset gives the region back clean. */
  atomic_store(&shm_header_at(pool->base, 3)->busy[7], 1);
  atomic_store(&shm_header_at(pool->base, 3)->consumed, 9);
  shm_region_reset(pool, 3);
  CHECK(atomic_load(&shm_header_at(m->base, 3)->busy[7]) == 0);
  CHECK(atomic_load(&shm_header_at(m->base, 3)->consumed) == 0);
  CHECK(m->base[shm_data_offset(3) + 5] == 0);
  shm_map_retain(m);
  shm_map_release(m);
  CHECK(m->base[shm_data_offset(3) + 6] == 0); /* still mapped: one reference left */
  shm_map_release(m);
}

/* The model: what the ring has in flight, in write order. */
typedef struct flight {
  uint32_t slot, offset, len;
  int freed;
} flight;

static uint32_t round_up(uint32_t len) {
  return (len + SHM_ALIGN - 1) / SHM_ALIGN * SHM_ALIGN;
}

/* Whether a payload of len bytes has room, by the ring's rule: after the
 * newest payload, or else at the start of the data area, never over one
 * in flight, with a slot free. */
static int model_fits(const flight *in, uint32_t count, uint32_t len) {
  uint32_t size = round_up(len);
  if (count == 0) return size <= SHM_DATA_SIZE;
  if (count == SHM_SLOTS) return 0;
  uint32_t head = in[0].offset;
  uint32_t tail = in[count - 1].offset + round_up(in[count - 1].len);
  if (in[count - 1].offset >= head) return size <= SHM_DATA_SIZE - tail || size <= head;
  return tail + size <= head;
}

static void test_ring_random(void) {
  shm_map *m = process_map(0);
  if (!m) {
    CHECK(m != NULL);
    return;
  }
  shm_writer w;
  shm_writer_init(&w, m);
  shm_header *h = shm_header_at(pool->base, 0);
  flight in[SHM_SLOTS + 1];
  uint32_t count = 0;
  unsigned long overlaps = 0, outside = 0, early = 0, refused_with_room = 0, reuse = 0;
  unsigned long written = 0, refused = 0, wrapped = 0;
  uint64_t seed = 12345;
  for (int step = 0; step < 200000; step++) {
    uint64_t r = check_rand(&seed);
    if (r % 3 != 0 || count == 0) {
      /* Reserve: sizes from tiny to the largest, mostly mid-sized. */
      uint32_t len;
      switch ((r >> 8) % 4) {
      case 0:
        len = 1 + (uint32_t)((r >> 16) % 64);
        break;
      case 1:
        len = 16384 + (uint32_t)((r >> 16) % 50000);
        break;
      case 2:
        len = 60000 + (uint32_t)((r >> 16) % 200000);
        break;
      default:
        len = SHM_PAYLOAD_MAX - (uint32_t)((r >> 16) % 1000);
        break;
      }
      uint32_t slot, offset;
      uint8_t *at = shm_writer_reserve(&w, len, &slot, &offset);
      if (!at) {
        refused++;
        if (model_fits(in, count, len)) refused_with_room++;
        continue;
      }
      if (at != m->region + SHM_HEADER_SIZE + offset) outside++;
      if ((uint64_t)offset + len > SHM_DATA_SIZE) outside++;
      if (offset % SHM_ALIGN) outside++;
      for (uint32_t i = 0; i < count; i++) {
        if (in[i].slot == slot) reuse++;
        if (offset < in[i].offset + in[i].len && in[i].offset < offset + len) overlaps++;
      }
      if (count > 0 && offset < in[count - 1].offset) wrapped++;
      memset(at, (int)(step & 0xff), len < 64 ? len : 64);
      shm_writer_commit(&w, slot, offset, len);
      CHECK(atomic_load(&h->busy[slot]) == 1 || slot >= SHM_SLOTS);
      in[count++] = (flight){slot, offset, len, 0};
      written++;
    } else {
      /* The broker frees one in flight: mostly the oldest (readers keep
       * up), sometimes a newer one (its readers were quicker). */
      uint32_t i = (r >> 8) % 4 == 0 ? (uint32_t)((r >> 16) % count) : 0;
      while (i < count - 1 && in[i].freed)
        i++;
      if (!in[i].freed) {
        in[i].freed = 1;
        atomic_store(&h->busy[in[i].slot], 0);
      }
      /* The ring reclaims from the oldest, only what was freed. */
      uint32_t expect = count;
      uint32_t k = 0;
      while (k < count && in[k].freed)
        k++;
      expect = count - k;
      uint32_t have = shm_writer_in_flight(&w);
      if (have != expect) early++;
      memmove(in, in + k, (count - k) * sizeof(in[0]));
      count -= k;
    }
  }
  CHECK(overlaps == 0);
  CHECK(outside == 0);
  CHECK(reuse == 0);
  CHECK(early == 0);
  CHECK(refused_with_room == 0);
  if (!(written > 50000 && refused > 10000 && wrapped > 500))
    fprintf(stderr, "written %lu refused %lu wrapped %lu\n", written, refused, wrapped);
  CHECK(written > 50000 && refused > 10000 && wrapped > 500); /* every case was reached */
  shm_map_release(m);
}

/* A publisher waiting for room: the waiting word is cleared by the wake. */
static void test_wait_word(void) {
  shm_map *m = process_map(1);
  if (!m) {
    CHECK(m != NULL);
    return;
  }
  shm_writer w;
  shm_writer_init(&w, m);
  shm_writer_want(&w);
  CHECK(atomic_load(&shm_header_at(pool->base, 1)->waiting) == 1);
  shm_wake(pool, 1);
  CHECK(atomic_load(&w.header->waiting) == 0);
  /* Nobody waiting: a wake changes nothing, and a wait on a cleared word
   * returns at once. */
  shm_wake(pool, 1);
  shm_writer_wait(&w, 5u * 1000u * 1000u * 1000u);
  CHECK(atomic_load(&w.header->waiting) == 0);
  shm_map_release(m);
}

/* The pool's descriptor goes over a socket with the bytes it belongs to;
 * a receiver that has one already closes any other. */
static void test_pass_fd(void) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  uint8_t msg[10] = "0123456789";
  CHECK(fdpass_send_copy(sv[0], msg, sizeof(msg), pool->fd) == (ssize_t)sizeof(msg));
  CHECK(fdpass_send_copy(sv[0], msg, sizeof(msg), pool->fd) == (ssize_t)sizeof(msg));
  uint8_t in[10];
  int fd = -1;
  CHECK(fdpass_recv_one(sv[1], in, sizeof(in), &fd) == 10 && fd >= 0 && memcmp(in, msg, 10) == 0);
  int first = fd;
  CHECK(fdpass_recv_one(sv[1], in, sizeof(in), &fd) == 10 && fd == first);
  shm_map *m = shm_pool_map(fd, 2); /* the received descriptor is the pool */
  CHECK(m != NULL);
  if (m) {
    pool->base[shm_data_offset(2)] = 42;
    CHECK(m->base[shm_data_offset(2)] == 42);
    shm_map_release(m);
  }
  /* Nothing waiting: the receive says so rather than block. */
  errno = 0;
  CHECK(fdpass_recv_one(sv[1], in, sizeof(in), &fd) < 0 && errno == EAGAIN);
  close(sv[0]);
  close(sv[1]);
}

int main(void) {
  pool = shm_pool_create();
  CHECK(pool != NULL);
  if (!pool) return check_report("shm");
  test_mapping();
  test_ring_random();
  test_wait_word();
  test_pass_fd();
  shm_map_release(pool);
  return check_report("shm");
}
