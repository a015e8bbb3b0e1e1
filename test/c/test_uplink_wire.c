/* Unit tests for src/uplink_wire.c: records, control messages and topic
 * messages, as written and as anyone could send them. Each read is on an
 * exact-length heap copy, so make sanitize catches a read past the end. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/uplink_wire.h"
#include "check.h"

/* Reads every record of bytes[from..len) from an exact copy: how many
 * whole ones, and the last result (0 end, -1 malformed). */
static int read_all(const uint8_t *bytes, size_t len, size_t from, size_t *count, uint32_t *lens) {
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, bytes, len);
  size_t at = from;
  const uint8_t *b;
  uint32_t n;
  int rc;
  *count = 0;
  while ((rc = uplink_wire_record(copy, len, &at, &b, &n)) == 1) {
    if (b < copy || b + n > copy + len) rc = 99;
    if (lens) lens[*count] = n;
    (*count)++;
    if (rc == 99) break;
  }
  free(copy);
  return rc;
}

static void test_records(void) {
  uint8_t buf[64];
  size_t len = 0, count;
  uint32_t lens[8];
  const char *names[] = {"room", "", "dispatch:abc"};
  for (int i = 0; i < 3; i++) {
    uint32_t n = (uint32_t)strlen(names[i]);
    uplink_wire_record_head(buf + len, n);
    memcpy(buf + len + UPLINK_WIRE_RECORD_HEAD, names[i], n);
    len += UPLINK_WIRE_RECORD_HEAD + n;
  }
  CHECK(read_all(buf, len, 0, &count, lens) == 0 && count == 3);
  CHECK(lens[0] == 4 && lens[1] == 0 && lens[2] == 12);
  /* Cut anywhere inside the last record: the whole ones, then malformed. */
  int bad = 0;
  for (size_t cut = len - 12 - UPLINK_WIRE_RECORD_HEAD + 1; cut < len; cut++)
    if (read_all(buf, cut, 0, &count, NULL) != -1 || count != 2) bad++;
  CHECK(bad == 0);
  /* A length past the end, and the largest length there is. */
  uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
  CHECK(read_all(huge, sizeof(huge), 0, &count, NULL) == -1 && count == 0);
  uint8_t over[8] = {5, 0, 0, 0, 1, 2, 3, 4};
  CHECK(read_all(over, sizeof(over), 0, &count, NULL) == -1 && count == 0);
  CHECK(read_all(over, 0, 0, &count, NULL) == 0 && count == 0);
}

static void test_messages(void) {
  uint8_t msg[16] = {1, 2, 3, 4, 5, 6, 7, 8, '+', 0, 0, 0, 0};
  const uint8_t *origin;
  uint8_t op;
  size_t at;
  CHECK(uplink_wire_control(msg, 9, &origin, &op, &at) == 0 && origin == msg && op == '+' &&
        at == 9);
  CHECK(uplink_wire_control(msg, 8, &origin, &op, &at) == -1);
  CHECK(uplink_wire_message(msg, 8, &origin, &at) == 0 && at == 8);
  CHECK(uplink_wire_message(msg, 7, &origin, &at) == -1);
  size_t count;
  CHECK(read_all(msg, 13, 9, &count, NULL) == 0 && count == 1); /* one empty name */
}

/* Random bytes: never a read out of bounds, and always an end. */
static void test_garbage(uint64_t *rng) {
  int bad = 0;
  for (int round = 0; round < 20000; round++) {
    uint8_t buf[40];
    size_t len = (size_t)check_below(rng, sizeof(buf));
    for (size_t i = 0; i < len; i++)
      buf[i] = (uint8_t)(check_below(rng, 4) ? check_below(rng, 6) : check_rand(rng));
    size_t count;
    int rc = read_all(buf, len, 0, &count, NULL);
    if (rc != 0 && rc != -1) bad++;
    if (count > len / UPLINK_WIRE_RECORD_HEAD) bad++;
  }
  CHECK(bad == 0);
}

/* Items of a note written back to back, read from an exact copy: every
 * field as written; cut anywhere inside the last, the whole ones then -1. */
