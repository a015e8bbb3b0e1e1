/* Unit tests for src/table.c.
 *
 * White-box: the module's source is included here, so the tests can check
 * the hash against published SipHash-1-3 vectors, assert the table's internal
 * invariants while a rehash is under way, and make its allocations fail on
 * purpose (malloc and friends are redirected to check.h's failing allocator
 * for the module only). Random tests replay from the seed they print; pass a
 * seed as the first argument to replay one. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#include "check_alloc_begin.h"

#include "../../src/table.c"

#include "check_alloc_end.h"

/* ---- helpers ------------------------------------------------------------- */

#define VALUE(i) ((void *)(uintptr_t)((i) + 1))

/* Every structural promise the table makes, checked the slow way. */
static int table_invariants(const table *t) {
  size_t bytes = 0;
  if (t->buckets[1] == NULL && (t->size[1] != 0 || t->used[1] != 0)) return 0;
  if (t->buckets[0] == NULL && (t->size[0] != 0 || t->used[0] != 0)) return 0;
  if (t->used[0] + t->used[1] == 0 && (t->buckets[0] || t->buckets[1])) return 0;
  /* A move with nothing left to move must have been finished. */
  if (t->buckets[1] && t->used[0] == 0) return 0;
  for (int k = 0; k < 2; k++) {
    size_t count = 0;
    if (t->size[k] & (t->size[k] - 1)) return 0;
    for (size_t i = 0; i < t->size[k]; i++) {
      for (const table_entry *e = t->buckets[k][i]; e; e = e->next) {
        if ((e->hash & (t->size[k] - 1)) != i) return 0;
        if (e->hash != table_siphash13(t->seed, e->key, e->key_len)) return 0;
        if (k == 0 && t->buckets[1] && i < t->rehash_index) return 0;
        if (e->value == NULL) return 0;
        bytes += table_entry_bytes(e->key_len);
        count++;
      }
    }
    if (count != t->used[k]) return 0;
  }
  return bytes == t->entry_bytes;
}

/* ---- tests --------------------------------------------------------------- */

static void test_siphash_vectors(void) {
  /* From the reference implementation (github.com/veorq/SipHash) built for
   * 1-3 rounds: message 00 01 02 ... of each length, key 0 or k0 = 1. */
  static const struct {
    size_t len;
    uint64_t k0;
    uint64_t hash;
  } vectors[] = {
      {0, 0, UINT64_C(0xd1fba762150c532c)},  {1, 0, UINT64_C(0x68a914128e01e473)},
      {2, 0, UINT64_C(0x010bac45c41e3669)},  {3, 0, UINT64_C(0x4d4c9a4a8ef6e0ad)},
      {7, 0, UINT64_C(0x2f098ab0c751325a)},  {8, 0, UINT64_C(0xead411e67ebe2eea)},
      {9, 0, UINT64_C(0x75927f9d95124362)},  {15, 0, UINT64_C(0xf30eb725bb91c9ea)},
      {16, 0, UINT64_C(0x8972188433a5c5b7)}, {19, 0, UINT64_C(0x091f4a3329f87d19)},
      {32, 0, UINT64_C(0x31ef8061c910629b)}, {63, 0, UINT64_C(0x385d3e39e5f37359)},
      {0, 1, UINT64_C(0xc44a0ebf4e962581)},  {1, 1, UINT64_C(0xc7f8837cdc05230b)},
      {8, 1, UINT64_C(0x51738227823e2309)},  {63, 1, UINT64_C(0xa35bf11b84b78be0)},
  };
  unsigned char message[64];
  for (unsigned i = 0; i < sizeof(message); i++)
    message[i] = (unsigned char)i;
  for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
    uint64_t seed[2] = {vectors[i].k0, 0};
    CHECK(table_siphash13(seed, message, vectors[i].len) == vectors[i].hash);
  }
  uint64_t zero[2] = {0, 0};
  CHECK(table_siphash13(zero, "siphash", 7) == UINT64_C(0x8264ceeccb16bcbe));
  CHECK(table_siphash13(zero, NULL, 0) == UINT64_C(0xd1fba762150c532c));
}

