/* Tests of the broker's retention (retained publishes, RETAINED_READ) and
 * of namespaces bound to a connection (KV_BIND, KV_TAKE), through the wire
 * protocol, with no thread: the test plays the processes on raw socketpair
 * ends and turns the broker's loop itself (broker_create +
 * broker_run_once). The shared pool is off: these peers take no region. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "check.h"
#include "frame.h"
#include "peer.h"

/* A frame as it came, payload and fields copied out. */
typedef struct got {
  frame f;
  uint8_t a[64];
  uint8_t b[64];
  uint8_t payload[1 << 16];
} got;

static void send_frame(peer *p, uint8_t type, uint32_t id, const char *a, const char *key,
                       const void *payload, size_t payload_len, uint16_t flags) {
  peer_send(p, type, flags, 1, id, a, a ? strlen(a) : 0, key, key ? strlen(key) : 0, payload,
            payload_len);
}

/* The next frame from the broker, turning its loop until one is there:
 * 0, or -1 on EOF or when none comes. */
static int next_frame(peer *p, got *g) {
  frame f;
  if (peer_wait(p, &f) != 0) return -1;
  g->f = f;
  memcpy(g->a, f.a, f.a_len < sizeof(g->a) ? f.a_len : sizeof(g->a));
  memcpy(g->b, f.b, f.b_len < sizeof(g->b) ? f.b_len : sizeof(g->b));
  memcpy(g->payload, f.payload,
         f.payload_len < sizeof(g->payload) ? f.payload_len : sizeof(g->payload));
  g->f.a = g->a;
  g->f.b = g->b;
  g->f.payload = g->payload;
  peer_drop(p, &f);
  return 0;
}

static void peer_open_max(peer *p, uint32_t max_size) {
  peer_connect(p);
  peer_hello(p, max_size);
  static got g;
  CHECK(next_frame(p, &g) == 0 && g.f.type == FRAME_HELLO);
}

static void peer_close(peer *p) {
  close(p->fd);
  turn(4);
}

/* Sends a request and waits for its reply (into *g): its status, or -1. */
static int request_flags(peer *p, uint8_t type, const char *a, const char *key, const void *payload,
                         size_t len, uint16_t flags, got *g) {
  static uint32_t next_id = 100;
  uint32_t id = next_id++;
  send_frame(p, type, id, a, key, payload, len, flags);
  for (;;) {
    if (next_frame(p, g) != 0) return -1;
    if (g->f.type == FRAME_REPLY && g->f.request_id == id) return g->f.status;
  }
}

static int request(peer *p, uint8_t type, const char *a, const char *key, const void *payload,
                   size_t len, got *g) {
  return request_flags(p, type, a, key, payload, len, 0, g);
}

static uint64_t stat(int which) {
  uint64_t values[FRAME_STATS_COUNT];
  turn(1);
  broker_get_stats(b, values);
  return values[which];
}

/* Publishes body on topic with retention; its offset into offset. */
static int publish_retained(peer *p, const char *topic, const char *body,
                            uint8_t offset[FRAME_OFFSET_SIZE]) {
  static got g;
  int status =
      request_flags(p, FRAME_PUBLISH, topic, NULL, body, strlen(body), FRAME_FLAG_RETAIN, &g);
  if (status != FRAME_STATUS_OK || g.f.payload_len != FRAME_OFFSET_SIZE) return -1;
  memcpy(offset, g.payload, FRAME_OFFSET_SIZE);
  return 0;
}

/* Reads the log of topic after offset: the bodies, joined with ',' into
 * out, and what the reply says is left. The status, or -1. */
static int read_after(peer *p, const char *topic, const uint8_t *offset, char *out, size_t cap,
                      uint32_t *left, uint8_t last[FRAME_OFFSET_SIZE]) {
  static got g;
  char key[FRAME_OFFSET_SIZE + 1];
  memcpy(key, offset, FRAME_OFFSET_SIZE);
  key[FRAME_OFFSET_SIZE] = 0;
  int status = request(p, FRAME_RETAINED_READ, topic, key, NULL, 0, &g);
  out[0] = 0;
  if (status != FRAME_STATUS_OK) return status;
  if (frame_retained_head_parse(g.payload, g.f.payload_len, left) != 0) return -1;
  size_t pos = FRAME_RETAINED_HEAD_SIZE, used = 0;
  frame_retained_entry e;
  int rc;
  while ((rc = frame_retained_next(g.payload, g.f.payload_len, &pos, &e)) == 1) {
    if (used + e.len + 2 > cap) return -1;
    if (used) out[used++] = ',';
    memcpy(out + used, e.bytes, e.len);
    used += e.len;
    out[used] = 0;
    if (last) memcpy(last, e.offset, FRAME_OFFSET_SIZE);
  }
  return rc == 0 ? status : -1;
}

