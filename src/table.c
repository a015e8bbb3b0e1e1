/* table: the engine's hash table (see table.h).
 *
 * Separate chaining over power-of-two bucket arrays, with Redis's dict.c
 * scheme for resizing: a resize allocates the new array and then moves the
 * old one over a few buckets at a time, on each get, put and remove, so no
 * single call pays for rehashing the whole table. While a move is under way
 * both arrays are live: lookups try both, insertions go to the new one.
 *
 * Each entry is one allocation holding its key bytes and the key's full hash,
 * so moving an entry never hashes its key again and most failed comparisons
 * stop at the hash. The hash is SipHash-1-3 under a key drawn per table from
 * the kernel, which keeps chains short even when a peer chooses the keys.
 *
 * An empty table holds no bucket array at all: the broker keeps many small
 * tables (one per namespace) and an emptied one must cost no more than a new
 * one, which is also what lets memory accounting return to its baseline. */
#define _GNU_SOURCE
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/random.h>
#endif

#define TABLE_MIN_SIZE 4u
/* Per operation: buckets moved, and empty buckets skipped, at most. Skipping
 * an empty bucket is one pointer test, so a sparse array (as when shrinking)
 * can be crossed quickly without making any one call slow. */
#define TABLE_REHASH_MOVES 2u
#define TABLE_REHASH_EMPTY_VISITS 64u
/* Shrink once fewer than one bucket in this many holds an entry. */
#define TABLE_SHRINK_RATIO 8u

typedef struct table_entry {
  struct table_entry *next;
  void *value;
  uint64_t hash;
  size_t key_len;
  unsigned char key[];
} table_entry;

struct table {
  /* buckets[1] is non-NULL only while buckets[0] is being moved into it. */
  table_entry **buckets[2];
  size_t size[2]; /* 0 or a power of two */
  size_t used[2];
  size_t rehash_index; /* buckets[0] below this index are already moved */
  uint64_t seed[2];
  size_t entry_bytes; /* entries, key copies included */
};

/* ---- hashing ------------------------------------------------------------ */

static uint64_t table_rotl(uint64_t x, unsigned bits) {
  return (x << bits) | (x >> (64u - bits));
}

static uint64_t table_load_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8u * i);
  return v;
}

/* One SipRound over the four state words. */
#define TABLE_SIP_ROUND(v)                                                                         \
  do {                                                                                             \
    v[0] += v[1];                                                                                  \
    v[1] = table_rotl(v[1], 13) ^ v[0];                                                            \
    v[0] = table_rotl(v[0], 32);                                                                   \
    v[2] += v[3];                                                                                  \
    v[3] = table_rotl(v[3], 16) ^ v[2];                                                            \
    v[0] += v[3];                                                                                  \
    v[3] = table_rotl(v[3], 21) ^ v[0];                                                            \
    v[2] += v[1];                                                                                  \
    v[1] = table_rotl(v[1], 17) ^ v[2];                                                            \
    v[2] = table_rotl(v[2], 32);                                                                   \
  } while (0)

/* SipHash-1-3 (Aumasson and Bernstein): one round per message word, three to
 * finish. Fewer rounds than the 2-4 MAC variant, which is ample for keeping
 * hash-flooding off a table whose outputs are never shown to the peer. */
