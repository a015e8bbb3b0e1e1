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
#include "../../src/shm.h"
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
    if (frame_write_header(header, type, status, 0, endpoint, request_id, a_len, b_len,
                           payload_len) != size ||
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
  /* frame_encode leaves flags at 0; frame_write_header writes any, both bytes. */
  uint16_t flags = FRAME_FLAG_BARRIER | 0x8000;
  CHECK(frame_write_header(buf, FRAME_SYNC, 0, flags, 0, 5, 0, 0, 0) == FRAME_HEADER_SIZE);
  CHECK(decode_exact(buf, sizeof(buf), FRAME_DEFAULT_MAX_SIZE, &f) == FRAME_OK);
  CHECK(f.flags == flags && f.type == FRAME_SYNC && f.request_id == 5);
  frame_header h;
  frame_header_read(buf, &h);
  CHECK(h.size == FRAME_HEADER_SIZE && h.type == FRAME_SYNC && h.flags == flags);
  CHECK(h.request_id == 5 && h.a_len == 0 && h.b_len == 0);
  CHECK(frame_header_size(buf) == FRAME_HEADER_SIZE);
}

/* The header of a frame frame_decode refuses as too large still reads. */
static void test_header_read(void) {
  uint8_t buf[FRAME_HEADER_SIZE];
  frame_write_header(buf, FRAME_KV_SET, FRAME_STATUS_MISSING, FRAME_FLAG_BARRIER, 7, 9, 100, 200,
                     1u << 20);
  frame f;
  CHECK(decode_exact(buf, sizeof(buf), FRAME_MIN_MAX_SIZE, &f) == FRAME_TOO_LARGE);
  frame_header h;
  frame_header_read(buf, &h);
  CHECK(h.size == FRAME_HEADER_SIZE + 300 + (1u << 20) && h.type == FRAME_KV_SET);
  CHECK(h.status == FRAME_STATUS_MISSING && h.flags == FRAME_FLAG_BARRIER);
  CHECK(h.endpoint == 7 && h.request_id == 9 && h.a_len == 100 && h.b_len == 200);
}

/* The lists JavaScript gets: values without gaps, counters in order. */
#define NAME_OF_STAT(name, js_name) #js_name,
static void test_lists(void) {
  CHECK(FRAME_HELLO == 1 && FRAME_TYPE_MAX == FRAME_HANDOFF);
  CHECK(FRAME_STATUS_OK == 0 && FRAME_STATUS_MAX == FRAME_STATUS_BAD_REQUEST);
  CHECK(FRAME_FLAG_BARRIER == 1 && FRAME_FLAG_SHARED == 2 && FRAME_FLAG_REMOTE == 4 &&
        FRAME_FLAG_RETAIN == 8 && FRAME_FLAG_UNROUTED == 16);
  static const char *const names[] = {FRAME_STAT_LIST(NAME_OF_STAT)};
  CHECK(sizeof(names) / sizeof(names[0]) == FRAME_STATS_COUNT);
  CHECK(FRAME_STAT_CONNECTIONS == 0 && strcmp(names[FRAME_STAT_CONNECTIONS], "workers") == 0);
  CHECK(strcmp(names[FRAME_STAT_SHARED_DELIVERED], "sharedDeliveries") == 0);
  CHECK(strcmp(names[FRAME_STAT_RETAINED_REFUSED], "retainedReadsRefused") == 0);
  CHECK(FRAME_DEFAULT_MAX_SIZE == 32u * 1024u * 1024u);
  CHECK(FRAME_DEFAULT_MAX_SIZE >= FRAME_MIN_MAX_SIZE &&
        FRAME_DEFAULT_MAX_SIZE <= FRAME_LIMIT_MAX_SIZE);
  CHECK(FRAME_DEFAULT_QUEUE_LIMIT >= FRAME_DEFAULT_MAX_SIZE);
}

/* Parses payload[0..len) from an allocation of exactly len bytes. */
#define PARSE_EXACT(parse, bytes, len, out, rc)                                                    \
  do {                                                                                             \
    uint8_t *copy_ = exact_copy((bytes), (len));                                                   \
    (rc) = copy_ ? parse(copy_, (len), (out)) : 99;                                                \
    free(copy_);                                                                                   \
  } while (0)

