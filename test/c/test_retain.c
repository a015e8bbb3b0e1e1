/* Unit tests for src/retain.c.
 *
 * retain.c and table.c are included here (not linked) so that their
 * allocations go through check.h's failing allocator: every out-of-memory
 * path of retain_append is driven and the store compared with what it was.
 * The rest goes through the public API: order, each limit, refusals, and a
 * random run against a model of what a reader may be told. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#include "check_alloc_begin.h"

#include "../../src/retain.c"
#include "../../src/table.c"

#include "check_alloc_end.h"

#define S(lit) lit, sizeof(lit) - 1 /* a string literal as bytes and length */

static const retain_limits roomy = {1000000, 1u << 30, 1000000};

static retain_stats stats_of(const retain *r) {
  retain_stats st;
  retain_get_stats(r, &st);
  return st;
}

/* Whether the range holds exactly these numbers, each message's bytes being
 * its number as text. */
static int range_is(const retain_range *range, const uint64_t *want, size_t n) {
  if (range->count != n) return 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t seq;
    const uint8_t *bytes;
    size_t len;
    char text[32];
    retain_range_get(range, i, &seq, &bytes, &len);
    int text_len = snprintf(text, sizeof(text), "%" PRIu64, seq);
    if (seq != want[i] || len != (size_t)text_len || memcmp(bytes, text, len) != 0) return 0;
  }
  return 1;
}

/* Appends a message whose bytes are its number to come, as text. */
static uint64_t append_numbered(retain *r, const char *log, uint64_t now) {
  char text[32];
  int len = snprintf(text, sizeof(text), "%" PRIu64, retain_last_seq(r) + 1);
  return retain_append(r, log, strlen(log), text, (size_t)len, now);
}

static void test_order_and_points(void) {
  retain *r = retain_create(&roomy);
  CHECK(r != NULL);
  if (!r) return;
  retain_range range;
  CHECK(retain_last_seq(r) == 0);
  /* Nothing retained: a read from 0 finds nothing; a point not given yet
   * is refused. */
  CHECK(retain_find(r, S("a"), 0, &range) == RETAIN_FOUND && range.count == 0);
  CHECK(retain_find(r, S("a"), 1, &range) == RETAIN_GONE);

  CHECK(append_numbered(r, "a", 10) == 1);
  CHECK(append_numbered(r, "b", 11) == 2);
  CHECK(append_numbered(r, "a", 12) == 3);
  CHECK(append_numbered(r, "a", 13) == 4);
  CHECK(append_numbered(r, "b", 14) == 5);
  uint64_t a_all[] = {1, 3, 4};
  uint64_t a_after_1[] = {3, 4};
  uint64_t a_after_2[] = {3, 4}; /* a point in another log is a point in time */
  uint64_t a_after_3[] = {4};
  uint64_t b_after_1[] = {2, 5};
  CHECK(retain_find(r, S("a"), 0, &range) == RETAIN_FOUND && range_is(&range, a_all, 3));
  CHECK(retain_find(r, S("a"), 1, &range) == RETAIN_FOUND && range_is(&range, a_after_1, 2));
  CHECK(retain_find(r, S("a"), 2, &range) == RETAIN_FOUND && range_is(&range, a_after_2, 2));
  CHECK(retain_find(r, S("a"), 3, &range) == RETAIN_FOUND && range_is(&range, a_after_3, 1));
  CHECK(retain_find(r, S("a"), 5, &range) == RETAIN_FOUND && range.count == 0);
  CHECK(retain_find(r, S("b"), 1, &range) == RETAIN_FOUND && range_is(&range, b_after_1, 2));
  CHECK(retain_find(r, S("a"), 6, &range) == RETAIN_GONE);
  CHECK(retain_find(r, S("a"), UINT64_MAX, &range) == RETAIN_GONE);
  /* A log never used had nothing retained: found, empty. */
  CHECK(retain_find(r, S("c"), 3, &range) == RETAIN_FOUND && range.count == 0);
  /* Names are bytes, NUL included. */
  CHECK(retain_append(r, "a\0x", 3, "6", 1, 15) == 6);
  uint64_t odd[] = {6};
  CHECK(retain_find(r, "a\0x", 3, 0, &range) == RETAIN_FOUND && range_is(&range, odd, 1));
  CHECK(retain_find(r, S("a"), 0, &range) == RETAIN_FOUND && range_is(&range, a_all, 3));
  retain_stats st = stats_of(r);
  CHECK(st.messages == 6 && st.logs == 3 && st.dropped == 0 && st.bytes > 0);
  retain_destroy(r);
}

