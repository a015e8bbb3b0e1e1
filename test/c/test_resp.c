/* Unit tests for src/resp.c, through its public API.
 *
 * Every scan reads from a heap buffer of exactly the length it is given, so
 * under `make sanitize` or `make valgrind` a read past buf + len is an
 * error. The random tests encode commands (which are replies too: arrays of
 * bulks) and random replies, feed them in random cuts, and read them back;
 * they replay from the seed given as the first argument. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/resp.h"
#include "check.h"

static const resp_limits LIMITS = {1024, 4, 64};

/* Scans text (len bytes, copied into an exact allocation) in one go. */
static int scan_exact(const resp_limits *limits, const char *text, size_t len, size_t *reply_len) {
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return 99;
  memcpy(copy, text, len);
  resp_scanner s;
  resp_scanner_init(&s, limits);
  int rc = resp_scan(&s, copy, len, reply_len);
  free(copy);
  return rc;
}

static int scan_text(const char *text, size_t *reply_len) {
  return scan_exact(&LIMITS, text, strlen(text), reply_len);
}

static void test_command(void) {
  resp_arg args[3] = {{"PUBLISH", 7, NULL, 0}, {"pre:t:", 6, "room", 4}, {"", 0, "x\r\n", 3}};
  size_t size = resp_command_size(args, 3);
  uint8_t out[128];
  CHECK(size == resp_command_write(out, args, 3));
  const char *want = "*3\r\n$7\r\nPUBLISH\r\n$10\r\npre:t:room\r\n$3\r\nx\r\n\r\n";
  CHECK(size == strlen(want) && memcmp(out, want, size) == 0);
  /* No arguments, and an empty one. */
  resp_arg empty = {NULL, 0, NULL, 0};
  CHECK(resp_command_size(NULL, 0) == 4);
  CHECK(resp_command_write(out, &empty, 1) == 10 && memcmp(out, "*1\r\n$0\r\n\r\n", 10) == 0);
}

static void test_simple_types(void) {
  size_t n = 0;
  CHECK(scan_text("+OK\r\n", &n) == RESP_OK && n == 5);
  CHECK(scan_text("-ERR wrong\r\n", &n) == RESP_OK && n == 12);
  CHECK(scan_text(":-42\r\n", &n) == RESP_OK && n == 6);
  CHECK(scan_text("$3\r\nabc\r\n", &n) == RESP_OK && n == 9);
  CHECK(scan_text("$0\r\n\r\n", &n) == RESP_OK && n == 6);
  CHECK(scan_text("$-1\r\n", &n) == RESP_OK && n == 5);
  CHECK(scan_text("*-1\r\n", &n) == RESP_OK && n == 5);
  CHECK(scan_text("*0\r\n", &n) == RESP_OK && n == 4);
  /* A reply followed by the next one: only the first is measured. */
  CHECK(scan_text(":1\r\n:2\r\n", &n) == RESP_OK && n == 4);

  const char *r = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhe\r\nl\r\n";
  CHECK(scan_text(r, &n) == RESP_OK && n == strlen(r));
  resp_item it;
  size_t pos = 0;
  CHECK(resp_item_read((const uint8_t *)r, n, &pos, &it) == 0 && it.type == RESP_ARRAY &&
        it.integer == 3);
  CHECK(resp_item_read((const uint8_t *)r, n, &pos, &it) == 0 && resp_item_is(&it, "MESSAGE", 7));
  CHECK(resp_item_read((const uint8_t *)r, n, &pos, &it) == 0 && it.len == 2 &&
        memcmp(it.str, "ch", 2) == 0);
  CHECK(resp_item_read((const uint8_t *)r, n, &pos, &it) == 0 && it.len == 5 &&
        memcmp(it.str, "he\r\nl", 5) == 0);
  CHECK(pos == n && resp_item_read((const uint8_t *)r, n, &pos, &it) == -1);

  pos = 0;
  CHECK(resp_item_read((const uint8_t *)"$-1\r\n", 5, &pos, &it) == 0 && it.null && pos == 5);
  pos = 0;
  CHECK(resp_item_read((const uint8_t *)":-7\r\n", 5, &pos, &it) == 0 && it.integer == -7);
  pos = 0;
  CHECK(resp_item_read((const uint8_t *)"-WRONGPASS x\r\n", 14, &pos, &it) == 0 &&
        it.type == RESP_ERROR && it.len == 11);
}

