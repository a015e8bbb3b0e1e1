/* broker_handoff: passing a descriptor on to one subscriber of a topic.
 *
 * A process sends a HANDOFF frame with a descriptor alongside (fdpass.h);
 * the broker takes the descriptor from the front of the connection's
 * incoming queue, finds the topic's first live subscriber other than the
 * sending endpoint, queues a HANDOFF for it with the same payload, and
 * puts the descriptor on that connection's outgoing queue, to go with its
 * next write. What the descriptor is (a client's socket, in practice) and
 * what the payload means are the processes' business.
 *
 * The broker never keeps a descriptor it cannot pass on: without a
 * subscriber, with one whose process lags too far behind
 * (BROKER_HANDOFF_OUT_MAX waiting), or out of memory, it closes it and the
 * sender hears why. A connection that goes away closes what it holds
 * (broker_conn_closed); what is already in a dead process's socket is
 * closed by the kernel with it. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "broker_internal.h"

void broker_handoff_skip(broker_conn *c, uint8_t type) {
  if (type != FRAME_HANDOFF) return;
  int fd = fdpass_pop(&c->fds_in);
  if (fd >= 0) close(fd);
}

static void broker_handoff_refuse(broker *b, broker_conn *c, const frame *f, int fd, uint8_t status,
                                  const char *why) {
  close(fd);
  b->counters[FRAME_STAT_HANDOFFS_REFUSED]++;
  broker_conn_reply_text(c, f->request_id, status, why);
}

void broker_handoff(broker *b, broker_conn *c, const frame *f) {
  int fd = fdpass_pop(&c->fds_in);
  if (fd < 0) {
    broker_conn_protocol_error(c, "a hand-off frame came without its descriptor");
    return;
  }
  uint32_t endpoint = 0;
  broker_conn *to = broker_topic_first(b, f->a, f->a_len, c, f->endpoint, &endpoint);
  uint32_t size = frame_size(f->a_len, 0, f->payload_len);
  if (!to) {
    broker_handoff_refuse(b, c, f, fd, FRAME_STATUS_MISSING, "no subscriber on that topic");
    return;
  }
  if (size == 0 || size > to->peer_max) {
    broker_handoff_refuse(b, c, f, fd, FRAME_STATUS_BAD_REQUEST,
                          "the hand-off is over the receiver's maximum frame size");
    return;
  }
  if (fdpass_count(&to->fds_out) >= BROKER_HANDOFF_OUT_MAX) {
    broker_handoff_refuse(b, c, f, fd, FRAME_STATUS_NO_MEMORY,
                          "the receiver has too many hand-offs waiting");
    return;
  }
  /* The descriptor first: it must travel no later than its frame's first
   * byte (fdpass.h). */
  if (fdpass_push(&to->fds_out, fd) != 0) {
    b->counters[FRAME_STAT_HANDOFFS_REFUSED]++;
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    return;
  }
  uint8_t *at = broker_conn_reserve(to, size);
  if (!at) {
    /* Cut off or dead: the queue with the descriptor goes with it. */
    b->counters[FRAME_STAT_HANDOFFS_REFUSED]++;
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_MISSING, "the receiver is gone");
    return;
  }
  frame_encode(at, FRAME_HANDOFF, 0, endpoint, 0, f->a, f->a_len, NULL, 0, f->payload,
               f->payload_len);
  broker_conn_committed(to, size);
  broker_conn_control_queued(to);
  b->counters[FRAME_STAT_HANDOFFS]++;
  broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
}
