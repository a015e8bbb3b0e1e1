/* Tests of a topic's members (broker_presence.c) through the broker's wire
 * protocol, threadless as in test_broker.c: a member's SUBSCRIBE lists the
 * others, JOINED and LEFT reach the members (never plain subscribers),
 * whichever way a member goes, and a LEFT never overtakes a message the
 * leaver sent before it went. Also frame_member_next on bad lists, and
 * the REMOTE publish the adapter pairs with members (its process delivers
 * to its own subscribers itself). */
#define _GNU_SOURCE
#include <poll.h>
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

static void send_frame(peer *p, uint8_t type, uint32_t endpoint, uint32_t id, const char *a,
                       const void *payload, size_t payload_len) {
  CHECK(peer_send(p, type, 0, endpoint, id, a, a ? strlen(a) : 0, NULL, 0, payload, payload_len) ==
        0);
}

/* The next frame for p, turning the broker until one is there: 0 with its
 * payload copied into payload (up to 1024 bytes) and its topic into a, or
 * -1 when none comes. */
static int next_frame(peer *p, frame *f, uint8_t payload[1024], char a[256]) {
  if (peer_wait(p, f) != 0) return -1;
  if (payload && f->payload_len <= 1024) memcpy(payload, f->payload, f->payload_len);
  if (a) {
    size_t n = f->a_len < 255 ? f->a_len : 255;
    memcpy(a, f->a, n);
    a[n] = 0;
  }
  peer_drop(p, f);
  f->a = f->b = f->payload = NULL;
  return 0;
}

/* Nothing more for p after a few turns. */
static int quiet(peer *p) {
  turn(4);
  pump(p);
  return peer_avail(p) == 0;
}

static void peer_open(peer *p) {
  peer_connect(p);
  CHECK(peer_hello(p, 1u << 16) == 0);
  frame f;
  CHECK(next_frame(p, &f, NULL, NULL) == 0 && f.type == FRAME_HELLO);
}

/* Subscribes endpoint to topic with tag (NULL: a plain subscriber); returns
 * the reply's status, its payload in list (*list_len bytes). */
static int subscribe(peer *p, uint32_t endpoint, const char *topic, const char *tag, uint8_t *list,
                     uint32_t *list_len) {
  static uint32_t next_id = 1;
  uint32_t id = next_id++;
  send_frame(p, FRAME_SUBSCRIBE, endpoint, id, topic, tag, tag ? strlen(tag) : 0);
  frame f;
  uint8_t payload[1024];
  while (next_frame(p, &f, payload, NULL) == 0) {
    if (f.type != FRAME_REPLY || f.request_id != id) continue;
    if (list) memcpy(list, payload, f.payload_len);
    if (list_len) *list_len = f.payload_len;
    return f.status;
  }
  return -1;
}

/* Whether list holds exactly the tags given (in any order). */
static int list_is(const uint8_t *list, uint32_t len, const char *t1, const char *t2) {
  const char *want[2] = {t1, t2};
  int seen[2] = {0, 0}, count = 0;
  size_t at = 0;
  const uint8_t *tag;
  uint32_t tag_len;
  int rc;
  while ((rc = frame_member_next(list, len, &at, &tag, &tag_len)) == 1) {
    count++;
    for (int i = 0; i < 2; i++)
      if (want[i] && strlen(want[i]) == tag_len && memcmp(want[i], tag, tag_len) == 0) seen[i]++;
  }
  if (rc != 0) return 0;
  return count == (t1 != NULL) + (t2 != NULL) && seen[0] == (t1 != NULL) && seen[1] == (t2 != NULL);
}

/* The next frame for p is a JOINED or LEFT (type) for endpoint on topic
 * with tag. */
static int told(peer *p, uint8_t type, uint32_t endpoint, const char *topic, const char *tag) {
  frame f;
  uint8_t payload[1024];
  char a[256];
  if (next_frame(p, &f, payload, a) != 0) return 0;
  return f.type == type && f.endpoint == endpoint && strcmp(a, topic) == 0 &&
         f.payload_len == strlen(tag) && memcmp(payload, tag, f.payload_len) == 0;
}