static void test_offer(void) {
  uint8_t p[FRAME_OFFER_SIZE + 1];
  frame_offer in = {SHM_REGIONS - 1, SHM_REGION_SIZE, SHM_SLOTS, SHM_PAYLOAD_MAX, 0xabcdef}, out;
  int rc;
  frame_offer_write(p, &in);
  CHECK(frame_load_u32(p) == SHM_REGIONS - 1 && frame_load_u32(p + 16) == 0xabcdef);
  PARSE_EXACT(frame_offer_parse, p, FRAME_OFFER_SIZE, &out, rc);
  CHECK(rc == 0 && memcmp(&in, &out, sizeof(in)) == 0);
  /* Short, long, or another build's geometry. */
  PARSE_EXACT(frame_offer_parse, p, FRAME_OFFER_SIZE - 1, &out, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_offer_parse, p, FRAME_OFFER_SIZE + 1, &out, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_offer_parse, p, 0, &out, rc);
  CHECK(rc == -1);
  frame_offer bad[] = {
      {SHM_REGIONS, SHM_REGION_SIZE, SHM_SLOTS, SHM_PAYLOAD_MAX, 1},
      {0, SHM_REGION_SIZE * 2, SHM_SLOTS, SHM_PAYLOAD_MAX, 1},
      {0, SHM_REGION_SIZE, SHM_SLOTS + 1, SHM_PAYLOAD_MAX, 1},
      {0, SHM_REGION_SIZE, SHM_SLOTS, SHM_PAYLOAD_MAX / 2, 1},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    frame_offer_write(p, &bad[i]);
    PARSE_EXACT(frame_offer_parse, p, FRAME_OFFER_SIZE, &out, rc);
    CHECK(rc == -1);
  }
}

static void test_counts(void) {
  uint8_t p[FRAME_STATS_SIZE + 1];
  int rc;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  frame_shared_ready_write(p, 0xfedcba98u);
  PARSE_EXACT(frame_shared_ready_parse, p, FRAME_SHARED_READY_SIZE, &u32, rc);
  CHECK(rc == 0 && u32 == 0xfedcba98u);
  PARSE_EXACT(frame_shared_ready_parse, p, FRAME_SHARED_READY_SIZE - 1, &u32, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_shared_ready_parse, p, FRAME_SHARED_READY_SIZE + 1, &u32, rc);
  CHECK(rc == -1);

  frame_read_count_write(p, UINT64_C(0x0123456789abcdef));
  PARSE_EXACT(frame_read_count_parse, p, FRAME_READ_COUNT_SIZE, &u64, rc);
  CHECK(rc == 0 && u64 == UINT64_C(0x0123456789abcdef));
  CHECK(p[0] == 0xef && p[7] == 0x01);
  PARSE_EXACT(frame_read_count_parse, p, FRAME_READ_COUNT_SIZE - 1, &u64, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_read_count_parse, p, FRAME_READ_COUNT_SIZE + 1, &u64, rc);
  CHECK(rc == -1);

  frame_expire_write(p, 123456);
  PARSE_EXACT(frame_expire_parse, p, FRAME_EXPIRE_SIZE, &u32, rc);
  CHECK(rc == 0 && u32 == 123456);
  PARSE_EXACT(frame_expire_parse, p, FRAME_EXPIRE_SIZE - 1, &u32, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_expire_parse, p, FRAME_EXPIRE_SIZE + 1, &u32, rc);
  CHECK(rc == -1);

  uint64_t values[FRAME_STATS_COUNT], back[FRAME_STATS_COUNT];
  for (size_t i = 0; i < FRAME_STATS_COUNT; i++)
    values[i] = (UINT64_C(1) << (i * 3 % 64)) + i; /* any count of counters */
  frame_stats_write(p, values);
  CHECK(frame_load_u64(p + 8 * FRAME_STAT_KEYS) == values[FRAME_STAT_KEYS]);
  PARSE_EXACT(frame_stats_parse, p, FRAME_STATS_SIZE, back, rc);
  CHECK(rc == 0 && memcmp(values, back, sizeof(values)) == 0);
  PARSE_EXACT(frame_stats_parse, p, FRAME_STATS_SIZE - 8, back, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_stats_parse, p, FRAME_STATS_SIZE + 1, back, rc);
  CHECK(rc == -1);
}

