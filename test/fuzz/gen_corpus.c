/* Writes the seed corpus: one file per kind of request a process sends,
 * plus a few sequences, so the fuzzer starts from well-formed streams and
 * mutates from there. Usage: gen_corpus DIR (frame seeds get the 2-byte
 * maximum-size prefix fuzz_frame expects when the name starts "frame-").
 *
 * The shared pool has seeds of its own: the frame that says a process
 * reads shared messages, shared publishes to the channels fuzz_broker's
 * reader subscribes to, read counts, and descriptors the broker must
 * refuse. A stream is the first connection's input after its hello, fed to
 * the broker in slices of 4096 bytes (see fuzz_broker.c); the reader frees
 * the slots it was handed between two slices, so a seed that reuses slots
 * pads the first slice to its end. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "shm.h"

static uint8_t buf[1 << 16];

static size_t put(size_t at, uint8_t type, uint32_t endpoint, uint32_t id, const char *a,
                  const char *b, const void *payload, size_t payload_len, uint16_t flags) {
  size_t a_len = a ? strlen(a) : 0, b_len = b ? strlen(b) : 0;
  uint32_t n =
      frame_write_header(buf + at, type, 0, flags, endpoint, id, a_len, b_len, payload_len);
  uint8_t *p = buf + at + FRAME_HEADER_SIZE;
  if (a_len) memcpy(p, a, a_len);
  if (b_len) memcpy(p + a_len, b, b_len);
  if (payload_len) memcpy(p + a_len + b_len, payload, payload_len);
  return at + n;
}

/* A shared publish: the payload's slot, its offset in the region's data
 * area and its length, as the broker reads them. */
static size_t put_shared(size_t at, uint32_t endpoint, const char *channel, uint32_t slot,
                         uint32_t offset, uint32_t len) {
  uint8_t desc[FRAME_PUBLISH_DESC_SIZE];
  frame_publish_desc d = {slot, offset, len};
  frame_publish_desc_write(desc, &d);
  return put(at, FRAME_PUBLISH, endpoint, 0, channel, NULL, desc, sizeof(desc), FRAME_FLAG_SHARED);
}

/* A count of shared messages read, all told. */
static size_t put_read(size_t at, uint64_t count) {
  uint8_t c[FRAME_READ_COUNT_SIZE];
  frame_read_count_write(c, count);
  return put(at, FRAME_SHARED_READ, 0, 0, NULL, NULL, c, sizeof(c), 0);
}

/* A frame that takes the stream from at up to the end of its slice (the
 * next one, when too little of this one is left for a frame). */
static size_t put_pad(size_t at, size_t slice) {
  static const uint8_t zeros[8192];
  size_t end = (at / slice + 1) * slice;
  if (end - at < FRAME_HEADER_SIZE + 2) end += slice;
  return put(at, FRAME_KV_SET, 3, 0, "p", "k", zeros, end - at - FRAME_HEADER_SIZE - 2, 0);
}

static int save(const char *dir, const char *name, const uint8_t *prefix, size_t prefix_len,
                size_t len) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(prefix, 1, prefix_len, f) == prefix_len && fwrite(buf, 1, len, f) == len;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_corpus DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  const uint8_t frame_prefix[2] = {0xff, 0xff};
  uint8_t ms[FRAME_EXPIRE_SIZE];
  frame_expire_write(ms, 1000);
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, 1u << 20);
  struct {
    const char *name;
    size_t len;
  } seeds[32];
  int count = 0;
  size_t n;
