/* buffer: a growable byte queue, for the channel's input and output.
 *
 * Bytes are appended at the end and consumed from the start; the unused
 * space at the start is reclaimed by moving the live bytes down only when
 * that is cheaper than growing. Output frames are encoded straight into the
 * reserved space, so a batch of frames sits contiguous and goes out in one
 * write. */
#ifndef CLUSTER_STORE_BUFFER_H
#define CLUSTER_STORE_BUFFER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct buffer {
  uint8_t *data;
  size_t start; /* first live byte */
  size_t end;   /* one past the last live byte */
  size_t capacity;
} buffer;

void buffer_init(buffer *b);
void buffer_free(buffer *b);

static inline size_t buffer_length(const buffer *b) {
  return b->end - b->start;
}
static inline uint8_t *buffer_begin(const buffer *b) {
  return b->data + b->start;
}

/* Makes room for n more bytes at the end and returns where they go, or NULL
 * when out of memory (the buffer is then unchanged). */
uint8_t *buffer_reserve(buffer *b, size_t n);

/* Space already reserved and writable at the end without moving anything. */
static inline size_t buffer_spare(const buffer *b) {
  return b->capacity - b->end;
}

/* Marks n reserved bytes as written. */
static inline void buffer_commit(buffer *b, size_t n) {
  b->end += n;
}

/* Drops n bytes from the start. */
void buffer_consume(buffer *b, size_t n);

/* Removes n bytes at offset off from the start (for taking one frame out of
 * the middle of unread input). */
void buffer_remove(buffer *b, size_t off, size_t n);

/* Gives memory back when the buffer is empty and larger than keep bytes. */
void buffer_trim(buffer *b, size_t keep);

/* A frame in two parts (header and names in head, the payload apart), for
 * large payloads that go to a socket from where they are, not through a
 * queue. BUFFER_PARTS_MIN is where "large" starts, for the process side
 * and the broker alike: below it, copying into a queue and writing many
 * frames at once is cheaper than a syscall per frame. */
#define BUFFER_PARTS_MIN (16u * 1024u)

/* One non-blocking sendmsg of both parts: the bytes the socket took (0 when
 * it is full), or -1 with errno on failure. */
ssize_t buffer_send_parts(int fd, const uint8_t *head, size_t head_len, const uint8_t *payload,
                          size_t payload_len);

/* Appends what is left of both parts after the first skip bytes. Returns 0,
 * or -1 when out of memory (the buffer is then unchanged). */
int buffer_append_parts(buffer *b, const uint8_t *head, size_t head_len, const uint8_t *payload,
                        size_t payload_len, size_t skip);

#endif
