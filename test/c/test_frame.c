/* Unit tests for src/frame.c, through its public API.
 *
 * Every decode reads from a heap buffer of exactly the length it is given,
 * so under `make sanitize` or `make valgrind` a read past buf + len is an
 * error, not luck. Random tests replay from the seed given as the first
 * argument. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/frame.h"
#include "check.h"

/* A copy of bytes in an allocation of exactly len bytes (at least 1, so
 * malloc(0) never muddies a test). decode_exact frees it before returning,
 * so only its return code may be looked at, not the frame's pointers. */
static uint8_t *exact_copy(const uint8_t *bytes, size_t len) {
  uint8_t *p = malloc(len ? len : 1);
  if (p && len) memcpy(p, bytes, len);
  return p;
}

static int decode_exact(const uint8_t *bytes, size_t len, uint32_t max_size, frame *out) {
  uint8_t *copy = exact_copy(bytes, len);
  if (!copy) return 99;
  int rc = frame_decode(copy, len, max_size, out);
  free(copy);
  return rc;
}

/* A bare header, for frames the encoder would never write. */
static void raw_header(uint8_t *dst, uint32_t size, uint8_t type, uint8_t status, uint32_t a_len,
                       uint32_t b_len) {
  memset(dst, 0, FRAME_HEADER_SIZE);
  frame_store_u32(dst, size);
  dst[4] = type;
  dst[5] = status;
  frame_store_u32(dst + 16, a_len);
  frame_store_u32(dst + 20, b_len);
}

static void test_little_endian(void) {
  uint8_t b[8];
  frame_store_u32(b, 0x04030201u);
  CHECK(b[0] == 1 && b[1] == 2 && b[2] == 3 && b[3] == 4);
  CHECK(frame_load_u32(b) == 0x04030201u);
  frame_store_u64(b, UINT64_C(0x0807060504030201));
  CHECK(b[0] == 1 && b[4] == 5 && b[7] == 8);
  CHECK(frame_load_u64(b) == UINT64_C(0x0807060504030201));
  frame_store_u32(b, UINT32_MAX);
  CHECK(frame_load_u32(b) == UINT32_MAX);
}

static void test_size(void) {
  CHECK(frame_size(0, 0, 0) == FRAME_HEADER_SIZE);
  CHECK(frame_size(1, 2, 3) == FRAME_HEADER_SIZE + 6);
  CHECK(frame_size(UINT32_MAX - FRAME_HEADER_SIZE, 0, 0) == UINT32_MAX);
  CHECK(frame_size(UINT32_MAX - FRAME_HEADER_SIZE, 1, 0) == 0);
  CHECK(frame_size(0, 0, UINT32_MAX) == 0);
  CHECK(frame_size(UINT32_MAX / 2, UINT32_MAX / 2, UINT32_MAX / 2) == 0);
  CHECK(frame_size(SIZE_MAX, 0, 0) == 0);
  CHECK(frame_size(0, SIZE_MAX, 0) == 0);
  CHECK(frame_size(0, 0, SIZE_MAX) == 0);
}

