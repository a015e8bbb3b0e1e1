/* Unit tests for src/expiry.c.
 *
 * White-box, like test_table.c: the module's source is included so the heap
 * property and every node's recorded slot can be checked after each change,
 * and so its array allocations can be made to fail. Random tests replay from
 * the seed given as the first argument. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#include "check_alloc_begin.h"

#include "../../src/expiry.c"

#include "check_alloc_end.h"

/* An owner struct, as the broker's would be: the node sits inside it. */
typedef struct timer {
  int id;
  expiry_node node;
} timer;

static timer *timer_of(expiry_node *n) {
  return (timer *)(void *)((char *)n - offsetof(timer, node));
}

static int heap_ok(const expiry_heap *h) {
  if (h->count > h->capacity) return 0;
  if (h->capacity == 0 && h->nodes != NULL) return 0;
  for (size_t i = 0; i < h->count; i++) {
    if (h->nodes[i]->slot != i) return 0;
    if (i > 0 && h->nodes[(i - 1) / 2]->deadline > h->nodes[i]->deadline) return 0;
  }
  return 1;
}

static void test_empty(void) {
  expiry_heap h;
  expiry_node n;
  expiry_init(&h);
  expiry_node_init(&n);
  CHECK(expiry_peek(&h) == NULL);
  CHECK(expiry_pop_due(&h, UINT64_MAX) == NULL);
  expiry_cancel(&h, &n);
  CHECK(n.slot == EXPIRY_UNSCHEDULED);
  CHECK(h.count == 0);

  CHECK(expiry_schedule(&h, &n, 10) == 0);
  CHECK(expiry_peek(&h) == &n);
  CHECK(expiry_pop_due(&h, 9) == NULL);
  CHECK(expiry_pop_due(&h, 10) == &n);
  CHECK(n.slot == EXPIRY_UNSCHEDULED);
  CHECK(h.count == 0);
  /* An empty heap gives its array back. */
  CHECK(h.nodes == NULL && h.capacity == 0);
  expiry_cancel(&h, &n);
  expiry_free(&h);
}

static void test_order(uint64_t *rng) {
  enum { N = 10000 };
  static timer timers[N];
  expiry_heap h;
  expiry_init(&h);
  size_t failed = 0;
  for (int i = 0; i < N; i++) {
    timers[i].id = i;
    expiry_node_init(&timers[i].node);
    /* A narrow range, so many deadlines tie. */
    if (expiry_schedule(&h, &timers[i].node, check_below(rng, 5000)) != 0) failed++;
  }
  CHECK(failed == 0);
  CHECK(h.count == N);
  CHECK(heap_ok(&h));

  /* pop_due takes exactly the due ones, earliest first. */
  uint64_t last = 0;
  size_t popped = 0, out_of_order = 0, not_due = 0;
  expiry_node *n;
  while ((n = expiry_pop_due(&h, 2500)) != NULL) {
    if (n->deadline < last) out_of_order++;
    if (n->deadline > 2500) not_due++;
    if (n->slot != EXPIRY_UNSCHEDULED) out_of_order++;
    last = n->deadline;
    popped++;
  }
  CHECK(out_of_order == 0);
  CHECK(not_due == 0);
  CHECK(heap_ok(&h));
  size_t due = 0;
  for (int i = 0; i < N; i++)
    due += timers[i].node.deadline <= 2500;
  CHECK(popped == due);
  CHECK(h.count == N - due);
  CHECK(expiry_peek(&h) && expiry_peek(&h)->deadline > 2500);

  size_t memory_before = h.capacity;
  while ((n = expiry_pop_due(&h, UINT64_MAX)) != NULL) {
    if (n->deadline < last) out_of_order++;
    last = n->deadline;
    popped++;
    if (h.count == 100) CHECK(h.capacity < memory_before);
  }
  CHECK(out_of_order == 0);
  CHECK(popped == N);
  CHECK(h.nodes == NULL);
  expiry_free(&h);
}