static void test_retained_publish_and_read(void) {
  static peer pub, sub;
  static got g;
  peer_open_max(&pub, 1u << 20);
  peer_open_max(&sub, 1u << 20);
  CHECK(request(&sub, FRAME_SUBSCRIBE, "news", NULL, NULL, 0, &g) == FRAME_STATUS_OK);
  uint8_t o1[FRAME_OFFSET_SIZE], o2[FRAME_OFFSET_SIZE], o3[FRAME_OFFSET_SIZE];
  CHECK(publish_retained(&pub, "news", "one", o1) == 0);
  CHECK(publish_retained(&pub, "other", "elsewhere", o2) == 0);
  CHECK(publish_retained(&pub, "news", "two", o2) == 0);
  CHECK(publish_retained(&pub, "news", "three", o3) == 0);
  /* The subscriber gets each with the offset its publisher was told. */
  const uint8_t *offsets[] = {o1, o2, o3};
  const char *bodies[] = {"one", "two", "three"};
  for (int i = 0; i < 3; i++) {
    CHECK(next_frame(&sub, &g) == 0 && g.f.type == FRAME_MESSAGE);
    CHECK(g.f.b_len == FRAME_OFFSET_SIZE && memcmp(g.b, offsets[i], FRAME_OFFSET_SIZE) == 0);
    CHECK(g.f.payload_len == strlen(bodies[i]) &&
          memcmp(g.payload, bodies[i], g.f.payload_len) == 0);
  }
  /* Offsets grow, in one epoch, and compare as text. */
  uint64_t e1, s1, e3, s3;
  CHECK(frame_offset_parse(o1, FRAME_OFFSET_SIZE, &e1, &s1) == 0);
  CHECK(frame_offset_parse(o3, FRAME_OFFSET_SIZE, &e3, &s3) == 0);
  CHECK(e1 == e3 && s1 < s3 && memcmp(o1, o2, FRAME_OFFSET_SIZE) < 0);
  /* Unrouted: kept, and sent to no subscriber (the next message the
   * subscriber gets is the plain one below). */
  uint8_t kept[FRAME_OFFSET_SIZE];
  CHECK(request_flags(&pub, FRAME_PUBLISH, "news", NULL, "kept", 4,
                      FRAME_FLAG_RETAIN | FRAME_FLAG_UNROUTED, &g) == FRAME_STATUS_OK);
  CHECK(g.f.payload_len == FRAME_OFFSET_SIZE);
  memcpy(kept, g.payload, FRAME_OFFSET_SIZE);
  /* A plain publish carries no offset, even when its sender put a field b. */
  send_frame(&pub, FRAME_PUBLISH, 0, "news", "not an offset", "plain", 5, 0);
  CHECK(next_frame(&sub, &g) == 0 && g.f.type == FRAME_MESSAGE && g.f.b_len == 0);

  char text[256];
  uint32_t left = 99;
  CHECK(read_after(&sub, "news", o1, text, sizeof(text), &left, NULL) == FRAME_STATUS_OK);
  CHECK(strcmp(text, "two,three,kept") == 0 && left == 0);
  CHECK(read_after(&sub, "news", o3, text, sizeof(text), &left, NULL) == FRAME_STATUS_OK);
  CHECK(strcmp(text, "kept") == 0 && left == 0);
  CHECK(read_after(&sub, "news", kept, text, sizeof(text), &left, NULL) == FRAME_STATUS_OK);
  CHECK(strcmp(text, "") == 0 && left == 0);
  /* From before the first: everything; a topic never retained: nothing. */
  uint8_t zero[FRAME_OFFSET_SIZE];
  frame_offset_write(zero, e1, 0);
  CHECK(read_after(&sub, "news", zero, text, sizeof(text), &left, NULL) == FRAME_STATUS_OK);
  CHECK(strcmp(text, "one,two,three,kept") == 0);
  CHECK(read_after(&sub, "quiet", o1, text, sizeof(text), &left, NULL) == FRAME_STATUS_OK);
  CHECK(strcmp(text, "") == 0);

  /* Refused: another epoch, a number not given yet, not an offset. */
  uint64_t refused = stat(FRAME_STAT_RETAINED_REFUSED);
  uint8_t bad[FRAME_OFFSET_SIZE];
  frame_offset_write(bad, e1 + 1, s1);
  CHECK(read_after(&sub, "news", bad, text, sizeof(text), &left, NULL) == FRAME_STATUS_MISSING);
  frame_offset_write(bad, e1, s3 + 100);
  CHECK(read_after(&sub, "news", bad, text, sizeof(text), &left, NULL) == FRAME_STATUS_MISSING);
  CHECK(request(&sub, FRAME_RETAINED_READ, "news", "12", NULL, 0, &g) == FRAME_STATUS_BAD_REQUEST);
  CHECK(stat(FRAME_STAT_RETAINED_REFUSED) == refused + 3);
  CHECK(stat(FRAME_STAT_RETAINED_MESSAGES) == 5 && stat(FRAME_STAT_RETAINED_BYTES) > 0);
  peer_close(&pub);
  peer_close(&sub);
}

