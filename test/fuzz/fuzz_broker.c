/* libFuzzer target: the broker's handling of whatever a process may send.
 *
 * Each input starts a broker (without its thread: the loop is turned here),
 * connects two processes to it, sends a valid hello then the input as
 * the first connection's stream, lets the broker work through it, and reads
 * whatever comes back on both connections. A second, well-behaved
 * connection is subscribed to a few channels so routing to another
 * connection is exercised too. The input's bytes are the only variable:
 * crashes, leaks and sanitizer reports are what is looked for. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "frame.h"

static void send_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0) return; /* the broker hung up or the buffer is full: enough */
    p += w;
    n -= (size_t)w;
  }
}

static void drain(int fd) {
  uint8_t buf[65536];
  while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
}

static void send_hello(int fd) {
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  uint8_t f[FRAME_HEADER_SIZE + FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, 1u << 20);
  uint32_t n = frame_encode(f, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  send_all(fd, f, n);
}

static void subscribe(int fd, uint32_t endpoint, const char *channel) {
  uint8_t f[FRAME_HEADER_SIZE + 64];
  uint32_t n = frame_encode(f, FRAME_SUBSCRIBE, 0, endpoint, 1, channel, strlen(channel), NULL, 0,
                            NULL, 0);
  send_all(fd, f, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  broker_options options;
  broker_options_default(&options);
  options.max_frame_size = 1u << 16;
  options.queue_limit = 1u << 18;
  broker *b;
  char err[128];
  if (broker_create(&b, &options, err, sizeof(err)) != 0) abort();
  int fuzzed, other;
  if (broker_connect_pair(b, &fuzzed) != 0 || broker_connect_pair(b, &other) != 0) abort();
  send_hello(other);
  subscribe(other, 1, "a");
  subscribe(other, 2, "b");
  subscribe(other, 1, "");
  send_hello(fuzzed);
  size_t offset = 0;
  /* Feed in slices so frames split across reads are exercised. */
  while (offset < size) {
    size_t n = size - offset < 4096 ? size - offset : 4096;
    send_all(fuzzed, data + offset, n);
    offset += n;
    for (int i = 0; i < 3; i++) broker_run_once(b);
    drain(fuzzed);
    drain(other);
  }
  for (int i = 0; i < 4; i++) broker_run_once(b);
  drain(fuzzed);
  drain(other);
  close(fuzzed);
  close(other);
  for (int i = 0; i < 4; i++) broker_run_once(b);
  broker_stop(b);
  return 0;
}