static void test_members(void) {
  static peer p1, p2, plain;
  uint8_t list[1024];
  uint32_t len = 0;
  peer_open(&p1);
  peer_open(&p2);
  peer_open(&plain);
  /* The first member hears of nobody. */
  CHECK(subscribe(&p1, 1, "ns", "uid-a", list, &len) == FRAME_STATUS_OK);
  CHECK(len == 0);
  CHECK(subscribe(&plain, 1, "ns", NULL, list, &len) == FRAME_STATUS_OK && len == 0);
  /* The second gets the first's tag; the first is told it joined. */
  CHECK(subscribe(&p2, 7, "ns", "uid-b", list, &len) == FRAME_STATUS_OK);
  CHECK(list_is(list, len, "uid-a", NULL));
  CHECK(told(&p1, FRAME_JOINED, 1, "ns", "uid-b"));
  /* A second member on the same connection: both others hear of it (on
   * p1, before the reply to the subscribe). */
  send_frame(&p1, FRAME_SUBSCRIBE, 2, 40, "ns", "uid-c", 5);
  CHECK(told(&p1, FRAME_JOINED, 1, "ns", "uid-c"));
  frame f;
  CHECK(next_frame(&p1, &f, list, NULL) == 0 && f.type == FRAME_REPLY && f.request_id == 40);
  CHECK(list_is(list, f.payload_len, "uid-a", "uid-b"));
  CHECK(told(&p2, FRAME_JOINED, 7, "ns", "uid-c"));
  /* Subscribing again changes nothing and tells no one. */
  CHECK(subscribe(&p2, 7, "ns", "uid-b", list, &len) == FRAME_STATUS_OK);
  CHECK(list_is(list, len, "uid-a", "uid-c"));
  CHECK(quiet(&p1));
  /* The plain subscriber is told nothing, but gets messages. */
  CHECK(quiet(&plain));

  /* A member that unsubscribes: the members left are told (p1's other
   * endpoint before the reply). */
  send_frame(&p1, FRAME_UNSUBSCRIBE, 2, 50, "ns", NULL, 0);
  CHECK(told(&p1, FRAME_LEFT, 1, "ns", "uid-c"));
  CHECK(next_frame(&p1, &f, NULL, NULL) == 0 && f.type == FRAME_REPLY && f.request_id == 50);
  CHECK(told(&p2, FRAME_LEFT, 7, "ns", "uid-c"));
  /* One that closes its endpoint: likewise. */
  send_frame(&p1, FRAME_CLOSE, 1, 51, NULL, NULL, 0);
  CHECK(next_frame(&p1, &f, NULL, NULL) == 0 && f.type == FRAME_REPLY);
  CHECK(told(&p2, FRAME_LEFT, 7, "ns", "uid-a"));
  CHECK(quiet(&p1) && quiet(&plain));

  /* A member whose process goes away, right after a message: the message
   * comes first, then the LEFT, without anything else waking the loop. */
  CHECK(subscribe(&p1, 3, "ns", "uid-d", list, &len) == FRAME_STATUS_OK);
  CHECK(list_is(list, len, "uid-b", NULL));
  CHECK(told(&p2, FRAME_JOINED, 7, "ns", "uid-d"));
  CHECK(subscribe(&p2, 8, "reply-b", NULL, NULL, NULL) == FRAME_STATUS_OK);
  send_frame(&p1, FRAME_PUBLISH, 3, 0, "reply-b", "answer", 6);
  close(p1.fd);
  uint8_t payload[1024];
  char a[256];
  CHECK(next_frame(&p2, &f, payload, a) == 0);
  CHECK(f.type == FRAME_MESSAGE && f.endpoint == 8 && strcmp(a, "reply-b") == 0);
  CHECK(f.payload_len == 6 && memcmp(payload, "answer", 6) == 0);
  CHECK(told(&p2, FRAME_LEFT, 7, "ns", "uid-d"));
  CHECK(quiet(&plain));

  /* A tag over the limit is refused, and makes no member. */
  static char big[FRAME_TAG_MAX + 2];
  memset(big, 'x', sizeof(big) - 1);
  CHECK(subscribe(&plain, 2, "ns", big, NULL, NULL) == FRAME_STATUS_BAD_REQUEST);
  CHECK(quiet(&p2));
  close(p2.fd);
  close(plain.fd);
  turn(4);
}