static void test_message_limit(void) {
  retain_limits limits = {3, 1u << 30, 1000000};
  retain *r = retain_create(&limits);
  if (!r) return;
  retain_range range;
  for (int i = 0; i < 5; i++)
    append_numbered(r, i % 2 ? "b" : "a", 0); /* a: 1 3 5, b: 2 4 */
  retain_stats st = stats_of(r);
  CHECK(st.messages == 3 && st.dropped == 2);
  /* 1 and 2 went: a read of a from before 1 is refused, from 1 on it is
   * whole; b from before 2 is refused. */
  uint64_t a_after_1[] = {3, 5};
  CHECK(retain_find(r, S("a"), 0, &range) == RETAIN_GONE);
  CHECK(retain_find(r, S("a"), 1, &range) == RETAIN_FOUND && range_is(&range, a_after_1, 2));
  CHECK(retain_find(r, S("a"), 2, &range) == RETAIN_FOUND && range_is(&range, a_after_1, 2));
  CHECK(retain_find(r, S("b"), 1, &range) == RETAIN_GONE);
  uint64_t b_after_2[] = {4};
  CHECK(retain_find(r, S("b"), 2, &range) == RETAIN_FOUND && range_is(&range, b_after_2, 1));
  retain_destroy(r);

  /* A limit of none: every message is dropped as it comes, and only a read
   * from the last point is answered. */
  retain_limits none = {0, 1u << 30, 1000000};
  r = retain_create(&none);
  if (!r) return;
  CHECK(append_numbered(r, "a", 0) == 1);
  CHECK(append_numbered(r, "a", 0) == 2);
  CHECK(stats_of(r).messages == 0 && stats_of(r).dropped == 2);
  CHECK(retain_find(r, S("a"), 1, &range) == RETAIN_GONE);
  CHECK(retain_find(r, S("a"), 2, &range) == RETAIN_FOUND && range.count == 0);
  retain_destroy(r);
}

static void test_byte_limit(void) {
  char big[1000];
  memset(big, 'x', sizeof(big));
  size_t each = retain_message_bytes(sizeof(big));
  retain_limits limits = {1000000, 3 * each, 1000000};
  retain *r = retain_create(&limits);
  if (!r) return;
  retain_range range;
  for (int i = 0; i < 5; i++)
    CHECK(retain_append(r, S("a"), big, sizeof(big), 0) == (uint64_t)i + 1);
  retain_stats st = stats_of(r);
  CHECK(st.messages == 3 && st.dropped == 2);
  CHECK(retain_find(r, S("a"), 1, &range) == RETAIN_GONE);
  CHECK(retain_find(r, S("a"), 2, &range) == RETAIN_FOUND && range.count == 3);
  /* One message over the limit alone is dropped at once, after taking the
   * others with it: a reader from before it is refused, not given a gap. */
  char *huge = malloc(4 * each);
  if (!huge) return;
  memset(huge, 'y', 4 * each);
  CHECK(retain_append(r, S("a"), huge, 4 * each, 0) == 6);
  free(huge);
  st = stats_of(r);
  CHECK(st.messages == 0 && st.dropped == 6);
  CHECK(retain_find(r, S("a"), 5, &range) == RETAIN_GONE);
  CHECK(retain_find(r, S("a"), 6, &range) == RETAIN_FOUND && range.count == 0);
  CHECK(retain_append(r, S("a"), S("7"), 0) == 7);
  uint64_t seven[] = {7};
  CHECK(retain_find(r, S("a"), 6, &range) == RETAIN_FOUND && range_is(&range, seven, 1));
  retain_destroy(r);
}

