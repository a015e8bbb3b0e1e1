/* Tests of the broker through its wire protocol, with no thread: the test
 * plays the processes on raw socketpair ends and turns the broker's loop
 * itself (broker_create + broker_run_once), so every exchange is
 * deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "check.h"
#include "fdpass.h"
#include "frame.h"
#include "peer.h"
#include "shm.h"

static void send_frame(peer *p, uint8_t type, uint32_t endpoint, uint32_t id, const char *a,
                       const char *key, const void *payload, size_t payload_len, uint16_t flags) {
  peer_send(p, type, flags, endpoint, id, a, a ? strlen(a) : 0, key, key ? strlen(key) : 0, payload,
            payload_len);
}

/* The next frame from the broker (turning its loop until one is there);
 * copies its payload into payload (up to cap). 0, or -1 on EOF/timeout. */
static int next_frame(peer *p, frame *f, uint8_t *payload, size_t cap) {
  if (peer_wait(p, f) != 0) return -1;
  size_t n = f->payload_len < cap ? f->payload_len : cap;
  if (payload && n) memcpy(payload, f->payload, n);
  peer_drop(p, f);
  f->a = f->b = f->payload = NULL;
  return 0;
}

/* A process whose hello says it takes frames of at most max bytes. */
static void peer_open_max(peer *p, uint32_t max_size) {
  peer_connect(p);
  peer_hello(p, max_size);
  frame f;
  uint8_t payload[64];
  CHECK(next_frame(p, &f, payload, sizeof(payload)) == 0);
  CHECK(f.type == FRAME_HELLO);
  uint32_t version = 0, max = 0;
  CHECK(frame_hello_parse(payload, f.payload_len, &version, &max) == 0);
  CHECK(version == FRAME_VERSION);
  CHECK(max == 1u << 16);
  /* Then the offer of a region of the shared pool, with the pool. */
  CHECK(next_frame(p, &f, payload, sizeof(payload)) == 0);
  frame_offer offer = {0, 0, 0, 0, 0};
  CHECK(f.type == FRAME_SHARED && f.payload_len == FRAME_OFFER_SIZE);
  CHECK(p->pool_fd >= 0);
  CHECK(frame_offer_parse(payload, f.payload_len, &offer) == 0);
  p->region = offer.region;
  p->generation = offer.generation;
  CHECK(p->region < SHM_REGIONS);
  CHECK(offer.region_size == SHM_REGION_SIZE && offer.slots == SHM_SLOTS);
  CHECK(offer.payload_max == SHM_PAYLOAD_MAX);
}

static void peer_open(peer *p) {
  peer_open_max(p, 1u << 20);
}

/* As a channel does when it is released: says in its region's header that
 * it will read nothing more, so the broker may give the region out again. */
static void peer_done(peer *p) {
  if (p->pool_fd < 0) return;
  shm_map *m = shm_pool_map(dup(p->pool_fd), p->region);
  if (!m) return;
  atomic_store(&((shm_header *)(void *)m->region)->consumed,
               shm_consumed_pack(p->generation, SHM_COUNT_ALL));
  shm_map_release(m);
}

static void peer_close(peer *p) {
  close(p->fd);
  peer_done(p);
  if (p->pool_fd >= 0) close(p->pool_fd);
  p->pool_fd = -1;
  turn(4);
}

/* Sends a request and returns the reply's status (payload into out). */
static int request(peer *p, uint8_t type, uint32_t endpoint, const char *a, const char *key,
                   const void *payload, size_t len, uint8_t *out, uint32_t *out_len) {
  static uint32_t next_id = 100;
  uint32_t id = next_id++;
  send_frame(p, type, endpoint, id, a, key, payload, len, 0);
  frame f;
  uint8_t buf[4096];
  for (;;) {
    if (next_frame(p, &f, buf, sizeof(buf)) != 0) return -1;
    if (f.type == FRAME_REPLY && f.request_id == id) break;
  }
  if (out) memcpy(out, buf, f.payload_len < sizeof(buf) ? f.payload_len : sizeof(buf));
  if (out_len) *out_len = f.payload_len;
  return f.status;
}

/* Subscribes p's endpoint to topic: the reply's status, or -1. */
static int subscribe(peer *p, uint32_t endpoint, const char *topic) {
  return request(p, FRAME_SUBSCRIBE, endpoint, topic, NULL, NULL, 0, NULL, NULL);
}

static uint64_t stat(int which) {
  uint64_t values[FRAME_STATS_COUNT];
  turn(1);
  broker_get_stats(b, values);
  return values[which];
}

static void test_pubsub(void) {
  static peer a, c;
  peer_open(&a);
  peer_open(&c);
  CHECK(subscribe(&a, 1, "room") == FRAME_STATUS_OK);
  CHECK(subscribe(&a, 2, "room") == FRAME_STATUS_OK);
  CHECK(subscribe(&c, 1, "room") == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_SUBSCRIPTIONS) == 3);
  /* From a/1: a/2 and c/1 get it, a/1 (the publisher) does not. */
  for (uint32_t i = 0; i < 1000; i++)
    send_frame(&a, FRAME_PUBLISH, 1, 0, "room", NULL, &i, 4, 0);
  uint32_t expect_c = 0, expect_a2 = 0, wrong = 0;
  frame f;
  uint8_t buf[16];
  /* Each message says who published it: one number, not 0, for a. */
  uint32_t publisher = 0;
  while (expect_c < 1000 && next_frame(&c, &f, buf, sizeof(buf)) == 0) {
    uint32_t v;
    memcpy(&v, buf, 4);
    if (expect_c == 0) publisher = f.request_id;
    if (f.type != FRAME_MESSAGE || f.endpoint != 1 || v != expect_c || f.request_id != publisher)
      wrong++;
    expect_c++;
  }
  CHECK(publisher != 0);
  while (expect_a2 < 1000 && next_frame(&a, &f, buf, sizeof(buf)) == 0) {
    uint32_t v;
    memcpy(&v, buf, 4);
    if (f.type != FRAME_MESSAGE || f.endpoint != 2 || v != expect_a2 || f.request_id != publisher)
      wrong++;
    expect_a2++;
  }
  CHECK(expect_c == 1000);
  CHECK(expect_a2 == 1000);
  CHECK(wrong == 0);
  /* Nothing else for a: its endpoint 1 never got its own messages. */
  turn(4);
  pump(&a);
  CHECK(peer_avail(&a) == 0);
  CHECK(stat(FRAME_STAT_MESSAGES_DELIVERED) >= 2000);

  /* Unsubscribe and endpoint close stop delivery. */
  CHECK(request(&c, FRAME_UNSUBSCRIBE, 1, "room", NULL, NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_CLOSE, 2, NULL, NULL, NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_SUBSCRIPTIONS) == 1);
  send_frame(&c, FRAME_PUBLISH, 9, 0, "room", NULL, "x", 1, 0);
  CHECK(next_frame(&a, &f, buf, sizeof(buf)) == 0 && f.endpoint == 1 && f.type == FRAME_MESSAGE);
  CHECK(f.request_id != 0 && f.request_id != publisher); /* c is another publisher */
  turn(4);
  pump(&c);
  CHECK(peer_avail(&c) == 0);

  /* A peer that goes away loses its subscriptions. */
  peer_close(&a);
  CHECK(stat(FRAME_STAT_SUBSCRIPTIONS) == 0);
  CHECK(stat(FRAME_STAT_CHANNELS) == 0);
  peer_close(&c);
  CHECK(stat(FRAME_STAT_CONNECTIONS) == 0);
}

