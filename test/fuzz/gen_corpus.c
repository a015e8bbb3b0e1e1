/* Writes the seed corpus: one file per kind of request a process sends,
 * plus a few sequences, so the fuzzer starts from well-formed streams and
 * mutates from there. Usage: gen_corpus DIR (frame seeds get the 2-byte
 * maximum-size prefix fuzz_frame expects when the name starts "frame-"). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"

static uint8_t buf[1 << 16];

static size_t put(size_t at, uint8_t type, uint32_t endpoint, uint32_t id, const char *a,
                  const char *b, const void *payload, size_t payload_len, uint16_t flags) {
  uint32_t n = frame_encode(buf + at, type, 0, endpoint, id, a, a ? strlen(a) : 0, b,
                            b ? strlen(b) : 0, payload, payload_len);
  buf[at + 6] = (uint8_t)flags;
  buf[at + 7] = (uint8_t)(flags >> 8);
  return at + n;
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
  uint8_t ms[4] = {0xe8, 0x03, 0, 0}; /* 1000 ms */
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, 1u << 20);
  struct {
    const char *name;
    size_t len;
  } seeds[16];
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
  /* Large payloads (16 KiB and more go to an idle subscriber's socket
   * straight from the input), to both subscribed channels. */
  static char large[20000];
  memset(large, 'x', sizeof(large));
  n = put(0, FRAME_PUBLISH, 3, 0, "a", NULL, large, sizeof(large), 0);
  n = put(n, FRAME_PUBLISH, 3, 0, "", NULL, large, sizeof(large), 0);
  n = put(n, FRAME_PUBLISH, 3, 0, "a", NULL, large, 3000, 0);
  if (save(dir, "publish-large", NULL, 0, n) != 0) return 1;
  if (save(dir, "frame-everything", frame_prefix, 2, all_len) != 0) return 1;
  return 0;
}
