/* broker_retain: retained publishes and reads of the topics' logs.
 *
 * A PUBLISH with FRAME_FLAG_RETAIN is appended to its topic's log
 * (retain.h) before it is routed; its offset (frame_offset: this broker's
 * epoch and the message's number) goes in field b of every MESSAGE it
 * becomes and in the reply to its publisher. Such a message never takes a
 * reader's urgent lane (broker_topic.c), so each reader gets the retained
 * messages in offset order, replies included: the last offset a process
 * saw says exactly what it has. A retained message whose payload came
 * through the shared pool is copied into the log, and reaches every
 * subscriber as an ordinary copy (a descriptor has no room for an offset).
 * With FRAME_FLAG_UNROUTED it is only kept, for later readers.
 *
 * A RETAINED_READ answers with the messages of a log after an offset, as
 * many as fit in one frame the asker takes (it reads on from the last one
 * listed), or MISSING when the offset is another broker's, one not given
 * yet, or older than a message of that log that was dropped: then the
 * asker cannot have everything it missed, and must not think it has.
 *
 * The epoch is drawn at random when the broker starts, so an offset from
 * an earlier run of the master is refused, not read as one of this run's.
 * Age limits are applied as time goes by, in the prepare phase (stats),
 * and before every append and read. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "broker_internal.h"

int broker_retain_init(broker *b) {
  retain_limits limits = {b->options.retain_messages, b->options.retain_bytes,
                          b->options.retain_ms};
  b->retained = retain_create(&limits);
  if (!b->retained) return -1;
  /* The kernel's random bytes; should they fail, the clock and the pid
   * still differ from one run of the master to the next. */
  uint64_t epoch = 0;
  if (uv_random(NULL, NULL, &epoch, sizeof(epoch), 0, NULL) != 0)
    epoch = uv_hrtime() ^ ((uint64_t)getpid() << 40);
  b->epoch = epoch;
  return 0;
}

void broker_retain_free(broker *b) {
  if (b->retained) retain_destroy(b->retained);
  b->retained = NULL;
}

void broker_retain_publish(broker *b, broker_conn *c, const frame *f) {
  frame message = *f;
  uint32_t shared = UINT32_MAX;
  if ((f->flags & FRAME_FLAG_SHARED) && broker_topic_shared_take(b, f, c, &message, &shared) != 0)
    return;
  uv_update_time(&b->loop);
  uint64_t seq = retain_append(b->retained, message.a, message.a_len, message.payload,
                               message.payload_len, uv_now(&b->loop));
  if (seq == 0) {
    /* Routed without an offset, a reader could not tell it missed this
     * one: it is not routed at all, and its publisher hears why. */
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_NO_MEMORY,
                           "broker out of memory retaining a message");
  } else {
    uint8_t offset[FRAME_OFFSET_SIZE];
    frame_offset_write(offset, b->epoch, seq);
    message.b = offset;
    message.b_len = FRAME_OFFSET_SIZE;
    if (f->flags & FRAME_FLAG_UNROUTED)
      b->counters[FRAME_STAT_MESSAGES_PUBLISHED]++;
    else
      broker_topic_route(b, &message, c, UINT32_MAX);
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, offset, sizeof(offset));
  }
  if (shared != UINT32_MAX) broker_topic_shared_settle(b, shared);
}

/* Queues the reply to a read: the range's messages from the first on, as
 * many as fit in one frame c takes. */
static void broker_retain_reply(broker_conn *c, uint32_t request_id, const retain_range *range) {
  broker *b = c->broker;
  uint32_t limit =
      c->peer_max < b->options.max_frame_size ? c->peer_max : b->options.max_frame_size;
  size_t room = limit - FRAME_HEADER_SIZE;
  size_t len = FRAME_RETAINED_HEAD_SIZE;
  size_t n = 0;
  for (; n < range->count; n++) {
    uint64_t seq;
    const uint8_t *bytes;
    size_t entry_len;
    retain_range_get(range, n, &seq, &bytes, &entry_len);
    if (entry_len > room || room - entry_len < FRAME_RETAINED_ENTRY_HEAD_SIZE ||
        len > room - entry_len - FRAME_RETAINED_ENTRY_HEAD_SIZE)
      break;
    len += FRAME_RETAINED_ENTRY_HEAD_SIZE + entry_len;
  }
  if (n == 0 && range->count > 0) {
    broker_conn_reply_text(c, request_id, FRAME_STATUS_BAD_REQUEST,
                           "a retained message is over this process's maximum frame size");
    return;
  }
  uint32_t size = frame_size(0, 0, len);
  uint8_t *at = broker_conn_reserve(c, size);
  if (!at) return;
  frame_write_header(at, FRAME_REPLY, FRAME_STATUS_OK, 0, 0, request_id, 0, 0, len);
  uint8_t *p = at + FRAME_HEADER_SIZE;
  frame_retained_head_write(p, (uint32_t)(range->count - n));
  p += FRAME_RETAINED_HEAD_SIZE;
  for (size_t i = 0; i < n; i++) {
    uint64_t seq;
    const uint8_t *bytes;
    size_t entry_len;
    retain_range_get(range, i, &seq, &bytes, &entry_len);
    p += frame_retained_entry_write(p, b->epoch, seq, bytes, (uint32_t)entry_len);
  }
  broker_conn_committed(c, size);
  broker_conn_control_queued(c);
}

void broker_retain_read(broker *b, broker_conn *c, const frame *f) {
  uint64_t epoch = 0, after = 0;
  retain_range range;
  if (frame_offset_parse(f->b, f->b_len, &epoch, &after) != 0) {
    b->counters[FRAME_STAT_RETAINED_REFUSED]++;
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST,
                           "not an offset: expected 16 hex digits, '-', 16 hex digits");
    return;
  }
  uv_update_time(&b->loop);
  retain_expire(b->retained, uv_now(&b->loop));
  if (epoch != b->epoch ||
      retain_find(b->retained, f->a, f->a_len, after, &range) != RETAIN_FOUND) {
    b->counters[FRAME_STAT_RETAINED_REFUSED]++;
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_MISSING,
                           epoch != b->epoch ? "offset from another run of the broker"
                                             : "messages after this offset were dropped");
    return;
  }
  if (f->request_id != 0) broker_retain_reply(c, f->request_id, &range);
}

void broker_retain_stats(broker *b, uint64_t *counters) {
  retain_expire(b->retained, uv_now(&b->loop));
  retain_stats st;
  retain_get_stats(b->retained, &st);
  counters[FRAME_STAT_RETAINED_MESSAGES] = st.messages;
  counters[FRAME_STAT_RETAINED_BYTES] = st.bytes;
  counters[FRAME_STAT_RETAINED_DROPPED] = st.dropped;
}
