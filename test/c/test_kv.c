/* Unit tests for src/kv.c.
 *
 * kv.c, table.c and expiry.c are included here (not linked) so that their
 * allocations go through check.h's failing allocator: every out-of-memory
 * path of kv_set and kv_expire_at is driven and the store compared with what
 * it was. The rest goes through the public API only: semantics, a random run
 * against a model, and memory accounting back to its baseline. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#include "check_alloc_begin.h"

#include "../../src/expiry.c"
#include "../../src/kv.c"
#include "../../src/table.c"

#include "check_alloc_end.h"

static kv_stats stats_of(const kv *s) {
  kv_stats st;
  kv_get_stats(s, &st);
  return st;
}

static int stats_equal(kv_stats a, kv_stats b) {
  return a.namespaces == b.namespaces && a.keys == b.keys && a.expiring == b.expiring &&
         a.bytes == b.bytes;
}

static int value_is(kv *s, const char *ns, size_t ns_len, const char *key, size_t key_len,
                    const char *want, size_t want_len) {
  size_t len = (size_t)-1;
  const void *v = kv_get(s, ns, ns_len, key, key_len, &len);
  return v != NULL && len == want_len && (want_len == 0 || memcmp(v, want, want_len) == 0);
}

#define S(lit) lit, sizeof(lit) - 1 /* a string literal as bytes and length */

static void test_basics(void) {
  kv *s = kv_create();
  CHECK(s != NULL);
  if (!s) return;
  kv_stats base = stats_of(s);
  size_t len = 0;
  CHECK(base.namespaces == 0 && base.keys == 0 && base.expiring == 0 && base.bytes > 0);

  CHECK(kv_get(s, S("c1"), S("k"), &len) == NULL);
  CHECK(kv_has(s, S("c1"), S("k")) == 0);
  CHECK(kv_del(s, S("c1"), S("k")) == 0);
  CHECK(kv_clear(s, S("c1")) == 0);

  CHECK(kv_set(s, S("c1"), S("k"), S("value")) == 0);
  CHECK(kv_set(s, S("c1"), S("k2"), S("two")) == 0);
  CHECK(kv_set(s, S("c2"), S("k"), S("other")) == 0);
  CHECK(value_is(s, S("c1"), S("k"), S("value")));
  CHECK(value_is(s, S("c1"), S("k2"), S("two")));
  CHECK(value_is(s, S("c2"), S("k"), S("other")));
  CHECK(kv_has(s, S("c1"), S("k")) == 1);
  CHECK(kv_has(s, S("c1"), S("k3")) == 0);
  CHECK(kv_has(s, S("c3"), S("k")) == 0);
  kv_stats st = stats_of(s);
  CHECK(st.namespaces == 2 && st.keys == 3 && st.expiring == 0);
  CHECK(st.bytes >= base.bytes + 5 + 3 + 5);

  /* Replace, with a longer and then an empty value. */
  CHECK(kv_set(s, S("c1"), S("k"), S("a longer value than before")) == 0);
  CHECK(value_is(s, S("c1"), S("k"), S("a longer value than before")));
  CHECK(kv_set(s, S("c1"), S("k"), NULL, 0) == 0);
  const void *v = kv_get(s, S("c1"), S("k"), &len);
  CHECK(v != NULL && len == 0);
  CHECK(kv_has(s, S("c1"), S("k")) == 1);
  CHECK(stats_of(s).keys == 3);

  /* Bytes anywhere: NULs inside names, keys and values; empty names. */
  CHECK(kv_set(s, S("c\0x"), S("k\0y"), S("v\0z\0")) == 0);
  CHECK(kv_set(s, S(""), S(""), S("empty names")) == 0);
  CHECK(value_is(s, S("c\0x"), S("k\0y"), S("v\0z\0")));
  CHECK(kv_get(s, S("c\0x"), S("k"), &len) == NULL);
  CHECK(kv_get(s, S("c"), S("k\0y"), &len) == NULL);
  CHECK(value_is(s, NULL, 0, NULL, 0, S("empty names")));
  CHECK(stats_of(s).namespaces == 4);

  CHECK(kv_del(s, S("c1"), S("k")) == 1);
  CHECK(kv_del(s, S("c1"), S("k")) == 0);
  CHECK(kv_has(s, S("c1"), S("k")) == 0);
  CHECK(kv_has(s, S("c1"), S("k2")) == 1);
  /* The last key gone, the namespace goes with it. */
  CHECK(kv_del(s, S("c1"), S("k2")) == 1);
  CHECK(stats_of(s).namespaces == 3);
  CHECK(kv_clear(s, S("c2")) == 1);
  CHECK(kv_clear(s, S("c2")) == 0);
  CHECK(kv_get(s, S("c2"), S("k"), &len) == NULL);
  CHECK(kv_clear(s, S("c\0x")) == 1);
  CHECK(kv_del(s, S(""), S("")) == 1);
  CHECK(stats_equal(stats_of(s), base));
  kv_destroy(s);
  kv_destroy(NULL);
}