static void test_malformed(void) {
  size_t n;
  CHECK(scan_text("?x\r\n", &n) == RESP_BAD_TYPE);
  CHECK(scan_text("HTTP/1.1 400 Bad Request\r\n", &n) == RESP_BAD_TYPE);
  CHECK(scan_text(":12a\r\n", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text(":\r\n", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text(":+1\r\n", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text(":99999999999999999999\r\n", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text(":9223372036854775808\r\n", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text(":9223372036854775807\r\n", &n) == RESP_OK);
  CHECK(scan_text("$-2\r\n", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text("*-5\r\n", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text("+OK\rX", &n) == RESP_BAD_LINE);
  CHECK(scan_text("$3\r\nabcde\r\n", &n) == RESP_BAD_LINE);
  /* A number line that never ends is not a number, however long. */
  CHECK(scan_text(":1111111111111111111111111111", &n) == RESP_BAD_NUMBER);
  CHECK(scan_text("*2\r\n:1\r\n!", &n) == RESP_BAD_TYPE);
}

static void test_limits(void) {
  size_t n;
  resp_limits small = {4, 2, 5};
  CHECK(scan_exact(&small, "$4\r\nabcd\r\n", 10, &n) == RESP_OK);
  CHECK(scan_exact(&small, "$5\r\n", 4, &n) == RESP_TOO_LONG); /* said before the bytes come */
  CHECK(scan_exact(&small, "+abcd\r\n", 7, &n) == RESP_OK);
  CHECK(scan_exact(&small, "+abcde", 6, &n) == RESP_TOO_LONG);
  CHECK(scan_exact(&small, "*1\r\n*1\r\n:1\r\n", 12, &n) == RESP_OK);
  CHECK(scan_exact(&small, "*1\r\n*1\r\n*1\r\n", 12, &n) == RESP_TOO_DEEP);
  CHECK(scan_exact(&small, "*6\r\n", 4, &n) == RESP_TOO_MANY);
  CHECK(scan_exact(&small, "*2\r\n*2\r\n:1\r\n:1\r\n*2\r\n", 20, &n) == RESP_TOO_MANY);
  resp_limits flat = {4, 0, 5};
  CHECK(scan_exact(&flat, "*0\r\n", 4, &n) == RESP_OK);
  CHECK(scan_exact(&flat, "*1\r\n", 4, &n) == RESP_TOO_DEEP);
  /* Huge declared lengths are refused, not waited for. */
  CHECK(scan_text("$9223372036854775807\r\n", &n) == RESP_TOO_LONG);
  CHECK(scan_text("*9223372036854775807\r\n", &n) == RESP_TOO_MANY);
  /* A scanner's depth is capped at RESP_MAX_DEPTH whatever it is told. */
  resp_limits deep = {4, 1000, 1000};
  char nest[4 * (RESP_MAX_DEPTH + 1) + 1];
  for (unsigned i = 0; i <= RESP_MAX_DEPTH; i++)
    memcpy(nest + 4 * i, "*1\r\n", 4);
  CHECK(scan_exact(&deep, nest, sizeof(nest) - 1, &n) == RESP_TOO_DEEP);
  for (int r = RESP_OK; r >= RESP_TOO_MANY; r--)
    CHECK(strlen(resp_strerror(r)) > 0);
}

/* Feeds bytes in random cuts, as a socket would, each scan on an exact copy
 * of what has arrived; checks that every reply is found where it ends. */
static int scan_in_cuts(const uint8_t *bytes, size_t len, const size_t *ends, size_t count,
                        uint64_t *rng) {
  resp_scanner s;
  resp_scanner_init(&s, &LIMITS);
  size_t start = 0, have = 0, found = 0;
  int bad = 0;
  while (found < count) {
    if (have < len) have += 1 + check_below(rng, 7);
    if (have > len) have = len;
    for (;;) {
      uint8_t *copy = malloc(have - start + 1);
      memcpy(copy, bytes + start, have - start);
      size_t n = 0;
      int rc = resp_scan(&s, copy, have - start, &n);
      free(copy);
      if (rc == RESP_INCOMPLETE) {
        if (have == len) return 1; /* all there, still incomplete */
        break;
      }
      if (rc != RESP_OK || start + n != ends[found]) return 1;
      start += n;
      found++;
      if (found == count) break;
    }
  }
  return bad;
}

/* A random reply appended at out (room enough), up to depth levels. */
static size_t random_reply(uint8_t *out, uint64_t *rng, int depth, size_t *elements) {
  static const char *simple[] = {"+OK\r\n", "-ERR no\r\n", ":0\r\n",    ":-12345\r\n",
                                 "$-1\r\n", "*-1\r\n",     "$0\r\n\r\n"};
  uint64_t pick = check_below(rng, 10);
  if (pick < 7) {
    size_t n = strlen(simple[pick]);
    memcpy(out, simple[pick], n);
    return n;
  }
  if (pick < 9 || depth == 0 || *elements > 40) {
    uint8_t data[40];
    size_t n = (size_t)check_below(rng, sizeof(data));
    for (size_t i = 0; i < n; i++)
      data[i] = (uint8_t)check_rand(rng);
    resp_arg a = {data, n, NULL, 0};
    uint8_t tmp[80];
    size_t w = resp_command_write(tmp, &a, 1);
    memcpy(out, tmp + 4, w - 4); /* the bulk without the array header */
    return w - 4;
  }
  size_t count = (size_t)check_below(rng, 4);
  *elements += count;
  size_t at = (size_t)sprintf((char *)out, "*%zu\r\n", count);
  for (size_t i = 0; i < count; i++)
    at += random_reply(out + at, rng, depth - 1, elements);
  return at;
}

static void test_random_streams(uint64_t *rng) {
  int bad = 0;
  uint8_t *bytes = malloc(1 << 20);
  for (int round = 0; round < 300; round++) {
    size_t ends[16], len = 0, count = 1 + (size_t)check_below(rng, 16);
    for (size_t i = 0; i < count; i++) {
      size_t elements = 0;
      len += random_reply(bytes + len, rng, 3, &elements);
      ends[i] = len;
    }
    bad += scan_in_cuts(bytes, len, ends, count, rng);
  }
  /* Commands read back: the arguments as bulks, in order. */
  for (int round = 0; round < 200; round++) {
    uint8_t data[8][32];
    resp_arg args[8];
    size_t argc = 1 + (size_t)check_below(rng, 8);
    for (size_t i = 0; i < argc; i++) {
      size_t n = (size_t)check_below(rng, 32), split = n ? (size_t)check_below(rng, n) : 0;
      for (size_t j = 0; j < n; j++)
        data[i][j] = (uint8_t)check_rand(rng);
      args[i] = (resp_arg){data[i], split, data[i] + split, n - split};
    }
    size_t size = resp_command_size(args, argc);
    if (resp_command_write(bytes, args, argc) != size) bad++;
    size_t end = size;
    bad += scan_in_cuts(bytes, size, &end, 1, rng);
    resp_item it;
    size_t pos = 0;
    if (resp_item_read(bytes, size, &pos, &it) != 0 || it.integer != (int64_t)argc) bad++;
    for (size_t i = 0; i < argc; i++) {
      if (resp_item_read(bytes, size, &pos, &it) != 0 || it.type != RESP_BULK ||
          it.len != args[i].a_len + args[i].b_len || (it.len && memcmp(it.str, data[i], it.len)))
        bad++;
    }
    if (pos != size) bad++;
  }
  free(bytes);
  CHECK(bad == 0);
}

/* Random bytes never make the scanner read out of bounds or loop; what it
 * accepts reads back item by item up to its end. */
static void test_garbage(uint64_t *rng) {
  static const char alphabet[] = "+-:$*\r\n0123456789-x";
  int bad = 0;
  for (int round = 0; round < 20000; round++) {
    size_t len = (size_t)check_below(rng, 24);
    uint8_t *buf = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
      buf[i] = (uint8_t)alphabet[check_below(rng, sizeof(alphabet) - 1)];
    resp_scanner s;
    resp_scanner_init(&s, &LIMITS);
    size_t n = 0;
    if (resp_scan(&s, buf, len, &n) == RESP_OK) {
      size_t pos = 0;
      resp_item it;
      if (n > len) bad++;
      while (pos < n)
        if (resp_item_read(buf, n, &pos, &it) != 0) {
          bad++;
          break;
        }
    }
    free(buf);
  }
  CHECK(bad == 0);
}

int main(int argc, char **argv) {
  uint64_t seed = check_seed(argc, argv, UINT64_C(20261202));
  uint64_t rng = seed;
  test_command();
  test_simple_types();
  test_malformed();
  test_limits();
  test_random_streams(&rng);
  test_garbage(&rng);
  return check_report_seeded("resp", seed);
}