static void test_notes(void) {
  uplink_wire_item items[3] = {
      {7, 6, (const uint8_t *)"client-a", (const uint8_t *)"key", (const uint8_t *)"value", 8, 3,
       5},
      {0xfffffffeu, 12, (const uint8_t *)"", (const uint8_t *)"", (const uint8_t *)"", 0, 0, 0},
      {1, UPLINK_WIRE_NOT_OWNER, (const uint8_t *)"c", (const uint8_t *)"why", (const uint8_t *)"",
       1, 3, 0}};
  uint8_t ops[2] = {UPLINK_WIRE_REQUEST, UPLINK_WIRE_ANSWER};
  int bad = 0;
  for (int o = 0; o < 2; o++) {
    uint8_t op = ops[o];
    uint8_t buf[256];
    size_t len = 0, last = 0;
    for (int i = 0; i < 3; i++) {
      size_t size = uplink_wire_item_size(op, items[i].a_len, items[i].b_len, items[i].c_len);
      last = len;
      if (uplink_wire_item_write(buf + len, op, &items[i]) != size) bad++;
      len += size;
    }
    for (size_t cut = last + 1; cut <= len; cut++) {
      uint8_t *copy = malloc(cut ? cut : 1);
      memcpy(copy, buf, cut);
      size_t at = 0;
      uplink_wire_item item;
      int rc, n = 0;
      while ((rc = uplink_wire_item_read(copy, cut, op, &at, &item)) == 1) {
        const uplink_wire_item *w = &items[n];
        if (item.id != w->id || item.type != w->type || item.a_len != w->a_len ||
            memcmp(item.a, w->a, w->a_len) != 0 || item.b_len != w->b_len ||
            memcmp(item.b, w->b, w->b_len) != 0)
          bad++;
        if (op == UPLINK_WIRE_REQUEST &&
            (item.c_len != w->c_len || memcmp(item.c, w->c, w->c_len) != 0))
          bad++;
        if (op == UPLINK_WIRE_ANSWER && (item.c != NULL || item.c_len != 0)) bad++;
        n++;
      }
      if (cut == len ? (rc != 0 || n != 3) : (rc != -1 || n != 2)) bad++;
      free(copy);
    }
  }
  CHECK(bad == 0);
  CHECK(uplink_wire_item_size(UPLINK_WIRE_ANSWER, 1, 2, 99) == 4 + 1 + 8 + 3);
  CHECK(uplink_wire_item_size(UPLINK_WIRE_REQUEST, 1, 2, 3) == 4 + 1 + 12 + 6);
}

/* Random bytes as notes: never a read out of bounds, always an end. */
static void test_note_garbage(uint64_t *rng) {
  int bad = 0;
  for (int round = 0; round < 20000; round++) {
    uint8_t buf[48];
    size_t len = (size_t)check_below(rng, sizeof(buf));
    for (size_t i = 0; i < len; i++)
      buf[i] = (uint8_t)(check_below(rng, 4) ? check_below(rng, 6) : check_rand(rng));
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    uint8_t op = check_below(rng, 2) ? UPLINK_WIRE_REQUEST : UPLINK_WIRE_ANSWER;
    size_t at = 0;
    uplink_wire_item item;
    int rc, n = 0;
    while ((rc = uplink_wire_item_read(copy, len, op, &at, &item)) == 1) {
      if (item.a < copy || item.a + item.a_len > copy + len || item.b < copy ||
          item.b + item.b_len > copy + len || (item.c && item.c + item.c_len > copy + len))
        bad++;
      if (++n > 64) break;
    }
    if (rc != 0 && rc != -1) bad++;
    free(copy);
  }
  CHECK(bad == 0);
}

int main(int argc, char **argv) {
  uint64_t seed = check_seed(argc, argv, UINT64_C(20261202));
  uint64_t rng = seed;
  test_records();
  test_messages();
  test_garbage(&rng);
  test_notes();
  test_note_garbage(&rng);
  return check_report_seeded("uplink_wire", seed);
}
