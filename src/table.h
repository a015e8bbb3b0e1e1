/* table: a hash table from byte-string keys to pointers.
 *
 * The broker keeps every lookup structure in one of these: channels by name,
 * key/value namespaces by client id, keys inside a namespace. Keys are
 * arbitrary bytes (ids and names come from the network, so they may hold
 * anything, including NUL) and are copied into the table; values are opaque
 * pointers owned by the caller.
 *
 * Hashing is keyed with a per-table random seed (SipHash-1-3), so a peer that
 * picks its ids cannot force collisions. The table grows and shrinks
 * incrementally: a resize moves a few buckets per operation instead of
 * stalling the broker on one large rehash. Not thread-safe: one owner. */
#ifndef CLUSTER_STORE_TABLE_H
#define CLUSTER_STORE_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct table table;

/* Returns NULL when out of memory. */
table *table_create(void);

/* Frees the table and its key copies; calls free_value (when not NULL) on
 * every value still held. */
void table_destroy(table *t, void (*free_value)(void *value, void *ctx), void *ctx);

size_t table_count(const table *t);

/* The value stored under key, or NULL when there is none. */
void *table_get(table *t, const void *key, size_t key_len);

/* Stores value under key, replacing any earlier value. When old_value is not
 * NULL it receives the replaced value (or NULL). Returns 0, or -1 when out of
 * memory (the table is then unchanged). value must not be NULL. */
int table_put(table *t, const void *key, size_t key_len, void *value, void **old_value);

/* Removes key; returns the value it held, or NULL when there was none. */
void *table_remove(table *t, const void *key, size_t key_len);

/* Calls visit on every entry. When visit returns nonzero the entry is removed
 * from the table (its value is not freed: visit owns it from then on). visit
 * must not otherwise modify the table. Returns the number removed. */
size_t table_sweep(table *t, int (*visit)(const void *key, size_t key_len, void *value, void *ctx),
                   void *ctx);

/* Bytes held by the table itself: bucket arrays, entries and key copies. */
size_t table_memory(const table *t);

#endif