static void test_expiry(void) {
  kv *s = kv_create();
  CHECK(s != NULL);
  if (!s) return;
  kv_stats base = stats_of(s);
  uint64_t deadline = 0;
  size_t len;

  /* Nothing to expire: not created by expire_at. */
  CHECK(kv_expire_at(s, S("ghost"), 10) == 0);
  CHECK(kv_persist(s, S("ghost")) == 0);
  CHECK(stats_equal(stats_of(s), base));
  CHECK(kv_next_deadline(s, &deadline) == 0);

  CHECK(kv_set(s, S("a"), S("k"), S("1")) == 0);
  CHECK(kv_set(s, S("b"), S("k"), S("2")) == 0);
  CHECK(kv_set(s, S("c"), S("k"), S("3")) == 0);
  CHECK(kv_expire_at(s, S("a"), 30) == 1);
  CHECK(kv_expire_at(s, S("b"), 10) == 1);
  CHECK(kv_expire_at(s, S("c"), 50) == 1);
  CHECK(kv_expire_at(s, S("c"), 20) == 1); /* replaces the earlier deadline */
  CHECK(stats_of(s).expiring == 3);
  CHECK(kv_next_deadline(s, &deadline) == 1 && deadline == 10);

  /* Writing does not move a deadline. */
  CHECK(kv_set(s, S("b"), S("k"), S("2b")) == 0);
  CHECK(kv_set(s, S("b"), S("k2"), S("more")) == 0);
  CHECK(kv_next_deadline(s, &deadline) == 1 && deadline == 10);

  CHECK(kv_expire_due(s, 9, 100) == 0);
  CHECK(kv_expire_due(s, 15, 100) == 1);
  CHECK(kv_get(s, S("b"), S("k"), &len) == NULL);
  CHECK(kv_get(s, S("b"), S("k2"), &len) == NULL);
  CHECK(value_is(s, S("a"), S("k"), S("1")));
  CHECK(kv_next_deadline(s, &deadline) == 1 && deadline == 20);
  /* max bounds the work; the earliest goes first. */
  CHECK(kv_expire_due(s, 100, 1) == 1);
  CHECK(kv_get(s, S("c"), S("k"), &len) == NULL);
  CHECK(value_is(s, S("a"), S("k"), S("1")));
  CHECK(kv_expire_due(s, 100, 0) == 0);

  /* persist keeps the data and drops the deadline. */
  CHECK(kv_persist(s, S("a")) == 1);
  CHECK(kv_persist(s, S("a")) == 0);
  CHECK(kv_next_deadline(s, &deadline) == 0);
  CHECK(kv_expire_due(s, UINT64_MAX, 100) == 0);
  CHECK(value_is(s, S("a"), S("k"), S("1")));
  CHECK(stats_of(s).expiring == 0);

  /* A namespace emptied while it has a deadline waits for it... */
  CHECK(kv_expire_at(s, S("a"), 200) == 1);
  CHECK(kv_del(s, S("a"), S("k")) == 1);
  kv_stats st = stats_of(s);
  CHECK(st.namespaces == 1 && st.keys == 0 && st.expiring == 1);
  CHECK(kv_expire_at(s, S("a"), 300) == 1); /* still there to reschedule */
  /* ...and a write into it keeps that deadline. */
  CHECK(kv_set(s, S("a"), S("k"), S("again")) == 0);
  CHECK(kv_next_deadline(s, &deadline) == 1 && deadline == 300);
  CHECK(kv_del(s, S("a"), S("k")) == 1);
  /* Without the deadline, an empty namespace goes at once. */
  CHECK(kv_persist(s, S("a")) == 1);
  CHECK(stats_equal(stats_of(s), base));
  CHECK(kv_expire_at(s, S("a"), 10) == 0);

  /* clear cancels the deadline; a later write starts with none. */
  CHECK(kv_set(s, S("d"), S("k"), S("4")) == 0);
  CHECK(kv_expire_at(s, S("d"), 40) == 1);
  CHECK(kv_clear(s, S("d")) == 1);
  CHECK(kv_next_deadline(s, &deadline) == 0);
  CHECK(kv_set(s, S("d"), S("k"), S("5")) == 0);
  CHECK(kv_expire_due(s, UINT64_MAX, 100) == 0);
  CHECK(value_is(s, S("d"), S("k"), S("5")));
  CHECK(kv_expire_at(s, S("d"), 0) == 1);
  CHECK(kv_expire_due(s, 0, 100) == 1);
  CHECK(stats_equal(stats_of(s), base));
  kv_destroy(s);
}