static void test_seeds(void) {
  table *a = table_create();
  table *b = table_create();
  CHECK(a && b);
  if (!a || !b) return;
  CHECK(a->seed[0] != b->seed[0] || a->seed[1] != b->seed[1]);
  /* The same key must not hash alike in two tables. */
  CHECK(table_siphash13(a->seed, "id", 2) != table_siphash13(b->seed, "id", 2));
  table_destroy(a, NULL, NULL);
  table_destroy(b, NULL, NULL);

  uint64_t s1[2], s2[2];
  table_seed_fallback(s1, &s1);
  table_seed_fallback(s2, &s1);
  CHECK(s1[0] != s2[0] && s1[1] != s2[1]);
  CHECK(s1[0] != s1[1]);
}

static void test_basics(void) {
  table *t = table_create();
  CHECK(t != NULL);
  if (!t) return;
  size_t baseline = table_memory(t);
  void *old = VALUE(99);

  CHECK(table_count(t) == 0);
  CHECK(table_get(t, "a", 1) == NULL);
  CHECK(table_remove(t, "a", 1) == NULL);

  CHECK(table_put(t, "a", 1, VALUE(1), &old) == 0);
  CHECK(old == NULL);
  CHECK(table_put(t, "b", 1, VALUE(2), NULL) == 0);
  CHECK(table_count(t) == 2);
  CHECK(table_get(t, "a", 1) == VALUE(1));
  CHECK(table_get(t, "b", 1) == VALUE(2));
  CHECK(table_get(t, "c", 1) == NULL);
  CHECK(table_get(t, "ab", 2) == NULL);
  CHECK(table_memory(t) == baseline + TABLE_MIN_SIZE * sizeof(void *) + 2 * table_entry_bytes(1));

  /* Replacing keeps the count and hands back the earlier value. */
  CHECK(table_put(t, "a", 1, VALUE(3), &old) == 0);
  CHECK(old == VALUE(1));
  CHECK(table_count(t) == 2);
  CHECK(table_get(t, "a", 1) == VALUE(3));
  CHECK(table_put(t, "a", 1, VALUE(4), NULL) == 0);
  CHECK(table_get(t, "a", 1) == VALUE(4));

  CHECK(table_remove(t, "a", 1) == VALUE(4));
  CHECK(table_remove(t, "a", 1) == NULL);
  CHECK(table_get(t, "a", 1) == NULL);
  CHECK(table_count(t) == 1);
  CHECK(table_remove(t, "b", 1) == VALUE(2));
  CHECK(table_count(t) == 0);
  CHECK(table_memory(t) == baseline);
  CHECK(table_invariants(t));
  table_destroy(t, NULL, NULL);
}

static void test_binary_keys(void) {
  table *t = table_create();
  CHECK(t != NULL);
  if (!t) return;
  /* Keys that C strings would confuse: embedded and trailing NULs, the empty
   * key, prefixes of one another. */
  static const struct {
    const char *bytes;
    size_t len;
  } keys[] = {{"", 0},       {"\0", 1},       {"\0\0", 2},       {"a", 1},        {"a\0", 2},
              {"a\0b", 3},   {"a\0c", 3},     {"\0a", 2},        {"ab", 2},       {"\xff", 1},
              {"\xff\0", 2}, {"12345678", 8}, {"12345678\0", 9}, {"1234567\0", 8}};
  size_t n = sizeof(keys) / sizeof(keys[0]);
  for (size_t i = 0; i < n; i++)
    CHECK(table_put(t, keys[i].bytes, keys[i].len, VALUE(i), NULL) == 0);
  CHECK(table_count(t) == n);
  size_t wrong = 0;
  for (size_t i = 0; i < n; i++)
    if (table_get(t, keys[i].bytes, keys[i].len) != VALUE(i)) wrong++;
  CHECK(wrong == 0);

  /* The empty key may come with a NULL pointer. */
  CHECK(table_get(t, NULL, 0) == VALUE(0));
  CHECK(table_put(t, NULL, 0, VALUE(100), NULL) == 0);
  CHECK(table_get(t, "", 0) == VALUE(100));
  CHECK(table_remove(t, NULL, 0) == VALUE(100));
  CHECK(table_get(t, "", 0) == NULL);
  CHECK(table_get(t, "\0", 1) == VALUE(1));
  CHECK(table_remove(t, "a\0b", 3) == VALUE(5));
  CHECK(table_get(t, "a\0c", 3) == VALUE(6));
  CHECK(table_get(t, "a", 1) == VALUE(3));
  CHECK(table_count(t) == n - 2);
  CHECK(table_invariants(t));

  /* Keys are copied: the caller's buffer can change afterwards. */
  char buf[4] = "key";
  CHECK(table_put(t, buf, 3, VALUE(7), NULL) == 0);
  buf[0] = 'X';
  CHECK(table_get(t, "key", 3) == VALUE(7));
  CHECK(table_get(t, buf, 3) == NULL);
  table_destroy(t, NULL, NULL);
}

