/* check: the smallest test harness that does the job.
 *
 * CHECK(cond) counts a pass or prints file:line and the failed expression and
 * counts a failure, then carries on, so one run shows every failure. Loops
 * over many items should count their own mismatches and CHECK the total
 * once, which keeps the report readable. check_report prints the one line the
 * Makefile and CI read ("table: 12 passed, 0 failed") and gives the exit
 * status. check_rand is a seeded PRNG so random tests replay exactly, from
 * check_seed (the seed a run was given); check_report_seeded says it.
 *
 * check_malloc and friends stand in for the allocator of a module under test
 * (a test includes the module's .c between check_alloc_begin.h and
 * check_alloc_end.h), so out-of-memory paths can be driven on purpose:
 * check_alloc_fail_after(n) lets n more allocations through, then fails every
 * one until check_alloc_fail_after(-1). */
#ifndef CLUSTER_STORE_TEST_CHECK_H
#define CLUSTER_STORE_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long check_passed;
static unsigned long check_failed;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (cond) {                                                                                    \
      check_passed++;                                                                              \
    } else {                                                                                       \
      check_failed++;                                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

static inline int check_report(const char *name) {
  printf("%s: %lu passed, %lu failed\n", name, check_passed, check_failed);
  fflush(stdout);
  return check_failed ? 1 : 0;
}

/* The seed random tests start from: the first argument when one is given
 * (to replay a run), fallback otherwise. */
static inline uint64_t check_seed(int argc, char **argv, uint64_t fallback) {
  return argc > 1 ? strtoull(argv[1], NULL, 0) : fallback;
}

/* check_report for a test with random parts: when anything failed, it
 * says first which seed replays the run. */
static inline int check_report_seeded(const char *name, uint64_t seed) {
  if (check_failed) fprintf(stderr, "%s: random seed %llu\n", name, (unsigned long long)seed);
  return check_report(name);
}

/* splitmix64: tiny, fast, and good enough to drive random operations. */
static inline uint64_t check_rand(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Uniform enough in [0, n) for tests; n must not be 0. */
static inline uint64_t check_below(uint64_t *state, uint64_t n) {
  return check_rand(state) % n;
}

static long check_alloc_budget = -1; /* allocations left before failing; -1: no limit */

static inline void check_alloc_fail_after(long n) {
  check_alloc_budget = n;
}

static inline int check_alloc_refused(void) {
  if (check_alloc_budget < 0) return 0;
  if (check_alloc_budget == 0) return 1;
  check_alloc_budget--;
  return 0;
}

static inline void *check_malloc(size_t n) {
  return check_alloc_refused() ? NULL : malloc(n);
}

static inline void *check_calloc(size_t n, size_t size) {
  return check_alloc_refused() ? NULL : calloc(n, size);
}

static inline void *check_realloc(void *p, size_t n) {
  return check_alloc_refused() ? NULL : realloc(p, n);
}

#endif
