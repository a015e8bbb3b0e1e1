/* buffer: growable byte queue (see buffer.h). */
#define _GNU_SOURCE
#include "buffer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

void buffer_init(buffer *b) {
  b->data = NULL;
  b->start = 0;
  b->end = 0;
  b->capacity = 0;
}

void buffer_free(buffer *b) {
  free(b->data);
  buffer_init(b);
}

uint8_t *buffer_reserve(buffer *b, size_t n) {
  if (b->capacity - b->end >= n) return b->data + b->end;
  size_t live = b->end - b->start;
  /* Slide the live bytes down when the dead prefix alone makes room and is
   * at least as large as what would move. */
  if (b->start >= live && b->capacity - live >= n) {
    memmove(b->data, b->data + b->start, live);
    b->start = 0;
    b->end = live;
    return b->data + b->end;
  }
  if (n > SIZE_MAX / 2 - live) return NULL;
  size_t need = live + n;
  size_t capacity = b->capacity ? b->capacity : 4096;
  while (capacity < need)
    capacity *= 2;
  uint8_t *data;
  if (b->start == 0) {
    data = realloc(b->data, capacity);
    if (!data) return NULL;
  } else {
    data = malloc(capacity);
    if (!data) return NULL;
    if (live) memcpy(data, b->data + b->start, live);
    free(b->data);
  }
  b->data = data;
  b->capacity = capacity;
  b->start = 0;
  b->end = live;
  return b->data + b->end;
}

void buffer_consume(buffer *b, size_t n) {
  b->start += n;
  if (b->start >= b->end) {
    b->start = 0;
    b->end = 0;
  }
}

void buffer_remove(buffer *b, size_t off, size_t n) {
  uint8_t *at = b->data + b->start + off;
  size_t after = b->end - b->start - off - n;
  memmove(at, at + n, after);
  b->end -= n;
  if (b->start == b->end) {
    b->start = 0;
    b->end = 0;
  }
}

void buffer_trim(buffer *b, size_t keep) {
  if (b->start == b->end && b->capacity > keep) buffer_free(b);
}

ssize_t buffer_send_parts(int fd, const uint8_t *head, size_t head_len, const uint8_t *payload,
                          size_t payload_len) {
  struct iovec iov[2] = {{(void *)head, head_len}, {(void *)payload, payload_len}};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

int buffer_append_parts(buffer *b, const uint8_t *head, size_t head_len, const uint8_t *payload,
                        size_t payload_len, size_t skip) {
  size_t size = head_len + payload_len;
  if (skip >= size) return 0;
  uint8_t *at = buffer_reserve(b, size - skip);
  if (!at) return -1;
  if (skip < head_len) {
    memcpy(at, head + skip, head_len - skip);
    memcpy(at + head_len - skip, payload, payload_len);
  } else {
    memcpy(at, payload + (skip - head_len), size - skip);
  }
  buffer_commit(b, size - skip);
  return 0;
}