#define SEED(label, expr)                                                                          \
  do {                                                                                             \
    n = (expr);                                                                                    \
    if (save(dir, label, NULL, 0, n) != 0) return 1;                                               \
    char frame_name[128];                                                                          \
    snprintf(frame_name, sizeof(frame_name), "frame-%s", label);                                   \
    if (save(dir, frame_name, frame_prefix, 2, n) != 0) return 1;                                  \
    seeds[count].name = label;                                                                     \
    seeds[count++].len = n;                                                                        \
  } while (0)
  SEED("subscribe", put(0, FRAME_SUBSCRIBE, 3, 1, "a", NULL, NULL, 0, 0));
  SEED("unsubscribe", put(put(0, FRAME_SUBSCRIBE, 3, 1, "x", NULL, NULL, 0, 0), FRAME_UNSUBSCRIBE,
                          3, 2, "x", NULL, NULL, 0, 0));
  SEED("publish", put(0, FRAME_PUBLISH, 3, 0, "a", NULL, "\x01\x06\x02\x00\x00\x00hi", 8, 0));
  SEED("kv", put(put(put(put(0, FRAME_KV_SET, 3, 1, "client", "key", "value", 5, 0), FRAME_KV_GET,
                         3, 2, "client", "key", NULL, 0, 0),
                     FRAME_KV_HAS, 3, 3, "client", "key", NULL, 0, 0),
                 FRAME_KV_DEL, 3, 4, "client", "key", NULL, 0, 0));
  SEED("expire", put(put(put(0, FRAME_KV_SET, 3, 1, "c", "k", "v", 1, 0), FRAME_KV_EXPIRE, 3, 2,
                         "c", NULL, ms, 4, 0),
                     FRAME_KV_PERSIST, 3, 3, "c", NULL, NULL, 0, 0));
  SEED("clear", put(put(0, FRAME_KV_SET, 3, 1, "c", "k", "v", 1, 0), FRAME_KV_CLEAR, 3, 2, "c",
                    NULL, NULL, 0, 0));
  SEED("close", put(put(0, FRAME_SUBSCRIBE, 7, 1, "b", NULL, NULL, 0, 0), FRAME_CLOSE, 7, 2, NULL,
                    NULL, NULL, 0, 0));
  SEED("stats", put(0, FRAME_STATS, 1, 9, NULL, NULL, NULL, 0, 0));
  SEED("barrier", put(0, FRAME_SYNC, 1, 5, NULL, NULL, NULL, 0, FRAME_FLAG_BARRIER));
  SEED("hello-again", put(0, FRAME_HELLO, 0, 0, NULL, NULL, hello, sizeof(hello), 0));
  /* Retention: a subscriber, two retained publishes, reads after an offset
   * of a broker that is not this one (its epoch is random) and after a
   * malformed one; a bound namespace taken. */
  uint8_t offset[FRAME_OFFSET_SIZE + 1];
  frame_offset_write(offset, 1, 1);
  offset[FRAME_OFFSET_SIZE] = 0;
  n = put(0, FRAME_SUBSCRIBE, 4, 1, "r", NULL, NULL, 0, 0);
  n = put(n, FRAME_PUBLISH, 3, 2, "r", NULL, "one", 3, FRAME_FLAG_RETAIN);
  n = put(n, FRAME_PUBLISH, 3, 0, "r", NULL, "two", 3, FRAME_FLAG_RETAIN);
  n = put(n, FRAME_RETAINED_READ, 3, 3, "r", (const char *)offset, NULL, 0, 0);
  SEED("retained", put(n, FRAME_RETAINED_READ, 3, 4, "r", "12-34", NULL, 0, 0));
  n = put(0, FRAME_KV_SET, 3, 1, "s", "k", "v", 1, 0);
  n = put(n, FRAME_KV_BIND, 3, 2, "s", NULL, ms, 4, 0);
  SEED("bind-take", put(n, FRAME_KV_TAKE, 3, 3, "s", "k", NULL, 0, FRAME_FLAG_BARRIER));
  /* The shared pool. The pid is no process's (over Linux's largest pid):
   * once the connection is gone, the broker's check finds its process gone
   * too. */
  uint8_t pid[FRAME_SHARED_READY_SIZE];
  frame_shared_ready_write(pid, 0x3ffffff0u);
  SEED("shared-ready", put(0, FRAME_SHARED, 0, 0, NULL, NULL, pid, sizeof(pid), 0));
  SEED("shared-publish",
       put_shared(put_shared(put_shared(put_shared(0, 3, "a", 0, 0, 16384), 3, "b", 1, 0, 30000), 3,
                             "", 2, 0, 45000),
                  3, "a", 3, 0, 60000));
  SEED("shared-read", put_read(0, 0));
  /* Subscribed itself (another endpoint): it is handed its own payload,
   * reads it, and leaves the second one unread when it goes. */
  n = put(0, FRAME_SHARED, 0, 0, NULL, NULL, pid, sizeof(pid), 0);
  n = put(n, FRAME_SUBSCRIBE, 5, 1, "s", NULL, NULL, 0, 0);
  n = put_shared(n, 6, "s", 8, 0, 20000);
  n = put_read(n, 1);
  SEED("shared-self", put_shared(n, 6, "s", 8, 0, 20000));