static void test_cancel_and_reschedule(uint64_t *rng) {
  enum { N = 2000 };
  static timer timers[N];
  static unsigned char cancelled[N];
  expiry_heap h;
  expiry_init(&h);
  for (int i = 0; i < N; i++) {
    timers[i].id = i;
    expiry_node_init(&timers[i].node);
    expiry_schedule(&h, &timers[i].node, 1000 + check_below(rng, 1000000));
  }

  /* Cancel a third, including the root and the last slot; twice each. */
  expiry_cancel(&h, expiry_peek(&h));
  expiry_cancel(&h, h.nodes[h.count - 1]);
  for (int i = 0; i < N; i++) {
    if (timers[i].node.slot == EXPIRY_UNSCHEDULED) cancelled[i] = 1;
    if (check_below(rng, 3) == 0) {
      expiry_cancel(&h, &timers[i].node);
      expiry_cancel(&h, &timers[i].node);
      cancelled[i] = 1;
    }
  }
  CHECK(heap_ok(&h));
  size_t live = 0;
  for (int i = 0; i < N; i++)
    live += !cancelled[i];
  CHECK(h.count == live);

  /* Reschedule the live ones (earlier, later, unchanged) and some cancelled
   * ones back in; the count moves only for the latter. */
  size_t broken = 0;
  for (int i = 0; i < N; i++) {
    uint64_t deadline = check_below(rng, 2000000);
    if (cancelled[i] && i % 2) continue;
    if (cancelled[i]) live++;
    cancelled[i] = 0;
    if (expiry_schedule(&h, &timers[i].node, deadline) != 0) broken++;
    if (timers[i].node.deadline != deadline) broken++;
    if (i % 100 == 0 && !heap_ok(&h)) broken++;
  }
  CHECK(broken == 0);
  CHECK(h.count == live);
  CHECK(heap_ok(&h));

  /* Same deadline again, and a move to the front. */
  expiry_node *root = expiry_peek(&h);
  CHECK(expiry_schedule(&h, root, root->deadline) == 0);
  CHECK(expiry_peek(&h)->deadline == root->deadline);
  expiry_node *back = h.nodes[h.count - 1];
  CHECK(expiry_schedule(&h, back, 0) == 0);
  CHECK(expiry_peek(&h) == back);
  CHECK(h.count == live);

  uint64_t last = 0;
  size_t popped = 0, bad = 0;
  expiry_node *n;
  while ((n = expiry_pop_due(&h, UINT64_MAX)) != NULL) {
    if (n->deadline < last) bad++;
    if (cancelled[timer_of(n)->id]) bad++;
    last = n->deadline;
    popped++;
  }
  CHECK(bad == 0);
  CHECK(popped == live);
  expiry_free(&h);
}

/* Random schedule/cancel/pop against a model that knows every deadline. */
static void test_random_against_model(uint64_t *rng) {
  enum { N = 500 };
  static timer timers[N];
  expiry_heap h;
  expiry_init(&h);
  for (int i = 0; i < N; i++) {
    timers[i].id = i;
    expiry_node_init(&timers[i].node);
  }
  uint64_t now = 0;
  size_t wrong = 0;
  for (int op = 0; op < 200000; op++) {
    timer *t = &timers[check_below(rng, N)];
    switch (check_below(rng, 4)) {
    case 0:
    case 1:
      if (expiry_schedule(&h, &t->node, now + check_below(rng, 1000)) != 0) wrong++;
      break;
    case 2:
      expiry_cancel(&h, &t->node);
      break;
    default: {
      now += check_below(rng, 20);
      expiry_node *n = expiry_pop_due(&h, now);
      /* The model: the earliest scheduled deadline, if due. */
      uint64_t min = UINT64_MAX;
      for (int i = 0; i < N; i++)
        if (timers[i].node.slot != EXPIRY_UNSCHEDULED && timers[i].node.deadline < min)
          min = timers[i].node.deadline;
      if (n) {
        if (n->deadline > now || n->deadline > min) wrong++;
      } else if (min <= now) {
        wrong++;
      }
    }
    }
    if (op % 997 == 0 && !heap_ok(&h)) wrong++;
  }
  CHECK(wrong == 0);
  expiry_free(&h);
  CHECK(h.count == 0 && h.nodes == NULL);
}

static void test_out_of_memory(void) {
  expiry_heap h;
  expiry_init(&h);
  timer timers[EXPIRY_MIN_CAPACITY + 1];
  for (unsigned i = 0; i <= EXPIRY_MIN_CAPACITY; i++)
    expiry_node_init(&timers[i].node);

  check_alloc_fail_after(0);
  CHECK(expiry_schedule(&h, &timers[0].node, 5) == -1);
  CHECK(timers[0].node.slot == EXPIRY_UNSCHEDULED);
  CHECK(timers[0].node.deadline == 0);
  CHECK(h.count == 0 && h.nodes == NULL);
  check_alloc_fail_after(-1);

  for (unsigned i = 0; i < EXPIRY_MIN_CAPACITY; i++)
    CHECK(expiry_schedule(&h, &timers[i].node, 100 - i) == 0);
  check_alloc_fail_after(0);
  /* Full: a new node needs a larger array and cannot have one. */
  CHECK(expiry_schedule(&h, &timers[EXPIRY_MIN_CAPACITY].node, 1) == -1);
  CHECK(timers[EXPIRY_MIN_CAPACITY].node.slot == EXPIRY_UNSCHEDULED);
  CHECK(h.count == EXPIRY_MIN_CAPACITY);
  CHECK(expiry_peek(&h) == &timers[EXPIRY_MIN_CAPACITY - 1].node);
  /* Moving a scheduled node needs no memory. */
  CHECK(expiry_schedule(&h, &timers[0].node, 0) == 0);
  CHECK(expiry_peek(&h) == &timers[0].node);
  CHECK(heap_ok(&h));
  check_alloc_fail_after(-1);
  CHECK(expiry_schedule(&h, &timers[EXPIRY_MIN_CAPACITY].node, 1) == 0);
  CHECK(h.count == EXPIRY_MIN_CAPACITY + 1);
  CHECK(heap_ok(&h));
  expiry_free(&h);
  CHECK(h.count == 0 && h.nodes == NULL && h.capacity == 0);
}

int main(int argc, char **argv) {
  uint64_t seed = check_seed(argc, argv, UINT64_C(20240601));
  uint64_t rng = seed;
  test_empty();
  test_order(&rng);
  test_cancel_and_reschedule(&rng);
  test_random_against_model(&rng);
  test_out_of_memory();
  return check_report_seeded("expiry", seed);
}
