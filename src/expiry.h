/* expiry: a min-heap of deadlines, for the broker's timed deletions.
 *
 * Intrusive: the owner embeds an expiry_node in its own struct and gets back
 * to the struct with offsetof. A node is in at most one heap; scheduling a
 * scheduled node moves it. Deadlines are milliseconds on whatever monotonic
 * clock the caller uses. All operations are O(log n). */
#ifndef CLUSTER_STORE_EXPIRY_H
#define CLUSTER_STORE_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#define EXPIRY_UNSCHEDULED ((size_t)-1)

typedef struct expiry_node {
  uint64_t deadline;
  size_t slot; /* index in the heap, EXPIRY_UNSCHEDULED when not in it */
} expiry_node;

typedef struct expiry_heap {
  expiry_node **nodes;
  size_t count;
  size_t capacity;
} expiry_heap;

void expiry_init(expiry_heap *h);
void expiry_free(expiry_heap *h); /* frees the array, not the nodes */
void expiry_node_init(expiry_node *n);

/* Adds n with this deadline, or moves it there if already scheduled.
 * Returns 0, or -1 when out of memory (n is then left as it was). */
int expiry_schedule(expiry_heap *h, expiry_node *n, uint64_t deadline);

/* Takes n out of the heap; harmless when it is not scheduled. */
void expiry_cancel(expiry_heap *h, expiry_node *n);

/* The earliest node, or NULL when the heap is empty. */
expiry_node *expiry_peek(const expiry_heap *h);

/* Removes and returns a node whose deadline is <= now, or NULL. */
expiry_node *expiry_pop_due(expiry_heap *h, uint64_t now);

#endif
