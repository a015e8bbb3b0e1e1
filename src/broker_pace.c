/* broker_pace: pacing by delay, so that a busy publisher pays for the
 * time its messages make a shared reader wait, not everyone else.
 *
 * Byte-based flow control (broker_conn.c: congested, held) bounds memory;
 * it does nothing for latency, since a reader whose queue is under the high
 * water mark may still have tens of milliseconds of messages in front of
 * anything new, and a process kept busy by a storm is also slow to be given
 * the CPU for a quiet message. So, as fq_codel does for packets, the broker
 * also looks at how long a reader's queue has *stood*: not been empty since
 * it last was. A reader is *late* when its queue has stood longer than
 * BROKER_LATE_NS, while it is *shared*: messages from more than one
 * publisher reached it in the last BROKER_SHARED_NS (someone else's message
 * may be waiting behind the backlog, or coming soon), and while it reads
 * (some of its output left in the last stall_ms; one that stopped is left
 * to the byte-based control, which cuts it off in the end).
 *
 * A publish that would add to a late reader's queue waits, with everything
 * its publisher sent after it, like one to a congested reader; a publisher
 * with nothing in that queue (a quiet one) overtakes it instead (the urgent
 * lane) and never waits. Once the reader's queue is empty, the publisher
 * that waited *pays*: it stays held BROKER_PENALTY_FACTOR times as long as
 * it waited (up to BROKER_PENALTY_MAX_NS), so the reader, caught up, has
 * that long idle, and a quiet message finds it, and the CPU, free. A storm
 * then goes at about a third of the rate its readers could take (twice
 * paid, measured against once: the quiet round trip's p99 about halved,
 * the storm's rate about a fifth lower, on 2 cores); a publisher alone with its
 * readers (nothing shared) is never paced. While a barrier drains the
 * others, nothing waits (broker_drain_others). */
#define _GNU_SOURCE /* uv.h needs POSIX under -std=c11 */
#include "broker_internal.h"

/* How long a shared reader's queue may stand before its feeders wait. */
#define BROKER_LATE_NS (1000u * 1000u)
/* How recently a second publisher must have reached a reader for it to
 * count as shared. */
#define BROKER_SHARED_NS (2000ull * 1000u * 1000u)
/* How many times as long as it waited a publisher stays held once its
 * reader caught up. */
#define BROKER_PENALTY_FACTOR 2u
/* The longest a publisher is held after its reader caught up. */
#define BROKER_PENALTY_MAX_NS (100ull * 1000u * 1000u)
/* How often held publishers are looked at again: their penalty may be
 * over, their reader may have stopped reading. */
#define BROKER_PACE_CHECK_MS 1u

void broker_pace_standing(broker_conn *c) {
  if (c->standing_since) return;
  c->standing_since = uv_hrtime();
  c->broker->standing_count++;
}

void broker_pace_emptied(broker_conn *c) {
  broker *b = c->broker;
  if (!c->standing_since) return;
  c->standing_since = 0;
  b->standing_count--;
  if (c->late) {
    c->late = 0;
    b->eased = 1; /* its feeders may go on (after their penalty) */
  }
}

int broker_pace_may_be_late(const broker *b) {
  return b->standing_count > 0 && b->shared_at && b->clock - b->shared_at <= BROKER_SHARED_NS;
}

int broker_pace_late(broker_conn *to) {
  broker *b = to->broker;
  if (!to->standing_since || b->clock <= to->standing_since ||
      b->clock - to->standing_since <= BROKER_LATE_NS)
    return 0;
  if (!to->shared_at || b->clock - to->shared_at > BROKER_SHARED_NS) return 0;
  if (uv_now(&b->loop) - to->progress > b->options.stall_ms) return 0;
  to->late = 1;
  return 1;
}

static void broker_pace_on_check(uv_timer_t *timer) {
  broker *b = timer->data;
  int waiting = 0;
  for (broker_conn *c = b->conns; c; c = c->next) {
    if (c->dead || !c->held || (!c->paced_since && !c->paying_until)) continue;
    broker_conn_process(c);
    waiting |= c->held && (c->paced_since || c->paying_until);
  }
  broker_conn_flush(b);
  if (!waiting) uv_timer_stop(timer);
}

/* Looks at the held publishers again soon. Should the timer not start (it
 * cannot fail on an open loop), they go on when their reader's queue is
 * empty, as for byte-based holds. */
static void broker_pace_check_soon(broker *b) {
  if (!uv_is_active((uv_handle_t *)&b->pace_timer))
    (void)uv_timer_start(&b->pace_timer, broker_pace_on_check, BROKER_PACE_CHECK_MS,
                         BROKER_PACE_CHECK_MS);
}

void broker_pace_held(broker_conn *c) {
  broker *b = c->broker;
  if (c->paced_since) return;
  c->paced_since = b->clock;
  b->counters[FRAME_STAT_PUBLISHERS_PACED]++;
  broker_pace_check_soon(b);
}

int broker_pace_paying(broker_conn *c) {
  broker *b = c->broker;
  if (!c->paying_until) return 0;
  if (b->clock < c->paying_until && !b->draining) return 1;
  c->paying_until = 0;
  return 0;
}

int broker_pace_released(broker_conn *c) {
  broker *b = c->broker;
  if (!c->paced_since) return 0;
  uint64_t waited = b->clock > c->paced_since ? b->clock - c->paced_since : 0;
  c->paced_since = 0;
  if (b->draining || waited == 0) return 0;
  uint64_t penalty = waited * BROKER_PENALTY_FACTOR;
  c->paying_until = b->clock + (penalty < BROKER_PENALTY_MAX_NS ? penalty : BROKER_PENALTY_MAX_NS);
  broker_pace_check_soon(b);
  return 1;
}