#undef SEED
  /* One stream with every request above in a row. */
  uint8_t all[1 << 14];
  size_t all_len = 0;
  for (int i = 0; i < count; i++) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    all_len += fread(all + all_len, 1, sizeof(all) - all_len, f);
    fclose(f);
  }
  memcpy(buf, all, all_len);
  if (save(dir, "everything", NULL, 0, all_len) != 0) return 1;
  if (save(dir, "frame-everything", frame_prefix, 2, all_len) != 0) return 1;
  /* Large payloads (16 KiB and more go to an idle subscriber's socket
   * straight from the input), to both subscribed channels. */
  static char large[20000];
  memset(large, 'x', sizeof(large));
  n = put(0, FRAME_PUBLISH, 3, 0, "a", NULL, large, sizeof(large), 0);
  n = put(n, FRAME_PUBLISH, 3, 0, "", NULL, large, sizeof(large), 0);
  n = put(n, FRAME_PUBLISH, 3, 0, "a", NULL, large, 3000, 0);
  if (save(dir, "publish-large", NULL, 0, n) != 0) return 1;
  /* Slots reused once the reader freed them: the same slot again in the
   * next slice; and more deliveries than the reader's list first holds
   * (two per publish to ""), after its start has moved on. */
  n = put_pad(put_shared(0, 3, "a", 0, 0, 16384), 4096);
  if (save(dir, "shared-reuse", NULL, 0, put_shared(n, 3, "a", 0, 0, 16384)) != 0) return 1;
  n = 0;
  for (uint32_t i = 0; i < 10; i++)
    n = put_shared(n, 3, "", i, i * 16384u, 16384);
  n = put_pad(n, 4096);
  for (uint32_t i = 0; i < SHM_SLOTS; i++)
    n = put_shared(n, 3, "", i, i * 16384u, 16384 + i * 64u);
  if (save(dir, "shared-many", NULL, 0, n) != 0) return 1;
  /* Shared frames the broker must refuse (each ends the connection, so
   * each has a file of its own). */
  uint8_t short_desc[8] = {0};
  uint8_t short_count[4] = {1, 0, 0, 0};
#define BAD(label, expr)                                                                           \
  do {                                                                                             \
    n = (expr);                                                                                    \
    if (save(dir, label, NULL, 0, n) != 0) return 1;                                               \
    if (save(dir, "frame-" label, frame_prefix, 2, n) != 0) return 1;                              \
  } while (0)
  BAD("shared-bad-slot", put_shared(0, 3, "a", SHM_SLOTS, 0, 16384));
  BAD("shared-bad-offset", put_shared(0, 3, "a", 0, SHM_DATA_SIZE - 1000, 20000));
  BAD("shared-offset-past", put_shared(0, 3, "a", 0, SHM_DATA_SIZE + 64, 16384));
  BAD("shared-zero-length", put_shared(0, 3, "a", 0, 0, 0));
  BAD("shared-too-large", put_shared(0, 3, "a", 0, 0, SHM_PAYLOAD_MAX));
  BAD("shared-short",
      put(0, FRAME_PUBLISH, 3, 0, "a", NULL, short_desc, sizeof(short_desc), FRAME_FLAG_SHARED));
  BAD("shared-busy", put_shared(put_shared(0, 3, "a", 0, 0, 16384), 3, "a", 0, 16384, 16384));
  BAD("shared-read-short",
      put(0, FRAME_SHARED_READ, 0, 0, NULL, NULL, short_count, sizeof(short_count), 0));
  BAD("shared-read-ahead", put_read(0, 5));
  n = put(0, FRAME_SHARED, 0, 0, NULL, NULL, pid, sizeof(pid), 0);
  n = put(n, FRAME_SUBSCRIBE, 5, 1, "s", NULL, NULL, 0, 0);
  n = put_read(put_shared(n, 6, "s", 0, 0, 16384), 1);
  BAD("shared-read-back", put_read(n, 0));
#undef BAD
  /* What the broker sends, for the frame target's payload parsers: the
   * offer, shared messages (one inside the pool, one past it), a stats
   * reply. */
  frame_offer offer = {1, SHM_REGION_SIZE, SHM_SLOTS, SHM_PAYLOAD_MAX, 7};
  uint8_t offer_bytes[FRAME_OFFER_SIZE];
  frame_offer_write(offer_bytes, &offer);
  n = put(0, FRAME_HELLO, 0, 0, NULL, NULL, hello, sizeof(hello), 0);
  n = put(n, FRAME_SHARED, 0, 0, NULL, NULL, offer_bytes, sizeof(offer_bytes), 0);
  if (save(dir, "frame-offer", frame_prefix, 2, n) != 0) return 1;
  frame_message_desc inside = {SHM_REGION_SIZE + SHM_HEADER_SIZE, 16384};
  frame_message_desc past = {(uint32_t)SHM_POOL_SIZE - 8, 16384};
  n = frame_encode_message_shared(buf, 4, "a", 1, &inside);
  n += frame_encode_message_shared(buf + n, 4, "b", 1, &past);
  if (save(dir, "frame-shared-message", frame_prefix, 2, n) != 0) return 1;
  uint64_t values[FRAME_STATS_COUNT] = {0};
  uint8_t stats[FRAME_STATS_SIZE];
  values[FRAME_STAT_KEYS] = 3;
  frame_stats_write(stats, values);
  n = put(0, FRAME_REPLY, 1, 9, NULL, NULL, stats, sizeof(stats), 0);
  if (save(dir, "frame-stats-reply", frame_prefix, 2, n) != 0) return 1;
  return 0;
}