static void test_age(void) {
  retain_limits limits = {1000000, 1u << 30, 100};
  retain *r = retain_create(&limits);
  if (!r) return;
  retain_range range;
  append_numbered(r, "a", 1000); /* 1 */
  append_numbered(r, "b", 1050); /* 2 */
  append_numbered(r, "a", 1080); /* 3 */
  CHECK(retain_expire(r, 1099) == 0);
  CHECK(retain_expire(r, 1100) == 1); /* 1 is 100 ms old */
  CHECK(retain_find(r, S("a"), 0, &range) == RETAIN_GONE);
  uint64_t three[] = {3};
  CHECK(retain_find(r, S("a"), 1, &range) == RETAIN_FOUND && range_is(&range, three, 1));
  /* An append ages the others out too. */
  append_numbered(r, "c", 1180); /* 4; 2 and 3 are over 100 ms old */
  retain_stats st = stats_of(r);
  CHECK(st.messages == 1 && st.dropped == 3);
  CHECK(retain_find(r, S("b"), 1, &range) == RETAIN_GONE);
  CHECK(retain_find(r, S("a"), 3, &range) == RETAIN_FOUND && range.count == 0);
  /* A clock that went back drops nothing. */
  CHECK(retain_expire(r, 10) == 0);
  retain_destroy(r);
}

/* Rings grow and shrink as a log fills and empties; what is read stays in
 * order across both. */
static void test_ring_resizes(void) {
  retain_limits limits = {1000000, 1u << 30, 1000000};
  retain *r = retain_create(&limits);
  if (!r) return;
  retain_range range;
  for (int i = 0; i < 1000; i++)
    append_numbered(r, i % 10 ? "big" : "small", 0);
  size_t grown = stats_of(r).bytes;
  /* Now keep only the last 20 (a smaller limit: made again). */
  retain_destroy(r);
  limits.messages = 20;
  r = retain_create(&limits);
  if (!r) return;
  for (int i = 0; i < 1000; i++)
    append_numbered(r, i % 10 ? "big" : "small", 0);
  CHECK(stats_of(r).bytes < grown / 4);
  CHECK(retain_find(r, S("big"), 980, &range) == RETAIN_FOUND && range.count == 18);
  int ordered = 1;
  uint64_t prev = 980;
  for (size_t i = 0; i < range.count; i++) {
    uint64_t seq;
    const uint8_t *bytes;
    size_t len;
    retain_range_get(&range, i, &seq, &bytes, &len);
    if (seq <= prev || seq % 10 == 1) ordered = 0; /* 'small' got 1, 11, 21, ... */
    prev = seq;
  }
  CHECK(ordered);
  retain_destroy(r);
}

static void test_out_of_memory(void) {
  retain *r = retain_create(&roomy);
  if (!r) return;
  for (int i = 0; i < 20; i++)
    append_numbered(r, i % 3 ? "a" : "b", 0);
  int unchanged = 1, eventually = 0;
  for (long budget = 0; budget < 10 && !eventually; budget++) {
    retain_stats before = stats_of(r);
    uint64_t last = retain_last_seq(r);
    check_alloc_fail_after(budget);
    uint64_t seq = retain_append(r, S("new log"), S("x"), 0);
    check_alloc_fail_after(-1);
    if (seq == 0) {
      retain_stats after = stats_of(r);
      if (after.messages != before.messages || after.bytes != before.bytes ||
          after.logs != before.logs || retain_last_seq(r) != last)
        unchanged = 0;
    } else {
      eventually = seq == last + 1;
    }
  }
  CHECK(unchanged);
  CHECK(eventually);
  /* A failing append to an existing log that must grow its ring. */
  int failed_clean = 1;
  for (int i = 0; i < 40; i++) {
    retain_stats before = stats_of(r);
    check_alloc_fail_after(1); /* the message, not the ring */
    uint64_t seq = append_numbered(r, "a", 0);
    check_alloc_fail_after(-1);
    if (seq == 0 && stats_of(r).messages != before.messages) failed_clean = 0;
  }
  CHECK(failed_clean);
  retain_range range;
  CHECK(retain_find(r, S("a"), 0, &range) == RETAIN_FOUND);
  retain_destroy(r);
  check_alloc_fail_after(0);
  CHECK(retain_create(&roomy) == NULL);
  check_alloc_fail_after(1);
  CHECK(retain_create(&roomy) == NULL);
  check_alloc_fail_after(-1);
}

