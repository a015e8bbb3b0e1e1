/* Tests of the process side of the channel (channel.h) with no node: the
 * test plays the broker on the other end of a socketpair and turns the
 * channel's libuv loop itself (UV_RUN_NOWAIT), so every exchange is
 * deterministic. With a pool made as the broker makes it (shm_pool_create)
 * it also plays the broker's side of the shared pool: the offer with its
 * descriptor, freeing slots, changing a region's generation, cutting a
 * process off. Threads appear only where a blocking wait must be ended
 * from outside (a reply sent late, a socket drained, a slot freed). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "buffer.h"
#include "channel.h"
#include "check.h"
#include "fdpass.h"
#include "frame.h"
#include "shm.h"

#define PEER_CAP (8u * 1024u * 1024u)

static uv_loop_t loop;

/* The channel's owner: counts its callbacks; with take set, it takes every
 * complete frame when told of input, as the addon does. */
typedef struct owner {
  channel *ch;
  int inputs;
  int closes;
  int take;
  int taken;
  char reason[400];
} owner;

/* The broker's end. */
typedef struct peer {
  int fd;
  int channel_fd; /* the channel's end, for a test that must fill it */
  uint8_t *in;
  size_t len;
  size_t pending; /* the last frame peer_next returned, dropped on the next call */
  int eof;
} peer;

static void on_input(channel *ch, void *ctx) {
  owner *o = ctx;
  o->inputs++;
  if (!o->take) return;
  const uint8_t *data;
  size_t len;
  int n = channel_frames(ch, &data, &len);
  if (n > 0) {
    o->taken += n;
    channel_consume(ch, len);
  }
}