static void test_round_trip(uint64_t *rng) {
  size_t wrong = 0;
  for (int round = 0; round < 2000; round++) {
    uint8_t a[300], b[300], payload[600];
    size_t a_len = (size_t)check_below(rng, sizeof(a));
    size_t b_len = round % 3 ? (size_t)check_below(rng, sizeof(b)) : 0;
    size_t payload_len = round % 5 ? (size_t)check_below(rng, sizeof(payload)) : 0;
    for (size_t i = 0; i < a_len; i++)
      a[i] = (uint8_t)check_rand(rng);
    for (size_t i = 0; i < b_len; i++)
      b[i] = (uint8_t)check_rand(rng);
    for (size_t i = 0; i < payload_len; i++)
      payload[i] = (uint8_t)check_rand(rng);
    uint8_t type = (uint8_t)(1 + check_below(rng, FRAME_TYPE_MAX));
    uint8_t status = (uint8_t)check_below(rng, FRAME_STATUS_MAX + 1);
    uint32_t endpoint = (uint32_t)check_rand(rng), request_id = (uint32_t)check_rand(rng);

    uint32_t size = frame_size(a_len, b_len, payload_len);
    uint8_t *buf = malloc(size);
    if (!buf) {
      wrong++;
      continue;
    }
    uint32_t written = frame_encode(buf, type, status, endpoint, request_id, a_len ? a : NULL,
                                    a_len, b_len ? b : NULL, b_len, payload, payload_len);
    frame f;
    int rc = frame_decode(buf, size, FRAME_DEFAULT_MAX_SIZE, &f);
    if (written != size || rc != FRAME_OK || f.size != size) wrong++;
    if (rc == FRAME_OK) {
      if (f.type != type || f.status != status || f.flags != 0 || f.endpoint != endpoint ||
          f.request_id != request_id)
        wrong++;
      if (f.a_len != a_len || f.b_len != b_len || f.payload_len != payload_len) wrong++;
      if (f.a != buf + FRAME_HEADER_SIZE || f.b != f.a + a_len || f.payload != f.b + b_len) wrong++;
      if ((a_len && memcmp(f.a, a, a_len)) || (b_len && memcmp(f.b, b, b_len)) ||
          (payload_len && memcmp(f.payload, payload, payload_len)))
        wrong++;
    }

    /* frame_write_header writes the same header as frame_encode. */
    uint8_t header[FRAME_HEADER_SIZE];
    if (frame_write_header(header, type, status, endpoint, request_id, a_len, b_len, payload_len) !=
            size ||
        memcmp(header, buf, FRAME_HEADER_SIZE) != 0)
      wrong++;
    free(buf);
  }
  CHECK(wrong == 0);
}