static void test_member_list_parse(void) {
  uint8_t list[64];
  size_t len = frame_member_write(list, (const uint8_t *)"ab", 2);
  len += frame_member_write(list + len, (const uint8_t *)"xyz", 3);
  CHECK(list_is(list, (uint32_t)len, "ab", "xyz"));
  /* Cut short, an empty tag, a length past the end: refused. */
  size_t at = 0;
  const uint8_t *tag;
  uint32_t tag_len;
  CHECK(frame_member_next(list, 3, &at, &tag, &tag_len) == -1);
  uint8_t empty[4] = {0, 0, 0, 0};
  at = 0;
  CHECK(frame_member_next(empty, 4, &at, &tag, &tag_len) == -1);
  at = 0;
  CHECK(frame_member_next(list, len - 1, &at, &tag, &tag_len) == 1);
  CHECK(frame_member_next(list, len - 1, &at, &tag, &tag_len) == -1);
  uint8_t huge[8];
  frame_store_u32(huge, FRAME_TAG_MAX + 1);
  at = 0;
  CHECK(frame_member_next(huge, 8, &at, &tag, &tag_len) == -1);
  at = 0;
  CHECK(frame_member_next(list, 0, &at, &tag, &tag_len) == 0);
}

/* A PUBLISH with FRAME_FLAG_REMOTE reaches the subscribers of the other
 * connections only; without it, the publisher's other endpoints too. */
static void test_remote_publish(void) {
  static peer p1, p2;
  peer_open(&p1);
  peer_open(&p2);
  CHECK(subscribe(&p1, 1, "t", NULL, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(subscribe(&p1, 2, "t", NULL, NULL, NULL) == FRAME_STATUS_OK);
  CHECK(subscribe(&p2, 1, "t", NULL, NULL, NULL) == FRAME_STATUS_OK);
  uint8_t f[64];
  uint32_t size = frame_write_header(f, FRAME_PUBLISH, 0, FRAME_FLAG_REMOTE, 1, 0, 1, 0, 1);
  f[FRAME_HEADER_SIZE] = 't';
  f[FRAME_HEADER_SIZE + 1] = 'r';
  CHECK(send(p1.fd, f, size, MSG_NOSIGNAL) == (ssize_t)size);
  send_frame(&p1, FRAME_PUBLISH, 1, 0, "t", "o", 1);
  frame got;
  uint8_t payload[1024];
  CHECK(next_frame(&p2, &got, payload, NULL) == 0 && got.type == FRAME_MESSAGE && payload[0] == 'r');
  CHECK(next_frame(&p2, &got, payload, NULL) == 0 && got.type == FRAME_MESSAGE && payload[0] == 'o');
  /* p1's endpoint 2 gets only the ordinary one. */
  CHECK(next_frame(&p1, &got, payload, NULL) == 0 && got.endpoint == 2 && payload[0] == 'o');
  CHECK(quiet(&p1));
  close(p1.fd);
  close(p2.fd);
  turn(4);
}

int main(void) {
  broker_options options;
  broker_options_default(&options);
  options.max_frame_size = 1u << 16;
  options.shared = 0; /* no pool: the peers here read only the sockets */
  if (peer_broker_start(&options) != 0) return 1;
  test_members();
  test_member_list_parse();
  test_remote_publish();
  broker_stop(b);
  return check_report("presence");
}