/* Offsets: fixed-width text, both numbers in full, and nothing else parses. */
static void test_offset(void) {
  uint8_t t[FRAME_OFFSET_SIZE + 1];
  uint64_t epoch = 0, seq = 0;
  int rc;
  frame_offset_write(t, UINT64_C(0x0123456789abcdef), 42);
  CHECK(memcmp(t, "0123456789abcdef-000000000000002a", FRAME_OFFSET_SIZE) == 0);
#define PARSE_OFFSET(bytes, len)                                                                   \
  do {                                                                                             \
    uint8_t *copy_ = exact_copy((const uint8_t *)(bytes), (len));                                  \
    rc = copy_ ? frame_offset_parse(copy_, (len), &epoch, &seq) : 99;                              \
    free(copy_);                                                                                   \
  } while (0)
  PARSE_OFFSET(t, FRAME_OFFSET_SIZE);
  CHECK(rc == 0 && epoch == UINT64_C(0x0123456789abcdef) && seq == 42);
  frame_offset_write(t, UINT64_MAX, UINT64_MAX);
  PARSE_OFFSET(t, FRAME_OFFSET_SIZE);
  CHECK(rc == 0 && epoch == UINT64_MAX && seq == UINT64_MAX);
  /* Two offsets of one epoch compare as text as their numbers do. */
  uint8_t a[FRAME_OFFSET_SIZE], b[FRAME_OFFSET_SIZE];
  frame_offset_write(a, 7, 0xff);
  frame_offset_write(b, 7, 0x100);
  CHECK(memcmp(a, b, FRAME_OFFSET_SIZE) < 0);
  const char *bad[] = {
      "0123456789ABCDEF-000000000000002a", /* upper case */
      "0123456789abcdef_000000000000002a", /* separator */
      "0123456789abcdef-00000000000002a ", /* a space */
      "0123456789abcdeg-000000000000002a", /* not hex */
      "0123456789abcdef-000000000000002a0", /* long */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    PARSE_OFFSET(bad[i], strlen(bad[i]));
    CHECK(rc == -1);
  }
  PARSE_OFFSET("0123456789abcdef-000000000000002", FRAME_OFFSET_SIZE - 1);
  CHECK(rc == -1);
  PARSE_OFFSET("", 0);
  CHECK(rc == -1);
#undef PARSE_OFFSET
}

/* A RETAINED_READ reply: written entry by entry, read back the same;
 * an entry that runs past the end is malformed. */
static void test_retained(void) {
  uint8_t p[FRAME_RETAINED_HEAD_SIZE + 2 * FRAME_RETAINED_ENTRY_HEAD_SIZE + 8];
  size_t len = 0;
  frame_retained_head_write(p, 3);
  len += FRAME_RETAINED_HEAD_SIZE;
  len += frame_retained_entry_write(p + len, 9, 1, "hello", 5);
  len += frame_retained_entry_write(p + len, 9, 2, NULL, 0);
  CHECK(len == FRAME_RETAINED_HEAD_SIZE + 2 * FRAME_RETAINED_ENTRY_HEAD_SIZE + 5);
  uint8_t *copy = exact_copy(p, len);
  if (!copy) return;
  uint32_t left = 0;
  CHECK(frame_retained_head_parse(copy, len, &left) == 0 && left == 3);
  size_t pos = FRAME_RETAINED_HEAD_SIZE;
  frame_retained_entry e;
  uint64_t epoch, seq;
  CHECK(frame_retained_next(copy, len, &pos, &e) == 1);
  CHECK(e.len == 5 && memcmp(e.bytes, "hello", 5) == 0);
  CHECK(frame_offset_parse(e.offset, FRAME_OFFSET_SIZE, &epoch, &seq) == 0 && epoch == 9 &&
        seq == 1);
  CHECK(frame_retained_next(copy, len, &pos, &e) == 1);
  CHECK(e.len == 0 && frame_offset_parse(e.offset, FRAME_OFFSET_SIZE, &epoch, &seq) == 0 &&
        seq == 2);
  CHECK(frame_retained_next(copy, len, &pos, &e) == 0 && pos == len);
  free(copy);
  /* Cut anywhere inside an entry: that entry is malformed. */
  int cut_ok = 1;
  for (size_t cut = FRAME_RETAINED_HEAD_SIZE + 1; cut < len; cut++) {
    copy = exact_copy(p, cut);
    if (!copy) return;
    pos = FRAME_RETAINED_HEAD_SIZE;
    int rc, entries = 0;
    while ((rc = frame_retained_next(copy, cut, &pos, &e)) == 1)
      entries++;
    size_t first_end = FRAME_RETAINED_HEAD_SIZE + FRAME_RETAINED_ENTRY_HEAD_SIZE + 5;
    int want_rc = cut == first_end ? 0 : -1; /* cut between the entries: a shorter list */
    if (rc != want_rc || entries != (cut >= first_end ? 1 : 0)) cut_ok = 0;
    free(copy);
  }
  CHECK(cut_ok);
  CHECK(frame_retained_head_parse(p, FRAME_RETAINED_HEAD_SIZE - 1, &left) == -1);
}