static void test_kv(void) {
  static peer a, c;
  peer_open(&a);
  peer_open(&c);
  uint8_t out[64];
  uint32_t len = 0;
  CHECK(request(&a, FRAME_KV_GET, 1, "client", "k", NULL, 0, out, &len) == FRAME_STATUS_MISSING);
  CHECK(request(&a, FRAME_KV_SET, 1, "client", "k", "value", 5, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&c, FRAME_KV_GET, 1, "client", "k", NULL, 0, out, &len) == FRAME_STATUS_OK);
  CHECK(len == 5 && memcmp(out, "value", 5) == 0);
  CHECK(request(&c, FRAME_KV_SET, 1, "client", "empty", NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_GET, 1, "client", "empty", NULL, 0, out, &len) == FRAME_STATUS_OK);
  CHECK(len == 0);
  CHECK(request(&a, FRAME_KV_HAS, 1, "client", "k", NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_DEL, 1, "client", "k", NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_HAS, 1, "client", "k", NULL, 0, NULL, NULL) == FRAME_STATUS_MISSING);
  CHECK(request(&a, FRAME_KV_DEL, 1, "client", "k", NULL, 0, NULL, NULL) == FRAME_STATUS_MISSING);
  CHECK(request(&a, FRAME_KV_CLEAR, 1, "client", NULL, NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_HAS, 1, "client", "empty", NULL, 0, NULL, NULL) ==
        FRAME_STATUS_MISSING);

  /* Expiry: gone after the deadline, unless persisted. */
  uint8_t ms[FRAME_EXPIRE_SIZE];
  frame_expire_write(ms, 300);
  CHECK(request(&a, FRAME_KV_SET, 1, "short", "k", "v", 1, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_SET, 1, "kept", "k", "v", 1, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_EXPIRE, 1, "short", NULL, ms, sizeof(ms), NULL, NULL) ==
        FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_EXPIRE, 1, "kept", NULL, ms, 4, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_PERSIST, 1, "kept", NULL, NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(request(&a, FRAME_KV_EXPIRE, 1, "nothing", NULL, ms, 4, NULL, NULL) ==
        FRAME_STATUS_MISSING);
  CHECK(request(&a, FRAME_KV_EXPIRE, 1, "short", NULL, "xy", 2, NULL, NULL) ==
        FRAME_STATUS_BAD_REQUEST);
  CHECK(request(&a, FRAME_KV_HAS, 1, "short", "k", NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  int expired = 0;
  for (int i = 0; i < 300 && !expired; i++) {
    sleep_ms(10);
    turn(2);
    expired =
        request(&a, FRAME_KV_HAS, 1, "short", "k", NULL, 0, NULL, NULL) == FRAME_STATUS_MISSING;
  }
  CHECK(expired);
  CHECK(request(&a, FRAME_KV_HAS, 1, "kept", "k", NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_NAMESPACES) == 1);

  uint8_t stats[FRAME_STATS_SIZE];
  uint64_t values[FRAME_STATS_COUNT];
  CHECK(request(&c, FRAME_STATS, 1, NULL, NULL, NULL, 0, stats, &len) == FRAME_STATUS_OK);
  CHECK(frame_stats_parse(stats, len, values) == 0);
  CHECK(values[FRAME_STAT_KEYS] == 1);
  CHECK(request(&a, FRAME_KV_CLEAR, 1, "kept", NULL, NULL, 0, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_KV_BYTES) < 4096);
  peer_close(&a);
  peer_close(&c);
}

/* A barrier request is answered only after input other connections had
 * already sent was handled: the message c published arrives before the
 * reply to a's barrier. */
static void test_barrier(void) {
  for (int round = 0; round < 50; round++) {
    static peer a, c;
    peer_open(&a);
    peer_open(&c);
    CHECK(subscribe(&a, 1, "hs") == FRAME_STATUS_OK);
    /* a's socket becomes readable first, so without the barrier the
     * broker would answer a before it even read c. */
    send_frame(&a, FRAME_SYNC, 1, 77, NULL, NULL, NULL, 0, FRAME_FLAG_BARRIER);
    send_frame(&c, FRAME_PUBLISH, 1, 0, "hs", NULL, "id", 2, 0);
    frame first, second;
    CHECK(next_frame(&a, &first, NULL, 0) == 0);
    CHECK(next_frame(&a, &second, NULL, 0) == 0);
    CHECK(first.type == FRAME_MESSAGE);
    CHECK(second.type == FRAME_REPLY && second.request_id == 77);
    peer_close(&a);
    peer_close(&c);
  }
}

/* Reads frames until the broker hangs up; 1 when it said why, with why. */
static int cut_with(peer *p, const char *why) {
  frame f;
  uint8_t text[256];
  int said = 0;
  while (next_frame(p, &f, text, sizeof(text) - 1) == 0) {
    frame_offer offer;
    if (f.type == FRAME_SHARED && frame_offer_parse(text, f.payload_len, &offer) == 0) {
      p->region = offer.region; /* for peer_done */
      p->generation = offer.generation;
    }
    if (f.type == FRAME_REPLY && f.request_id == 0 && f.status == FRAME_STATUS_BAD_REQUEST) {
      text[f.payload_len < 255 ? f.payload_len : 255] = 0;
      if (strstr((char *)text, why)) said = 1;
    }
  }
  if (!said) fprintf(stderr, "expected the broker to say '%s'\n", why);
  return said && p->eof;
}

/* Protocol errors: the broker says why, then hangs up; others go on. */
static void expect_refusal(const uint8_t *bytes, size_t len, int send_hello, const char *why) {
  static peer p, ok;
  peer_connect(&p);
  if (send_hello) peer_hello(&p, 1u << 20);
  CHECK(send(p.fd, bytes, len, MSG_NOSIGNAL) == (ssize_t)len);
  CHECK(cut_with(&p, why));
  close(p.fd);
  peer_done(&p); /* as its channel would: the region comes back */
  if (p.pool_fd >= 0) close(p.pool_fd);
  peer_open(&ok);
  CHECK(request(&ok, FRAME_KV_SET, 1, "n", "k", "v", 1, NULL, NULL) == FRAME_STATUS_OK);
  peer_close(&ok);
}

static void test_bad_input(void) {
  uint8_t f[64];
  memset(f, 0, sizeof(f));
  frame_write_header(f, FRAME_KV_SET, 0, 0, 1, 1, 10, 0, 0);
  frame_store_u32(f + 16, 1000); /* field a past the end */
  expect_refusal(f, FRAME_HEADER_SIZE, 1, "malformed");
  frame_write_header(f, FRAME_SUBSCRIBE, 0, 0, 1, 1, 0, 0, 0);
  expect_refusal(f, FRAME_HEADER_SIZE, 0, "hello");
  frame_write_header(f, 200, 0, 0, 1, 1, 0, 0, 0);
  expect_refusal(f, FRAME_HEADER_SIZE, 1, "malformed");
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, 1u << 20);
  frame_store_u32(hello + 4, 99); /* a version this broker does not speak */
  frame_encode(f, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  expect_refusal(f, FRAME_HEADER_SIZE + sizeof(hello), 0, "version");
}

/* A frame over the maximum is refused with an error for its request, its
 * bytes are skipped (however they arrive), and the connection goes on. */
static void test_oversized(void) {
  static peer p;
  peer_open(&p);
  size_t big = (1u << 16) + 100;
  uint8_t *payload = calloc(1, big);
  for (int round = 0; round < 3; round++) {
    send_frame(&p, FRAME_KV_SET, 1, 555, "c", "k", payload, big, 0);
    frame f;
    uint8_t text[256] = {0};
    CHECK(next_frame(&p, &f, text, sizeof(text) - 1) == 0);
    CHECK(f.type == FRAME_REPLY && f.request_id == 555 && f.status == FRAME_STATUS_BAD_REQUEST);
    CHECK(strstr((char *)text, "over the broker's maximum of 65536 bytes") != NULL);
    CHECK(request(&p, FRAME_KV_SET, 1, "c", "k", "small", 5, NULL, NULL) == FRAME_STATUS_OK);
  }
  /* A publish (no reply wanted) is dropped the same way. */
  send_frame(&p, FRAME_PUBLISH, 1, 0, "ch", NULL, payload, big, 0);
  uint8_t out[16];
  uint32_t len = 0;
  CHECK(request(&p, FRAME_KV_GET, 1, "c", "k", NULL, 0, out, &len) == FRAME_STATUS_OK);
  CHECK(len == 5 && memcmp(out, "small", 5) == 0);
  CHECK(!p.eof);
  free(payload);
  peer_close(&p);
}

/* Sends without blocking, turning the broker while the socket is full (the
 * broker may be holding this publisher back). 0, or -1 if it never fits. */
static size_t drain_frames(peer *p);

static int send_turning(peer *p, uint8_t type, const char *a, const void *payload, size_t len,
                        peer *reader, size_t *read_count) {
  size_t a_len = strlen(a);
  uint32_t size = frame_size(a_len, 0, len);
  uint8_t *f = malloc(size);
  frame_encode(f, type, 0, 1, 0, a, a_len, NULL, 0, payload, len);
  size_t off = 0;
  for (int tries = 0; off < size && tries < 100000; tries++) {
    ssize_t n = send(p->fd, f + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    turn(1);
    if (reader) *read_count += drain_frames(reader);
    sleep_ms(1);
  }
  free(f);
  return off == size ? 0 : -1;
}

static size_t drain_frames(peer *p) {
  size_t count = 0;
  frame f;
  pump(p);
  while (take_frame(p, &f)) {
    count++;
    pump(p);
  }
  return count;
}

/* pub publishes numbered 8 KiB messages to topic (*sent onwards), turning
 * the broker, until at least at_least bytes stand queued (or 2000 went). */
static void flood_until_queued(peer *pub, const char *topic, uint32_t *sent, uint64_t at_least) {
  static uint8_t chunk[8192];
  while (*sent < 2000 && stat(FRAME_STAT_QUEUED_BYTES) < at_least) {
    memcpy(chunk, sent, 4);
    CHECK(send_turning(pub, FRAME_PUBLISH, topic, chunk, sizeof(chunk), NULL, NULL) == 0);
    (*sent)++;
    turn(2);
  }
}

/* Reads p's numbered messages while *expect < until, counting in *wrong
 * each that is not the message numbered *expect; stops early when none
 * comes. */
static void read_numbered(peer *p, uint32_t *expect, uint32_t until, uint32_t *wrong) {
  frame f;
  uint8_t head[4];
  while (*expect < until && next_frame(p, &f, head, sizeof(head)) == 0) {
    uint32_t v;
    memcpy(&v, head, 4);
    if (f.type != FRAME_MESSAGE || v != *expect) (*wrong)++;
    (*expect)++;
  }
}

/* A connection that stops reading holds its publishers back (flow
 * control) until it has taken nothing for stall_ms, then it is cut off and
 * they go on; the broker never holds more than the limit for it, and
 * nothing meant for the others is lost. */
static void test_stalled_reader(void) {
  static peer slow, pub, other;
  peer_open(&slow);
  peer_open(&pub);
  peer_open(&other);
  CHECK(subscribe(&slow, 1, "flood") == 0);
  CHECK(subscribe(&other, 1, "flood") == 0);
  uint64_t cut_before = stat(FRAME_STAT_CONNECTIONS_CUT);
  /* Why it is cut off, as its process would read it in its region (looked
   * at as the flood goes). */
  shm_map *slow_map = shm_pool_map(dup(slow.pool_fd), slow.region);
  CHECK(slow_map != NULL);
  uint32_t why = SHM_CUT_NONE;
  static uint8_t chunk[8192];
  size_t received = 0;
  int sent_all = 1;
  for (int i = 0; i < 2000; i++) {
    if (send_turning(&pub, FRAME_PUBLISH, "flood", chunk, sizeof(chunk), &other, &received) != 0)
      sent_all = 0;
    turn(1);
    received += drain_frames(&other);
    if (slow_map && !why) why = atomic_load(&shm_header_at(slow_map->base, slow.region)->cut);
  }
  CHECK(sent_all);
  for (int i = 0; i < 2000 && received < 2000; i++) {
    turn(1);
    received += drain_frames(&other);
    if (slow_map && !why) why = atomic_load(&shm_header_at(slow_map->base, slow.region)->cut);
    if (received < 2000) sleep_ms(1);
  }
  CHECK(received == 2000);
  CHECK(stat(FRAME_STAT_CONNECTIONS_CUT) == cut_before + 1);
  if (why != SHM_CUT_STALLED) fprintf(stderr, "cut: %u\n", why);
  CHECK(why == SHM_CUT_STALLED); /* it was told why */
  if (slow_map) shm_map_release(slow_map);
  CHECK(stat(FRAME_STAT_MAX_QUEUED_BYTES) <= 256u * 1024u);
  /* The slow peer finds the end of the stream after what was queued. */
  size_t slow_frames = 0;
  frame f;
  while (next_frame(&slow, &f, NULL, 0) == 0)
    slow_frames++;
  CHECK(slow.eof);
  CHECK(slow_frames < 2000);
  close(slow.fd);
  peer_done(&slow); /* its channel heard of the cut: the region comes back */
  close(slow.pool_fd);
  peer_close(&pub);
  peer_close(&other);
}

/* A reader slower than the publisher, but reading, is never cut off: the
 * publisher is held back to its pace, and it gets every message in order. */
static void test_slow_reader_keeps_up(void) {
  static peer slow, pub;
  peer_open(&slow);
  peer_open(&pub);
  CHECK(subscribe(&slow, 1, "flood") == 0);
  uint64_t cut_before = stat(FRAME_STAT_CONNECTIONS_CUT);
  static uint8_t chunk[8192];
  uint32_t expect = 0, wrong = 0;
  int held_back = 0;
  for (uint32_t i = 0; i < 3000; i++) {
    memcpy(chunk, &i, 4);
    uint32_t size = frame_size(5, 0, sizeof(chunk));
    uint8_t *fb = malloc(size);
    frame_encode(fb, FRAME_PUBLISH, 0, 1, 0, "flood", 5, NULL, 0, chunk, sizeof(chunk));
    size_t off = 0;
    while (off < size) {
      ssize_t n = send(pub.fd, fb + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += (size_t)n;
        continue;
      }
      held_back = 1;
      turn(1);
      /* The reader takes a little at a time, slower than the publisher. */
      read_numbered(&slow, &expect, expect + 4, &wrong);
    }
    free(fb);
    turn(1);
  }
  read_numbered(&slow, &expect, 3000, &wrong);
  if (expect != 3000)
    fprintf(stderr, "slow reader: %u of 3000, eof %d, cut %llu\n", expect, slow.eof,
            (unsigned long long)(stat(FRAME_STAT_CONNECTIONS_CUT) - cut_before));
  CHECK(expect == 3000);
  CHECK(wrong == 0);
  CHECK(held_back);
  CHECK(stat(FRAME_STAT_CONNECTIONS_CUT) == cut_before);
  CHECK(stat(FRAME_STAT_MAX_QUEUED_BYTES) <= 256u * 1024u);
  peer_close(&slow);
  peer_close(&pub);
}

/* Turns the broker up to `turns` times, without sleeping, until p has a
 * reply to request id; its status, or -1 when none came. The broker reads
 * a socket in the turn after bytes arrive on it, so a reply the broker is
 * willing to give comes within a few turns. */
static int reply_within(peer *p, uint32_t id, int turns) {
  for (int i = 0; i < turns; i++) {
    turn(1);
    pump(p);
    frame f;
    while (take_frame(p, &f))
      if (f.type == FRAME_REPLY && f.request_id == id) return f.status;
  }
  return -1;
}

/* Whether a message arrives for p within `turns` turns. */
static int message_within(peer *p, int turns) {
  for (int i = 0; i < turns; i++) {
    turn(1);
    pump(p);
    frame f;
    if (take_frame(p, &f) && f.type == FRAME_MESSAGE) return 1;
  }
  return 0;
}

/* While one reader is congested, only the publisher feeding it waits. Everyone else is read and
 * answered at once: requests, barriers, publishes to readers that keep up. The held publisher's
 * messages all reach the slow reader, in order, once it reads. */
static void test_congestion_holds_only_its_feeders(void) {
  static peer slow, pub, quiet, listener;
  peer_open(&slow);
  peer_open(&pub);
  peer_open(&quiet);
  peer_open(&listener);
  CHECK(subscribe(&slow, 1, "flood") == 0);
  CHECK(subscribe(&listener, 1, "quiet") == 0);
  uint64_t cut_before = stat(FRAME_STAT_CONNECTIONS_CUT);
  /* Fill the slow reader's socket, then its queue past the high water
   * mark (half the 256 KiB queue limit): it is congested. */
  static uint8_t chunk[8192];
  uint32_t sent = 0;
  flood_until_queued(&pub, "flood", &sent, 128u * 1024u + 1);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) > 128u * 1024u);
  /* Four more from the same publisher: they wait for the slow reader. */
  for (int i = 0; i < 4; i++, sent++) {
    memcpy(chunk, &sent, 4);
    send_frame(&pub, FRAME_PUBLISH, 1, 0, "flood", NULL, chunk, sizeof(chunk), 0);
  }
  turn(4);
  uint64_t queued = stat(FRAME_STAT_QUEUED_BYTES);
  /* Another process is read and answered meanwhile. */
  send_frame(&quiet, FRAME_PUBLISH, 1, 0, "quiet", NULL, "ping", 4, 0);
  send_frame(&quiet, FRAME_KV_SET, 1, 801, "n", "k", "v", 1, 0);
  send_frame(&quiet, FRAME_STATS, 1, 802, NULL, NULL, NULL, 0, 0);
  CHECK(message_within(&listener, 20));
  CHECK(reply_within(&quiet, 801, 20) == FRAME_STATUS_OK);
  CHECK(reply_within(&quiet, 802, 20) == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) == queued); /* the four still wait */
  /* A barrier is answered too, after taking in what the publisher sent. */
  send_frame(&quiet, FRAME_SYNC, 1, 803, NULL, NULL, NULL, 0, FRAME_FLAG_BARRIER);
  CHECK(reply_within(&quiet, 803, 20) == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) == queued + 4 * frame_size(5, 0, sizeof(chunk)));
  CHECK(stat(FRAME_STAT_CONNECTIONS_CUT) == cut_before);
  /* The slow reader gets every message, in order; nobody was cut off. */
  uint32_t expect = 0, wrong = 0;
  read_numbered(&slow, &expect, sent, &wrong);
  CHECK(expect == sent);
  CHECK(wrong == 0);
  CHECK(stat(FRAME_STAT_CONNECTIONS_CUT) == cut_before);
  peer_close(&slow);
  peer_close(&pub);
  peer_close(&quiet);
  peer_close(&listener);
}

