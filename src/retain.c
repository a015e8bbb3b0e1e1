/* retain: the topics' logs of retained messages (see retain.h).
 *
 * Each message is one allocation (its bookkeeping, then its bytes) on two
 * lists at once: the store's, oldest first, through `next`, which is where
 * the limits and the age drop from; and its log's ring, an array of
 * pointers in order, which reads search by number (binary search: the
 * numbers in a log only grow). Since every limit drops the oldest message
 * of the whole store, that message is always the first of its log's ring
 * too, so both lists only ever lose their front. */
#include "retain.h"

#include <stdlib.h>
#include <string.h>

#include "table.h"

#define RETAIN_RING_MIN 8u

typedef struct retain_message {
  struct retain_message *next; /* the next message of the store, by age */
  retain_log *log;
  uint64_t seq;
  uint64_t time;
  size_t len;
  uint8_t bytes[];
} retain_message;

struct retain_log {
  retain_message **ring;
  size_t capacity; /* a power of two, or 0 */
  size_t head;
  size_t count;
  uint64_t dropped_through; /* the last message of this log dropped (0: none) */
};

struct retain {
  retain_limits limits;
  table *logs;
  retain_message *oldest;
  retain_message *newest;
  uint64_t last_seq;
  size_t messages;
  size_t message_bytes; /* what the bytes limit counts */
  size_t ring_bytes;    /* the logs and their rings */
  uint64_t dropped;
};

static size_t retain_message_bytes(size_t len) {
  return sizeof(retain_message) + len;
}

retain *retain_create(const retain_limits *limits) {
  retain *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->limits = *limits;
  r->logs = table_create();
  if (!r->logs) {
    free(r);
    return NULL;
  }
  return r;
}

static void retain_log_free(void *value, void *ctx) {
  (void)ctx;
  retain_log *log = value;
  free(log->ring);
  free(log);
}

void retain_destroy(retain *r) {
  retain_message *m = r->oldest;
  while (m) {
    retain_message *next = m->next;
    free(m);
    m = next;
  }
  table_destroy(r->logs, retain_log_free, NULL);
  free(r);
}

static retain_message *retain_log_at(const retain_log *log, size_t i) {
  return log->ring[(log->head + i) & (log->capacity - 1)];
}

/* Moves the log's messages into a ring of `capacity` slots, in order from
 * slot 0. -1 when out of memory (nothing changed). */
static int retain_log_resize(retain *r, retain_log *log, size_t capacity) {
  retain_message **ring = malloc(capacity * sizeof(*ring));
  if (!ring) return -1;
  for (size_t i = 0; i < log->count; i++)
    ring[i] = retain_log_at(log, i);
  free(log->ring);
  r->ring_bytes = r->ring_bytes - log->capacity * sizeof(*ring) + capacity * sizeof(*ring);
  log->ring = ring;
  log->capacity = capacity;
  log->head = 0;
  return 0;
}

/* Drops the store's oldest message (the first of its log). */
static void retain_drop_oldest(retain *r) {
  retain_message *m = r->oldest;
  retain_log *log = m->log;
  r->oldest = m->next;
  if (!r->oldest) r->newest = NULL;
  log->head = (log->head + 1) & (log->capacity - 1);
  log->count--;
  log->dropped_through = m->seq;
  r->messages--;
  r->message_bytes -= retain_message_bytes(m->len);
  r->dropped++;
  free(m);
  /* A ring a quarter full gives half back (failing to is harmless). */
  if (log->capacity > RETAIN_RING_MIN && log->count * 4 <= log->capacity)
    (void)retain_log_resize(r, log, log->capacity / 2);
}

static int retain_over_limits(const retain *r) {
  return r->messages > r->limits.messages || r->message_bytes > r->limits.bytes;
}

uint64_t retain_append(retain *r, const void *name, size_t name_len, const void *bytes, size_t len,
                       uint64_t now) {
  retain_log *log = table_get(r->logs, name, name_len);
  int made = 0;
  if (!log) {
    log = calloc(1, sizeof(*log));
    if (!log) return 0;
    if (table_put(r->logs, name, name_len, log, NULL) != 0) {
      free(log);
      return 0;
    }
    r->ring_bytes += sizeof(*log);
    made = 1;
  }
  retain_message *m = malloc(retain_message_bytes(len));
  if (!m || (log->count == log->capacity &&
             retain_log_resize(r, log, log->capacity ? log->capacity * 2 : RETAIN_RING_MIN) != 0)) {
    free(m);
    if (made) {
      retain_log_free(table_remove(r->logs, name, name_len), NULL);
      r->ring_bytes -= sizeof(*log);
    }
    return 0;
  }
  m->next = NULL;
  m->log = log;
  m->seq = ++r->last_seq;
  m->time = now;
  m->len = len;
  if (len) memcpy(m->bytes, bytes, len);
  log->ring[(log->head + log->count) & (log->capacity - 1)] = m;
  log->count++;
  if (r->newest)
    r->newest->next = m;
  else
    r->oldest = m;
  r->newest = m;
  r->messages++;
  r->message_bytes += retain_message_bytes(len);
  uint64_t seq = m->seq; /* m itself may be dropped below */
  while (r->oldest && retain_over_limits(r))
    retain_drop_oldest(r);
  retain_expire(r, now);
  return seq;
}

size_t retain_expire(retain *r, uint64_t now) {
  size_t dropped = 0;
  while (r->oldest && now >= r->oldest->time && now - r->oldest->time >= r->limits.age_ms) {
    retain_drop_oldest(r);
    dropped++;
  }
  return dropped;
}

uint64_t retain_last_seq(const retain *r) {
  return r->last_seq;
}

int retain_find(retain *r, const void *name, size_t name_len, uint64_t after, retain_range *out) {
  if (after > r->last_seq) return RETAIN_GONE;
  const retain_log *log = table_get(r->logs, name, name_len);
  out->log = log;
  out->first = 0;
  out->count = 0;
  if (!log) return RETAIN_FOUND;
  if (after < log->dropped_through) return RETAIN_GONE;
  /* The first message numbered past `after`. */
  size_t lo = 0, hi = log->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (retain_log_at(log, mid)->seq <= after)
      lo = mid + 1;
    else
      hi = mid;
  }
  out->first = lo;
  out->count = log->count - lo;
  return RETAIN_FOUND;
}

void retain_range_get(const retain_range *range, size_t i, uint64_t *seq, const uint8_t **bytes,
                      size_t *len) {
  const retain_message *m = retain_log_at(range->log, range->first + i);
  *seq = m->seq;
  *bytes = m->bytes;
  *len = m->len;
}

void retain_get_stats(const retain *r, retain_stats *out) {
  out->messages = r->messages;
  out->bytes = sizeof(*r) + table_memory(r->logs) + r->ring_bytes + r->message_bytes;
  out->logs = table_count(r->logs);
  out->dropped = r->dropped;
}