static void test_publish_desc(void) {
  uint8_t p[FRAME_PUBLISH_DESC_SIZE + 1];
  frame_publish_desc out;
  int rc;
  frame_publish_desc good[] = {
      {0, 0, 1},
      {SHM_SLOTS - 1, SHM_DATA_SIZE - SHM_PAYLOAD_MAX, SHM_PAYLOAD_MAX},
      {3, SHM_DATA_SIZE - 1, 1},
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    frame_publish_desc_write(p, &good[i]);
    PARSE_EXACT(frame_publish_desc_parse, p, FRAME_PUBLISH_DESC_SIZE, &out, rc);
    CHECK(rc == 0 && memcmp(&good[i], &out, sizeof(out)) == 0);
  }
  PARSE_EXACT(frame_publish_desc_parse, p, FRAME_PUBLISH_DESC_SIZE - 1, &out, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_publish_desc_parse, p, FRAME_PUBLISH_DESC_SIZE + 1, &out, rc);
  CHECK(rc == -1);
  frame_publish_desc bad[] = {
      {SHM_SLOTS, 0, 1},                            /* no such slot */
      {0, 0, 0},                                    /* empty */
      {0, 0, SHM_PAYLOAD_MAX + 1},                  /* over the shared maximum */
      {0, SHM_DATA_SIZE, 1},                        /* past the data area */
      {0, SHM_DATA_SIZE - 10, 11},                  /* runs past it */
      {0, UINT32_MAX, 16},                          /* wraps */
      {UINT32_MAX, UINT32_MAX - 1, UINT32_MAX - 2}, /* everything at once */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    frame_publish_desc_write(p, &bad[i]);
    PARSE_EXACT(frame_publish_desc_parse, p, FRAME_PUBLISH_DESC_SIZE, &out, rc);
    CHECK(rc == -1);
  }
}

static void test_message_desc(void) {
  uint8_t p[FRAME_MESSAGE_DESC_SIZE + 1];
  frame_message_desc out;
  int rc;
  uint32_t last = (SHM_REGIONS - 1) * SHM_REGION_SIZE;
  frame_message_desc good[] = {
      {SHM_HEADER_SIZE, 1},
      {last + SHM_HEADER_SIZE, SHM_PAYLOAD_MAX},
      {last + SHM_REGION_SIZE - SHM_PAYLOAD_MAX, SHM_PAYLOAD_MAX},
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    frame_message_desc_write(p, &good[i]);
    PARSE_EXACT(frame_message_desc_parse, p, FRAME_MESSAGE_DESC_SIZE, &out, rc);
    CHECK(rc == 0 && memcmp(&good[i], &out, sizeof(out)) == 0);
  }
  PARSE_EXACT(frame_message_desc_parse, p, FRAME_MESSAGE_DESC_SIZE - 1, &out, rc);
  CHECK(rc == -1);
  PARSE_EXACT(frame_message_desc_parse, p, FRAME_MESSAGE_DESC_SIZE + 1, &out, rc);
  CHECK(rc == -1);
  frame_message_desc bad[] = {
      {SHM_HEADER_SIZE, 0},                           /* empty */
      {SHM_HEADER_SIZE, SHM_PAYLOAD_MAX + 1},         /* over the shared maximum */
      {SHM_HEADER_SIZE - 1, 1},                       /* in a region's header */
      {SHM_REGION_SIZE, 1},                           /* the next region's header */
      {SHM_REGION_SIZE - 4, 8},                       /* across two regions */
      {(uint32_t)SHM_POOL_SIZE + SHM_HEADER_SIZE, 1}, /* past the pool */
      {UINT32_MAX, 1},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    frame_message_desc_write(p, &bad[i]);
    PARSE_EXACT(frame_message_desc_parse, p, FRAME_MESSAGE_DESC_SIZE, &out, rc);
    CHECK(rc == -1);
  }
}

