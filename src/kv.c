/* kv: namespaces of key/value pairs with per-namespace expiry (see kv.h).
 *
 * A table maps each namespace name to a kv_namespace, which holds a table of
 * its keys and the heap node for its deadline. Each value is one allocation,
 * its length in front of its bytes. The namespace keeps its own copy of its
 * name because expiry reaches it through the heap node, not through a lookup,
 * and must still find it in the namespaces table to take it out.
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

typedef struct kv_value {
  size_t len;
  unsigned char bytes[];
} kv_value;

typedef struct kv_namespace {
  table *keys;
  expiry_node expiry;
  size_t name_len;
  unsigned char name[];
} kv_namespace;

struct kv {
  table *namespaces;
  expiry_heap deadlines;
  size_t keys;
  /* Namespace structs, their key tables and the values; the namespaces
   * table and the heap array are asked for their size when needed. */
  size_t bytes;
};

static size_t kv_value_bytes(size_t len) {
  return sizeof(kv_value) + len;
}

static size_t kv_namespace_bytes(size_t name_len) {
  return sizeof(kv_namespace) + name_len;
}

static kv_namespace *kv_namespace_of(expiry_node *node) {
  return (kv_namespace *)(void *)((char *)node - offsetof(kv_namespace, expiry));
}

/* ---- key table calls, with their memory accounted ----------------------- */

static kv_value *kv_key_get(kv *s, kv_namespace *n, const void *key, size_t key_len) {
  size_t before = table_memory(n->keys);
  kv_value *v = table_get(n->keys, key, key_len);
  s->bytes = s->bytes - before + table_memory(n->keys);
  return v;
}

static kv_value *kv_key_remove(kv *s, kv_namespace *n, const void *key, size_t key_len) {
  size_t before = table_memory(n->keys);
  kv_value *v = table_remove(n->keys, key, key_len);
  s->bytes = s->bytes - before + table_memory(n->keys);
  return v;
}

static int kv_key_put(kv *s, kv_namespace *n, const void *key, size_t key_len, kv_value *v,
                      kv_value **old) {
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
  if (s) s->bytes -= kv_value_bytes(v->len);
  free(v);
}

/* Frees n and everything in it; n must already be out of the namespaces
 * table and the heap. s may be NULL when nothing needs accounting. */
static void kv_namespace_free(kv *s, kv_namespace *n) {
  if (s) {
    s->keys -= table_count(n->keys);
    s->bytes -= table_memory(n->keys) + kv_namespace_bytes(n->name_len);
  }
  table_destroy(n->keys, kv_value_free, s);
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
  n->keys = table_create();
  if (!n->keys) {
    free(n);
    return NULL;
  }
  expiry_node_init(&n->expiry);
  n->name_len = name_len;
  if (name_len) memcpy(n->name, name, name_len);
  if (table_put(s->namespaces, name, name_len, n, NULL) != 0) {
    table_destroy(n->keys, NULL, NULL);
    free(n);
    return NULL;
  }
  s->bytes += table_memory(n->keys) + kv_namespace_bytes(name_len);
  return n;
}

/* The rule that keeps namespaces from piling up: with no keys and nothing
 * scheduled, nothing can ever make it visible again. */
static void kv_namespace_drop_if_idle(kv *s, kv_namespace *n) {
  if (table_count(n->keys) == 0 && n->expiry.slot == EXPIRY_UNSCHEDULED) kv_namespace_drop(s, n);
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

int kv_set(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len, const void *value,
           size_t value_len) {
  /* Allocate the value first: of all the steps, only this one is certain to
   * allocate, and failing before anything else changes needs no undoing. */
  if (value_len > SIZE_MAX - sizeof(kv_value)) return -1;
  kv_value *v = malloc(kv_value_bytes(value_len));
  if (!v) return -1;
  v->len = value_len;
  if (value_len) memcpy(v->bytes, value, value_len);

  kv_namespace *n = table_get(s->namespaces, ns, ns_len);
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
  s->bytes += kv_value_bytes(value_len);
  if (old) {
    kv_value_free(old, s);
  } else {
    s->keys++;
  }
  return 0;
}

const void *kv_get(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len,
                   size_t *value_len) {
  kv_namespace *n = table_get(s->namespaces, ns, ns_len);
  if (!n) return NULL;
  kv_value *v = kv_key_get(s, n, key, key_len);
  if (!v) return NULL;
  if (value_len) *value_len = v->len;
  return v->bytes;
}

int kv_has(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len) {
  return kv_get(s, ns, ns_len, key, key_len, NULL) != NULL;
}

int kv_del(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len) {
  kv_namespace *n = table_get(s->namespaces, ns, ns_len);
  if (!n) return 0;
  kv_value *v = kv_key_remove(s, n, key, key_len);
  if (!v) return 0;
  s->keys--;
  kv_value_free(v, s);
  kv_namespace_drop_if_idle(s, n);
  return 1;
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