/* Past the message limit the oldest go; a read from before them is
 * refused, one from after them is whole. */
static void test_limits(void) {
  static peer p;
  peer_open_max(&p, 1u << 20);
  uint8_t offsets[12][FRAME_OFFSET_SIZE];
  uint64_t dropped = stat(FRAME_STAT_RETAINED_DROPPED);
  for (int i = 0; i < 12; i++) {
    char body[8];
    snprintf(body, sizeof(body), "m%d", i);
    CHECK(publish_retained(&p, "limited", body, offsets[i]) == 0);
  }
  /* The limit (main) is 8 messages, all topics: 5 from before are gone,
   * then 4 of these. */
  CHECK(stat(FRAME_STAT_RETAINED_MESSAGES) == 8);
  CHECK(stat(FRAME_STAT_RETAINED_DROPPED) == dropped + 9);
  char text[256];
  uint32_t left;
  CHECK(read_after(&p, "limited", offsets[2], text, sizeof(text), &left, NULL) ==
        FRAME_STATUS_MISSING);
  CHECK(read_after(&p, "limited", offsets[3], text, sizeof(text), &left, NULL) == FRAME_STATUS_OK);
  CHECK(strcmp(text, "m4,m5,m6,m7,m8,m9,m10,m11") == 0);
  peer_close(&p);
}

/* A reply holds what fits in a frame the asker takes; it reads on from
 * the last offset listed. */
static void test_pages(void) {
  static peer p;
  peer_open_max(&p, FRAME_MIN_MAX_SIZE);
  char body[1001];
  uint8_t first[FRAME_OFFSET_SIZE], last[FRAME_OFFSET_SIZE];
  for (int i = 0; i < 8; i++) {
    memset(body, 'a' + i, 1000);
    body[1000] = 0;
    CHECK(publish_retained(&p, "paged", body, i == 0 ? first : last) == 0);
  }
  static char text[16384];
  uint32_t left = 0;
  int pages = 0, letters = 1; /* the first was 'a', read from after it */
  uint8_t from[FRAME_OFFSET_SIZE];
  memcpy(from, first, FRAME_OFFSET_SIZE);
  do {
    CHECK(read_after(&p, "paged", from, text, sizeof(text), &left, from) == FRAME_STATUS_OK);
    for (size_t i = 0; i < strlen(text); i += 1001)
      if (text[i] == 'a' + letters) letters++;
    pages++;
  } while (left > 0 && pages < 10);
  CHECK(pages >= 2 && letters == 8);
  CHECK(memcmp(from, last, FRAME_OFFSET_SIZE) == 0);
  peer_close(&p);
}