/* Issue #15: a quiet publisher's messages to a congested reader are not
 * held, and overtake the storm queued for it (order is per publisher);
 * every publisher's messages still arrive in order, and nothing overtakes
 * a reply. */
static void test_quiet_publisher_overtakes(void) {
  static peer slow, pub, quiet;
  peer_open(&slow);
  peer_open(&pub);
  peer_open(&quiet);
  CHECK(subscribe(&slow, 1, "flood") == 0);
  CHECK(subscribe(&slow, 1, "quiet") == 0);
  static uint8_t chunk[8192];
  uint32_t sent = 0;
  flood_until_queued(&pub, "flood", &sent, 128u * 1024u + 1);
  uint64_t queued = stat(FRAME_STAT_QUEUED_BYTES);
  CHECK(queued > 128u * 1024u);
  /* Three from the quiet publisher: routed at once, not held. */
  for (uint32_t i = 0; i < 3; i++)
    send_frame(&quiet, FRAME_PUBLISH, 1, 0, "quiet", NULL, &i, 4, 0);
  turn(4);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) == queued + 3 * frame_size(5, 0, 4));
  /* The slow reader asks something: nothing published after that may
   * overtake the reply, so the quiet publisher's fourth comes after it. */
  send_frame(&slow, FRAME_KV_SET, 1, 901, "n", "k", "v", 1, 0);
  turn(4);
  uint32_t fourth = 3;
  send_frame(&quiet, FRAME_PUBLISH, 1, 0, "quiet", NULL, &fourth, 4, 0);
  turn(4);
  /* Read everything: the quiet ones come before the end of the flood, each
   * publisher's in order, the fourth after the reply. */
  uint32_t flood_seen = 0, quiet_seen = 0, wrong = 0, quiet_before_flood_end = 0;
  int reply_seen = 0, fourth_after_reply = 0;
  frame f;
  uint8_t head[4];
  while ((flood_seen < sent || quiet_seen < 4 || !reply_seen) &&
         next_frame(&slow, &f, head, sizeof(head)) == 0) {
    uint32_t v = 0;
    if (f.type == FRAME_REPLY && f.request_id == 901) {
      reply_seen = 1;
      continue;
    }
    memcpy(&v, head, 4);
    if (f.type == FRAME_MESSAGE && f.a_len == 5 && f.payload_len == sizeof(chunk)) {
      if (v != flood_seen) wrong++;
      flood_seen++;
    } else if (f.type == FRAME_MESSAGE && f.payload_len == 4) {
      if (v != quiet_seen) wrong++;
      if (flood_seen < sent && v < 3) quiet_before_flood_end++;
      if (v == 3) fourth_after_reply = reply_seen;
      quiet_seen++;
    } else {
      wrong++;
    }
  }
  CHECK(flood_seen == sent);
  CHECK(quiet_seen == 4);
  CHECK(wrong == 0);
  CHECK(quiet_before_flood_end == 3);
  CHECK(reply_seen && fourth_after_reply);
  peer_close(&slow);
  peer_close(&pub);
  peer_close(&quiet);
}

