/* kv: the broker's key/value state: namespaces of key -> value pairs.
 *
 * A namespace is what socket.io calls a client (one per client id) and what
 * other front ends may use for any grouping; the engine gives it no meaning.
 * Values are opaque bytes. A namespace may carry a deadline (set by
 * kv_expire_at); when kv_expire_due passes it, the whole namespace goes.
 * Writing to a namespace does not move its deadline (as in Redis: only
 * kv_expire_at, kv_persist and kv_clear do). A namespace with no keys left and
 * no deadline is freed at once.
 *
 * Pure data structure: no I/O, no clock of its own, one owner thread. */
#ifndef CLUSTER_STORE_KV_H
#define CLUSTER_STORE_KV_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv kv;

typedef struct kv_stats {
  size_t namespaces; /* namespaces held */
  size_t keys;       /* keys held in all namespaces */
  size_t expiring;   /* namespaces with a deadline */
  size_t bytes;      /* memory held: tables, keys, values, bookkeeping */
} kv_stats;

kv *kv_create(void); /* NULL when out of memory */
void kv_destroy(kv *s);

/* 0, or -1 when out of memory (the store is then unchanged). */
int kv_set(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len, const void *value,
           size_t value_len);

/* Points at the stored value (valid until the next call that modifies s) and
 * stores its length in *value_len; NULL when the key is missing. A stored
 * empty value returns a non-NULL pointer with *value_len == 0. */
const void *kv_get(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len,
                   size_t *value_len);

int kv_has(kv *s, const void *ns, size_t ns_len, const void *key, size_t key_len); /* 1 or 0 */
int kv_del(kv *s, const void *ns, size_t ns_len, const void *key,
           size_t key_len); /* 1 removed, 0 missing */

/* Removes the whole namespace now. 1 removed, 0 missing. */
int kv_clear(kv *s, const void *ns, size_t ns_len);

/* Schedules the namespace to be removed at deadline (replacing an earlier
 * deadline). 1 scheduled, 0 namespace missing (nothing to expire), -1 out of
 * memory. */
int kv_expire_at(kv *s, const void *ns, size_t ns_len, uint64_t deadline);

/* Cancels the namespace's deadline. 1 when it had one, 0 otherwise. */
int kv_persist(kv *s, const void *ns, size_t ns_len);

/* Removes up to max namespaces whose deadline is <= now; returns how many. */
size_t kv_expire_due(kv *s, uint64_t now, size_t max);

/* 1 and the earliest deadline in *deadline, or 0 when nothing is scheduled. */
int kv_next_deadline(const kv *s, uint64_t *deadline);

void kv_get_stats(const kv *s, kv_stats *out);

/* ---- a namespace kept at hand ---------------------------------------------
 *
 * A caller that keeps a record of its own per namespace (the uplink keeps one
 * per client) would otherwise find each namespace twice per call: once in
 * its own table, once in the store's. It may instead keep the namespace's
 * pointer in a slot of its record: kv_slot_* use *slot when it is set, and
 * otherwise look the namespace up by name (or create it) and leave it in
 * *slot. The store clears *slot (sets it to NULL) whenever it frees that
 * namespace, by any call, kv_destroy included, so a set slot always points
 * at the live namespace of that name. A namespace has at most one slot: a
 * second caller's takes it over (the first one's is cleared). The caller
 * must call kv_slot_release before its slot's memory goes.
 *
 * Each behaves exactly as the call of the same name without a slot; slot
 * may be NULL (a plain lookup). */
typedef struct kv_namespace kv_namespace;

int kv_slot_set(kv *s, kv_namespace **slot, const void *ns, size_t ns_len, const void *key,
                size_t key_len, const void *value, size_t value_len);
const void *kv_slot_get(kv *s, kv_namespace **slot, const void *ns, size_t ns_len, const void *key,
                        size_t key_len, size_t *value_len);
int kv_slot_del(kv *s, kv_namespace **slot, const void *ns, size_t ns_len, const void *key,
                size_t key_len);
/* Unties *slot from its namespace (if any) and sets it to NULL. */
void kv_slot_release(kv_namespace **slot);

#endif