static void test_bind_and_take(void) {
  static peer owner, other;
  static got g;
  peer_open_max(&owner, 1u << 20);
  peer_open_max(&other, 1u << 20);
  uint8_t ms[FRAME_EXPIRE_SIZE];
  frame_expire_write(ms, 150);
  CHECK(request(&owner, FRAME_KV_SET, "session", "s", "state", 5, &g) == FRAME_STATUS_OK);
  CHECK(request(&owner, FRAME_KV_BIND, "session", NULL, ms, sizeof(ms), &g) == FRAME_STATUS_OK);
  CHECK(request(&owner, FRAME_KV_BIND, "session", NULL, "x", 1, &g) == FRAME_STATUS_BAD_REQUEST);
  CHECK(request(&owner, FRAME_KV_SET, "released", "s", "v", 1, &g) == FRAME_STATUS_OK);
  CHECK(request(&owner, FRAME_KV_BIND, "released", NULL, ms, sizeof(ms), &g) == FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_NAMESPACES_BOUND) == 2);
  /* An expiry of its own ends the binding: the owner's going does not
   * shorten it. */
  uint8_t long_ms[FRAME_EXPIRE_SIZE];
  frame_expire_write(long_ms, 60000);
  CHECK(request(&owner, FRAME_KV_EXPIRE, "released", NULL, long_ms, sizeof(long_ms), &g) ==
        FRAME_STATUS_OK);
  CHECK(stat(FRAME_STAT_NAMESPACES_BOUND) == 1);
  /* While the owner lives, the bound namespace stays. */
  sleep_ms(200);
  turn(4);
  CHECK(request(&other, FRAME_KV_HAS, "session", "s", NULL, 0, &g) == FRAME_STATUS_OK);
  /* The owner goes: the namespace still is there, then goes 150 ms later. */
  peer_close(&owner);
  CHECK(stat(FRAME_STAT_NAMESPACES_BOUND) == 0);
  CHECK(request(&other, FRAME_KV_HAS, "session", "s", NULL, 0, &g) == FRAME_STATUS_OK);
  int gone = 0;
  for (int i = 0; i < 300 && !gone; i++) {
    sleep_ms(10);
    turn(2);
    gone = request(&other, FRAME_KV_HAS, "session", "s", NULL, 0, &g) == FRAME_STATUS_MISSING;
  }
  CHECK(gone);
  CHECK(request(&other, FRAME_KV_HAS, "released", "s", NULL, 0, &g) == FRAME_STATUS_OK);

  /* KV_TAKE: the value, once; the namespace goes with it, binding and all. */
  static peer taker;
  peer_open_max(&taker, 1u << 20);
  CHECK(request(&other, FRAME_KV_SET, "taken", "s", "mine", 4, &g) == FRAME_STATUS_OK);
  CHECK(request(&other, FRAME_KV_SET, "taken", "t", "too", 3, &g) == FRAME_STATUS_OK);
  CHECK(request(&other, FRAME_KV_BIND, "taken", NULL, ms, sizeof(ms), &g) == FRAME_STATUS_OK);
  CHECK(request(&taker, FRAME_KV_TAKE, "taken", "s", NULL, 0, &g) == FRAME_STATUS_OK);
  CHECK(g.f.payload_len == 4 && memcmp(g.payload, "mine", 4) == 0);
  CHECK(request(&other, FRAME_KV_TAKE, "taken", "s", NULL, 0, &g) == FRAME_STATUS_MISSING);
  CHECK(request(&other, FRAME_KV_HAS, "taken", "t", NULL, 0, &g) == FRAME_STATUS_MISSING);
  CHECK(stat(FRAME_STAT_NAMESPACES_BOUND) == 0);
  /* Past its deadline it cannot be taken, whether or not the timer ran. */
  frame_expire_write(ms, 1);
  CHECK(request(&other, FRAME_KV_SET, "late", "s", "v", 1, &g) == FRAME_STATUS_OK);
  CHECK(request(&other, FRAME_KV_EXPIRE, "late", NULL, ms, sizeof(ms), &g) == FRAME_STATUS_OK);
  sleep_ms(5);
  CHECK(request(&taker, FRAME_KV_TAKE, "late", "s", NULL, 0, &g) == FRAME_STATUS_MISSING);
  CHECK(request(&other, FRAME_KV_CLEAR, "released", NULL, NULL, 0, &g) == FRAME_STATUS_OK);
  peer_close(&taker);
  peer_close(&other);
  CHECK(stat(FRAME_STAT_NAMESPACES) == 0);
}

int main(void) {
  broker_options options;
  broker_options_default(&options);
  options.shared = 0;
  options.retain_messages = 8;
  if (peer_broker_start(&options) != 0) return 1;
  test_retained_publish_and_read();
  test_limits();
  test_pages();
  test_bind_and_take();
  broker_stop(b);
  return check_report("broker_retain");
}