/* Whole shared frames: what the decoder and the parsers make of them. */
static void test_shared_frames(void) {
  uint8_t head[FRAME_HEADER_SIZE + 5];
  uint8_t buf[FRAME_HEADER_SIZE + 5 + FRAME_PUBLISH_DESC_SIZE];
  frame f;
  /* A PUBLISH's header and names, as channel_send_parts gets them (its
   * size counts a payload that is not there). */
  frame_write_header(head, FRAME_PUBLISH, 0, FRAME_FLAG_BARRIER, 3, 0, 5, 0, 1000);
  memcpy(head + FRAME_HEADER_SIZE, "topic", 5);
  frame_publish_desc d = {2, 4096, 1000}, d_out;
  uint32_t size = frame_encode_publish_shared(buf, head, sizeof(head), &d);
  CHECK(size == sizeof(buf));
  CHECK(decode_exact(buf, sizeof(buf), FRAME_MIN_MAX_SIZE, &f) == FRAME_OK);
  CHECK(f.type == FRAME_PUBLISH && f.endpoint == 3 && f.a_len == 5 && f.b_len == 0);
  CHECK(f.flags == (FRAME_FLAG_BARRIER | FRAME_FLAG_SHARED));
  CHECK(frame_decode(buf, sizeof(buf), FRAME_MIN_MAX_SIZE, &f) == FRAME_OK);
  CHECK(memcmp(f.a, "topic", 5) == 0);
  CHECK(frame_publish_desc_parse(f.payload, f.payload_len, &d_out) == 0);
  CHECK(memcmp(&d, &d_out, sizeof(d)) == 0);
  /* Not a publish's head: refused. */
  frame_write_header(head, FRAME_KV_SET, 0, 0, 3, 0, 5, 0, 1000);
  CHECK(frame_encode_publish_shared(buf, head, sizeof(head), &d) == 0);
  frame_write_header(head, FRAME_PUBLISH, 0, 0, 3, 0, 4, 0, 1000);
  CHECK(frame_encode_publish_shared(buf, head, sizeof(head), &d) == 0);
  CHECK(frame_encode_publish_shared(buf, head, FRAME_HEADER_SIZE - 1, &d) == 0);

  uint8_t msg[FRAME_HEADER_SIZE + 5 + FRAME_MESSAGE_DESC_SIZE];
  frame_message_desc m = {SHM_REGION_SIZE + SHM_HEADER_SIZE, 77}, m_out;
  size = frame_encode_message_shared(msg, 9, "topic", 5, &m);
  CHECK(size == sizeof(msg) && size == frame_size(5, 0, FRAME_MESSAGE_DESC_SIZE));
  CHECK(decode_exact(msg, sizeof(msg), FRAME_MIN_MAX_SIZE, &f) == FRAME_OK);
  CHECK(frame_decode(msg, sizeof(msg), FRAME_MIN_MAX_SIZE, &f) == FRAME_OK);
  CHECK(f.type == FRAME_MESSAGE && f.flags == FRAME_FLAG_SHARED && f.endpoint == 9);
  CHECK(f.request_id == 0 && f.a_len == 5 && memcmp(f.a, "topic", 5) == 0);
  CHECK(frame_message_desc_parse(f.payload, f.payload_len, &m_out) == 0);
  CHECK(memcmp(&m, &m_out, sizeof(m)) == 0);
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
  uint64_t seed = check_seed(argc, argv, UINT64_C(20240601));
  uint64_t rng = seed;
  test_little_endian();
  test_size();
  test_round_trip(&rng);
  test_partial();
  test_stream();
  test_too_large();
  test_malformed();
  test_flags();
  test_header_read();
  test_lists();
  test_hello();
  test_offer();
  test_counts();
  test_offset();
  test_retained();
  test_publish_desc();
  test_message_desc();
  test_shared_frames();
  test_garbage(&rng);
  return check_report_seeded("frame", seed);
}