/* Issue #15, pacing by delay (broker_pace.c): a reader whose queue stood
 * longer than the target is late only while a second publisher reaches it.
 * Then the publisher whose messages stand in its queue waits (and is
 * counted), the quiet one does not; once the reader reads, everything
 * arrives, each publisher's in order, the quiet ones ahead of the storm. */
static void test_late_reader_paces_its_feeder(void) {
  static peer reader, busy, quiet;
  peer_open(&reader);
  peer_open(&busy);
  peer_open(&quiet);
  CHECK(subscribe(&reader, 1, "storm") == 0);
  CHECK(subscribe(&reader, 1, "calm") == 0);
  uint64_t paced_before = stat(FRAME_STAT_PUBLISHERS_PACED);
  /* The busy publisher fills the reader's socket and starts a queue, well
   * under the high water mark (half the 256 KiB queue limit). */
  static uint8_t chunk[8192];
  uint32_t sent = 0;
  flood_until_queued(&busy, "storm", &sent, 16u * 1024u);
  uint64_t queued = stat(FRAME_STAT_QUEUED_BYTES);
  CHECK(queued >= 16u * 1024u && queued <= 64u * 1024u);
  /* Alone with its reader, it is never paced, however long the queue stood. */
  sleep_ms(5);
  memcpy(chunk, &sent, 4);
  send_frame(&busy, FRAME_PUBLISH, 1, 0, "storm", NULL, chunk, sizeof(chunk), 0);
  sent++;
  turn(4);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) == queued + frame_size(5, 0, sizeof(chunk)));
  CHECK(stat(FRAME_STAT_PUBLISHERS_PACED) == paced_before);
  queued = stat(FRAME_STAT_QUEUED_BYTES);
  /* A second publisher reaches the reader: now it is late, and the busy
   * publisher's next messages wait; the quiet one's do not. */
  uint32_t calm = 0;
  send_frame(&quiet, FRAME_PUBLISH, 1, 0, "calm", NULL, &calm, 4, 0);
  calm++;
  turn(4);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) == queued + frame_size(4, 0, 4));
  queued = stat(FRAME_STAT_QUEUED_BYTES);
  for (int i = 0; i < 4; i++, sent++) {
    memcpy(chunk, &sent, 4);
    send_frame(&busy, FRAME_PUBLISH, 1, 0, "storm", NULL, chunk, sizeof(chunk), 0);
  }
  turn(4);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) == queued);
  CHECK(stat(FRAME_STAT_PUBLISHERS_PACED) == paced_before + 1);
  send_frame(&quiet, FRAME_PUBLISH, 1, 0, "calm", NULL, &calm, 4, 0);
  calm++;
  turn(4);
  CHECK(stat(FRAME_STAT_QUEUED_BYTES) == queued + frame_size(4, 0, 4));
  /* The reader reads: the busy publisher goes on (after its penalty), and
   * every message arrives, in order per publisher. */
  uint32_t storm_seen = 0, calm_seen = 0, wrong = 0, calm_before_storm_end = 0;
  frame f;
  uint8_t head[4];
  while ((storm_seen < sent || calm_seen < calm) &&
         next_frame(&reader, &f, head, sizeof(head)) == 0) {
    uint32_t v;
    memcpy(&v, head, 4);
    if (f.type == FRAME_MESSAGE && f.a_len == 5) {
      if (v != storm_seen) wrong++;
      storm_seen++;
    } else if (f.type == FRAME_MESSAGE && f.a_len == 4) {
      if (v != calm_seen) wrong++;
      if (storm_seen < sent) calm_before_storm_end++;
      calm_seen++;
    } else {
      wrong++;
    }
  }
  CHECK(storm_seen == sent);
  CHECK(calm_seen == calm);
  CHECK(wrong == 0);
  CHECK(calm_before_storm_end == calm);
  peer_close(&reader);
  peer_close(&busy);
  peer_close(&quiet);
}

/* A process's hello states the largest frame it takes.
 * The broker sends it nothing larger: a message over it is not delivered to
 * that process (the others get it), a reply over it becomes an error, and
 * the connection goes on. */
