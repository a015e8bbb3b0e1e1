/* libFuzzer target: the broker's handling of whatever a process may send.
 *
 * Each input starts a broker (without its thread: the loop is turned here)
 * and connects two processes to it. Both send a valid hello and get the
 * broker's hello back, then its offer of a region of the shared pool with
 * the pool's descriptor passed alongside. The input is the first
 * connection's stream after its hello, so it may contain anything a process
 * can send, the shared pool's frames included: FRAME_SHARED, shared
 * publishes (FRAME_FLAG_SHARED) and FRAME_SHARED_READ.
 *
 * The second connection is well-behaved and plays a reader: it maps the
 * pool, says it reads shared messages (FRAME_SHARED with its pid) and
 * subscribes to a few channels, so routing to another connection is
 * exercised, as copies and as descriptors into the pool. The input is sent
 * in slices of 4096 bytes (so frames split across reads are exercised too);
 * after each slice the loop is turned, both connections are drained, and
 * the reader counts the shared messages it got and reports them, in its
 * region's header and with FRAME_SHARED_READ, as a real process does. So
 * the slots the input's shared publishes take are freed during the input
 * and may be taken again.
 *
 * The first connection's region is not mapped here: the broker reads a
 * shared payload through its own mapping of the pool, where pages nobody
 * wrote read as zeros, so a descriptor inside the region is valid without
 * the harness writing the bytes.
 *
 * A closed connection's region is taken back within the same input when
 * the input led there (read counts, SHM_COUNT_ALL, a pid that does not
 * exist); a live pid (this process's, say) keeps it until broker_stop.
 *
 * Crashes, leaks and sanitizer reports are what is looked for, plus what
 * the reader must see whatever the input: frames within the broker's
 * maximum, messages only for its own subscriptions, shared ones pointing
 * into the first connection's data area, no error replies, and one pool
 * descriptor per connection, no more. Every descriptor received is closed
 * before the input ends, so none pile up across runs. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "fdpass.h"
#include "frame.h"
#include "shm.h"

#define MAX_FRAME (1u << 16)
#define SLICE 4096u

#define EXPECT(cond)                                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "fuzz_broker.c:%d: expected %s\n", __LINE__, #cond);                         \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* One process's end of its connection. */
typedef struct peer {
  int fd;
  int pool_fd;         /* the pool's descriptor as received, until mapped or closed */
  int fds_received;    /* descriptors that came with the bytes: one at most */
  int offered;         /* the offer frame arrived */
  uint32_t region;     /* the region it offered */
  uint32_t generation; /* ... and that use of it */
  uint8_t in[1 << 18];
  size_t len;
} peer;

static broker *b;
static peer fuzzed, reader;
static shm_map *reader_map;    /* the pool as the reader maps it */
static uint64_t reader_shared; /* shared messages the reader received */
static uint64_t reader_reported;

static void turn(int times) {
  for (int i = 0; i < times; i++)
    broker_run_once(b);
}

static void send_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0) return; /* the broker hung up or the buffer is full: enough */
    p += w;
    n -= (size_t)w;
  }
}

static void send_frame(int fd, uint8_t type, uint32_t endpoint, uint32_t id, const char *a,
                       const void *payload, size_t payload_len) {
  uint8_t f[FRAME_HEADER_SIZE + 64];
  uint32_t n =
      frame_encode(f, type, 0, endpoint, id, a, a ? strlen(a) : 0, NULL, 0, payload, payload_len);
  send_all(fd, f, n);
}

static void send_hello(int fd) {
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, 1u << 20);
  send_frame(fd, FRAME_HELLO, 0, 0, NULL, hello, sizeof(hello));
}

/* Reads what p's socket holds into p->in, as much as fits, keeping the
 * descriptor that comes along. 1 when p->in is full (more may wait). */
static int receive(peer *p) {
  while (p->len < sizeof(p->in)) {
    int fd = -1;
    ssize_t n = fdpass_recv_one(p->fd, p->in + p->len, sizeof(p->in) - p->len, &fd);
    if (fd >= 0) {
      p->fds_received++;
      if (p->pool_fd < 0 && p->fds_received == 1)
        p->pool_fd = fd;
      else
        close(fd);
      EXPECT(p->fds_received == 1);
    }
    if (n <= 0) return 0;
    p->len += (size_t)n;
  }
  return 1;
}

/* The offer that follows the broker's hello, at the start of p->in, once
 * both arrived: region taken, frames consumed. */
static void take_offer(peer *p) {
  frame f;
  if (p->offered || frame_decode(p->in, p->len, MAX_FRAME, &f) != FRAME_OK) return;
  EXPECT(f.type == FRAME_HELLO);
  frame o;
  int rc = frame_decode(p->in + f.size, p->len - f.size, MAX_FRAME, &o);
  if (rc == FRAME_INCOMPLETE) return;
  EXPECT(rc == FRAME_OK);
  size_t used = f.size;
  if (o.type == FRAME_SHARED) {
    frame_offer offer;
    EXPECT(frame_offer_parse(o.payload, o.payload_len, &offer) == 0 && p->pool_fd >= 0);
    p->region = offer.region;
    p->generation = offer.generation;
    EXPECT(p->region < SHM_REGIONS);
    used += o.size;
  }
  p->offered = 1;
  memmove(p->in, p->in + used, p->len - used);
  p->len -= used;
}