static void test_many_namespaces(void) {
  enum { N = 100000 };
  kv *s = kv_create();
  CHECK(s != NULL);
  if (!s) return;
  kv_stats base = stats_of(s);
  char ns[32], value[64];
  size_t failed = 0;
  for (int i = 0; i < N; i++) {
    int ns_len = snprintf(ns, sizeof(ns), "client-%d", i);
    int value_len = snprintf(value, sizeof(value), "{\"nickname\":\"user %d\"}", i);
    if (kv_set(s, ns, (size_t)ns_len, S("nickname"), value, (size_t)value_len) != 0) failed++;
    if (i % 3 == 0 && kv_set(s, ns, (size_t)ns_len, S("room"), S("lobby")) != 0) failed++;
    /* Deadlines out of insertion order. */
    uint64_t deadline = 1000 + (uint64_t)((i * 7919) % N);
    if (kv_expire_at(s, ns, (size_t)ns_len, deadline) != 1) failed++;
  }
  CHECK(failed == 0);
  kv_stats st = stats_of(s);
  CHECK(st.namespaces == N);
  CHECK(st.keys == N + (N + 2) / 3);
  CHECK(st.expiring == N);
  CHECK(st.bytes > base.bytes + (size_t)N * 20);

  /* Expire in batches as the broker does, checking the order as we go. */
  uint64_t now = 1000, deadline = 0;
  size_t removed = 0, early = 0;
  while (kv_next_deadline(s, &deadline)) {
    size_t n = kv_expire_due(s, now, 5000);
    removed += n;
    st = stats_of(s);
    if (st.namespaces != N - removed || st.expiring != N - removed) early++;
    if (kv_next_deadline(s, &deadline) && deadline <= now && n < 5000) early++;
    now += 2500;
  }
  CHECK(early == 0);
  CHECK(removed == N);
  CHECK(stats_equal(stats_of(s), base));
  kv_destroy(s);
}

/* ---- random operations against a model ------------------------------------ */

enum { MODEL_NS = 40, MODEL_KEYS = 12 };

typedef struct model_ns {
  int exists;
  int scheduled;
  uint64_t deadline;
  int present[MODEL_KEYS];
  size_t len[MODEL_KEYS];
  unsigned char value[MODEL_KEYS][24];
} model_ns;

/* Names and keys are small byte strings with NULs in them; index 0 is the
 * empty string. */
static size_t model_name(unsigned char *out, int i) {
  if (i == 0) return 0;
  out[0] = 'n';
  out[1] = 0;
  out[2] = (unsigned char)i;
  return 3;
}

static size_t model_key(unsigned char *out, int i) {
  if (i == 0) return 0;
  out[0] = (unsigned char)i;
  out[1] = 0;
  return (size_t)(1 + i % 2);
}

static int model_key_count(const model_ns *m) {
  int n = 0;
  for (int k = 0; k < MODEL_KEYS; k++)
    n += m->present[k];
  return n;
}

static void model_forget_if_idle(model_ns *m) {
  if (!m->scheduled && model_key_count(m) == 0) m->exists = 0;
}