static void test_partial(void) {
  uint8_t buf[FRAME_HEADER_SIZE + 16];
  uint32_t size = frame_encode(buf, FRAME_KV_SET, 0, 7, 9, "ns", 2, "key", 3, "value...", 8);
  CHECK(size == FRAME_HEADER_SIZE + 13);
  size_t wrong = 0;
  frame f;
  /* Every prefix is incomplete, never an error, never a read past it. */
  for (size_t len = 0; len < size; len++)
    if (decode_exact(buf, len, FRAME_DEFAULT_MAX_SIZE, &f) != FRAME_INCOMPLETE) wrong++;
  CHECK(wrong == 0);
  CHECK(decode_exact(buf, size, FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_OK);

  /* Bytes after the frame are left for the next decode. */
  memset(buf + size, 0xee, sizeof(buf) - size);
  CHECK(frame_decode(buf, sizeof(buf), FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_OK);
  CHECK(f.size == size && f.payload_len == 8 && memcmp(f.payload, "value...", 8) == 0);
}

static void test_stream(void) {
  uint8_t buf[256];
  size_t len = 0;
  len += frame_encode(buf + len, FRAME_SUBSCRIBE, 0, 1, 1, "room", 4, NULL, 0, NULL, 0);
  len += frame_encode(buf + len, FRAME_PUBLISH, 0, 1, 0, "room", 4, NULL, 0, "hi", 2);
  len += frame_encode(buf + len, FRAME_SYNC, 0, 0, 2, NULL, 0, NULL, 0, NULL, 0);
  /* Half of a fourth one. */
  uint8_t last[64];
  uint32_t last_size = frame_encode(last, FRAME_KV_GET, 0, 3, 4, "c", 1, "k", 1, NULL, 0);
  memcpy(buf + len, last, last_size / 2);
  len += last_size / 2;

  uint8_t *copy = exact_copy(buf, len);
  CHECK(copy != NULL);
  if (!copy) return;
  static const uint8_t types[] = {FRAME_SUBSCRIBE, FRAME_PUBLISH, FRAME_SYNC};
  size_t at = 0, seen = 0, wrong = 0;
  frame f;
  int rc;
  while ((rc = frame_decode(copy + at, len - at, FRAME_DEFAULT_MAX_SIZE, &f)) == FRAME_OK) {
    if (seen >= 3 || f.type != types[seen]) wrong++;
    at += f.size;
    seen++;
  }
  CHECK(rc == FRAME_INCOMPLETE);
  CHECK(seen == 3 && wrong == 0);
  CHECK(len - at == last_size / 2);
  free(copy);
}

static void test_too_large(void) {
  uint8_t buf[FRAME_HEADER_SIZE + 8];
  frame f;
  uint32_t max = FRAME_HEADER_SIZE + 8;
  uint32_t size = frame_encode(buf, FRAME_PUBLISH, 0, 0, 0, "c", 1, NULL, 0, "1234567", 7);
  CHECK(size == max);
  CHECK(decode_exact(buf, size, max, &f) == FRAME_OK);
  CHECK(decode_exact(buf, size, max - 1, &f) == FRAME_TOO_LARGE);

  /* Refused from the length alone, before the rest has arrived. */
  uint8_t head[4];
  frame_store_u32(head, FRAME_DEFAULT_MAX_SIZE + 1);
  CHECK(decode_exact(head, 4, FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_TOO_LARGE);
  frame_store_u32(head, UINT32_MAX);
  CHECK(decode_exact(head, 4, FRAME_LIMIT_MAX_SIZE, &f) == FRAME_TOO_LARGE);
  CHECK(decode_exact(head, 3, FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_INCOMPLETE);
  /* At the maximum exactly: only incomplete. */
  frame_store_u32(head, FRAME_DEFAULT_MAX_SIZE);
  CHECK(decode_exact(head, 4, FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_INCOMPLETE);
}

static void test_malformed(void) {
  uint8_t h[FRAME_HEADER_SIZE + 8];
  frame f;
  const uint32_t max = FRAME_DEFAULT_MAX_SIZE;

  /* Shorter than its own header: known from the first four bytes. */
  raw_header(h, 0, FRAME_PUBLISH, 0, 0, 0);
  CHECK(decode_exact(h, 4, max, &f) == FRAME_MALFORMED);
  raw_header(h, FRAME_HEADER_SIZE - 1, FRAME_PUBLISH, 0, 0, 0);
  CHECK(decode_exact(h, 4, max, &f) == FRAME_MALFORMED);
  CHECK(decode_exact(h, FRAME_HEADER_SIZE, max, &f) == FRAME_MALFORMED);

  /* Unknown types and statuses: known once the header is in, before the
   * body (here 8 bytes that never come). */
  static const uint8_t bad_types[] = {0, FRAME_TYPE_MAX + 1, 0xff};
  for (size_t i = 0; i < sizeof(bad_types); i++) {
    raw_header(h, FRAME_HEADER_SIZE + 8, bad_types[i], 0, 0, 0);
    CHECK(decode_exact(h, FRAME_HEADER_SIZE, max, &f) == FRAME_MALFORMED);
  }
  raw_header(h, FRAME_HEADER_SIZE + 8, FRAME_REPLY, FRAME_STATUS_MAX + 1, 0, 0);
  CHECK(decode_exact(h, FRAME_HEADER_SIZE, max, &f) == FRAME_MALFORMED);
  raw_header(h, FRAME_HEADER_SIZE + 8, FRAME_REPLY, FRAME_STATUS_MAX, 0, 0);
  CHECK(decode_exact(h, FRAME_HEADER_SIZE, max, &f) == FRAME_INCOMPLETE);

  /* Field lengths that do not fit the frame, including ones that would wrap
   * a 32-bit sum. */
  static const uint32_t bad_lengths[][2] = {
      {9, 0}, {0, 9}, {5, 4}, {UINT32_MAX, 0}, {0, UINT32_MAX}, {UINT32_MAX, 9}, {8, UINT32_MAX}};
  for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(bad_lengths[0]); i++) {
    raw_header(h, FRAME_HEADER_SIZE + 8, FRAME_KV_SET, 0, bad_lengths[i][0], bad_lengths[i][1]);
    memset(h + FRAME_HEADER_SIZE, 'x', 8);
    CHECK(decode_exact(h, FRAME_HEADER_SIZE, max, &f) == FRAME_MALFORMED);
    CHECK(decode_exact(h, sizeof(h), max, &f) == FRAME_MALFORMED);
  }

  /* The fields may fill the frame exactly, leaving an empty payload. */
  raw_header(h, FRAME_HEADER_SIZE + 8, FRAME_KV_SET, 0, 5, 3);
  CHECK(decode_exact(h, sizeof(h), max, &f) == FRAME_OK);
  CHECK(f.a_len == 5 && f.b_len == 3 && f.payload_len == 0);
}

static void test_flags(void) {
  uint8_t buf[FRAME_HEADER_SIZE];
  frame f;
  frame_encode(buf, FRAME_SYNC, 0, 0, 5, NULL, 0, NULL, 0, NULL, 0);
  CHECK(decode_exact(buf, sizeof(buf), FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_OK);
  CHECK(f.flags == 0);
  /* The encoder leaves flags at 0; a sender that wants one sets the bytes. */
  buf[6] = FRAME_FLAG_BARRIER;
  buf[7] = 0x80;
  CHECK(decode_exact(buf, sizeof(buf), FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_OK);
  CHECK(f.flags == (FRAME_FLAG_BARRIER | 0x8000));
}

static void test_hello(void) {
  uint8_t payload[FRAME_HELLO_PAYLOAD_SIZE];
  uint32_t version = 0, max = 0;
  frame_hello_write(payload, FRAME_DEFAULT_MAX_SIZE);
  CHECK(memcmp(payload, FRAME_MAGIC, 4) == 0);
  CHECK(frame_hello_parse(payload, sizeof(payload), &version, &max) == 0);
  CHECK(version == FRAME_VERSION && max == FRAME_DEFAULT_MAX_SIZE);

  /* Inside a whole HELLO frame, as it travels. */
  uint8_t buf[FRAME_HEADER_SIZE + FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(payload, FRAME_MIN_MAX_SIZE);
  uint32_t size =
      frame_encode(buf, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, payload, sizeof(payload));
  frame f;
  CHECK(size == sizeof(buf));
  CHECK(frame_decode(buf, size, FRAME_MIN_MAX_SIZE, &f) == FRAME_OK);
  CHECK(f.type == FRAME_HELLO);
  CHECK(frame_hello_parse(f.payload, f.payload_len, &version, &max) == 0);
  CHECK(version == FRAME_VERSION && max == FRAME_MIN_MAX_SIZE);

  /* Too short, or not ours. */
  uint8_t *copy = exact_copy(payload, sizeof(payload) - 1);
  CHECK(copy != NULL);
  if (copy) {
    CHECK(frame_hello_parse(copy, sizeof(payload) - 1, &version, &max) == -1);
    free(copy);
  }
  CHECK(frame_hello_parse(payload, 0, &version, &max) == -1);
  payload[0] ^= 0x20;
  CHECK(frame_hello_parse(payload, sizeof(payload), &version, &max) == -1);
  CHECK(frame_hello_parse((const uint8_t *)"HTTP/1.1 200", 12, &version, &max) == -1);
}

/* Random bytes, mostly plausible headers: decode must stay inside the buffer
 * and anything it accepts must be self-consistent. */
static void test_garbage(uint64_t *rng) {
  size_t wrong = 0;
  for (int round = 0; round < 20000; round++) {
    size_t len = (size_t)check_below(rng, 80);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
      wrong++;
      continue;
    }
    for (size_t i = 0; i < len; i++)
      buf[i] = (uint8_t)check_rand(rng);
    if (len >= 4 && round % 2) frame_store_u32(buf, (uint32_t)check_below(rng, 96));
    if (len >= 6 && round % 4 == 1) {
      buf[4] = (uint8_t)(1 + check_below(rng, FRAME_TYPE_MAX));
      buf[5] = 0;
    }
    if (len >= 24 && round % 8 == 1) {
      frame_store_u32(buf + 16, (uint32_t)check_below(rng, 40));
      frame_store_u32(buf + 20, (uint32_t)check_below(rng, 40));
    }
    uint32_t max = (uint32_t)(FRAME_HEADER_SIZE + check_below(rng, 80));
    frame f;
    int rc = frame_decode(buf, len, max, &f);
    if (rc == FRAME_OK) {
      if (f.size > len || f.size > max || f.size < FRAME_HEADER_SIZE) wrong++;
      if ((uint64_t)f.a_len + f.b_len + f.payload_len + FRAME_HEADER_SIZE != f.size) wrong++;
      if (f.type == 0 || f.type > FRAME_TYPE_MAX || f.status > FRAME_STATUS_MAX) wrong++;
      if (f.payload + f.payload_len != buf + f.size) wrong++;
    } else if (rc != FRAME_INCOMPLETE && rc != FRAME_TOO_LARGE && rc != FRAME_MALFORMED) {
      wrong++;
    }
    free(buf);
  }
  CHECK(wrong == 0);
}

int main(int argc, char **argv) {
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : UINT64_C(20240601);
  uint64_t rng = seed;
  test_little_endian();
  test_size();
  test_round_trip(&rng);
  test_partial();
  test_stream();
  test_too_large();
  test_malformed();
  test_flags();
  test_hello();
  test_garbage(&rng);
  if (check_failed) fprintf(stderr, "frame: random seed %" PRIu64 "\n", seed);
  return check_report("frame");
}
