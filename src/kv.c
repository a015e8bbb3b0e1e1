/* kv: namespaces of key/value pairs with per-namespace expiry (see kv.h).
 *
 * A table maps each namespace name to a kv_namespace, which holds its keys
 * (a few in a plain array, more in a table of their own) and the heap node
 * for its deadline. Each value is one allocation: its lengths, its bytes,
 * then a copy of its key. The namespace keeps its own copy of its
 * name because expiry reaches it through the heap node, not through a lookup,
 * and must still find it in the namespaces table to take it out.
 *
 * A caller may keep a namespace's pointer in a slot of its own (kv_slot_*):
 * the namespace remembers that slot and clears it when it is freed, so the
 * caller finds it without a second lookup by name.
 *
 * Memory is counted as it changes rather than summed on demand, so the
 * broker can report it on every stats request whatever the store's size.
 * Every call into a key table can change that table's footprint (a lookup may
 * finish a rehash and free the old array), hence the before/after pairs
 * around them. */
#include "kv.h"

#include <stdlib.h>
#include <string.h>

#include "expiry.h"
#include "table.h"

/* A value, with a copy of its key after its bytes: a small namespace finds
 * its keys there, with no table of its own. */
typedef struct kv_value {
  size_t len;
  size_t key_len;
  unsigned char bytes[]; /* the value's len bytes, then the key's key_len */
} kv_value;

/* Most namespaces are one client's few keys: up to KV_SMALL_MAX of them sit
 * in a plain array, searched in turn, and a namespace gets a hash table
 * (a seeded one, safe from colliding keys) only past that. */
#define KV_SMALL_MAX 4

struct kv_namespace {
  table *keys; /* NULL while the keys fit in small */
  kv_value *small[KV_SMALL_MAX];
  size_t small_count;
  expiry_node expiry;
  kv_namespace **slot; /* a caller's pointer to it (kv_slot_*), or NULL */
  size_t name_len;
  unsigned char name[];
};

struct kv {
  table *namespaces;
  expiry_heap deadlines;
  size_t keys;
  /* Namespace structs, their key tables and the values; the namespaces
   * table and the heap array are asked for their size when needed. */
  size_t bytes;
};

static size_t kv_value_bytes(const kv_value *v) {
  return sizeof(kv_value) + v->len + v->key_len;
}

static size_t kv_namespace_bytes(size_t name_len) {
  return sizeof(kv_namespace) + name_len;
}

static kv_namespace *kv_namespace_of(expiry_node *node) {
  return (kv_namespace *)(void *)((char *)node - offsetof(kv_namespace, expiry));
}

static size_t kv_key_count(const kv_namespace *n) {
  return n->keys ? table_count(n->keys) : n->small_count;
}

static size_t kv_keys_memory(const kv_namespace *n) {
  return n->keys ? table_memory(n->keys) : 0;
}

/* ---- key calls, with their memory accounted ------------------------------ */

/* Index of key in a small namespace, or small_count. */
static size_t kv_small_find(const kv_namespace *n, const void *key, size_t key_len) {
  size_t i = 0;
  for (; i < n->small_count; i++) {
    const kv_value *v = n->small[i];
    if (v->key_len == key_len && (key_len == 0 || memcmp(v->bytes + v->len, key, key_len) == 0))
      break;
  }
  return i;
}

static kv_value *kv_key_get(kv *s, kv_namespace *n, const void *key, size_t key_len) {
  if (!n->keys) {
    size_t i = kv_small_find(n, key, key_len);
    return i < n->small_count ? n->small[i] : NULL;
  }
  size_t before = table_memory(n->keys);
  kv_value *v = table_get(n->keys, key, key_len);
  s->bytes = s->bytes - before + table_memory(n->keys);
  return v;
}

static kv_value *kv_key_remove(kv *s, kv_namespace *n, const void *key, size_t key_len) {
  if (!n->keys) {
    size_t i = kv_small_find(n, key, key_len);
    if (i == n->small_count) return NULL;
    kv_value *v = n->small[i];
    n->small[i] = n->small[--n->small_count];
    return v;
  }
  size_t before = table_memory(n->keys);
  kv_value *v = table_remove(n->keys, key, key_len);
  s->bytes = s->bytes - before + table_memory(n->keys);
  return v;
}

/* Moves a full small namespace's keys, and v, into a table of their own.
 * -1 when out of memory, with nothing changed. */