/* The first connection's output is not looked at beyond its offer. */
static void drain_fuzzed(void) {
  int more;
  do {
    fuzzed.len = 0;
    more = receive(&fuzzed);
  } while (more);
  fuzzed.len = 0;
}

static int channel_is(const frame *f, const char *name) {
  return f->a_len == strlen(name) && memcmp(f->a, name, f->a_len) == 0;
}

/* Everything the reader was sent, checked frame by frame. */
static void reader_take(void) {
  int more = 1;
  while (more) {
    more = receive(&reader);
    if (!reader.offered) {
      take_offer(&reader);
      if (!reader.offered) return;
      if (reader.pool_fd >= 0) {
        reader_map = shm_pool_map(reader.pool_fd, reader.region);
        reader.pool_fd = -1; /* the map owns it now */
        EXPECT(reader_map != NULL);
      }
    }
    size_t at = 0;
    for (;;) {
      frame f;
      int rc = frame_decode(reader.in + at, reader.len - at, MAX_FRAME, &f);
      if (rc == FRAME_INCOMPLETE) break;
      EXPECT(rc == FRAME_OK);
      if (f.type == FRAME_REPLY) {
        EXPECT(f.status == FRAME_STATUS_OK && f.request_id == 1); /* its subscriptions */
      } else {
        EXPECT(f.type == FRAME_MESSAGE);
        EXPECT((f.endpoint == 1 && (channel_is(&f, "a") || channel_is(&f, ""))) ||
               (f.endpoint == 2 && (channel_is(&f, "b") || channel_is(&f, ""))));
        if (f.flags & FRAME_FLAG_SHARED) {
          frame_message_desc d;
          EXPECT(reader_map != NULL && frame_message_desc_parse(f.payload, f.payload_len, &d) == 0);
          uint64_t offset = d.offset;
          uint32_t len = d.length;
          uint64_t data = shm_data_offset(fuzzed.region);
          EXPECT(fuzzed.offered && len > 0 && len <= SHM_PAYLOAD_MAX);
          EXPECT(offset >= data && offset + len <= data + SHM_DATA_SIZE);
          reader_shared++;
        }
      }
      at += f.size;
    }
    memmove(reader.in, reader.in + at, reader.len - at);
    reader.len -= at;
  }
}

/* Says what the reader read, in its region's header and in a frame, then
 * lets the broker take it in before more input comes. */
static void reader_report(void) {
  if (reader_shared == reader_reported || !reader_map) return;
  atomic_store(&((shm_header *)(void *)reader_map->region)->consumed,
               shm_consumed_pack(reader.generation, reader_shared));
  uint8_t count[FRAME_READ_COUNT_SIZE];
  frame_read_count_write(count, reader_shared);
  send_frame(reader.fd, FRAME_SHARED_READ, 0, 0, NULL, count, sizeof(count));
  reader_reported = reader_shared;
  turn(1);
}

static void peer_reset(peer *p) {
  p->fd = -1;
  p->pool_fd = -1;
  p->fds_received = 0;
  p->offered = 0;
  p->region = 0;
  p->len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  broker_options options;
  broker_options_default(&options);
  options.max_frame_size = MAX_FRAME;
  options.queue_limit = 1u << 18;
  char err[128];
  if (broker_create(&b, &options, err, sizeof(err)) != 0) abort();
  peer_reset(&fuzzed);
  peer_reset(&reader);
  reader_map = NULL;
  reader_shared = reader_reported = 0;
  if (broker_connect_pair(b, &fuzzed.fd) != 0 || broker_connect_pair(b, &reader.fd) != 0) abort();

  send_hello(reader.fd);
  uint8_t pid[FRAME_SHARED_READY_SIZE];
  frame_shared_ready_write(pid, (uint32_t)getpid());
  send_frame(reader.fd, FRAME_SHARED, 0, 0, NULL, pid, sizeof(pid));
  send_frame(reader.fd, FRAME_SUBSCRIBE, 1, 1, "a", NULL, 0);
  send_frame(reader.fd, FRAME_SUBSCRIBE, 2, 1, "b", NULL, 0);
  send_frame(reader.fd, FRAME_SUBSCRIBE, 1, 1, "", NULL, 0);
  send_frame(reader.fd, FRAME_SUBSCRIBE, 2, 1, "", NULL, 0);
  send_hello(fuzzed.fd);
  for (int i = 0; i < 8 && !(fuzzed.offered && reader_map); i++) {
    turn(1);
    receive(&fuzzed);
    take_offer(&fuzzed);
    reader_take();
  }
  /* Without a pool (no memfd here) the broker offers nothing: still fuzzed. */
  if (fuzzed.pool_fd >= 0) close(fuzzed.pool_fd);
  fuzzed.pool_fd = -1;
  drain_fuzzed();

  size_t offset = 0;
  while (offset < size) {
    size_t n = size - offset < SLICE ? size - offset : SLICE;
    send_all(fuzzed.fd, data + offset, n);
    offset += n;
    turn(3);
    drain_fuzzed();
    reader_take();
    reader_report();
  }
  for (int i = 0; i < 2; i++) {
    turn(4);
    drain_fuzzed();
    reader_take();
    reader_report();
  }
  close(fuzzed.fd);
  turn(4);
  reader_take();
  reader_report();
  close(reader.fd);
  turn(4);
  broker_stop(b);
  shm_map_release(reader_map);
  if (reader.pool_fd >= 0) close(reader.pool_fd);
  return 0;
}