static void test_million(void) {
  enum { N = 1000000 };
  table *t = table_create();
  CHECK(t != NULL);
  if (!t) return;
  size_t baseline = table_memory(t);
  size_t failed = 0, wrong = 0, rehashing = 0;
  char key[16];

  for (uint32_t i = 0; i < N; i++) {
    int len = snprintf(key, sizeof(key), "c%" PRIu32, i);
    if (table_put(t, key, (size_t)len, VALUE(i), NULL) != 0) failed++;
    if (t->buckets[1]) rehashing++;
  }
  CHECK(failed == 0);
  CHECK(table_count(t) == N);
  CHECK(rehashing > 0);
  /* Load stays at or under 1 once growth settles, at most 2 during a move. */
  CHECK(t->size[0] + t->size[1] >= N);
  CHECK(table_memory(t) >= baseline + (size_t)N * (sizeof(table_entry) + 2));
  CHECK(table_invariants(t));

  for (uint32_t i = 0; i < N; i++) {
    int len = snprintf(key, sizeof(key), "c%" PRIu32, i);
    if (table_get(t, key, (size_t)len) != VALUE(i)) wrong++;
  }
  CHECK(wrong == 0);

  size_t shrinking = 0;
  for (uint32_t i = 0; i < N; i++) {
    int len = snprintf(key, sizeof(key), "c%" PRIu32, i);
    if (table_remove(t, key, (size_t)len) != VALUE(i)) wrong++;
    if (t->buckets[1] && t->size[1] < t->size[0]) shrinking++;
    if (i == N - 1000) CHECK(t->size[0] + t->size[1] < 64 * 1024);
  }
  CHECK(wrong == 0);
  CHECK(shrinking > 0);
  CHECK(table_count(t) == 0);
  CHECK(table_memory(t) == baseline);
  CHECK(table_invariants(t));
  table_destroy(t, NULL, NULL);
}

/* Random operations against a model: an array indexed by key number. Keys
 * are the 4-byte little-endian key number plus 0-20 random bytes (often NUL);
 * key 0 is the empty key. */
enum { MODEL_KEYS = 20000 };

typedef struct model {
  unsigned char key[MODEL_KEYS][24];
  size_t key_len[MODEL_KEYS];
  void *value[MODEL_KEYS];
  size_t count;
  size_t mismatches; /* entries a sweep saw that the model does not hold */
  uint64_t rng;
} model;