static void test_peer_max_frame_size(void) {
  static peer small, big, pub;
  peer_open_max(&small, FRAME_MIN_MAX_SIZE);
  peer_open(&big);
  peer_open(&pub);
  CHECK(subscribe(&small, 1, "sized") == 0);
  CHECK(subscribe(&big, 1, "sized") == 0);
  static uint8_t large[8192];
  memset(large, 'L', sizeof(large));
  send_frame(&pub, FRAME_PUBLISH, 1, 0, "sized", NULL, large, sizeof(large), 0);
  send_frame(&pub, FRAME_PUBLISH, 1, 0, "sized", NULL, "after", 5, 0);
  frame f;
  uint8_t text[4096] = {0};
  CHECK(next_frame(&big, &f, NULL, 0) == 0);
  CHECK(f.type == FRAME_MESSAGE && f.payload_len == sizeof(large));
  CHECK(next_frame(&big, &f, NULL, 0) == 0);
  CHECK(f.type == FRAME_MESSAGE && f.payload_len == 5);
  CHECK(next_frame(&small, &f, text, sizeof(text) - 1) == 0);
  CHECK(f.type == FRAME_MESSAGE && f.payload_len == 5 && memcmp(text, "after", 5) == 0);
  CHECK(f.size <= FRAME_MIN_MAX_SIZE);
  CHECK(request(&pub, FRAME_KV_SET, 1, "c", "big", large, sizeof(large), NULL, NULL) == 0);
  uint32_t len = 0;
  memset(text, 0, sizeof(text));
  CHECK(request(&small, FRAME_KV_GET, 1, "c", "big", NULL, 0, text, &len) ==
        FRAME_STATUS_BAD_REQUEST);
  CHECK(strstr((char *)text, "maxFrameSize") != NULL);
  CHECK(request(&small, FRAME_KV_SET, 1, "c", "k", "v", 1, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(!small.eof);
  /* A hello that states less than the protocol's minimum is refused. */
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  uint8_t bytes[FRAME_HEADER_SIZE + FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, FRAME_MIN_MAX_SIZE - 1);
  frame_encode(bytes, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  expect_refusal(bytes, sizeof(bytes), 0, "maximum frame size");
  peer_close(&small);
  peer_close(&big);
  peer_close(&pub);
}

/* Large payloads go to an idle subscriber's socket straight from the
 * publisher's input, the rest through its queue; whichever way, every
 * subscriber gets every byte, in publish order, small and large mixed, also
 * when its socket fills in the middle of a frame. */
static uint8_t big_byte(uint32_t seq, size_t i) {
  return (uint8_t)(seq * 31u + i * 7u + (i >> 8));
}

static int big_check(const frame *f, const uint8_t *payload, uint32_t expect) {
  uint32_t seq;
  if (f->type != FRAME_MESSAGE || f->payload_len < 4) return 0;
  memcpy(&seq, payload, 4);
  if (seq != expect) return 0;
  size_t len = (seq % 3 == 2) ? 16 : 40000 + (seq % 7) * 1111;
  if (f->payload_len != len) return 0;
  for (size_t i = 4; i < len; i++)
    if (payload[i] != big_byte(seq, i)) return 0;
  return 1;
}

/* Reads at most max bytes: a reader slower than its socket fills. */
static void pump_some(peer *p, size_t max) {
  size_t room = peer_room(p);
  ssize_t n = recv(p->fd, p->in + p->len, room < max ? room : max, MSG_DONTWAIT);
  if (n > 0) p->len += (size_t)n;
  if (n == 0) p->eof = 1;
}

/* One reader of the large-payload stream: the next sequence number it
 * expects and how many frames were wrong. */
typedef struct big_reader {
  peer *p;
  uint32_t next;
  uint32_t bad;
} big_reader;

/* Takes and checks one frame if a whole one is already buffered (no
 * waiting); 1 when it took one. */
static int big_take(big_reader *r, uint32_t total) {
  static uint8_t got[48 * 1024];
  frame f;
  if (r->next >= total || frame_decode(peer_data(r->p), peer_avail(r->p), UINT32_MAX, &f) != FRAME_OK ||
      next_frame(r->p, &f, got, sizeof(got)) != 0)
    return 0;
  if (!big_check(&f, got, r->next)) r->bad++;
  r->next++;
  return 1;
}

static void test_large_payloads(void) {
  static peer pub, fast, slow;
  static uint8_t buf[48 * 1024];
  peer_open(&pub);
  peer_open(&fast);
  peer_open(&slow);
  CHECK(subscribe(&fast, 3, "big") == 0);
  CHECK(subscribe(&slow, 4, "big") == 0);
  uint64_t delivered_before = stat(FRAME_STAT_MESSAGES_DELIVERED);
  const uint32_t total = 300;
  big_reader fr = {&fast, 0, 0}, sr = {&slow, 0, 0};
  for (uint32_t seq = 0; seq < total; seq++) {
    size_t len = (seq % 3 == 2) ? 16 : 40000 + (seq % 7) * 1111;
    memcpy(buf, &seq, 4);
    for (size_t i = 4; i < len; i++)
      buf[i] = big_byte(seq, i);
    uint32_t size = frame_size(3, 0, len);
    uint8_t *fb = malloc(size);
    frame_encode(fb, FRAME_PUBLISH, 0, 2, 0, "big", 3, NULL, 0, buf, len);
    size_t off = 0;
    while (off < size) {
      ssize_t n = send(pub.fd, fb + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) off += (size_t)n;
      turn(1);
      /* fast reads all it can; slow one frame at a time, when the publisher
       * is held back or on every fourth message */
      do
        pump(&fast);
      while (big_take(&fr, total));
      if (seq % 4 == 0 || n <= 0) pump_some(&slow, 8192);
      big_take(&sr, total);
    }
    free(fb);
  }
  /* Both read what is left, turn about (fast waiting alone would leave
   * slow's queue untouched long enough to be cut off). */
  for (int idle = 0; (fr.next < total || sr.next < total) && idle < 3000;) {
    turn(1);
    pump(&fast);
    pump(&slow);
    int moved = big_take(&fr, total);
    moved |= big_take(&sr, total);
    if (moved) {
      idle = 0;
    } else {
      idle++;
      sleep_ms(1);
    }
  }
  if (fr.next != total || sr.next != total)
    fprintf(stderr, "large payloads: fast %u, slow %u of %u, slow eof %d, cut %llu\n", fr.next,
            sr.next, total, slow.eof, (unsigned long long)stat(FRAME_STAT_CONNECTIONS_CUT));
  CHECK(fr.next == total);
  CHECK(sr.next == total);
  CHECK(fr.bad == 0);
  CHECK(sr.bad == 0);
  CHECK(stat(FRAME_STAT_MESSAGES_DELIVERED) == delivered_before + 2 * total);
  peer_close(&pub);
  peer_close(&fast);
  peer_close(&slow);
}

/* ---- the shared pool ------------------------------------------------------ */

/* A broker that was away itself (the master stopped or paused) does not
 * count that time against a congested reader that went on reading: after
 * the pause nobody is cut off and nothing is lost. Threadless, a pause is
 * simply not turning the broker's loop; the reader reads meanwhile, as a
 * worker does. */
static void test_broker_paused(void) {
  enum { COUNT = 1500, CHUNK = 8192 };
  static peer reader, pub;
  peer_open(&reader);
  peer_open(&pub);
  CHECK(subscribe(&reader, 1, "flood") == 0);
  uint64_t cut_before = stat(FRAME_STAT_CONNECTIONS_CUT);
  static uint8_t chunk[CHUNK];
  uint32_t frame_bytes = frame_size(5, 0, CHUNK);
  uint8_t *stream = malloc((size_t)frame_bytes * COUNT);
  CHECK(stream != NULL);
  if (!stream) return;
  for (uint32_t i = 0; i < COUNT; i++) {
    memcpy(chunk, &i, 4);
    frame_encode(stream + (size_t)i * frame_bytes, FRAME_PUBLISH, 0, 1, 0, "flood", 5, NULL, 0,
                 chunk, CHUNK);
  }
  size_t total = (size_t)frame_bytes * COUNT, off = 0;
  /* Publishes until the reader, not reading yet, is congested (its queue
   * past the 128 KiB high water mark). */
  uint64_t queued = 0;
  while (off < total && (queued = stat(FRAME_STAT_QUEUED_BYTES)) <= 128u * 1024u) {
    ssize_t n = send(pub.fd, stream + off, total - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) off += (size_t)n;
  }
  CHECK(queued > 128u * 1024u);
  /* The broker is away for longer than stall_ms; the reader reads all it
   * was sent meanwhile. */
  uint32_t expect = 0, wrong = 0;
  for (int i = 0; i < 25; i++) {
    sleep_ms(100);
    pump(&reader);
  }
  /* Back: the rest flows, the reader takes it all. */
  for (int tries = 0; expect < COUNT && !reader.eof && tries < 20000; tries++) {
    if (off < total) {
      ssize_t n = send(pub.fd, stream + off, total - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) off += (size_t)n;
    }
    turn(1);
    pump(&reader);
    frame f;
    while (frame_decode(peer_data(&reader), peer_avail(&reader), UINT32_MAX, &f) == FRAME_OK) {
      uint32_t v;
      memcpy(&v, f.payload, 4);
      if (v != expect) wrong++;
      expect++;
      peer_drop(&reader, &f);
    }
  }
  free(stream);
  if (expect != COUNT) fprintf(stderr, "paused broker: reader got %u of %u\n", expect, COUNT);
  CHECK(stat(FRAME_STAT_CONNECTIONS_CUT) == cut_before);
  CHECK(expect == COUNT && wrong == 0);
  peer_close(&reader);
  peer_close(&pub);
}

/* A process's side of the pool, as a channel has it. */
typedef struct sharer {
  shm_map *map;
  shm_writer w;
} sharer;

static void sharer_open(peer *p, sharer *s, int ready) {
  s->map = shm_pool_map(dup(p->pool_fd), p->region);
  CHECK(s->map != NULL);
  if (!s->map) abort();
  shm_writer_init(&s->w, s->map);
  /* The region's header says which use of it the offer was for: a channel
   * writes into it only while the two agree. */
  CHECK(atomic_load(&s->w.header->generation) == p->generation);
  if (ready) send_frame(p, FRAME_SHARED, 0, 0, NULL, NULL, NULL, 0, 0);
}

static void sharer_close(sharer *s) {
  shm_map_release(s->map);
  s->map = NULL;
}

static uint8_t pattern_byte(uint32_t seed, uint32_t i) {
  return (uint8_t)(seed * 31u + i * 7u + (i >> 8));
}

/* Writes len bytes of pattern seed into p's ring and publishes them through
 * the pool; returns the slot, or -1 when the ring has no room. */
static int publish_shared(peer *p, sharer *s, const char *channel, uint32_t len, uint32_t seed) {
  uint32_t slot, offset;
  uint8_t *at = shm_writer_reserve(&s->w, len, &slot, &offset);
  if (!at) return -1;
  for (uint32_t i = 0; i < len; i++)
    at[i] = pattern_byte(seed, i);
  shm_writer_commit(&s->w, slot, offset, len);
  uint8_t desc[FRAME_PUBLISH_DESC_SIZE];
  frame_publish_desc d = {slot, offset, len};
  frame_publish_desc_write(desc, &d);
  send_frame(p, FRAME_PUBLISH, 1, 0, channel, NULL, desc, sizeof(desc), FRAME_FLAG_SHARED);
  return (int)slot;
}

static int pattern_ok(const uint8_t *at, uint32_t len, uint32_t seed) {
  for (uint32_t i = 0; i < len; i++)
    if (at[i] != pattern_byte(seed, i)) return 0;
  return 1;
}

/* Says that p's process read count shared messages, as a channel does: in
 * its region's header, then in a frame. */
static void send_read(peer *p, sharer *s, uint64_t count) {
  uint8_t c[FRAME_READ_COUNT_SIZE];
  if (s) atomic_store(&s->w.header->consumed, shm_consumed_pack(p->generation, count));
  frame_read_count_write(c, count);
  send_frame(p, FRAME_SHARED_READ, 0, 0, NULL, NULL, c, sizeof(c), 0);
}

static uint32_t busy_of(sharer *s, int slot) {
  return atomic_load(&s->w.header->busy[slot]);
}

/* The next message on p: checks that it carries len bytes of pattern seed,
 * through the pool (shared) or in the frame. 1 when it does. */
static int take_message(peer *p, sharer *s, int shared, uint32_t len, uint32_t seed) {
  static uint8_t payload[1 << 16];
  frame f;
  if (next_frame(p, &f, payload, sizeof(payload)) != 0 || f.type != FRAME_MESSAGE) return 0;
  if (!shared)
    return !(f.flags & FRAME_FLAG_SHARED) && f.payload_len == len && pattern_ok(payload, len, seed);
  frame_message_desc d;
  if (!(f.flags & FRAME_FLAG_SHARED) || frame_message_desc_parse(payload, f.payload_len, &d) != 0)
    return 0;
  return d.length == len && pattern_ok(s->map->base + d.offset, len, seed);
}

/* A payload published through the pool reaches a subscriber that reads the
 * pool as a descriptor and one that does not as bytes, in order with the
 * rest; its slot stays busy until every reader said it read it. */
static void test_shared_routing(void) {
  static peer pub, reader, copier;
  sharer ps, rs;
  peer_open(&pub);
  peer_open(&reader);
  peer_open(&copier);
  CHECK(pub.region != reader.region && reader.region != copier.region);
  sharer_open(&pub, &ps, 0);
  sharer_open(&reader, &rs, 1);
  CHECK(subscribe(&reader, 1, "big") == 0);
  CHECK(subscribe(&copier, 1, "big") == 0);
  uint64_t shared0 = stat(FRAME_STAT_SHARED_DELIVERED);
  uint64_t delivered0 = stat(FRAME_STAT_MESSAGES_DELIVERED);
  uint8_t small[100];
  for (uint32_t i = 0; i < sizeof(small); i++)
    small[i] = pattern_byte(1, i);
  send_frame(&pub, FRAME_PUBLISH, 1, 0, "big", NULL, small, sizeof(small), 0);
  int slot = publish_shared(&pub, &ps, "big", 20000, 2);
  CHECK(slot >= 0);
  send_frame(&pub, FRAME_PUBLISH, 1, 0, "big", NULL, small, sizeof(small), 0);
  CHECK(take_message(&reader, &rs, 0, sizeof(small), 1));
  CHECK(take_message(&reader, &rs, 1, 20000, 2));
  CHECK(take_message(&reader, &rs, 0, sizeof(small), 1));
  CHECK(take_message(&copier, NULL, 0, sizeof(small), 1));
  CHECK(take_message(&copier, NULL, 0, 20000, 2));
  CHECK(take_message(&copier, NULL, 0, sizeof(small), 1));
  CHECK(stat(FRAME_STAT_SHARED_DELIVERED) == shared0 + 1);
  CHECK(stat(FRAME_STAT_MESSAGES_DELIVERED) == delivered0 + 6);
  CHECK(busy_of(&ps, slot) == 1);
  CHECK(shm_writer_in_flight(&ps.w) == 1);
  /* The publisher waits for room: freeing the slot wakes it. */
  shm_writer_want(&ps.w);
  send_read(&reader, &rs, 1);
  turn(2);
  CHECK(busy_of(&ps, slot) == 0);
  CHECK(atomic_load(&ps.w.header->waiting) == 0);
  CHECK(shm_writer_in_flight(&ps.w) == 0);

  /* Rounds that fill the ring and wrap around it: every payload arrives
   * intact, and the ring refuses more than it holds rather than overwrite. */
  uint64_t read = 1;
  uint32_t seed = 10;
  int refused = 0, intact = 1;
  for (int round = 0; round < 6; round++) {
    int sent = 0;
    for (; sent < 70; sent++)
      if (publish_shared(&pub, &ps, "big", 60000, seed + (uint32_t)sent) < 0) break;
    if (sent < 70) refused++;
    for (int i = 0; i < sent; i++) {
      if (!take_message(&reader, &rs, 1, 60000, seed + (uint32_t)i)) intact = 0;
      if (!take_message(&copier, NULL, 0, 60000, seed + (uint32_t)i)) intact = 0;
    }
    read += (uint64_t)sent;
    send_read(&reader, &rs, read);
    turn(2);
    seed += 100;
  }
  CHECK(intact);
  CHECK(refused == 6); /* 70 payloads are more than a region has slots for */
  CHECK(shm_writer_in_flight(&ps.w) == 0);
  sharer_close(&ps);
  sharer_close(&rs);
  peer_close(&pub);
  peer_close(&reader);
  peer_close(&copier);
}

/* A process that lies about the pool is cut off, and only it. */
static void test_shared_bad_input(void) {
  static peer bad, reader, ok;
  sharer bs, rs;
  peer_open(&reader);
  sharer_open(&reader, &rs, 1);
  CHECK(subscribe(&reader, 1, "big") == 0);
  uint64_t handed = 0;
  struct {
    uint32_t slot, offset, len, desc_size;
  } cases[] = {
      {SHM_SLOTS, 0, 20000, FRAME_PUBLISH_DESC_SIZE},           /* no such slot */
      {0, SHM_DATA_SIZE - 100, 20000, FRAME_PUBLISH_DESC_SIZE}, /* past the region */
      {0, 0, 0, FRAME_PUBLISH_DESC_SIZE},                       /* empty */
      {0, 0, SHM_PAYLOAD_MAX + 1, FRAME_PUBLISH_DESC_SIZE},     /* too large */
      {0, 0, 20000, 8},                                         /* short descriptor */
      {0, 0, 60000, FRAME_PUBLISH_DESC_SIZE},                   /* over maxFrameSize */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    peer_open(&bad);
    uint8_t desc[FRAME_PUBLISH_DESC_SIZE];
    frame_publish_desc d = {cases[i].slot, cases[i].offset, cases[i].len};
    frame_publish_desc_write(desc, &d);
    /* 60000 bytes fit a frame, but not with a 10000-byte channel name */
    static char name[10001];
    memset(name, 'n', 10000);
    const char *channel = cases[i].len == 60000 ? name : "big";
    send_frame(&bad, FRAME_PUBLISH, 1, 0, channel, NULL, desc, cases[i].desc_size,
               FRAME_FLAG_SHARED);
    CHECK(
        cut_with(&bad, cases[i].len == 60000 ? "maximum frame size" : "malformed shared publish"));
    peer_close(&bad);
  }
  /* A slot published twice before the broker freed it. */
  peer_open(&bad);
  sharer_open(&bad, &bs, 0);
  int slot = publish_shared(&bad, &bs, "big", 20000, 5);
  CHECK(take_message(&reader, &rs, 1, 20000, 5));
  handed++;
  uint8_t desc[FRAME_PUBLISH_DESC_SIZE];
  frame_publish_desc busy = {(uint32_t)slot, 0, 20000};
  frame_publish_desc_write(desc, &busy);
  send_frame(&bad, FRAME_PUBLISH, 1, 0, "big", NULL, desc, sizeof(desc), FRAME_FLAG_SHARED);
  CHECK(cut_with(&bad, "malformed shared publish"));
  sharer_close(&bs);
  peer_close(&bad);
  /* Counting more reads than deliveries, or a malformed count. */
  peer_open(&bad);
  send_read(&bad, NULL, 1);
  CHECK(cut_with(&bad, "out of step"));
  peer_close(&bad);
  peer_open(&bad);
  send_frame(&bad, FRAME_SHARED_READ, 0, 0, NULL, NULL, "abc", 3, 0);
  CHECK(cut_with(&bad, "malformed shared read count"));
  peer_close(&bad);
  /* The reader, the pool and the others are none the worse. */
  send_read(&reader, &rs, handed);
  peer_open(&ok);
  sharer ks;
  sharer_open(&ok, &ks, 0);
  CHECK(publish_shared(&ok, &ks, "big", 30000, 6) >= 0);
  CHECK(take_message(&reader, &rs, 1, 30000, 6));
  send_read(&reader, &rs, ++handed);
  CHECK(request(&ok, FRAME_KV_SET, 1, "n", "k", "v", 1, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(shm_writer_in_flight(&ks.w) == 0);
  sharer_close(&ks);
  sharer_close(&rs);
  peer_close(&ok);
  peer_close(&reader);
}

/* When a connection goes: what it published stays readable until read, its
 * region is not given to anyone before, and what it was handed is freed as
 * its process (still reading) counts it in the header, and all of it once
 * the process is done (says so, or exits). */
static void test_shared_gone(void) {
  static peer pub, reader, late;
  sharer ps, rs;
  peer_open(&pub);
  peer_open(&reader);
  sharer_open(&pub, &ps, 0);
  sharer_open(&reader, &rs, 1);
  CHECK(subscribe(&reader, 1, "big") == 0);
  uint32_t pub_region = pub.region;
  int slot = publish_shared(&pub, &ps, "big", 40000, 7);
  turn(2);
  shm_header *pub_header = ps.w.header;
  sharer_close(&ps); /* the publisher's process is gone altogether */
  peer_close(&pub);
  peer_open(&late);
  CHECK(late.region != pub_region); /* still in use */
  CHECK(take_message(&reader, &rs, 1, 40000, 7));
  CHECK(atomic_load(&shm_header_at(rs.map->base, pub_region)->busy[slot]) == 1);
  (void)pub_header;
  send_read(&reader, &rs, 1);
  turn(2);
  peer_close(&late);
  peer_open(&late);
  CHECK(late.region == pub_region); /* free again, and the lowest */
  peer_close(&late);

  /* The reader's connection goes while its process still reads: the count
   * in its header frees the slots. */
  peer_open(&pub);
  sharer_open(&pub, &ps, 0);
  slot = publish_shared(&pub, &ps, "big", 40000, 8);
  int slot2 = publish_shared(&pub, &ps, "big", 40000, 9);
  CHECK(take_message(&reader, &rs, 1, 40000, 8));
  CHECK(take_message(&reader, &rs, 1, 40000, 9));
  close(reader.fd);
  turn(4);
  CHECK(busy_of(&ps, slot) == 1 && busy_of(&ps, slot2) == 1);
  /* 1 was counted before: the header says so too. A count written for
   * another use of the region (a process that wrote late) is ignored. */
  turn(2);
  CHECK(busy_of(&ps, slot) == 1 && busy_of(&ps, slot2) == 1);
  atomic_store(&rs.w.header->consumed, shm_consumed_pack(reader.generation - 1, SHM_COUNT_ALL));
  turn(2);
  CHECK(busy_of(&ps, slot) == 1 && busy_of(&ps, slot2) == 1);
  atomic_store(&rs.w.header->consumed, shm_consumed_pack(reader.generation, 2)); /* one more */
  turn(2);
  CHECK(busy_of(&ps, slot) == 0 && busy_of(&ps, slot2) == 1);
  /* ... and whatever it never counted once it says it is done (no timer
   * takes it back: test_shared_live_owner). */
  atomic_store(&rs.w.header->consumed, shm_consumed_pack(reader.generation, SHM_COUNT_ALL));
  turn(2);
  CHECK(busy_of(&ps, slot2) == 0);
  CHECK(shm_writer_in_flight(&ps.w) == 0);
  sharer_close(&rs);
  close(reader.pool_fd);

  /* A reader whose process is gone altogether frees its slots at once. */
  pid_t child = fork();
  if (child == 0) _exit(0);
  CHECK(child > 0 && waitpid(child, NULL, 0) == child);
  peer_open(&reader);
  sharer_open(&reader, &rs, 0);
  uint8_t pid[FRAME_SHARED_READY_SIZE];
  frame_shared_ready_write(pid, (uint32_t)child);
  send_frame(&reader, FRAME_SHARED, 0, 0, NULL, NULL, pid, sizeof(pid), 0);
  CHECK(subscribe(&reader, 1, "big") == 0);
  slot = publish_shared(&pub, &ps, "big", 40000, 10);
  CHECK(take_message(&reader, &rs, 1, 40000, 10));
  sharer_close(&rs);
  peer_close(&reader);
  turn(2);
  CHECK(busy_of(&ps, slot) == 0);

  /* So does one whose channel closed: it says it will read nothing more. */
  peer_open(&reader);
  sharer_open(&reader, &rs, 1);
  CHECK(subscribe(&reader, 1, "big") == 0);
  slot = publish_shared(&pub, &ps, "big", 40000, 11);
  CHECK(take_message(&reader, &rs, 1, 40000, 11));
  atomic_store(&rs.w.header->consumed, shm_consumed_pack(reader.generation, SHM_COUNT_ALL));
  sharer_close(&rs);
  peer_close(&reader);
  turn(2);
  CHECK(busy_of(&ps, slot) == 0);
  sharer_close(&ps);
  peer_close(&pub);
}

/* Says that p's process is pid, as a channel does once it reads the pool. */
static void say_pid(peer *p, pid_t pid) {
  uint8_t said[FRAME_SHARED_READY_SIZE];
  frame_shared_ready_write(said, (uint32_t)pid);
  send_frame(p, FRAME_SHARED, 0, 0, NULL, NULL, said, sizeof(said), 0);
}

/* A process whose connection is gone (cut off, say) but which lives on
 * keeps what it holds in the pool, however long: its region is given to no
 * other connection (it could still write into it) and the slots of what it
 * was handed and has not read are not freed (it could still read them).
 * Both come back once it says it is done, or once it exits. */
static void test_shared_live_owner(void) {
  static peer pub, reader, late;
  sharer ps, rs;
  peer_open(&pub);
  peer_open(&reader);
  sharer_open(&pub, &ps, 0);
  sharer_open(&reader, &rs, 0);
  say_pid(&pub, getpid());
  say_pid(&reader, getpid()); /* this very process: alive throughout */
  CHECK(subscribe(&reader, 1, "big") == 0);
  int slot = publish_shared(&pub, &ps, "big", 40000, 20);
  CHECK(take_message(&reader, &rs, 1, 40000, 20));
  /* Both connections go, neither process says it is done: well past the
   * 1 s grace period the old books had here, nothing is taken back. */
  close(reader.fd);
  close(pub.fd);
  turn(4);
  sleep_ms(1200);
  turn(4);
  CHECK(busy_of(&ps, slot) == 1);
  peer_open(&late);
  CHECK(late.region != reader.region && late.region != pub.region);
  peer_close(&late);
  /* The reader says it will read nothing more: its slots are free. The
   * publisher's region stays its own. */
  atomic_store(&rs.w.header->consumed, shm_consumed_pack(reader.generation, SHM_COUNT_ALL));
  turn(2);
  CHECK(busy_of(&ps, slot) == 0);
  peer_open(&late);
  CHECK(late.region != pub.region);
  peer_close(&late);
  sharer_close(&rs);
  close(reader.pool_fd);
  /* The publisher's process says the same, through its own count. */
  atomic_store(&ps.w.header->consumed, shm_consumed_pack(pub.generation, SHM_COUNT_ALL));
  sharer_close(&ps);
  close(pub.pool_fd);
  turn(2);

  /* A reader in another process, alive when its connection goes: its
   * slots stay while it lives and come back once it exits. */
  int gate[2];
  CHECK(pipe(gate) == 0);
  pid_t child = fork();
  if (child == 0) {
    char byte;
    close(gate[1]);
    while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  CHECK(child > 0);
  close(gate[0]);
  peer_open(&pub);
  peer_open(&reader);
  sharer_open(&pub, &ps, 0);
  sharer_open(&reader, &rs, 0);
  say_pid(&reader, child);
  CHECK(subscribe(&reader, 1, "big") == 0);
  slot = publish_shared(&pub, &ps, "big", 40000, 21);
  CHECK(take_message(&reader, &rs, 1, 40000, 21));
  close(reader.fd);
  turn(4);
  sleep_ms(1200);
  turn(4);
  CHECK(busy_of(&ps, slot) == 1); /* it lives */
  close(gate[1]);
  CHECK(waitpid(child, NULL, 0) == child);
  turn(2);
  CHECK(busy_of(&ps, slot) == 0); /* it exited */
  sharer_close(&rs);
  close(reader.pool_fd);
  sharer_close(&ps);
  peer_close(&pub);
}

/* Says hello on a raw connection and syncs: 1 once the broker's hello, its
 * offer of the shared pool if any (*offered, the descriptor in *pool) and
 * the reply to the sync have come. */
static int greet_raw(int fd, int *offered, int *pool) {
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  uint8_t f[FRAME_HEADER_SIZE + FRAME_HELLO_PAYLOAD_SIZE + FRAME_HEADER_SIZE];
  frame_hello_write(hello, 1u << 20);
  uint32_t n = frame_encode(f, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  n += frame_encode(f + n, FRAME_SYNC, 0, 0, 9, NULL, 0, NULL, 0, NULL, 0);
  if (send(fd, f, n, MSG_NOSIGNAL) != (ssize_t)n) return 0;
  uint8_t in[256];
  size_t len = 0;
  for (int tries = 0; tries < 2000; tries++) {
    turn(1);
    ssize_t got = fdpass_recv_one(fd, in + len, sizeof(in) - len, pool);
    if (got > 0) len += (size_t)got;
    size_t at = 0;
    frame fr;
    *offered = 0;
    while (frame_decode(in + at, len - at, UINT32_MAX, &fr) == FRAME_OK) {
      if (fr.type == FRAME_SHARED) *offered = 1;
      if (fr.type == FRAME_REPLY && fr.request_id == 9) return 1;
      at += fr.size;
    }
  }
  return 0;
}

/* With every region given out, a connection does without the pool; a
 * broker without one offers none. */
static void test_shared_scarce(void) {
  enum { COUNT = SHM_REGIONS + 3 };
  static int fds[COUNT];
  int offers = 0, plain = 0;
  for (int i = 0; i < COUNT; i++) {
    CHECK(broker_connect_pair(b, &fds[i]) == 0);
    int fd = -1, offered = 0;
    CHECK(greet_raw(fds[i], &offered, &fd));
    offers += offered;
    CHECK(offered == (fd >= 0));
    if (fd >= 0)
      close(fd);
    else
      plain++;
  }
  if (offers != SHM_REGIONS) fprintf(stderr, "offers: %d\n", offers);
  CHECK(offers == SHM_REGIONS);
  CHECK(plain == COUNT - SHM_REGIONS);
  for (int i = 0; i < COUNT; i++)
    close(fds[i]);
  turn(4);

  broker *saved = b;
  broker_options options;
  broker_options_default(&options);
  options.shared = 0;
  char err[128];
  CHECK(broker_create(&b, &options, err, sizeof(err)) == 0);
  int fd, pool = -1, offered = 0;
  CHECK(broker_connect_pair(b, &fd) == 0);
  CHECK(greet_raw(fd, &offered, &pool));
  CHECK(!offered && pool < 0);
  close(fd);
  broker_stop(b);
  b = saved;
}

/* ---- hand-offs: a descriptor passed on to one subscriber ---------------- */

static int count_open_fds(void) {
  int count = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) != -1) count++;
  return count;
}

/* What an open descriptor refers to ("pipe:[1234]"), so that one passed
 * on can be recognised on the other side. */
typedef struct marker {
  char name[64];
} fd_mark;

static void marker_of(int fd, fd_mark *m) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, m->name, sizeof(m->name) - 1);
  m->name[n > 0 ? n : 0] = 0;
}

static int same_marker(int fd, const fd_mark *m) {
  fd_mark now;
  marker_of(fd, &now);
  return now.name[0] != 0 && strcmp(now.name, m->name) == 0;
}

static int marker_fd(fd_mark *m) {
  int p[2];
  if (pipe(p) != 0) return -1;
  close(p[1]);
  marker_of(p[0], m);
  return p[0];
}

/* Sends a HANDOFF from p with a copy of fd alongside. */
static void send_handoff(peer *p, uint32_t endpoint, uint32_t id, const char *topic,
                         const char *payload, int fd) {
  uint8_t f[512];
  uint32_t size = frame_encode(f, FRAME_HANDOFF, 0, endpoint, id, topic, strlen(topic), NULL, 0,
                               payload, strlen(payload));
  fdpass_queue out;
  fdpass_init(&out);
  if (fd >= 0) fdpass_push(&out, dup(fd));
  CHECK(fdpass_send(p->fd, f, size, &out) == (ssize_t)size);
  fdpass_free(&out);
}

/* The next frame for p, with the descriptors that came in *in. */
static int next_frame_fds(peer *p, frame *f, uint8_t *payload, size_t cap, fdpass_queue *in) {
  for (int tries = 0; tries < 2000; tries++) {
    frame tmp;
    if (frame_decode(peer_data(p), peer_avail(p), UINT32_MAX, &tmp) == FRAME_OK) {
      *f = tmp;
      size_t n = tmp.payload_len < cap ? tmp.payload_len : cap;
      if (payload && n) memcpy(payload, tmp.payload, n);
      peer_drop(p, &tmp);
      if (f->type != FRAME_SHARED) return 0;
      close(fdpass_pop(in)); /* the pool's, when offered: not wanted here */
      continue;
    }
    turn(1);
    int got = 0, truncated = 0;
    ssize_t r = fdpass_recv(p->fd, p->in + p->len, peer_room(p), in, &got, &truncated);
    if (r > 0) p->len += (size_t)r;
    if (r == 0) return -1;
    if (tries > 100) sleep_ms(1);
  }
  return -1;
}

/* A process that may or may not be offered the pool (it has been given
 * out by now); its hello answered. */
static void handoff_peer_open(peer *p) {
  peer_connect(p);
  peer_hello(p, 1u << 20);
  frame f;
  fdpass_queue in;
  fdpass_init(&in);
  CHECK(next_frame_fds(p, &f, NULL, 0, &in) == 0 && f.type == FRAME_HELLO);
  /* The offer, if any, came in the same message as the hello. */
  if (take_frame(p, &f)) CHECK(f.type == FRAME_SHARED);
  fdpass_free(&in);
}

static void test_handoff(void) {
  peer *from = calloc(1, sizeof(peer));
  peer *to = calloc(1, sizeof(peer));
  handoff_peer_open(from);
  handoff_peer_open(to);
  CHECK(subscribe(to, 7, "own:to") == FRAME_STATUS_OK);
  int before = count_open_fds();
  uint64_t passed = stat(FRAME_STAT_HANDOFFS);
  uint64_t refused = stat(FRAME_STAT_HANDOFFS_REFUSED);

  /* Passed on: the receiver gets the payload and the same open file. */
  fd_mark ino;
  int marker = marker_fd(&ino);
  send_handoff(from, 1, 55, "own:to", "GET / HTTP/1.1", marker);
  fdpass_queue in;
  fdpass_init(&in);
  frame f;
  uint8_t payload[64];
  CHECK(next_frame_fds(to, &f, payload, sizeof(payload), &in) == 0);
  CHECK(f.type == FRAME_HANDOFF && f.endpoint == 7 && f.request_id == 0);
  CHECK(f.payload_len == 14 && memcmp(payload, "GET / HTTP/1.1", 14) == 0);
  CHECK(fdpass_count(&in) == 1);
  int got = fdpass_pop(&in);
  CHECK(got >= 0 && same_marker(got, &ino));
  close(got);
  CHECK(next_frame(from, &f, NULL, 0) == 0);
  CHECK(f.type == FRAME_REPLY && f.request_id == 55 && f.status == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_HANDOFFS) == passed + 1);

  /* Several in a row keep their order. */
  fd_mark inos[40];
  for (int i = 0; i < 40; i++) {
    int m = marker_fd(&inos[i]);
    char text[16];
    snprintf(text, sizeof(text), "n%d", i);
    send_handoff(from, 1, 0, "own:to", text, m);
    close(m);
  }
  int bad = 0;
  for (int i = 0; i < 40; i++) {
    char text[16];
    snprintf(text, sizeof(text), "n%d", i);
    if (next_frame_fds(to, &f, payload, sizeof(payload), &in) != 0) {
      bad++;
      break;
    }
    int fd = fdpass_pop(&in);
    if (f.type != FRAME_HANDOFF || f.payload_len != strlen(text) ||
        memcmp(payload, text, f.payload_len) != 0 || fd < 0 || !same_marker(fd, &inos[i])) {
      bad++;
    }
    if (fd >= 0) close(fd);
  }
  CHECK(bad == 0);

  /* No subscriber: refused, and the broker keeps nothing. */
  send_handoff(from, 1, 56, "own:nobody", "x", marker);
  CHECK(next_frame(from, &f, NULL, 0) == 0);
  CHECK(f.type == FRAME_REPLY && f.request_id == 56 && f.status == FRAME_STATUS_MISSING);
  /* Never back to the sending endpoint itself. */
  CHECK(subscribe(from, 1, "own:from") == FRAME_STATUS_OK);
  send_handoff(from, 1, 57, "own:from", "x", marker);
  CHECK(next_frame(from, &f, NULL, 0) == 0);
  CHECK(f.type == FRAME_REPLY && f.request_id == 57 && f.status == FRAME_STATUS_MISSING);
  CHECK(stat(FRAME_STAT_HANDOFFS_REFUSED) == refused + 2);
  close(marker);
  turn(2);
  CHECK(count_open_fds() == before);

  /* The receiver goes away with hand-offs on their way to it: nothing
   * stays open here. */
  for (int i = 0; i < 5; i++) {
    int m = marker_fd(&ino);
    send_handoff(from, 1, 0, "own:to", "late", m);
    close(m);
  }
  turn(1);
  fdpass_free(&in);
  peer_close(to);
  turn(4);
  CHECK(count_open_fds() == before - 2); /* and both ends of to's channel */

  /* A hand-off frame without its descriptor: the sender is cut off. */
  send_handoff(from, 1, 58, "own:from", "x", -1);
  CHECK(cut_with(from, "without its descriptor"));
  peer_close(from);
  free(from);
  free(to);
}

int main(void) {
  broker_options options;
  broker_options_default(&options);
  options.max_frame_size = 1u << 16;
  options.queue_limit = 256u * 1024u;
  /* Long enough for a reading peer to make progress even under valgrind. */
  options.stall_ms = 1500;
  if (peer_broker_start(&options) != 0) return 1;
  test_pubsub();
  test_kv();
  test_barrier();
  test_bad_input();
  test_oversized();
  test_stalled_reader();
  test_slow_reader_keeps_up();
  test_broker_paused();
  test_congestion_holds_only_its_feeders();
  test_quiet_publisher_overtakes();
  test_late_reader_paces_its_feeder();
  test_peer_max_frame_size();
  test_large_payloads();
  test_shared_routing();
  test_shared_bad_input();
  test_shared_gone();
  test_shared_live_owner();
  test_shared_scarce();
  test_handoff();
  broker_stop(b);
  return check_report("broker");
}
