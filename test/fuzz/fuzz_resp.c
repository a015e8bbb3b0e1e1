/* libFuzzer target: the RESP2 scanner and item reader (src/resp.c), and
 * the records inside the uplink's messages (src/uplink_wire.c), on
 * arbitrary bytes.
 *
 * The first byte picks the limits and how the input is cut; the rest is
 * fed as a socket would deliver it, in pieces, each scan on an exact copy
 * of what has arrived (so a read past it is caught). Checked: a reply is
 * only ever found inside what has arrived; scanning all of it at once
 * finds the same replies; every accepted reply reads back item by item to
 * exactly its end, with each bulk inside it and each array's elements
 * counted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "uplink_wire.h"

/* Reads one item and its elements; the position after them, or -1. */
static long fuzz_walk(const uint8_t *reply, size_t len, size_t pos, int depth) {
  resp_item it;
  if (depth > (int)RESP_MAX_DEPTH + 1 || resp_item_read(reply, len, &pos, &it) != 0) return -1;
  if ((it.type == RESP_BULK || it.type == RESP_SIMPLE || it.type == RESP_ERROR) && it.str &&
      (it.str < reply || it.str + it.len > reply + len))
    abort();
  if (it.type == RESP_ARRAY)
    for (int64_t i = 0; i < it.integer; i++) {
      long next = fuzz_walk(reply, len, pos, depth + 1);
      if (next < 0) return -1;
      pos = (size_t)next;
    }
  return (long)pos;
}

/* Scans data in pieces of `step` bytes; fills ends with where each reply
 * ends (at most max_ends) and returns how many, or -1 after an error. */
static long fuzz_scan(const resp_limits *limits, const uint8_t *data, size_t size, size_t step,
                      size_t *ends, size_t max_ends) {
  resp_scanner s;
  resp_scanner_init(&s, limits);
  size_t start = 0, have = 0, count = 0;
  while (count < max_ends) {
    if (have == size) return (long)count;
    have = size - have > step ? have + step : size;
    for (;;) {
      uint8_t *copy = malloc(have - start + 1);
      if (!copy) abort();
      memcpy(copy, data + start, have - start);
      size_t n = 0;
      int rc = resp_scan(&s, copy, have - start, &n);
      if (rc == RESP_OK) {
        if (n == 0 || n > have - start) abort();
        if (fuzz_walk(copy, n, 0, 0) != (long)n) abort();
      }
      free(copy);
      if (rc == RESP_INCOMPLETE) break;
      if (rc != RESP_OK) return -1;
      start += n;
      ends[count++] = start;
      if (count == max_ends) break;
    }
  }
  return (long)count;
}

/* The uplink's records from every start: inside the input, and ending. */
static void fuzz_records(const uint8_t *data, size_t size) {
  for (size_t from = 0; from <= size && from < 16; from++) {
    size_t at = from, last = from;
    const uint8_t *b;
    uint32_t n;
    int rc;
    while ((rc = uplink_wire_record(data, size, &at, &b, &n)) == 1) {
      if (b < data || b + n > data + size || at <= last || at > size) abort();
      last = at;
    }
    if (rc != 0 && rc != -1) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_records(data, size);
  if (size < 1) return 0;
  uint8_t control = data[0];
  data++;
  size--;
  resp_limits limits = {(size_t)16 << (control & 7), (uint32_t)((control >> 3) & 7),
                        (size_t)4 << ((control >> 6) & 3)};
  size_t step = 1 + (control % 13);
  size_t piecewise[64], whole[64];
  long a = fuzz_scan(&limits, data, size, step, piecewise, 64);
  long b = fuzz_scan(&limits, data, size, size ? size : 1, whole, 64);
  /* Cutting the input differently finds the same replies. */
  if ((a < 0) != (b < 0)) abort();
  if (a >= 0 && (a != b || memcmp(piecewise, whole, (size_t)a * sizeof(size_t)) != 0)) abort();
  return 0;
}