static int kv_key_grow(kv *s, kv_namespace *n, const void *key, size_t key_len, kv_value *v) {
  table *t = table_create();
  if (!t) return -1;
  int rc = 0;
  for (size_t i = 0; i < n->small_count && rc == 0; i++) {
    kv_value *sv = n->small[i];
    rc = table_put(t, sv->bytes + sv->len, sv->key_len, sv, NULL);
  }
  if (rc == 0) rc = table_put(t, key, key_len, v, NULL);
  if (rc != 0) {
    table_destroy(t, NULL, NULL); /* the values are still the array's */
    return -1;
  }
  n->keys = t;
  n->small_count = 0;
  s->bytes += table_memory(t);
  return 0;
}

static int kv_key_put(kv *s, kv_namespace *n, const void *key, size_t key_len, kv_value *v,
                      kv_value **old) {
  *old = NULL;
  if (!n->keys) {
    size_t i = kv_small_find(n, key, key_len);
    if (i < n->small_count) {
      *old = n->small[i];
      n->small[i] = v;
      return 0;
    }
    if (n->small_count < KV_SMALL_MAX) {
      n->small[n->small_count++] = v;
      return 0;
    }
    return kv_key_grow(s, n, key, key_len, v);
  }
  size_t before = table_memory(n->keys);
  void *replaced = NULL;
  int rc = table_put(n->keys, key, key_len, v, &replaced);
  s->bytes = s->bytes - before + table_memory(n->keys);
  *old = replaced;
  return rc;
}

/* ---- namespaces --------------------------------------------------------- */

static void kv_value_free(void *value, void *ctx) {
  kv *s = ctx;
  kv_value *v = value;
  if (s) s->bytes -= kv_value_bytes(v);
  free(v);
}

/* Frees n and everything in it; n must already be out of the namespaces
 * table and the heap. s may be NULL when nothing needs accounting. */
static void kv_namespace_free(kv *s, kv_namespace *n) {
  if (n->slot) *n->slot = NULL;
  if (s) {
    s->keys -= kv_key_count(n);
    s->bytes -= kv_keys_memory(n) + kv_namespace_bytes(n->name_len);
  }
  if (n->keys) {
    table_destroy(n->keys, kv_value_free, s);
  } else {
    for (size_t i = 0; i < n->small_count; i++)
      kv_value_free(n->small[i], s);
  }
  free(n);
}

static void kv_namespace_drop(kv *s, kv_namespace *n) {
  table_remove(s->namespaces, n->name, n->name_len);
  expiry_cancel(&s->deadlines, &n->expiry);
  kv_namespace_free(s, n);
}

static kv_namespace *kv_namespace_create(kv *s, const void *name, size_t name_len) {
  if (name_len > SIZE_MAX - sizeof(kv_namespace)) return NULL;
  kv_namespace *n = malloc(kv_namespace_bytes(name_len));
  if (!n) return NULL;
  n->keys = NULL;
  n->small_count = 0;
  expiry_node_init(&n->expiry);
  n->slot = NULL;
  n->name_len = name_len;
  if (name_len) memcpy(n->name, name, name_len);
  if (table_put(s->namespaces, name, name_len, n, NULL) != 0) {
    free(n);
    return NULL;
  }
  s->bytes += kv_namespace_bytes(name_len);
  return n;
}

/* The rule that keeps namespaces from piling up: with no keys and nothing
 * scheduled, nothing can ever make it visible again. */
static void kv_namespace_drop_if_idle(kv *s, kv_namespace *n) {
  if (kv_key_count(n) == 0 && n->expiry.slot == EXPIRY_UNSCHEDULED) kv_namespace_drop(s, n);
}

/* ---- public API --------------------------------------------------------- */

kv *kv_create(void) {
  kv *s = malloc(sizeof(*s));
  if (!s) return NULL;
  s->namespaces = table_create();
  if (!s->namespaces) {
    free(s);
    return NULL;
  }
  expiry_init(&s->deadlines);
  s->keys = 0;
  s->bytes = 0;
  return s;
}

static void kv_namespace_destroy(void *value, void *ctx) {
  (void)ctx;
  kv_namespace_free(NULL, value);
}

void kv_destroy(kv *s) {
  if (!s) return;
  table_destroy(s->namespaces, kv_namespace_destroy, NULL);
  expiry_free(&s->deadlines);
  free(s);
}

/* The namespace of ns: *slot's when set, else looked up (and, when found,
 * left in *slot). NULL when there is none. */
static kv_namespace *kv_slot_find(kv *s, kv_namespace **slot, const void *ns, size_t ns_len) {
  if (slot && *slot) return *slot;
  kv_namespace *n = table_get(s->namespaces, ns, ns_len);
  if (n && slot) {
    if (n->slot) *n->slot = NULL; /* taken over */
    n->slot = slot;
    *slot = n;
  }
  return n;
}

void kv_slot_release(kv_namespace **slot) {
  if (!*slot) return;
  (*slot)->slot = NULL;
  *slot = NULL;
}