/* Random appends, ages and reads against a model that keeps every message
 * ever appended with whether it is still held. */
static void test_random_against_model(uint64_t seed) {
  enum { LOGS = 4, MAX = 4000 };
  static uint64_t time_of[MAX + 1];
  static int log_of[MAX + 1];
  static int held[MAX + 1];
  retain_limits limits = {50, 64 * 40 + 2000, 300};
  retain *r = retain_create(&limits);
  if (!r) return;
  uint64_t state = seed, now = 0, last = 0;
  const char *names[LOGS] = {"w", "x", "y", "z"};
  int mismatches = 0;
  for (int step = 0; step < 20000 && last < MAX; step++) {
    uint64_t what = check_below(&state, 10);
    if (what < 5) {
      int l = (int)check_below(&state, LOGS);
      char bytes[200];
      size_t len = check_below(&state, sizeof(bytes));
      memset(bytes, 'a' + l, len);
      uint64_t seq = retain_append(r, names[l], 1, bytes, len, now);
      if (seq != last + 1) mismatches++;
      last = seq;
      time_of[seq] = now;
      log_of[seq] = l;
      held[seq] = 1;
    } else if (what < 7) {
      now += check_below(&state, 40);
      retain_expire(r, now);
    } else {
      int l = (int)check_below(&state, LOGS);
      uint64_t after = check_below(&state, last + 2);
      retain_range range;
      int rc = retain_find(r, names[l], 1, after, &range);
      /* The model: refused for a point not given, or when a message of
       * this log after the point is no longer held; else exactly the
       * held ones after it, in order. */
      int want_gone = after > last;
      size_t want_count = 0;
      for (uint64_t s = after + 1; s <= last && !want_gone; s++) {
        if (log_of[s] != l) continue;
        if (!held[s])
          want_gone = 1;
        else
          want_count++;
      }
      if (want_gone != (rc == RETAIN_GONE)) mismatches++;
      if (!want_gone && rc == RETAIN_FOUND) {
        if (range.count != want_count) mismatches++;
        uint64_t s = after;
        for (size_t i = 0; i < range.count && i < want_count; i++) {
          uint64_t seq;
          const uint8_t *bytes;
          size_t len;
          retain_range_get(&range, i, &seq, &bytes, &len);
          while (log_of[++s] != l) {
          }
          if (seq != s || (len > 0 && bytes[0] != 'a' + l)) mismatches++;
        }
      }
    }
    /* The model learns what went: whatever the store no longer holds is
     * its oldest, so count down from the newest. */
    retain_stats st = stats_of(r);
    size_t kept = 0;
    for (uint64_t s = last; s >= 1; s--) {
      if (!held[s]) break;
      if (kept < st.messages)
        kept++;
      else
        held[s] = 0;
    }
    if (st.messages > limits.messages) mismatches++;
    for (uint64_t s = 1; s <= last; s++)
      if (held[s] && now - time_of[s] >= limits.age_ms && now >= time_of[s]) mismatches++;
  }
  CHECK(mismatches == 0);
  if (mismatches) fprintf(stderr, "retain: seed %" PRIu64 ": %d mismatches\n", seed, mismatches);
  retain_destroy(r);
}

int main(int argc, char **argv) {
  uint64_t seed = check_seed(argc, argv, UINT64_C(20261202));
  test_order_and_points();
  test_message_limit();
  test_byte_limit();
  test_age();
  test_ring_resizes();
  test_out_of_memory();
  test_random_against_model(seed);
  return check_report("retain");
}