static uint64_t table_siphash13(const uint64_t seed[2], const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t v[4] = {seed[0] ^ UINT64_C(0x736f6d6570736575), seed[1] ^ UINT64_C(0x646f72616e646f6d),
                   seed[0] ^ UINT64_C(0x6c7967656e657261), seed[1] ^ UINT64_C(0x7465646279746573)};
  size_t whole = len - len % 8;

  for (size_t i = 0; i < whole; i += 8) {
    uint64_t m = table_load_le64(p + i);
    v[3] ^= m;
    TABLE_SIP_ROUND(v);
    v[0] ^= m;
  }

  /* The last word carries the 0-7 leftover bytes and the length's low byte. */
  uint64_t last = (uint64_t)(len & 0xff) << 56;
  for (size_t i = 0; i < len % 8; i++)
    last |= (uint64_t)p[whole + i] << (8u * i);
  v[3] ^= last;
  TABLE_SIP_ROUND(v);
  v[0] ^= last;

  v[2] ^= 0xff;
  TABLE_SIP_ROUND(v);
  TABLE_SIP_ROUND(v);
  TABLE_SIP_ROUND(v);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* splitmix64's finalizer: spreads every input bit over the output. */
static uint64_t table_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

static int table_read_urandom(void *buf, size_t len) {
  int fd;
  do {
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (unsigned char *)buf + got, len - got);
    if (n > 0) {
      got += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(fd);
  return got == len ? 0 : -1;
}

static int table_read_random(void *buf, size_t len) {
#if defined(__linux__)
  size_t got = 0;
  while (got < len) {
    /* GRND_NONBLOCK: early in boot, before the pool is ready, fall back
     * rather than stall the broker. */
    ssize_t n = getrandom((unsigned char *)buf + got, len - got, GRND_NONBLOCK);
    if (n > 0) {
      got += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  if (got == len) return 0;
#endif
  return table_read_urandom(buf, len);
}

/* Used only when the kernel gives no randomness (no getrandom, no readable
 * /dev/urandom, as in some sandboxes): a seed that is at least different per
 * table and per run, so the table keeps working, with weaker protection. */
static void table_seed_fallback(uint64_t seed[2], const void *salt) {
  static _Atomic uint64_t counter;
  struct timespec now = {0, 0};
  uint64_t x = atomic_fetch_add(&counter, 1) * UINT64_C(0x9e3779b97f4a7c15);
  x ^= (uint64_t)(uintptr_t)salt;
  x ^= (uint64_t)getpid() << 32;
  clock_gettime(CLOCK_REALTIME, &now);
  x ^= table_mix64((uint64_t)now.tv_sec * UINT64_C(1000000000) + (uint64_t)now.tv_nsec);
  clock_gettime(CLOCK_MONOTONIC, &now);
  seed[0] = table_mix64(x ^ (uint64_t)now.tv_nsec);
  seed[1] = table_mix64(seed[0] ^ (uint64_t)now.tv_sec ^ (uint64_t)(uintptr_t)&counter);
}

/* ---- buckets and incremental rehashing ---------------------------------- */

static size_t table_bucket_bytes(size_t size) {
  return size * sizeof(table_entry *);
}

static size_t table_entry_bytes(size_t key_len) {
  return sizeof(table_entry) + key_len;
}

static int table_is_rehashing(const table *t) {
  return t->buckets[1] != NULL;
}

/* The smallest power of two >= n, at least TABLE_MIN_SIZE; 0 on overflow. */
static size_t table_size_for(size_t n) {
  size_t size = TABLE_MIN_SIZE;
  while (size < n) {
    if (size > SIZE_MAX / 2) return 0;
    size *= 2;
  }
  return size;
}

static void table_finish_rehash(table *t) {
  free(t->buckets[0]);
  t->buckets[0] = t->buckets[1];
  t->size[0] = t->size[1];
  t->used[0] = t->used[1];
  t->buckets[1] = NULL;
  t->size[1] = 0;
  t->used[1] = 0;
  t->rehash_index = 0;
}

static void table_rehash_step(table *t) {
  if (!table_is_rehashing(t)) return;
  size_t empty_visits = TABLE_REHASH_EMPTY_VISITS;
  size_t mask = t->size[1] - 1;
  for (unsigned moves = 0; moves < TABLE_REHASH_MOVES && t->used[0] != 0; moves++) {
    /* used[0] != 0 guarantees a full bucket at or after rehash_index. */
    while (t->buckets[0][t->rehash_index] == NULL) {
      t->rehash_index++;
      if (--empty_visits == 0) return;
    }
    table_entry *e = t->buckets[0][t->rehash_index];
    while (e) {
      table_entry *next = e->next;
      size_t i = (size_t)e->hash & mask;
      e->next = t->buckets[1][i];
      t->buckets[1][i] = e;
      t->used[0]--;
      t->used[1]++;
      e = next;
    }
    t->buckets[0][t->rehash_index++] = NULL;
  }
  if (t->used[0] == 0) table_finish_rehash(t);
}

/* Starts moving the table into an array of new_size buckets. Failing to
 * allocate is not an error: the table simply stays at its current size and
 * tries again on a later operation. */
static void table_start_resize(table *t, size_t new_size) {
  if (new_size == 0 || new_size == t->size[0]) return;
  table_entry **buckets = calloc(new_size, sizeof(*buckets));
  if (!buckets) return;
  t->buckets[1] = buckets;
  t->size[1] = new_size;
  t->used[1] = 0;
  t->rehash_index = 0;
}

static void table_resize_if_needed(table *t) {
  if (table_is_rehashing(t)) return;
  size_t count = t->used[0];
  if (count > t->size[0]) {
    table_start_resize(t, table_size_for(count + 1));
  } else if (t->size[0] > TABLE_MIN_SIZE && count < t->size[0] / TABLE_SHRINK_RATIO) {
    /* Leave room to grow by half again before the next resize. */
    table_start_resize(t, table_size_for(count * 2));
  }
}

/* Drops the bucket arrays of a table that has become empty. */
static void table_reset_if_empty(table *t) {
  if (t->used[0] + t->used[1] != 0) return;
  free(t->buckets[0]);
  free(t->buckets[1]);
  t->buckets[0] = t->buckets[1] = NULL;
  t->size[0] = t->size[1] = 0;
  t->rehash_index = 0;
}

/* The link that points at key's entry (so the caller can unlink it), or NULL
 * when the key is absent. *which receives the array that holds it. */
static table_entry **table_find(table *t, uint64_t hash, const void *key, size_t key_len,
                                int *which) {
  for (int k = 0; k < 2; k++) {
    if (t->size[k] == 0) continue;
    table_entry **link = &t->buckets[k][(size_t)hash & (t->size[k] - 1)];
    for (; *link; link = &(*link)->next) {
      table_entry *e = *link;
      if (e->hash == hash && e->key_len == key_len &&
          (key_len == 0 || memcmp(e->key, key, key_len) == 0)) {
        *which = k;
        return link;
      }
    }
  }
  return NULL;
}

/* ---- public API --------------------------------------------------------- */

table *table_create(void) {
  table *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  if (table_read_random(t->seed, sizeof(t->seed)) != 0) table_seed_fallback(t->seed, t);
  return t;
}

void table_destroy(table *t, void (*free_value)(void *value, void *ctx), void *ctx) {
  if (!t) return;
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < t->size[k]; i++) {
      table_entry *e = t->buckets[k][i];
      while (e) {
        table_entry *next = e->next;
        if (free_value) free_value(e->value, ctx);
        free(e);
        e = next;
      }
    }
    free(t->buckets[k]);
  }
  free(t);
}

size_t table_count(const table *t) {
  return t->used[0] + t->used[1];
}

void *table_get(table *t, const void *key, size_t key_len) {
  if (table_count(t) == 0) return NULL;
  table_rehash_step(t);
  int k;
  table_entry **link = table_find(t, table_siphash13(t->seed, key, key_len), key, key_len, &k);
  return link ? (*link)->value : NULL;
}

int table_put(table *t, const void *key, size_t key_len, void *value, void **old_value) {
  uint64_t hash = table_siphash13(t->seed, key, key_len);
  int k;
  table_entry **link = table_find(t, hash, key, key_len, &k);
  if (link) {
    if (old_value) *old_value = (*link)->value;
    (*link)->value = value;
    table_rehash_step(t);
    return 0;
  }

  if (key_len > SIZE_MAX - sizeof(table_entry)) return -1;
  table_entry *e = malloc(table_entry_bytes(key_len));
  if (!e) return -1;
  if (t->size[0] == 0) {
    t->buckets[0] = calloc(TABLE_MIN_SIZE, sizeof(*t->buckets[0]));
    if (!t->buckets[0]) {
      free(e);
      return -1;
    }
    t->size[0] = TABLE_MIN_SIZE;
  }

  e->value = value;
  e->hash = hash;
  e->key_len = key_len;
  if (key_len) memcpy(e->key, key, key_len);
  k = table_is_rehashing(t) ? 1 : 0;
  size_t i = (size_t)hash & (t->size[k] - 1);
  e->next = t->buckets[k][i];
  t->buckets[k][i] = e;
  t->used[k]++;
  t->entry_bytes += table_entry_bytes(key_len);
  if (old_value) *old_value = NULL;

  table_rehash_step(t);
  table_resize_if_needed(t);
  return 0;
}

void *table_remove(table *t, const void *key, size_t key_len) {
  if (table_count(t) == 0) return NULL;
  table_rehash_step(t);
  int k;
  table_entry **link = table_find(t, table_siphash13(t->seed, key, key_len), key, key_len, &k);
  if (!link) return NULL;

  table_entry *e = *link;
  void *value = e->value;
  *link = e->next;
  t->used[k]--;
  t->entry_bytes -= table_entry_bytes(e->key_len);
  free(e);

  if (t->used[0] == 0 && table_is_rehashing(t)) table_finish_rehash(t);
  table_reset_if_empty(t);
  table_resize_if_needed(t);
  return value;
}

size_t table_sweep(table *t, int (*visit)(const void *key, size_t key_len, void *value, void *ctx),
                   void *ctx) {
  size_t removed = 0;
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < t->size[k]; i++) {
      table_entry **link = &t->buckets[k][i];
      while (*link) {
        table_entry *e = *link;
        if (visit(e->key, e->key_len, e->value, ctx)) {
          *link = e->next;
          t->used[k]--;
          t->entry_bytes -= table_entry_bytes(e->key_len);
          free(e);
          removed++;
        } else {
          link = &e->next;
        }
      }
    }
  }
  if (removed) {
    if (t->used[0] == 0 && table_is_rehashing(t)) table_finish_rehash(t);
    table_reset_if_empty(t);
    table_resize_if_needed(t);
  }
  return removed;
}

size_t table_memory(const table *t) {
  return sizeof(*t) + table_bucket_bytes(t->size[0]) + table_bucket_bytes(t->size[1]) +
         t->entry_bytes;
}