int kv_slot_set(kv *s, kv_namespace **slot, const void *ns, size_t ns_len, const void *key,
                size_t key_len, const void *value, size_t value_len) {
  /* Allocate the value first: of all the steps, only this one is certain to
   * allocate, and failing before anything else changes needs no undoing. */
  if (value_len > SIZE_MAX - sizeof(kv_value) || key_len > SIZE_MAX - sizeof(kv_value) - value_len)
    return -1;
  kv_value *v = malloc(sizeof(kv_value) + value_len + key_len);
  if (!v) return -1;
  v->len = value_len;
  v->key_len = key_len;
  if (value_len) memcpy(v->bytes, value, value_len);
  if (key_len) memcpy(v->bytes + value_len, key, key_len);

  kv_namespace *n = kv_slot_find(s, slot, ns, ns_len);
  int created = 0;
  if (!n) {
    n = kv_namespace_create(s, ns, ns_len);
    if (!n) {
      free(v);
      return -1;
    }
    created = 1;
  }

  kv_value *old;
  if (kv_key_put(s, n, key, key_len, v, &old) != 0) {
    free(v);
    if (created) kv_namespace_drop(s, n);
    return -1;
  }
  if (created && slot) {
    n->slot = slot;
    *slot = n;
  }
  s->bytes += kv_value_bytes(v);
  if (old) {
    kv_value_free(old, s);
  } else {
    s->keys++;
  }
  return 0;
}

int kv_set(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len, const void *value,
           size_t value_len) {
  return kv_slot_set(s, NULL, ns, ns_len, key, key_len, value, value_len);
}

const void *kv_slot_get(kv *s, kv_namespace **slot, const void *ns, size_t ns_len, const void *key,
                        size_t key_len, size_t *value_len) {
  kv_namespace *n = kv_slot_find(s, slot, ns, ns_len);
  if (!n) return NULL;
  kv_value *v = kv_key_get(s, n, key, key_len);
  if (!v) return NULL;
  if (value_len) *value_len = v->len;
  return v->bytes;
}

const void *kv_get(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len,
                   size_t *value_len) {
  return kv_slot_get(s, NULL, ns, ns_len, key, key_len, value_len);
}

int kv_has(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len) {
  return kv_get(s, ns, ns_len, key, key_len, NULL) != NULL;
}

int kv_slot_del(kv *s, kv_namespace **slot, const void *ns, size_t ns_len, const void *key,
                size_t key_len) {
  kv_namespace *n = kv_slot_find(s, slot, ns, ns_len);
  if (!n) return 0;
  kv_value *v = kv_key_remove(s, n, key, key_len);
  if (!v) return 0;
  s->keys--;
  kv_value_free(v, s);
  kv_namespace_drop_if_idle(s, n);
  return 1;
}

int kv_del(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len) {
  return kv_slot_del(s, NULL, ns, ns_len, key, key_len);
}

int kv_clear(kv *s, const void *ns, size_t ns_len) {
  kv_namespace *n = table_get(s->namespaces, ns, ns_len);
  if (!n) return 0;
  kv_namespace_drop(s, n);
  return 1;
}

int kv_expire_at(kv *s, const void *ns, size_t ns_len, uint64_t deadline) {
  kv_namespace *n = table_get(s->namespaces, ns, ns_len);
  if (!n) return 0;
  return expiry_schedule(&s->deadlines, &n->expiry, deadline) == 0 ? 1 : -1;
}

int kv_persist(kv *s, const void *ns, size_t ns_len) {
  kv_namespace *n = table_get(s->namespaces, ns, ns_len);
  if (!n || n->expiry.slot == EXPIRY_UNSCHEDULED) return 0;
  expiry_cancel(&s->deadlines, &n->expiry);
  kv_namespace_drop_if_idle(s, n);
  return 1;
}

size_t kv_expire_due(kv *s, uint64_t now, size_t max) {
  size_t removed = 0;
  expiry_node *node;
  while (removed < max && (node = expiry_pop_due(&s->deadlines, now)) != NULL) {
    kv_namespace_drop(s, kv_namespace_of(node));
    removed++;
  }
  return removed;
}

int kv_next_deadline(const kv *s, uint64_t *deadline) {
  const expiry_node *first = expiry_peek(&s->deadlines);
  if (!first) return 0;
  *deadline = first->deadline;
  return 1;
}

void kv_get_stats(const kv *s, kv_stats *out) {
  out->namespaces = table_count(s->namespaces);
  out->keys = s->keys;
  out->expiring = s->deadlines.count;
  out->bytes = sizeof(*s) + table_memory(s->namespaces) +
               s->deadlines.capacity * sizeof(*s->deadlines.nodes) + s->bytes;
}
