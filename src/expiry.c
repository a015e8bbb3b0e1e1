/* expiry: the broker's timer heap (see expiry.h).
 *
 * A binary min-heap in an array of node pointers. Each node records its own
 * index, so cancelling or rescheduling a node in the middle of the heap is a
 * sift from where it stands rather than a search. The array shrinks as the
 * heap empties and is freed when nothing is scheduled, so a burst of timers
 * does not pin memory for the life of the broker. */
#include "expiry.h"

#include <stdlib.h>

#define EXPIRY_MIN_CAPACITY 16u

void expiry_init(expiry_heap *h) {
  h->nodes = NULL;
  h->count = 0;
  h->capacity = 0;
}

/* Leaves the nodes alone: their owner may already have freed them. */
void expiry_free(expiry_heap *h) {
  free(h->nodes);
  expiry_init(h);
}

void expiry_node_init(expiry_node *n) {
  n->deadline = 0;
  n->slot = EXPIRY_UNSCHEDULED;
}

static void expiry_place(expiry_heap *h, expiry_node *n, size_t slot) {
  h->nodes[slot] = n;
  n->slot = slot;
}

static void expiry_sift_up(expiry_heap *h, size_t slot) {
  expiry_node *n = h->nodes[slot];
  while (slot > 0) {
    size_t parent = (slot - 1) / 2;
    if (h->nodes[parent]->deadline <= n->deadline) break;
    expiry_place(h, h->nodes[parent], slot);
    slot = parent;
  }
  expiry_place(h, n, slot);
}

static void expiry_sift_down(expiry_heap *h, size_t slot) {
  expiry_node *n = h->nodes[slot];
  for (;;) {
    size_t child = 2 * slot + 1;
    if (child >= h->count) break;
    if (child + 1 < h->count && h->nodes[child + 1]->deadline < h->nodes[child]->deadline) child++;
    if (n->deadline <= h->nodes[child]->deadline) break;
    expiry_place(h, h->nodes[child], slot);
    slot = child;
  }
  expiry_place(h, n, slot);
}

/* Restores the heap around a node whose deadline may have moved either way. */
static void expiry_fix(expiry_heap *h, size_t slot) {
  if (slot > 0 && h->nodes[(slot - 1) / 2]->deadline > h->nodes[slot]->deadline)
    expiry_sift_up(h, slot);
  else
    expiry_sift_down(h, slot);
}

/* Halves the array once it is three-quarters empty (hysteresis, so a heap
 * hovering around a size does not reallocate on every change). A failed
 * shrink keeps the larger array, which is harmless. */
static void expiry_maybe_shrink(expiry_heap *h) {
  if (h->count == 0) {
    free(h->nodes);
    h->nodes = NULL;
    h->capacity = 0;
    return;
  }
  if (h->capacity > EXPIRY_MIN_CAPACITY && h->count <= h->capacity / 4) {
    size_t capacity = h->capacity / 2;
    expiry_node **nodes = realloc(h->nodes, capacity * sizeof(*nodes));
    if (nodes) {
      h->nodes = nodes;
      h->capacity = capacity;
    }
  }
}

static void expiry_remove_slot(expiry_heap *h, size_t slot) {
  expiry_node *n = h->nodes[slot];
  expiry_node *last = h->nodes[--h->count];
  n->slot = EXPIRY_UNSCHEDULED;
  if (last != n) {
    expiry_place(h, last, slot);
    expiry_fix(h, slot);
  }
  expiry_maybe_shrink(h);
}

int expiry_schedule(expiry_heap *h, expiry_node *n, uint64_t deadline) {
  if (n->slot != EXPIRY_UNSCHEDULED) {
    n->deadline = deadline;
    expiry_fix(h, n->slot);
    return 0;
  }
  if (h->count == h->capacity) {
    size_t capacity = h->capacity ? h->capacity * 2 : EXPIRY_MIN_CAPACITY;
    if (capacity > SIZE_MAX / sizeof(*h->nodes)) return -1;
    expiry_node **nodes = realloc(h->nodes, capacity * sizeof(*nodes));
    if (!nodes) return -1;
    h->nodes = nodes;
    h->capacity = capacity;
  }
  n->deadline = deadline;
  h->nodes[h->count] = n;
  n->slot = h->count++;
  expiry_sift_up(h, n->slot);
  return 0;
}

void expiry_cancel(expiry_heap *h, expiry_node *n) {
  /* The identity check keeps a node from another heap (a caller bug) from
   * corrupting this one. */
  if (n->slot == EXPIRY_UNSCHEDULED || n->slot >= h->count || h->nodes[n->slot] != n) return;
  expiry_remove_slot(h, n->slot);
}

expiry_node *expiry_peek(const expiry_heap *h) {
  return h->count ? h->nodes[0] : NULL;
}

expiry_node *expiry_pop_due(expiry_heap *h, uint64_t now) {
  if (h->count == 0 || h->nodes[0]->deadline > now) return NULL;
  expiry_node *n = h->nodes[0];
  expiry_remove_slot(h, 0);
  return n;
}
