/* retain: the broker's retained messages, a bounded log per topic.
 *
 * A log is the messages retained under one name (a topic), in the order
 * they came. Every message gets a sequence number from one counter shared
 * by all logs (1, 2, 3, ...), so a number is also a point in time: "the
 * messages of log L after n" means those retained in L after message n was,
 * whichever log n went to.
 *
 * Limits hold for all logs together: at most `messages` messages, at most
 * `bytes` bytes of them (each counted with its bookkeeping), none older than
 * `age_ms`. Past a limit the oldest messages go first, whichever log holds
 * them; a message over the bytes limit on its own is dropped as soon as it
 * is retained (it still gets its number, so readers learn it is missing).
 * Each log remembers the number of the last message it dropped: a read
 * from before it cannot be answered in full and is refused (RETAIN_GONE),
 * never answered with a gap.
 *
 * A log, once made, stays (empty, about a hundred bytes) until the store is
 * destroyed: it must go on telling which reads it can answer. Logs are
 * topics an application chose to retain (socket.io: one per namespace).
 *
 * Pure data structure: no I/O, no clock of its own (callers pass `now`, in
 * milliseconds on any monotonic clock), one owner thread. */
#ifndef CLUSTER_STORE_RETAIN_H
#define CLUSTER_STORE_RETAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct retain retain;
typedef struct retain_log retain_log;

typedef struct retain_limits {
  uint64_t messages; /* messages held at most, all logs (0: none are kept) */
  uint64_t bytes;    /* bytes of messages held at most, all logs */
  uint64_t age_ms;   /* a message is dropped once it is this old */
} retain_limits;

typedef struct retain_stats {
  size_t messages; /* held now */
  size_t bytes;    /* memory held now: messages, logs, their arrays */
  size_t logs;
  uint64_t dropped; /* messages dropped for a limit or their age, all told */
} retain_stats;

/* A read's answer: count messages of one log, from its first-th on. */
typedef struct retain_range {
  const retain_log *log;
  size_t first;
  size_t count;
} retain_range;

enum retain_result {
  RETAIN_FOUND = 0, /* every message after the point is in the range */
  RETAIN_GONE = -1  /* some were dropped, or the point is not one given yet */
};

/* NULL when out of memory. */
retain *retain_create(const retain_limits *limits);
void retain_destroy(retain *r);

/* Retains a copy of bytes in the log `name` (made on first use), at time
 * now, then drops what the limits no longer allow (this message too, when
 * it alone is over them). Returns its sequence number, or 0 when out of
 * memory (nothing changed). */
uint64_t retain_append(retain *r, const void *name, size_t name_len, const void *bytes, size_t len,
                       uint64_t now);

/* Drops the messages of every log that are age_ms old at now; returns how
 * many. Cheap when none is due (one comparison). */
size_t retain_expire(retain *r, uint64_t now);

/* The last sequence number given (0: none yet). */
uint64_t retain_last_seq(const retain *r);

/* The messages of log `name` retained after message `after`, in order.
 * RETAIN_FOUND with *out (count may be 0: nothing came since), or
 * RETAIN_GONE when after is a number not given yet, or a message of this
 * log that came after it was dropped. A name with no log has had nothing
 * retained: found, empty. The range is valid until the next call that
 * changes r. */
int retain_find(retain *r, const void *name, size_t name_len, uint64_t after, retain_range *out);

/* The i-th message of a range (i < count): its number, bytes and length. */
void retain_range_get(const retain_range *range, size_t i, uint64_t *seq, const uint8_t **bytes,
                      size_t *len);

void retain_get_stats(const retain *r, retain_stats *out);

#endif