static void on_close(channel *ch, const char *reason, void *ctx) {
  (void)ch;
  owner *o = ctx;
  o->closes++;
  snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

static const channel_events events = {on_input, on_close};

static void turn(int times) {
  for (int i = 0; i < times; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t elapsed_ms(uint64_t since) {
  return (uv_hrtime() - since) / 1000000u;
}

static void peer_write(peer *p, const void *bytes, size_t len) {
  const uint8_t *at = bytes;
  while (len > 0) {
    ssize_t n = send(p->fd, at, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    at += n;
    len -= (size_t)n;
  }
}

/* A whole frame, encoded into *out (malloc'd, caller frees); its size. */
static uint32_t encode(uint8_t **out, uint8_t type, uint8_t status, uint16_t flags,
                       uint32_t endpoint, uint32_t id, const char *a, const void *payload,
                       size_t payload_len) {
  size_t a_len = a ? strlen(a) : 0;
  uint32_t size = frame_size(a_len, 0, payload_len);
  uint8_t *f = malloc(size);
  frame_write_header(f, type, status, flags, endpoint, id, a_len, 0, payload_len);
  if (a_len) memcpy(f + FRAME_HEADER_SIZE, a, a_len);
  if (payload_len) memcpy(f + FRAME_HEADER_SIZE + a_len, payload, payload_len);
  *out = f;
  return size;
}

static void peer_send(peer *p, uint8_t type, uint8_t status, uint16_t flags, uint32_t endpoint,
                      uint32_t id, const char *a, const void *payload, size_t payload_len) {
  uint8_t *f;
  uint32_t size = encode(&f, type, status, flags, endpoint, id, a, payload, payload_len);
  peer_write(p, f, size);
  free(f);
}

static void peer_hello(peer *p, uint32_t version, uint32_t max_size) {
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, max_size);
  frame_store_u32(hello + 4, version);
  peer_send(p, FRAME_HELLO, 0, 0, 0, 0, NULL, hello, sizeof(hello));
}

/* Reads what the socket holds now, without blocking. */
static void peer_pump(peer *p) {
  while (p->len < PEER_CAP) {
    ssize_t n = recv(p->fd, p->in + p->len, PEER_CAP - p->len, MSG_DONTWAIT);
    if (n > 0) {
      p->len += (size_t)n;
      continue;
    }
    if (n == 0) p->eof = 1;
    return;
  }
}

/* The next frame the channel wrote, turning its loop until it is there (or
 * a second passes): 1, or 0. f points into the peer until the next call. */
static int peer_next(peer *p, frame *f) {
  memmove(p->in, p->in + p->pending, p->len - p->pending);
  p->len -= p->pending;
  p->pending = 0;
  uint64_t start = uv_hrtime();
  for (;;) {
    if (frame_decode(p->in, p->len, UINT32_MAX, f) == FRAME_OK) {
      p->pending = f->size;
      return 1;
    }
    if (p->eof || elapsed_ms(start) > 1000) return 0;
    turn(1);
    peer_pump(p);
    if (p->len == 0) sleep_ms(1);
  }
}

/* Nothing from the channel waits on the socket. */
static int peer_quiet(peer *p) {
  struct pollfd q = {p->fd, POLLIN, 0};
  return poll(&q, 1, 0) == 0 && p->len == p->pending;
}

static void peer_free(peer *p) {
  if (p->fd >= 0) close(p->fd);
  free(p->in);
}

/* A channel attached to one end of a new socketpair, p on the other. */
static channel *open_channel(owner *o, peer *p, uint32_t max_size) {
  memset(o, 0, sizeof(*o));
  memset(p, 0, sizeof(*p));
  p->in = malloc(PEER_CAP);
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) abort();
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  p->fd = fds[1];
  p->channel_fd = fds[0];
  /* The test reads only after a send returns: room in the socket for the
   * largest frame a test sends, so a send past the channel's high water
   * does not wait (CHANNEL_HIGH_WATER_WAIT_MS) for a reader that cannot
   * come. The kernel may cap it (net.core.wmem_max): then such sends
   * wait, and still pass. */
  int room = 4 << 20;
  (void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
  o->ch = channel_create(&loop, max_size, &events, o);
  CHECK(o->ch != NULL);
  const char *why = NULL;
  CHECK(channel_attach(o->ch, fds[0], &why) == 0);
  return o->ch;
}

/* open_channel, then both hellos. */
static channel *greeted_channel(owner *o, peer *p, uint32_t max_size, uint32_t broker_max) {
  channel *ch = open_channel(o, p, max_size);
  frame f;
  CHECK(peer_next(p, &f) && f.type == FRAME_HELLO);
  peer_hello(p, FRAME_VERSION, broker_max);
  turn(2);
  const uint8_t *data;
  size_t len;
  CHECK(channel_frames(ch, &data, &len) == 0);
  return ch;
}

static void close_channel(owner *o, peer *p) {
  channel_release(o->ch, NULL, NULL);
  turn(3);
  peer_free(p);
}

/* ---- the hello ------------------------------------------------------------ */

static void test_hello(void) {
  owner o;
  peer p;
  memset(&o, 0, sizeof(o));
  memset(&p, 0, sizeof(p));
  p.in = malloc(PEER_CAP);
  int fds[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  p.fd = fds[1];
  channel *ch = o.ch = channel_create(&loop, 1u << 20, &events, &o);
  /* A frame sent before there is a socket waits behind the hello. */
  uint32_t size = frame_size(0, 0, 0);
  uint8_t *at = channel_reserve(ch, size);
  CHECK(at != NULL);
  frame_encode(at, FRAME_SYNC, 0, 0, 5, NULL, 0, NULL, 0, NULL, 0);
  channel_commit(ch, size, 0);
  CHECK(channel_max_frame_size(ch) == 1u << 20); /* ours until the broker speaks */
  const char *why = NULL;
  CHECK(channel_attach(ch, fds[0], &why) == 0);
  frame f;
  uint32_t version = 0, max = 0;
  CHECK(peer_next(&p, &f) && f.type == FRAME_HELLO);
  CHECK(frame_hello_parse(f.payload, f.payload_len, &version, &max) == 0);
  CHECK(version == FRAME_VERSION && max == 1u << 20);
  CHECK(peer_next(&p, &f) && f.type == FRAME_SYNC && f.request_id == 5);
  /* A second attach is refused, and closes the descriptor it was given. */
  int extra[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, extra) == 0);
  CHECK(channel_attach(ch, extra[0], &why) == -1 && strstr(why, "already attached"));
  CHECK(fcntl(extra[0], F_GETFD) == -1 && errno == EBADF);
  close(extra[1]);
  /* The broker's hello: its smaller maximum bounds frames from now on. */
  peer_hello(&p, FRAME_VERSION, 65536);
  turn(2);
  CHECK(o.inputs == 1);
  const uint8_t *data;
  size_t len = 99;
  CHECK(channel_frames(ch, &data, &len) == 0 && len == 0);
  CHECK(channel_max_frame_size(ch) == 65536);
  CHECK(!channel_is_closed(ch));
  close_channel(&o, &p);

  /* A larger maximum than ours, or one under the protocol's minimum, leaves
   * ours. */
  ch = greeted_channel(&o, &p, 1u << 20, 2u << 20);
  CHECK(channel_max_frame_size(ch) == 1u << 20);
  close_channel(&o, &p);
  ch = greeted_channel(&o, &p, 1u << 20, FRAME_MIN_MAX_SIZE - 1);
  CHECK(channel_max_frame_size(ch) == 1u << 20);
  close_channel(&o, &p);

  /* Another version, or another frame first, is refused: the channel closes
   * with a reason the user can act on, and the owner hears it once. */
  for (int wrong_first = 0; wrong_first < 2; wrong_first++) {
    ch = open_channel(&o, &p, 1u << 20);
    if (wrong_first)
      peer_send(&p, FRAME_MESSAGE, 0, 0, 1, 0, "room", "x", 1);
    else
      peer_hello(&p, 99, 65536);
    turn(2);
    CHECK(channel_frames(ch, &data, &len) == -1);
    CHECK(channel_is_closed(ch));
    CHECK(strstr(channel_close_reason(ch), "another protocol version") != NULL);
    turn(3);
    CHECK(o.closes == 1 && strstr(o.reason, "another protocol version") != NULL);
    close_channel(&o, &p);
  }
}

/* ---- frames both ways ------------------------------------------------------ */

static void test_frames(void) {
  owner o;
  peer p;
  channel *ch = greeted_channel(&o, &p, 1u << 20, 65536);
  frame f;
  /* Frames committed without flush_now go out together, once the loop
   * turns, in the order they were committed. */
  uint32_t size = frame_size(4, 0, 3);
  for (uint32_t id = 1; id <= 3; id++) {
    uint8_t *at = channel_reserve(ch, size);
    CHECK(at != NULL);
    frame_encode(at, FRAME_KV_SET, 0, 7, id, "ns/a", 4, NULL, 0, "abc", 3);
    channel_commit(ch, size, 0);
  }
  CHECK(peer_quiet(&p));
  turn(1);
  peer_pump(&p);
  CHECK(p.len - p.pending == 3 * size);
  for (uint32_t id = 1; id <= 3; id++)
    CHECK(peer_next(&p, &f) && f.type == FRAME_KV_SET && f.request_id == id && f.endpoint == 7 &&
          f.payload_len == 3 && memcmp(f.payload, "abc", 3) == 0);
  /* flush_now: on the socket before commit returns. */
  uint8_t *at = channel_reserve(ch, size);
  frame_encode(at, FRAME_KV_SET, 0, 7, 4, "ns/a", 4, NULL, 0, "abc", 3);
  channel_commit(ch, size, 1);
  peer_pump(&p);
  CHECK(p.len - p.pending == size);
  CHECK(peer_next(&p, &f) && f.request_id == 4);

  /* A frame in two parts, with a large payload (no pool: all on the socket). */
  uint8_t head[FRAME_HEADER_SIZE + 4];
  size_t payload_len = 20000;
  uint8_t *payload = malloc(payload_len);
  for (size_t i = 0; i < payload_len; i++)
    payload[i] = (uint8_t)(i * 7);
  frame_write_header(head, FRAME_PUBLISH, 0, 0, 2, 0, 4, 0, payload_len);
  memcpy(head + FRAME_HEADER_SIZE, "room", 4);
  CHECK(channel_send_parts(ch, head, sizeof(head), payload, payload_len, 0) == 0);
  CHECK(peer_next(&p, &f) && f.type == FRAME_PUBLISH && !(f.flags & FRAME_FLAG_SHARED) &&
        f.payload_len == payload_len && memcmp(f.payload, payload, payload_len) == 0);

  /* Over the maximum (the broker's 65536 now): refused before anything is
   * queued, and the channel goes on. */
  errno = 0;
  CHECK(channel_reserve(ch, 65537) == NULL && errno == E2BIG);
  errno = 0;
  CHECK(channel_reserve(ch, 0) == NULL && errno == E2BIG);
  errno = 0;
  frame_write_header(head, FRAME_PUBLISH, 0, 0, 2, 0, 4, 0, 70000);
  uint8_t *big = calloc(1, 70000);
  CHECK(channel_send_parts(ch, head, sizeof(head), big, 70000, 0) == -1 && errno == E2BIG);
  turn(2);
  CHECK(peer_quiet(&p) && !channel_is_closed(ch));

  /* Three frames in one write: one call to the owner, one batch. */
  uint8_t *frames[3];
  uint32_t sizes[3];
  uint8_t all[1024];
  size_t all_len = 0;
  for (int i = 0; i < 3; i++) {
    sizes[i] = encode(&frames[i], FRAME_MESSAGE, 0, 0, (uint32_t)i + 1, 0, "room", "hello", 5);
    memcpy(all + all_len, frames[i], sizes[i]);
    all_len += sizes[i];
    free(frames[i]);
  }
  int inputs = o.inputs;
  peer_write(&p, all, all_len);
  turn(2);
  CHECK(o.inputs == inputs + 1);
  const uint8_t *data;
  size_t len;
  CHECK(channel_frames(ch, &data, &len) == 3);
  CHECK(len == all_len && memcmp(data, all, all_len) == 0);
  channel_consume(ch, len);
  CHECK(channel_frames(ch, &data, &len) == 0 && len == 0);

  /* A frame split across reads is whole only once its last byte came. */
  uint8_t *split;
  uint32_t split_size = encode(&split, FRAME_MESSAGE, 0, 0, 4, 0, "room", payload, 3000);
  size_t cuts[] = {10, 2000, split_size};
  size_t sent = 0;
  for (int i = 0; i < 3; i++) {
    peer_write(&p, split + sent, cuts[i] - sent);
    sent = cuts[i];
    turn(2);
    int n = channel_frames(ch, &data, &len);
    CHECK(n == (i == 2 ? 1 : 0));
  }
  CHECK(len == split_size && memcmp(data, split, split_size) == 0);
  channel_consume(ch, len);
  free(split);

  /* A frame from the broker over the maximum closes the channel. */
  uint8_t header[FRAME_HEADER_SIZE];
  frame_write_header(header, FRAME_MESSAGE, 0, 0, 1, 0, 4, 0, 70000);
  peer_write(&p, header, sizeof(header));
  turn(2);
  CHECK(channel_frames(ch, &data, &len) == -1 && channel_is_closed(ch));
  CHECK(strstr(channel_close_reason(ch), "over the maximum size") != NULL);
  turn(2);
  CHECK(o.closes == 1);
  free(big);
  free(payload);
  close_channel(&o, &p);
}

/* ---- the blocking waits ---------------------------------------------------- */

typedef struct late {
  peer *p;
  int delay_ms;
  size_t drain; /* bytes to read (the drainer), or 0: send a reply */
  size_t drained;
  shm_map *pool; /* or free this region's oldest slot */
  uint32_t region;
  uint32_t slot;
} late;

static void *late_main(void *arg) {
  late *l = arg;
  if (l->pool) {
    /* Frees the slot once the publisher says it waits for one (not after
     * a fixed delay, which a loaded machine could stretch past the
     * publisher's 20 ms patience); gives up looking after 5 s. */
    shm_header *h = shm_header_at(l->pool->base, l->region);
    for (int i = 0; i < 50000 && atomic_load(&h->waiting) == 0; i++) {
      struct timespec ts = {0, 100000L};
      nanosleep(&ts, NULL);
    }
    atomic_store(&h->busy[l->slot], 0);
    shm_wake(l->pool, l->region);
    return NULL;
  }
  sleep_ms(l->delay_ms);
  if (l->drain) {
    uint8_t *sink = malloc(1u << 16);
    while (l->drained < l->drain) {
      ssize_t n = recv(l->p->fd, sink, 1u << 16, 0);
      if (n <= 0) break;
      l->drained += (size_t)n;
    }
    free(sink);
  } else {
    peer_send(l->p, FRAME_REPLY, FRAME_STATUS_OK, 0, 0, 21, NULL, "late", 4);
  }
  return NULL;
}

static void test_waits(void) {
  owner o;
  peer p;
  channel *ch = greeted_channel(&o, &p, 1u << 20, 65536);
  frame f;
  const char *why = NULL;
  uint8_t status = 99;
  uint8_t *payload = NULL;
  uint32_t payload_len = 0;
  const uint8_t *data;
  size_t len;

  /* The reply is found behind other input, which stays for the owner (who
   * hears of it from the loop: the socket has nothing more to say). What
   * was queued went out first. */
  uint32_t size = frame_size(0, 0, 0);
  uint8_t *at = channel_reserve(ch, size);
  frame_encode(at, FRAME_SYNC, 0, 0, 20, NULL, 0, NULL, 0, NULL, 0);
  channel_commit(ch, size, 0);
  peer_send(&p, FRAME_MESSAGE, 0, 0, 1, 0, "room", "m", 1);
  peer_send(&p, FRAME_REPLY, FRAME_STATUS_MISSING, 0, 0, 20, NULL, "v", 1);
  int inputs = o.inputs;
  CHECK(channel_wait_reply(ch, 20, 1000, &status, &payload, &payload_len, &why) == 0);
  CHECK(status == FRAME_STATUS_MISSING && payload_len == 1 && payload && payload[0] == 'v');
  free(payload);
  peer_pump(&p);
  CHECK(peer_next(&p, &f) && f.type == FRAME_SYNC && f.request_id == 20);
  turn(1);
  CHECK(o.inputs == inputs + 1);
  CHECK(channel_frames(ch, &data, &len) == 1);
  channel_consume(ch, len);

  /* A reply that comes while it waits. */
  late l = {&p, 30, 0, 0, NULL, 0, 0};
  pthread_t t;
  uint64_t start = uv_hrtime();
  pthread_create(&t, NULL, late_main, &l);
  CHECK(channel_wait_reply(ch, 21, 5000, &status, &payload, &payload_len, &why) == 0);
  CHECK(elapsed_ms(start) >= 25 && status == FRAME_STATUS_OK && payload_len == 4 &&
        memcmp(payload, "late", 4) == 0);
  pthread_join(t, NULL);
  free(payload);

  /* No reply: a time out, and the channel goes on. */
  start = uv_hrtime();
  CHECK(channel_wait_reply(ch, 22, 50, &status, &payload, &payload_len, &why) == -1);
  CHECK(elapsed_ms(start) >= 45 && strstr(why, "timed out") != NULL);
  CHECK(!channel_is_closed(ch));

  /* Flushing: nothing queued is done at once; a full socket times out;
   * once the broker reads, all of it goes. One frame under the channel's
   * high water (more would wait in the commit itself) fills a socket
   * made small. */
  CHECK(channel_flush_sync(ch, 50, &why) == 0);
  int small = 4096;
  CHECK(setsockopt(p.channel_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0);
  size = frame_size(0, 0, 60000);
  at = channel_reserve(ch, size);
  CHECK(at != NULL);
  frame_write_header(at, FRAME_PUBLISH, 0, 0, 0, 0, 0, 0, 60000);
  memset(at + FRAME_HEADER_SIZE, 1, 60000);
  channel_commit(ch, size, 0);
  size_t total = size;
  start = uv_hrtime();
  CHECK(channel_flush_sync(ch, 50, &why) == -1 && strstr(why, "timed out writing") != NULL);
  CHECK(elapsed_ms(start) >= 45 && !channel_is_closed(ch));
  late d = {&p, 10, 0, 0, NULL, 0, 0};
  peer_pump(&p); /* what went out already */
  d.drain = total - (p.len - p.pending);
  p.len = p.pending = 0;
  pthread_create(&t, NULL, late_main, &d);
  CHECK(channel_flush_sync(ch, 5000, &why) == 0);
  pthread_join(t, NULL);
  CHECK(d.drained == d.drain);

  close_channel(&o, &p);
}

/* ---- the input loan -------------------------------------------------------- */

/* The peer sends an empty REPLY to request id, and the channel waits for
 * it (a blocking call, which moves any lent input away): what
 * channel_wait_reply returned, the payload it gave in *payload. */
static int reply_empty(channel *ch, peer *p, uint32_t id, uint8_t **payload,
                       uint32_t *payload_len) {
  peer_send(p, FRAME_REPLY, 0, 0, 0, id, NULL, NULL, 0);
  const char *why = NULL;
  uint8_t status;
  return channel_wait_reply(ch, id, 1000, &status, payload, payload_len, &why);
}

static void test_loan(void) {
  owner o;
  peer p;
  channel *ch = greeted_channel(&o, &p, 1u << 20, 65536);
  uint8_t *a, *b;
  uint32_t a_size = encode(&a, FRAME_MESSAGE, 0, 0, 1, 0, "room", "first", 5);
  uint32_t b_size = encode(&b, FRAME_MESSAGE, 0, 0, 2, 0, "room", "second", 6);
  uint8_t sent[256];
  memcpy(sent, a, a_size);
  memcpy(sent + a_size, b, b_size);
  peer_write(&p, sent, a_size + b_size);
  turn(2);
  /* What is lent is what was read, in place. */
  const uint8_t *data, *again;
  size_t len, again_len;
  CHECK(channel_lend(ch, &data, &len) == 2);
  CHECK(len == a_size + b_size && memcmp(data, sent, len) == 0);
  CHECK(channel_lend(ch, &again, &again_len) == 0); /* one loan at a time */
  /* Not read: it stays for the next taker, where it was. */
  channel_unlend(ch, CHANNEL_UNLEND_UNREAD);
  CHECK(channel_lend(ch, &again, &again_len) == 2 && again == data && again_len == len);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  CHECK(channel_frames(ch, &again, &again_len) == 0);

  /* A blocking call while lent moves the rest of the input away: the lent
   * bytes neither move nor change, and what came after them is kept. */
  peer_write(&p, sent, a_size + b_size);
  turn(2);
  CHECK(channel_lend(ch, &data, &len) == 2);
  uint8_t copy[256];
  memcpy(copy, data, len);
  peer_send(&p, FRAME_MESSAGE, 0, 0, 3, 0, "room", "third", 5);
  uint8_t *payload = NULL;
  uint32_t payload_len;
  CHECK(reply_empty(ch, &p, 30, &payload, &payload_len) == 0);
  CHECK(payload == NULL && payload_len == 0);
  CHECK(memcmp(data, copy, len) == 0);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  frame f;
  CHECK(channel_frames(ch, &again, &again_len) == 1);
  CHECK(frame_decode(again, again_len, UINT32_MAX, &f) == FRAME_OK && f.endpoint == 3);
  channel_consume(ch, again_len);
  free(a);
  free(b);
  close_channel(&o, &p);
}

/* ---- slices: a busy publisher's backlog does not hold up a quiet one ------ */

/* Sends a message from publisher `from` (the broker puts its number in the
 * request id) whose payload is seq. */
static void peer_message(peer *p, uint32_t from, uint32_t seq) {
  peer_send(p, FRAME_MESSAGE, 0, 0, 1, from, "t", &seq, sizeof(seq));
}

/* Lends a slice of at most max frames: their publishers and payloads, in
 * the order handed over; returns how many. */
static int slice(channel *ch, size_t max, uint32_t *from, uint32_t *seq) {
  const uint8_t *data;
  size_t len;
  const uint32_t *picked = NULL;
  int n = channel_lend_slice(ch, max, &data, &len, &picked);
  for (int i = 0; i < n; i++) {
    frame f;
    CHECK(frame_decode(data + picked[i], len - picked[i], UINT32_MAX, &f) == FRAME_OK);
    from[i] = f.type == FRAME_MESSAGE ? f.request_id : 0;
    seq[i] = 0;
    if (f.type == FRAME_MESSAGE) memcpy(&seq[i], f.payload, sizeof(seq[i]));
  }
  return n;
}

static void test_slices(void) {
  owner o;
  peer p;
  channel *ch = greeted_channel(&o, &p, 1u << 20, 65536);
  uint32_t from[64], seq[64];
  /* 20 from a busy publisher, then 3 and 1 from two quiet ones. */
  for (uint32_t i = 0; i < 20; i++)
    peer_message(&p, 1, i);
  for (uint32_t i = 0; i < 3; i++)
    peer_message(&p, 2, 100 + i);
  peer_message(&p, 3, 200);
  turn(2);
  /* Equal shares of 8: 4 of the busy one's, all the quiet ones', each in
   * its order, in arrival order. */
  CHECK(slice(ch, 8, from, seq) == 8);
  uint32_t want_from[8] = {1, 1, 1, 1, 2, 2, 2, 3};
  uint32_t want_seq[8] = {0, 1, 2, 3, 100, 101, 102, 200};
  CHECK(memcmp(from, want_from, sizeof(want_from)) == 0);
  CHECK(memcmp(seq, want_seq, sizeof(want_seq)) == 0);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  /* Not read: the same slice again. */
  CHECK(slice(ch, 8, from, seq) == 8 && from[0] == 1 && seq[0] == 4 && seq[7] == 11);
  channel_unlend(ch, CHANNEL_UNLEND_UNREAD);
  /* A reply overtakes nothing and is overtaken by nothing. */
  peer_send(&p, FRAME_REPLY, 0, 0, 0, 77, NULL, NULL, 0);
  peer_message(&p, 2, 103);
  turn(2);
  CHECK(slice(ch, 8, from, seq) == 8 && from[0] == 1 && seq[0] == 4 && seq[7] == 11);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  CHECK(slice(ch, 9, from, seq) == 8 && from[7] == 1 && seq[7] == 19);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  CHECK(slice(ch, 20, from, seq) == 2 && from[0] == 0 && from[1] == 2 && seq[1] == 103);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  const uint8_t *data;
  size_t len;
  CHECK(channel_frames(ch, &data, &len) == 0 && len == 0);

  /* Frames left behind in a slice are not handed over twice: not by the
   * taking way, nor after a blocking call moved the input mid-loan. */
  peer_message(&p, 1, 0);
  peer_message(&p, 1, 1);
  peer_message(&p, 2, 100);
  peer_message(&p, 1, 2);
  turn(2);
  CHECK(slice(ch, 2, from, seq) == 2 && seq[0] == 0 && seq[1] == 100);
  uint8_t *payload = NULL;
  uint32_t payload_len;
  CHECK(reply_empty(ch, &p, 30, &payload, &payload_len) == 0);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  CHECK(slice(ch, 8, from, seq) == 2 && seq[0] == 1 && seq[1] == 2);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  peer_message(&p, 1, 3);
  peer_message(&p, 1, 4);
  peer_message(&p, 2, 101);
  turn(2);
  CHECK(slice(ch, 1, from, seq) == 1 && seq[0] == 3);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  CHECK(slice(ch, 1, from, seq) == 1 && seq[0] == 4);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  CHECK(channel_frames(ch, &data, &len) == 1);
  frame f;
  CHECK(frame_decode(data, len, UINT32_MAX, &f) == FRAME_OK && f.request_id == 2);
  channel_consume(ch, len);
  close_channel(&o, &p);
}

/* ---- hang-up --------------------------------------------------------------- */

static void test_hangup(void) {
  owner o;
  peer p;
  const char *why = NULL;
  /* The broker says why, then hangs up: frames sent before still reach the
   * owner, then it hears the broker's reason, once. */
  channel *ch = greeted_channel(&o, &p, 1u << 20, 65536);
  o.take = 1;
  peer_send(&p, FRAME_MESSAGE, 0, 0, 1, 0, "room", "m", 1);
  const char *bye = "the process stopped reading";
  peer_send(&p, FRAME_REPLY, FRAME_STATUS_BAD_REQUEST, 0, 0, 0, NULL, bye, strlen(bye));
  shutdown(p.fd, SHUT_WR);
  turn(4);
  CHECK(o.taken == 1 && channel_is_closed(ch));
  CHECK(o.closes == 1 && strstr(o.reason, "the master's broker closed the channel") &&
        strstr(o.reason, bye));
  turn(3);
  CHECK(o.closes == 1);
  /* Sends fail once closed. */
  errno = 0;
  CHECK(channel_reserve(ch, 100) == NULL && errno == EPIPE);
  uint8_t head[FRAME_HEADER_SIZE];
  frame_write_header(head, FRAME_PUBLISH, 0, 0, 0, 0, 0, 0, 1);
  errno = 0;
  CHECK(channel_send_parts(ch, head, sizeof(head), (const uint8_t *)"x", 1, 0) == -1 &&
        errno == EPIPE);
  CHECK(channel_flush_sync(ch, 100, &why) == -1);
  close_channel(&o, &p);

  /* A plain end of file. */
  ch = greeted_channel(&o, &p, 1u << 20, 65536);
  close(p.fd);
  p.fd = -1;
  turn(3);
  CHECK(channel_is_closed(ch) && o.closes == 1);
  CHECK(strstr(o.reason, "the master closed the channel") != NULL);
  close_channel(&o, &p);

  /* Found by a blocking call: it returns the reason, and the owner still
   * hears of it from the loop. */
  ch = greeted_channel(&o, &p, 1u << 20, 65536);
  close(p.fd);
  p.fd = -1;
  uint8_t status;
  uint8_t *payload;
  uint32_t payload_len;
  CHECK(channel_wait_reply(ch, 40, 1000, &status, &payload, &payload_len, &why) == -1);
  CHECK(strstr(why, "the master closed the channel") != NULL && channel_is_closed(ch));
  CHECK(o.closes == 0);
  turn(2);
  CHECK(o.closes == 1);
  close_channel(&o, &p);

  /* Closed by the owner: no callback. */
  ch = greeted_channel(&o, &p, 1u << 20, 65536);
  channel_close(ch, "the store was closed");
  turn(3);
  CHECK(channel_is_closed(ch) && o.closes == 0);
  CHECK(strcmp(channel_close_reason(ch), "the store was closed") == 0);
  close_channel(&o, &p);
}

/* ---- the shared pool ------------------------------------------------------- */

static shm_map *pool;

#define REGION 5u
#define GENERATION 3u

static shm_header *region_header(void) {
  return shm_header_at(pool->base, REGION);
}

/* A greeted channel that took the broker's offer of region REGION, as the
 * broker makes it, and said it reads shared messages. */
static channel *pooled_channel(owner *o, peer *p) {
  shm_region_reset(pool, REGION);
  atomic_store(&region_header()->generation, GENERATION);
  channel *ch = open_channel(o, p, 4u << 20);
  frame f;
  CHECK(peer_next(p, &f) && f.type == FRAME_HELLO);
  peer_hello(p, FRAME_VERSION, 4u << 20);
  uint8_t offer[FRAME_OFFER_SIZE];
  frame_offer o_ = {REGION, SHM_REGION_SIZE, SHM_SLOTS, SHM_PAYLOAD_MAX, GENERATION};
  frame_offer_write(offer, &o_);
  uint8_t *bytes;
  uint32_t size = encode(&bytes, FRAME_SHARED, 0, 0, 0, 0, NULL, offer, sizeof(offer));
  CHECK(fdpass_send_copy(p->fd, bytes, size, pool->fd) == (ssize_t)size);
  free(bytes);
  turn(2);
  const uint8_t *data;
  size_t len;
  CHECK(channel_frames(ch, &data, &len) == 0);
  shm_map *m = channel_pool(ch);
  CHECK(m != NULL && m->region_index == REGION);
  CHECK(atomic_load(&region_header()->pid) == (uint32_t)getpid());
  CHECK(channel_pool_ready(ch) == 0);
  uint32_t pid = 0;
  CHECK(peer_next(p, &f) && f.type == FRAME_SHARED &&
        frame_shared_ready_parse(f.payload, f.payload_len, &pid) == 0 && pid == (uint32_t)getpid());
  CHECK(channel_pool_ready(ch) == 0);
  turn(1);
  CHECK(peer_quiet(p)); /* said once */
  return ch;
}

/* Publishes len bytes of fill on channel "room"; the frame the broker gets
 * is in *f. */
static void publish(channel *ch, peer *p, uint8_t type, size_t len, uint8_t fill, frame *f) {
  uint8_t head[FRAME_HEADER_SIZE + 4];
  frame_write_header(head, type, 0, 0, 1, 0, 4, 0, len);
  memcpy(head + FRAME_HEADER_SIZE, "room", 4);
  uint8_t *payload = malloc(len);
  memset(payload, fill, len);
  CHECK(channel_send_parts(ch, head, sizeof(head), payload, len, 0) == 0);
  CHECK(peer_next(p, f) && f->type == type && f->a_len == 4 && memcmp(f->a, "room", 4) == 0);
  free(payload);
}

/* The descriptor of a shared publish, checked against the pool. */
static int shared_at(const frame *f, size_t len, uint8_t fill, uint32_t *slot, uint32_t *offset) {
  frame_publish_desc d;
  if (!(f->flags & FRAME_FLAG_SHARED) ||
      frame_publish_desc_parse(f->payload, f->payload_len, &d) != 0 || d.length != len)
    return 0;
  *slot = d.slot;
  *offset = d.offset;
  const uint8_t *at = pool->base + shm_data_offset(REGION) + *offset;
  for (size_t i = 0; i < len; i++)
    if (at[i] != fill) return 0;
  return atomic_load(&region_header()->busy[*slot]) == 1;
}

static int on_socket(const frame *f, size_t len, uint8_t fill) {
  if ((f->flags & FRAME_FLAG_SHARED) || f->payload_len != len) return 0;
  for (size_t i = 0; i < len; i++)
    if (f->payload[i] != fill) return 0;
  return 1;
}

/* The broker is done with a payload: its slot comes back. */
static void free_slot(uint32_t slot) {
  atomic_store(&region_header()->busy[slot], 0);
  shm_wake(pool, REGION);
}

static void test_pool_ring(void) {
  owner o;
  peer p;
  channel *ch = pooled_channel(&o, &p);
  frame f;
  uint32_t slot[8], offset[8];
  /* A large PUBLISH goes through the ring, anything else takes the socket. */
  publish(ch, &p, FRAME_PUBLISH, 100000, 0x11, &f);
  CHECK(f.size == FRAME_HEADER_SIZE + 4 + FRAME_PUBLISH_DESC_SIZE);
  CHECK(shared_at(&f, 100000, 0x11, &slot[0], &offset[0]) && offset[0] == 0);
  publish(ch, &p, FRAME_KV_SET, 100000, 0x12, &f);
  CHECK(on_socket(&f, 100000, 0x12));
  /* Fill the data area; then, once the oldest are freed, the ring wraps to
   * its start. */
  for (int i = 1; i <= 3; i++) {
    publish(ch, &p, FRAME_PUBLISH, SHM_PAYLOAD_MAX, (uint8_t)(0x20 + i), &f);
    CHECK(shared_at(&f, SHM_PAYLOAD_MAX, (uint8_t)(0x20 + i), &slot[i], &offset[i]));
    CHECK(offset[i] > offset[i - 1]);
  }
  free_slot(slot[0]);
  free_slot(slot[1]);
  publish(ch, &p, FRAME_PUBLISH, SHM_PAYLOAD_MAX, 0x24, &f);
  CHECK(shared_at(&f, SHM_PAYLOAD_MAX, 0x24, &slot[4], &offset[4]) && offset[4] == 0);

  /* Full: the publisher waits for the broker to free a slot... (here with
   * 5 s of patience, so a loaded machine that runs the freeing thread late
   * cannot make the publish give up first; it returns once the slot is
   * free, whatever the patience) */
  late l = {&p, 0, 0, 0, pool, REGION, slot[2]};
  pthread_t t;
  channel_set_ring_wait(ch, 5000);
  pthread_create(&t, NULL, late_main, &l);
  publish(ch, &p, FRAME_PUBLISH, SHM_PAYLOAD_MAX, 0x25, &f);
  pthread_join(t, NULL);
  channel_set_ring_wait(ch, 20);
  CHECK(shared_at(&f, SHM_PAYLOAD_MAX, 0x25, &slot[5], &offset[5]));
  CHECK(offset[5] == offset[4] + SHM_PAYLOAD_MAX);
  /* ... but not for long: without a slot the payload takes the socket, and
   * the next ones do at once, until a slot is free again. */
  uint64_t start = uv_hrtime();
  publish(ch, &p, FRAME_PUBLISH, SHM_PAYLOAD_MAX, 0x26, &f);
  CHECK(on_socket(&f, SHM_PAYLOAD_MAX, 0x26) && elapsed_ms(start) >= 15);
  publish(ch, &p, FRAME_PUBLISH, 200000, 0x27, &f);
  CHECK(on_socket(&f, 200000, 0x27));
  free_slot(slot[3]);
  publish(ch, &p, FRAME_PUBLISH, 100000, 0x28, &f);
  CHECK(shared_at(&f, 100000, 0x28, &slot[6], &offset[6]));

  /* The region is no longer this process's to write: after a generation
   * change, or once the broker cut it off, payloads take the socket. */
  atomic_store(&region_header()->generation, GENERATION + 1);
  publish(ch, &p, FRAME_PUBLISH, 100000, 0x29, &f);
  CHECK(on_socket(&f, 100000, 0x29));
  atomic_store(&region_header()->generation, GENERATION);
  free_slot(slot[4]);
  publish(ch, &p, FRAME_PUBLISH, 100000, 0x2a, &f);
  CHECK(shared_at(&f, 100000, 0x2a, &slot[7], &offset[7]));
  atomic_store(&region_header()->cut, SHM_CUT_QUEUE_LIMIT);
  publish(ch, &p, FRAME_PUBLISH, 100000, 0x2b, &f);
  CHECK(on_socket(&f, 100000, 0x2b));
  /* The cut's reason is the one the owner hears when the broker hangs up. */
  close(p.fd);
  p.fd = -1;
  turn(3);
  CHECK(o.closes == 1 && strstr(o.reason, "queueLimit") != NULL);
  close_channel(&o, &p);
}

/* A shared message from the broker: a descriptor into region 7's data area. */
static void send_shared(peer *p, uint32_t offset_in_data, uint32_t len) {
  uint8_t desc[FRAME_MESSAGE_DESC_SIZE];
  frame_message_desc d = {(uint32_t)shm_data_offset(7) + offset_in_data, len};
  frame_message_desc_write(desc, &d);
  peer_send(p, FRAME_MESSAGE, 0, FRAME_FLAG_SHARED, 1, 0, "room", desc, sizeof(desc));
}

static uint64_t said_read(peer *p) {
  frame f;
  uint64_t count;
  if (!peer_next(p, &f) || f.type != FRAME_SHARED_READ ||
      frame_read_count_parse(f.payload, f.payload_len, &count) != 0)
    return UINT64_MAX;
  return count;
}

static void test_pool_reads(void) {
  owner o;
  peer p;
  channel *ch = pooled_channel(&o, &p);
  /* Taken and consumed: read, said in the header and in a frame. */
  o.take = 1;
  send_shared(&p, 0, 100);
  turn(2);
  CHECK(o.taken == 1);
  CHECK(said_read(&p) == 1);
  CHECK(atomic_load(&region_header()->consumed) == shm_consumed_pack(GENERATION, 1));
  send_shared(&p, 4096, 100);
  turn(2);
  CHECK(o.taken == 2);
  CHECK(said_read(&p) == 2);
  CHECK(atomic_load(&region_header()->consumed) == shm_consumed_pack(GENERATION, 2));
  /* Lent: read once the loan ends consumed, not when it was unread. */
  o.take = 0;
  send_shared(&p, 0, 100);
  turn(2);
  const uint8_t *data;
  size_t len;
  CHECK(channel_lend(ch, &data, &len) == 1);
  channel_unlend(ch, CHANNEL_UNLEND_UNREAD);
  turn(2);
  CHECK(peer_quiet(&p));
  CHECK(channel_lend(ch, &data, &len) == 1);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED);
  turn(1);
  CHECK(said_read(&p) == 3);
  CHECK(atomic_load(&region_header()->consumed) == shm_consumed_pack(GENERATION, 3));
  /* Closed with nothing lent: it will read nothing more. */
  channel_close(ch, "the store was closed");
  turn(2);
  CHECK(atomic_load(&region_header()->consumed) == shm_consumed_pack(GENERATION, SHM_COUNT_ALL));
  close_channel(&o, &p);

  /* A descriptor outside a region's data area is refused. */
  ch = pooled_channel(&o, &p);
  send_shared(&p, SHM_DATA_SIZE - 10, 100);
  turn(2);
  CHECK(channel_frames(ch, &data, &len) == -1);
  CHECK(strstr(channel_close_reason(ch), "malformed shared message") != NULL);
  close_channel(&o, &p);

  /* Before the process said it reads them, shared messages are refused. */
  ch = greeted_channel(&o, &p, 1u << 20, 65536);
  send_shared(&p, 0, 100);
  turn(2);
  CHECK(channel_frames(ch, &data, &len) == -1);
  close_channel(&o, &p);

  /* An offer this build does not understand: no pool, and no leak of its
   * descriptor. */
  ch = greeted_channel(&o, &p, 1u << 20, 65536);
  uint8_t offer[FRAME_OFFER_SIZE] = {0};
  uint8_t *bytes;
  uint32_t size = encode(&bytes, FRAME_SHARED, 0, 0, 0, 0, NULL, offer, sizeof(offer));
  CHECK(fdpass_send_copy(p.fd, bytes, size, pool->fd) == (ssize_t)size);
  free(bytes);
  turn(2);
  CHECK(channel_frames(ch, &data, &len) == 0 && channel_pool(ch) == NULL);
  CHECK(channel_pool_ready(ch) == 0);
  close_channel(&o, &p);
}

/* ---- hand-offs: frames with a descriptor alongside ------------------------ */

static int count_fds(void) {
  int count = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) != -1) count++;
  return count;
}

/* Whether a and b are the same open pipe: a byte written to w (b's write
 * end) is read from a. */
static int same_pipe(int a, int w) {
  char c = 0;
  if (write(w, "k", 1) != 1) return 0;
  return read(a, &c, 1) == 1 && c == 'k';
}

static void test_handoff(void) {
  owner o;
  peer p;
  int before = count_fds();
  channel *ch = greeted_channel(&o, &p, 1u << 20, 65536);

  /* Sending: the peer gets the frame and the same open file. */
  int pipe_a[2];
  CHECK(pipe(pipe_a) == 0);
  CHECK(channel_send_handoff(ch, 4, 9, "own:x", 5, "GET", 3, pipe_a[0]) == 0);
  close(pipe_a[0]); /* the caller's own may go at once */
  fdpass_queue in;
  fdpass_init(&in);
  frame f;
  int found = 0;
  for (int tries = 0; tries < 200 && !found; tries++) {
    turn(1);
    int got = 0, truncated = 0;
    ssize_t n = fdpass_recv(p.fd, p.in + p.len, PEER_CAP - p.len, &in, &got, &truncated);
    if (n > 0) p.len += (size_t)n;
    size_t at = 0;
    while (frame_decode(p.in + at, p.len - at, UINT32_MAX, &f) == FRAME_OK) {
      if (f.type == FRAME_HANDOFF) {
        found = 1;
        break;
      }
      at += f.size;
    }
  }
  CHECK(found && f.endpoint == 4 && f.request_id == 9 && f.a_len == 5 && f.payload_len == 3);
  CHECK(found && memcmp(f.payload, "GET", 3) == 0);
  int passed = fdpass_pop(&in);
  CHECK(passed >= 0 && same_pipe(passed, pipe_a[1]));
  close(passed);
  close(pipe_a[1]);
  p.len = 0;

  /* Receiving: each hand-off is paired with its descriptor, in order,
   * once, however often the input is walked. */
  int pipe_b[2], pipe_c[2];
  CHECK(pipe(pipe_b) == 0 && pipe(pipe_c) == 0);
  uint8_t *h1, *m, *h2;
  uint32_t s1 = encode(&h1, FRAME_HANDOFF, 0, 0, 1, 0, "own:me", "one", 3);
  uint32_t s2 = encode(&m, FRAME_MESSAGE, 0, 0, 1, 0, "room", "between", 7);
  uint32_t s3 = encode(&h2, FRAME_HANDOFF, 0, 0, 1, 0, "own:me", "two", 3);
  uint8_t bytes[512];
  memcpy(bytes, h1, s1);
  memcpy(bytes + s1, m, s2);
  memcpy(bytes + s1 + s2, h2, s3);
  fdpass_queue out;
  fdpass_init(&out);
  fdpass_push(&out, dup(pipe_b[0]));
  fdpass_push(&out, dup(pipe_c[0]));
  CHECK(fdpass_send(p.fd, bytes, s1 + s2 + s3, &out) == (ssize_t)(s1 + s2 + s3));
  fdpass_free(&out);
  turn(2);
  const uint8_t *data;
  size_t len;
  frame a, b, c;
  CHECK(channel_lend(ch, &data, &len) == 3);
  CHECK(frame_decode(data, len, UINT32_MAX, &a) == FRAME_OK);
  CHECK(frame_decode(data + a.size, len - a.size, UINT32_MAX, &b) == FRAME_OK);
  CHECK(frame_decode(data + a.size + b.size, len - a.size - b.size, UINT32_MAX, &c) == FRAME_OK);
  CHECK(a.type == FRAME_HANDOFF && a.request_id != 0 && b.type == FRAME_MESSAGE &&
        b.request_id == 0);
  CHECK(c.type == FRAME_HANDOFF && c.request_id != 0 && c.request_id != a.request_id);
  uint32_t fd_one = a.request_id, fd_two = c.request_id;
  channel_unlend(ch, CHANNEL_UNLEND_UNREAD);
  CHECK(channel_lend(ch, &data, &len) == 3);
  CHECK(frame_decode(data, len, UINT32_MAX, &a) == FRAME_OK && a.request_id == fd_one);
  channel_unlend(ch, CHANNEL_UNLEND_CONSUMED); /* taken: the descriptors are ours */
  CHECK(same_pipe((int)fd_one - 1, pipe_b[1]) && same_pipe((int)fd_two - 1, pipe_c[1]));
  close((int)fd_one - 1);
  close((int)fd_two - 1);

  /* Hand-offs nobody took are closed with the channel. */
  fdpass_init(&out);
  fdpass_push(&out, dup(pipe_b[0]));
  CHECK(fdpass_send(p.fd, h1, s1, &out) == (ssize_t)s1);
  fdpass_free(&out);
  turn(2);
  CHECK(channel_frames(ch, &data, &len) == 1); /* walked (paired), not consumed */
  close_channel(&o, &p);
  close(pipe_b[0]);
  close(pipe_b[1]);
  close(pipe_c[0]);
  close(pipe_c[1]);
  CHECK(count_fds() == before);

  /* A hand-off without its descriptor: the channel says so and closes. */
  ch = greeted_channel(&o, &p, 1u << 20, 65536);
  peer_write(&p, h1, s1);
  turn(2);
  CHECK(channel_frames(ch, &data, &len) == -1);
  CHECK(channel_is_closed(ch) && strstr(channel_close_reason(ch), "without its descriptor"));
  close_channel(&o, &p);
  fdpass_free(&in);
  free(h1);
  free(m);
  free(h2);
  CHECK(count_fds() == before);
}

int main(void) {
  CHECK(uv_loop_init(&loop) == 0);
  test_hello();
  test_frames();
  test_waits();
  test_loan();
  test_slices();
  test_hangup();
  test_handoff();
  pool = shm_pool_create();
  if (pool) {
    test_pool_ring();
    test_pool_reads();
    shm_map_release(pool);
  } else {
    printf("channel: no shared memory here (%s): pool tests skipped\n", strerror(errno));
  }
  turn(3);
  CHECK(uv_loop_close(&loop) == 0);
  return check_report("channel");
}