static void test_random_against_model(uint64_t seed) {
  static model_ns models[MODEL_NS];
  memset(models, 0, sizeof(models));
  uint64_t rng = seed, now = 0;
  kv *s = kv_create();
  CHECK(s != NULL);
  if (!s) return;
  kv_stats base = stats_of(s);
  size_t wrong = 0, expired = 0;
  unsigned char name[4], key[4], value[24];

  for (int op = 0; op < 200000; op++) {
    int i = (int)check_below(&rng, MODEL_NS), k = (int)check_below(&rng, MODEL_KEYS);
    model_ns *m = &models[i];
    size_t name_len = model_name(name, i), key_len = model_key(key, k);
    switch (check_below(&rng, 16)) {
    case 0:
    case 1:
    case 2:
    case 3: {
      size_t len = (size_t)check_below(&rng, sizeof(value));
      for (size_t b = 0; b < len; b++)
        value[b] = (unsigned char)check_rand(&rng);
      if (kv_set(s, name, name_len, key, key_len, value, len) != 0) wrong++;
      m->exists = 1;
      m->present[k] = 1;
      m->len[k] = len;
      memcpy(m->value[k], value, len);
      break;
    }
    case 4:
    case 5:
    case 6: {
      size_t len = 0;
      const void *v = kv_get(s, name, name_len, key, key_len, &len);
      if (m->exists && m->present[k]) {
        if (!v || len != m->len[k] || (len && memcmp(v, m->value[k], len) != 0)) wrong++;
      } else if (v) {
        wrong++;
      }
      if (kv_has(s, name, name_len, key, key_len) != (m->exists && m->present[k])) wrong++;
      break;
    }
    case 7:
    case 8:
    case 9:
      if (kv_del(s, name, name_len, key, key_len) != (m->exists && m->present[k])) wrong++;
      m->present[k] = 0;
      model_forget_if_idle(m);
      break;
    case 10:
      if (kv_clear(s, name, name_len) != m->exists) wrong++;
      memset(m, 0, sizeof(*m));
      break;
    case 11:
    case 12: {
      /* Deadlines are unique (the namespace number in the low bits), so
       * which namespaces a bounded kv_expire_due takes is well defined. */
      uint64_t deadline = (now / 64 + check_below(&rng, 200)) * 64 + (uint64_t)i;
      if (kv_expire_at(s, name, name_len, deadline) != m->exists) wrong++;
      if (m->exists) {
        m->scheduled = 1;
        m->deadline = deadline;
      }
      break;
    }
    case 13:
      if (kv_persist(s, name, name_len) != (m->exists && m->scheduled)) wrong++;
      m->scheduled = 0;
      if (m->exists) model_forget_if_idle(m);
      break;
    default: {
      now += check_below(&rng, 64 * 8);
      size_t max = 1 + (size_t)check_below(&rng, 4);
      size_t n = kv_expire_due(s, now, max);
      expired += n;
      size_t taken = 0;
      while (taken < max) {
        model_ns *first = NULL;
        for (int j = 0; j < MODEL_NS; j++)
          if (models[j].exists && models[j].scheduled && models[j].deadline <= now &&
              (!first || models[j].deadline < first->deadline))
            first = &models[j];
        if (!first) break;
        memset(first, 0, sizeof(*first));
        taken++;
      }
      if (n != taken) wrong++;
    }
    }

    size_t namespaces = 0, keys = 0, expiring = 0;
    uint64_t earliest = UINT64_MAX, deadline = 0;
    for (int j = 0; j < MODEL_NS; j++) {
      namespaces += (size_t)models[j].exists;
      keys += (size_t)model_key_count(&models[j]);
      if (models[j].scheduled) {
        expiring++;
        if (models[j].deadline < earliest) earliest = models[j].deadline;
      }
    }
    kv_stats st = stats_of(s);
    if (st.namespaces != namespaces || st.keys != keys || st.expiring != expiring) wrong++;
    if (kv_next_deadline(s, &deadline) != (expiring > 0)) wrong++;
    if (expiring && deadline != earliest) wrong++;
  }
  CHECK(wrong == 0);
  CHECK(expired > 1000);

  for (int i = 0; i < MODEL_NS; i++) {
    size_t name_len = model_name(name, i);
    if (kv_clear(s, name, name_len) != models[i].exists) wrong++;
  }
  CHECK(wrong == 0);
  CHECK(stats_equal(stats_of(s), base));
  kv_destroy(s);
  if (check_failed) fprintf(stderr, "kv: random seed %" PRIu64 "\n", seed);
}

/* ---- out of memory -------------------------------------------------------- */

