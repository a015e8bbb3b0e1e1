/* buffer: growable byte queue (see buffer.h). */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

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