static uint32_t model_index(const void *key, size_t key_len) {
  const unsigned char *p = key;
  return key_len == 0
             ? 0
             : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int model_sweep_visit(const void *key, size_t key_len, void *value, void *ctx) {
  model *m = ctx;
  uint32_t i = model_index(key, key_len);
  if (i >= MODEL_KEYS || m->value[i] != value || m->key_len[i] != key_len ||
      (key_len && memcmp(m->key[i], key, key_len) != 0)) {
    m->mismatches++;
    return 0;
  }
  if (check_below(&m->rng, 3) != 0) return 0;
  m->value[i] = NULL;
  m->count--;
  return 1;
}

static void test_random_against_model(uint64_t seed) {
  static model m;
  memset(&m, 0, sizeof(m));
  m.rng = seed;
  for (uint32_t i = 1; i < MODEL_KEYS; i++) {
    m.key_len[i] = 4 + (size_t)check_below(&m.rng, 21);
    for (int b = 0; b < 4; b++)
      m.key[i][b] = (unsigned char)(i >> (8 * b));
    for (size_t b = 4; b < m.key_len[i]; b++)
      m.key[i][b] = check_below(&m.rng, 2) ? 0 : (unsigned char)check_rand(&m.rng);
  }

  table *t = table_create();
  CHECK(t != NULL);
  if (!t) return;
  size_t baseline = table_memory(t);
  size_t wrong = 0, broken = 0, ops_while_rehashing = 0, grows = 0, shrinks = 0, sweeps = 0;
  unsigned phase_put_percent = 4;

  for (uint32_t op = 0; op < 600000; op++) {
    /* Alternate long put-heavy and remove-heavy phases, so the table grows
     * and shrinks through many sizes with everything else interleaved. */
    if (op % 50000 == 0) phase_put_percent = phase_put_percent == 4 ? 80 : 4;
    int was_rehashing = t->buckets[1] != NULL;
    size_t size_before = t->size[0];
    uint32_t i = (uint32_t)check_below(&m.rng, op % 7 == 0 ? 64 : MODEL_KEYS);
    const void *key = m.key[i];
    size_t key_len = m.key_len[i];
    unsigned roll = (unsigned)check_below(&m.rng, 100);

    if (roll < phase_put_percent) {
      void *value = VALUE(op), *old = VALUE(0);
      if (table_put(t, key, key_len, value, &old) != 0) wrong++;
      if (old != m.value[i]) wrong++;
      if (!m.value[i]) m.count++;
      m.value[i] = value;
    } else if (roll < 96) {
      if (table_remove(t, key, key_len) != m.value[i]) wrong++;
      if (m.value[i]) m.count--;
      m.value[i] = NULL;
    } else if (roll < 99 || op % 97 != 0) {
      if (table_get(t, key, key_len) != m.value[i]) wrong++;
    } else {
      size_t before = m.count;
      size_t removed = table_sweep(t, model_sweep_visit, &m);
      sweeps++;
      if (before - removed != m.count) wrong++;
    }

    if (table_count(t) != m.count) wrong++;
    if (was_rehashing && t->buckets[1]) ops_while_rehashing++;
    if (!was_rehashing && t->buckets[1]) {
      if (t->size[1] > size_before)
        grows++;
      else
        shrinks++;
    }
    if (op % 1000 == 0 && !table_invariants(t)) broken++;
    if (op % 50000 == 49999) {
      for (uint32_t k = 0; k < MODEL_KEYS; k++)
        if (table_get(t, m.key[k], m.key_len[k]) != m.value[k]) wrong++;
    }
  }
  CHECK(wrong == 0);
  CHECK(broken == 0);
  CHECK(m.mismatches == 0);
  CHECK(sweeps > 10);
  CHECK(grows > 5);
  CHECK(shrinks > 5);
  CHECK(ops_while_rehashing > 1000);

  for (uint32_t k = 0; k < MODEL_KEYS; k++) {
    if (table_remove(t, m.key[k], m.key_len[k]) != m.value[k]) wrong++;
  }
  CHECK(wrong == 0);
  CHECK(table_count(t) == 0);
  CHECK(table_memory(t) == baseline);
  table_destroy(t, NULL, NULL);
  if (check_failed) fprintf(stderr, "table: random seed %" PRIu64 "\n", seed);
}

typedef struct sweep_state {
  size_t visited;
  unsigned char *removed; /* per key number */
  size_t bad;
} sweep_state;

static int sweep_every_other(const void *key, size_t key_len, void *value, void *ctx) {
  sweep_state *st = ctx;
  uint32_t i;
  if (key_len != sizeof(i)) {
    st->bad++;
    return 0;
  }
  memcpy(&i, key, sizeof(i));
  if (value != VALUE(i)) st->bad++;
  if (st->visited++ % 2 == 0) return 0;
  st->removed[i] = 1;
  return 1;
}

static int sweep_all(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  (void)value;
  (*(size_t *)ctx)++;
  return 1;
}

static void sweep_round(size_t n, int during_rehash) {
  table *t = table_create();
  CHECK(t != NULL);
  if (!t) return;
  size_t baseline = table_memory(t);
  unsigned char *removed = calloc(n, 1);
  CHECK(removed != NULL);
  if (!removed) return;
  for (uint32_t i = 0; i < n; i++)
    table_put(t, &i, sizeof(i), VALUE(i), NULL);
  if (during_rehash && !t->buckets[1]) table_start_resize(t, t->size[0] * 2);
  CHECK(!during_rehash || t->buckets[1] != NULL);

  sweep_state st = {0, removed, 0};
  size_t gone = table_sweep(t, sweep_every_other, &st);
  CHECK(st.bad == 0);
  CHECK(st.visited == n);
  CHECK(gone == n / 2);
  CHECK(table_count(t) == n - n / 2);
  CHECK(table_invariants(t));
  size_t wrong = 0;
  for (uint32_t i = 0; i < n; i++) {
    void *v = table_get(t, &i, sizeof(i));
    if (v != (removed[i] ? NULL : VALUE(i))) wrong++;
  }
  CHECK(wrong == 0);

  size_t all = 0;
  CHECK(table_sweep(t, sweep_all, &all) == n - n / 2);
  CHECK(all == n - n / 2);
  CHECK(table_count(t) == 0);
  CHECK(table_memory(t) == baseline);
  CHECK(table_invariants(t));
  CHECK(table_sweep(t, sweep_all, &all) == 0);
  free(removed);
  table_destroy(t, NULL, NULL);
}

static void test_sweep(void) {
  sweep_round(10000, 0);
  sweep_round(10000, 1);
  sweep_round(1, 0);
}

static void count_free(void *value, void *ctx) {
  (void)value;
  (*(size_t *)ctx)++;
}

static void test_destroy(void) {
  table *t = table_create();
  CHECK(t != NULL);
  if (!t) return;
  for (uint32_t i = 0; i < 1000; i++)
    table_put(t, &i, sizeof(i), VALUE(i), NULL);
  size_t freed = 0;
  table_destroy(t, count_free, &freed);
  CHECK(freed == 1000);
  table_destroy(NULL, NULL, NULL);
}

static void test_out_of_memory(void) {
  check_alloc_fail_after(0);
  CHECK(table_create() == NULL);
  check_alloc_fail_after(-1);

  /* Fail each allocation of a first put in turn, then all of them: the
   * table must come out exactly as it went in. */
  table *t = table_create();
  CHECK(t != NULL);
  if (!t) return;
  size_t baseline = table_memory(t);
  for (long n = 0; n < 2; n++) {
    check_alloc_fail_after(n);
    CHECK(table_put(t, "k", 1, VALUE(1), NULL) == -1);
    check_alloc_fail_after(-1);
    CHECK(table_count(t) == 0);
    CHECK(table_memory(t) == baseline);
    CHECK(table_get(t, "k", 1) == NULL);
  }

  /* Replacing needs no memory, so it works even now. */
  CHECK(table_put(t, "k", 1, VALUE(1), NULL) == 0);
  check_alloc_fail_after(0);
  void *old = NULL;
  CHECK(table_put(t, "k", 1, VALUE(2), &old) == 0);
  CHECK(old == VALUE(1));
  CHECK(table_put(t, "other", 5, VALUE(3), NULL) == -1);
  CHECK(table_count(t) == 1);
  check_alloc_fail_after(-1);

  /* A grow that cannot get its array is put off, not an error. */
  for (uint32_t i = 0; i < TABLE_MIN_SIZE - 1; i++)
    CHECK(table_put(t, &i, sizeof(i), VALUE(i), NULL) == 0);
  CHECK(table_count(t) == TABLE_MIN_SIZE);
  check_alloc_fail_after(1); /* the entry is allocated, the new buckets are not */
  uint32_t more = 1000;
  CHECK(table_put(t, &more, sizeof(more), VALUE(more), NULL) == 0);
  CHECK(t->buckets[1] == NULL);
  CHECK(t->size[0] == TABLE_MIN_SIZE);
  check_alloc_fail_after(-1);
  CHECK(table_get(t, &more, sizeof(more)) == VALUE(more));
  more++;
  CHECK(table_put(t, &more, sizeof(more), VALUE(more), NULL) == 0);
  CHECK(t->buckets[1] != NULL || t->size[0] > TABLE_MIN_SIZE);
  CHECK(table_invariants(t));
  table_destroy(t, NULL, NULL);
}

int main(int argc, char **argv) {
  uint64_t seed = check_seed(argc, argv, UINT64_C(20240601));
  test_siphash_vectors();
  test_seeds();
  test_basics();
  test_binary_keys();
  test_sweep();
  test_destroy();
  test_out_of_memory();
  test_random_against_model(seed);
  /* A table broken in the ways above can make this quadratic: fail fast. */
  if (check_failed == 0) test_million();
  return check_report("table");
}