static void test_out_of_memory(void) {
  check_alloc_fail_after(0);
  CHECK(kv_create() == NULL);
  check_alloc_fail_after(1);
  CHECK(kv_create() == NULL);
  check_alloc_fail_after(-1);

  kv *s = kv_create();
  CHECK(s != NULL);
  if (!s) return;
  size_t len;

  /* Each step of a set that creates a namespace, failed in turn. */
  kv_stats before = stats_of(s);
  long n = 0, failures = 0;
  for (;; n++) {
    check_alloc_fail_after(n);
    int rc = kv_set(s, S("fresh"), S("key"), S("value"));
    check_alloc_fail_after(-1);
    if (rc == 0) break;
    failures++;
    if (rc != -1 || !stats_equal(stats_of(s), before)) break;
    if (kv_get(s, S("fresh"), S("key"), &len) != NULL) break;
  }
  CHECK(failures >= 4); /* value, namespace, its table, entry, buckets... */
  CHECK(value_is(s, S("fresh"), S("key"), S("value")));

  /* A new key in an existing namespace, and a replacement. */
  before = stats_of(s);
  for (n = 0;; n++) {
    check_alloc_fail_after(n);
    int rc = kv_set(s, S("fresh"), S("key2"), S("value2"));
    check_alloc_fail_after(-1);
    if (rc == 0) break;
    if (rc != -1 || !stats_equal(stats_of(s), before)) break;
  }
  CHECK(n >= 1); /* a small namespace: the value is the only allocation */
  CHECK(value_is(s, S("fresh"), S("key2"), S("value2")));

  /* The key past KV_SMALL_MAX moves them all into a table: each step of
   * that failed in turn leaves every key as it was. */
  kv *g = kv_create();
  CHECK(g != NULL);
  if (!g) return;
  CHECK(kv_set(g, S("grow"), S("k1"), S("v1")) == 0);
  CHECK(kv_set(g, S("grow"), S("k2"), S("v2")) == 0);
  CHECK(kv_set(g, S("grow"), S("k3"), S("v3")) == 0);
  CHECK(kv_set(g, S("grow"), S("k4"), S("v4")) == 0);
  kv_stats small = stats_of(g);
  long grow_failures = 0;
  for (n = 0;; n++) {
    check_alloc_fail_after(n);
    int rc = kv_set(g, S("grow"), S("k5"), S("v5"));
    check_alloc_fail_after(-1);
    if (rc == 0) break;
    grow_failures++;
    if (rc != -1 || !stats_equal(stats_of(g), small)) break;
    if (!value_is(g, S("grow"), S("k1"), S("v1")) || !value_is(g, S("grow"), S("k4"), S("v4")))
      break;
  }
  CHECK(grow_failures >= 3); /* value, table, entries, buckets */
  CHECK(value_is(g, S("grow"), S("k1"), S("v1")));
  CHECK(value_is(g, S("grow"), S("k3"), S("v3")));
  CHECK(value_is(g, S("grow"), S("k5"), S("v5")));
  CHECK(stats_of(g).keys == 5);
  kv_destroy(g);
  before = stats_of(s);
  check_alloc_fail_after(0);
  CHECK(kv_set(s, S("fresh"), S("key"), S("changed")) == -1);
  check_alloc_fail_after(-1);
  CHECK(stats_equal(stats_of(s), before));
  CHECK(value_is(s, S("fresh"), S("key"), S("value")));

  /* A deadline that needs the heap array. */
  check_alloc_fail_after(0);
  CHECK(kv_expire_at(s, S("fresh"), 5) == -1);
  check_alloc_fail_after(-1);
  CHECK(stats_equal(stats_of(s), before));
  uint64_t deadline;
  CHECK(kv_next_deadline(s, &deadline) == 0);
  CHECK(kv_expire_at(s, S("fresh"), 5) == 1);
  /* Moving it needs none; nor do reads, deletes and expiry. */
  check_alloc_fail_after(0);
  CHECK(kv_expire_at(s, S("fresh"), 6) == 1);
  CHECK(value_is(s, S("fresh"), S("key"), S("value")));
  CHECK(kv_del(s, S("fresh"), S("key2")) == 1);
  CHECK(kv_expire_due(s, 6, 10) == 1);
  check_alloc_fail_after(-1);
  CHECK(stats_of(s).namespaces == 0);
  kv_destroy(s);
}

