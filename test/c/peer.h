/* peer: a process on the broker's wire, played by a C test.
 *
 * The broker tests (test_broker.c, test_broker_retain.c, test_presence.c)
 * run the broker threadless: the test holds the broker in b, turns its
 * loop itself (broker_run_once) and plays each process on the raw end of a
 * socketpair the broker accepted (broker_connect_pair). What they share is
 * here: sending a frame, reading what came without blocking, waiting for
 * the next whole frame while turning the broker, saying hello, and
 * creating the broker. Each test keeps its own way of copying a frame out
 * and of matching a reply, since they look at different fields.
 *
 * Include after check.h; like it, everything here is static to the test. */
#ifndef CLUSTER_STORE_TEST_PEER_H
#define CLUSTER_STORE_TEST_PEER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "fdpass.h"
#include "frame.h"

typedef struct peer {
  int fd;
  uint8_t in[1 << 20];
  size_t start; /* input taken: in[start, len) is what is left to read */
  size_t len;
  int eof;
  int pool_fd;         /* the shared pool, as the broker passed it (-1: none) */
  uint32_t region;     /* the region it offered */
  uint32_t generation; /* ... and that use of the region */
} peer;

static broker *b;

static inline void turn(int times) {
  for (int i = 0; i < times; i++)
    broker_run_once(b);
}

static inline void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The broker with options, in b: 0, or 1 (said on stderr) when it cannot
 * be created, for main to return. */
static inline int peer_broker_start(const broker_options *options) {
  char err[128];
  if (broker_create(&b, options, err, sizeof(err)) != 0) {
    fprintf(stderr, "broker_create: %s\n", err);
    return 1;
  }
  return 0;
}

/* Sends one frame (blocking until all of it went): 0, or -1 when the
 * socket would take no more or out of memory. */
static inline int peer_send(peer *p, uint8_t type, uint16_t flags, uint32_t endpoint, uint32_t id,
                            const void *a, size_t a_len, const void *key, size_t key_len,
                            const void *payload, size_t payload_len) {
  uint32_t size = frame_size(a_len, key_len, payload_len);
  uint8_t *f = malloc(size);
  if (!f) return -1;
  frame_write_header(f, type, 0, flags, endpoint, id, a_len, key_len, payload_len);
  if (a_len) memcpy(f + FRAME_HEADER_SIZE, a, a_len);
  if (key_len) memcpy(f + FRAME_HEADER_SIZE + a_len, key, key_len);
  if (payload_len) memcpy(f + FRAME_HEADER_SIZE + a_len + key_len, payload, payload_len);
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(p->fd, f + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += (size_t)n;
  }
  free(f);
  return off == size ? 0 : -1;
}

/* What is left of p's input, and how much. */
static inline uint8_t *peer_data(peer *p) {
  return p->in + p->start;
}

static inline size_t peer_avail(const peer *p) {
  return p->len - p->start;
}

/* Room at the end of p's input: what was taken is dropped from the front
 * once the buffer is full, not a frame at a time (moving up to 1 MiB for
 * each frame made a reader slow enough under valgrind to be cut off). */
static inline size_t peer_room(peer *p) {
  if (p->len == sizeof(p->in) && p->start > 0) {
    memmove(p->in, p->in + p->start, p->len - p->start);
    p->len -= p->start;
    p->start = 0;
  }
  return sizeof(p->in) - p->len;
}

/* Reads whatever is there without blocking (and the pool's descriptor,
 * when one comes, into pool_fd). */
static inline void pump(peer *p) {
  while (peer_room(p) > 0) {
    ssize_t n = fdpass_recv_one(p->fd, p->in + p->len, sizeof(p->in) - p->len, &p->pool_fd);
    if (n > 0) {
      p->len += (size_t)n;
      continue;
    }
    if (n == 0) p->eof = 1;
    return;
  }
}

/* Drops the frame f (decoded at the front of p's input) from it. */
static inline void peer_drop(peer *p, const frame *f) {
  p->start += f->size;
  if (p->start == p->len) p->start = p->len = 0;
}

/* Takes the next whole frame out of p's input: 1, with its header fields
 * in *f (a, b and payload cleared: those bytes are gone), or 0. */
static inline int take_frame(peer *p, frame *f) {
  if (frame_decode(peer_data(p), peer_avail(p), UINT32_MAX, f) != FRAME_OK) return 0;
  peer_drop(p, f);
  f->a = f->b = f->payload = NULL;
  return 1;
}

/* Turns the broker and reads until a whole frame is at the front of p's
 * input: 0 with it decoded in *f (pointing into p's input until
 * peer_drop), or -1 on EOF or when none comes. */
static inline int peer_wait(peer *p, frame *f) {
  for (int tries = 0; tries < 2000; tries++) {
    if (frame_decode(peer_data(p), peer_avail(p), UINT32_MAX, f) == FRAME_OK) return 0;
    if (p->eof) return -1;
    turn(1);
    pump(p);
    if (tries > 100) sleep_ms(1);
  }
  return -1;
}

/* Connects p to the broker (a fresh peer, no pool yet). */
static inline void peer_connect(peer *p) {
  memset(p, 0, sizeof(*p));
  p->pool_fd = -1;
  CHECK(broker_connect_pair(b, &p->fd) == 0);
  /* A test sends a whole batch, with a blocking send each frame, before
   * it turns the broker to read any: the socket must hold all of it, as a
   * process's own output queue would (the pair's end is made small). */
  int size = 1 << 20;
  CHECK(setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) == 0);
}

/* Sends p's hello, saying it takes frames of at most max_size bytes; the
 * broker's answer is left for the test. What peer_send returned. */
static inline int peer_hello(peer *p, uint32_t max_size) {
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, max_size);
  return peer_send(p, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
}

#endif