/* kv_slot_*: a namespace kept in a caller's slot is used without a lookup,
 * and the slot is cleared whenever the store frees that namespace, by
 * whatever call (del of its last key, clear, expiry, destroy). */
static void test_slots(void) {
  kv *s = kv_create();
  CHECK(s != NULL);
  if (!s) return;
  kv_stats base = stats_of(s);
  kv_namespace *slot = NULL;
  size_t len = 0;

  /* A read of a namespace that is not there leaves the slot empty. */
  CHECK(kv_slot_get(s, &slot, S("c1"), S("k"), &len) == NULL);
  CHECK(slot == NULL);
  /* A write creates it and leaves it in the slot. */
  CHECK(kv_slot_set(s, &slot, S("c1"), S("k"), S("v1")) == 0);
  CHECK(slot != NULL);
  kv_namespace *kept = slot;
  CHECK(value_is(s, S("c1"), S("k"), S("v1")));
  CHECK(kv_slot_get(s, &slot, S("c1"), S("k"), &len) != NULL && len == 2);
  CHECK(kv_slot_set(s, &slot, S("c1"), S("k2"), S("v2")) == 0);
  CHECK(slot == kept);
  /* Writes by name land in the same namespace. */
  CHECK(kv_set(s, S("c1"), S("k3"), S("v3")) == 0);
  CHECK(kv_slot_get(s, &slot, S("c1"), S("k3"), &len) != NULL && len == 2);

  /* Deleting the last key frees the namespace: the slot is cleared. */
  CHECK(kv_slot_del(s, &slot, S("c1"), S("k")) == 1);
  CHECK(kv_del(s, S("c1"), S("k2")) == 1);
  CHECK(slot == kept);
  CHECK(kv_slot_del(s, &slot, S("c1"), S("k3")) == 1);
  CHECK(slot == NULL);
  CHECK(stats_equal(stats_of(s), base));

  /* A namespace written by name is found once, then kept. */
  CHECK(kv_set(s, S("c2"), S("k"), S("x")) == 0);
  CHECK(kv_slot_get(s, &slot, S("c2"), S("k"), &len) != NULL);
  CHECK(slot != NULL);
  CHECK(kv_clear(s, S("c2")) == 1);
  CHECK(slot == NULL);

  /* Expiry frees it too. */
  CHECK(kv_slot_set(s, &slot, S("c3"), S("k"), S("x")) == 0);
  CHECK(kv_expire_at(s, S("c3"), 10) == 1);
  CHECK(slot != NULL);
  CHECK(kv_expire_due(s, 10, 10) == 1);
  CHECK(slot == NULL);
  CHECK(kv_slot_get(s, &slot, S("c3"), S("k"), &len) == NULL);

  /* A second slot takes the namespace over; the first is cleared. */
  kv_namespace *other = NULL;
  CHECK(kv_slot_set(s, &slot, S("c4"), S("k"), S("x")) == 0);
  CHECK(kv_slot_get(s, &other, S("c4"), S("k"), &len) != NULL);
  CHECK(other != NULL && slot == NULL);
  /* A released slot is not written to when the namespace goes. */
  kv_slot_release(&other);
  CHECK(other == NULL);
  kv_namespace *sentinel = (kv_namespace *)&base;
  other = sentinel;
  CHECK(kv_clear(s, S("c4")) == 1);
  CHECK(other == sentinel);
  other = NULL;
  kv_slot_release(&other); /* an empty slot: nothing to do */
  CHECK(stats_equal(stats_of(s), base));

  /* Out of memory creating it: nothing changes, the slot stays empty. */
  check_alloc_fail_after(1);
  CHECK(kv_slot_set(s, &slot, S("c5"), S("k"), S("x")) == -1);
  check_alloc_fail_after(-1);
  CHECK(slot == NULL);
  CHECK(stats_equal(stats_of(s), base));

  /* kv_destroy clears the slots of what it frees. */
  CHECK(kv_slot_set(s, &slot, S("c6"), S("k"), S("x")) == 0);
  CHECK(slot != NULL);
  kv_destroy(s);
  CHECK(slot == NULL);
}

int main(int argc, char **argv) {
  uint64_t seed = check_seed(argc, argv, UINT64_C(20240601));
  test_basics();
  test_expiry();
  test_out_of_memory();
  test_random_against_model(seed);
  test_many_namespaces();
  test_slots();
  return check_report("kv");
}
