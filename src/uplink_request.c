/* uplink_request: the barriers across machines (see uplink.h), and what
 * becomes of the requests a closed link never answered. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

void uplink_entry_failed(uplink *u, uplink_entry *e) {
  /* Sent, but Redis never said it took them: they may or may not have
   * reached the others, and count as dropped (at-most-once). */
  if (e->kind == UPLINK_E_MESSAGES) u->dropped += e->request_id;
  if (e->conn && e->kind == UPLINK_E_ANSWER) {
    /* Not OK: what it waited for may not have happened. */
    u->lost_replies++;
    broker_conn_reply_text(e->conn, e->request_id, FRAME_STATUS_BAD_REQUEST,
                           "the barrier across machines did not hold: the connection to Redis "
                           "broke or Redis stopped answering first (this machine is on its own "
                           "until Redis is back)");
  }
  free(e->name);
  e->name = NULL;
}

int uplink_sync(uplink *u, broker_conn *c, const frame *f) {
  if (u->state != UPLINK_UP || f->request_id == 0) return 0;
  uplink_link *link;
  if (f->flags & FRAME_FLAG_BARRIER)
    link = &u->subscriber; /* after what Redis pushed here */
  else if (f->flags & FRAME_FLAG_SETTLE)
    link = &u->command; /* after what this machine sent */
  else
    return 0;
  if (link == &u->command) uplink_topic_send_batch(u, 0); /* what waits for this turn's end */
  if (link == &u->command && link->count == 0 && uplink_link_queued(link) == 0) return 0;
  resp_arg ping[1] = {{"PING", 4, NULL, 0}};
  uplink_entry e = {UPLINK_E_ANSWER, 0, f->request_id, c, NULL, 0, 0};
  return uplink_send(u, link, ping, 1, &e) == 0;
}

static void uplink_link_forget(uplink_link *link, broker_conn *c) {
  for (size_t k = 0; k < link->count; k++) {
    uplink_entry *e = &link->entries[(link->head + k) % link->capacity];
    if (e->conn == c) e->conn = NULL;
  }
}

static int uplink_topic_forget_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  uplink_topic *t = value;
  for (size_t i = 0; i < t->waiting; i++)
    if (t->waiters[i].conn == ctx) t->waiters[i].conn = NULL;
  return 0;
}

void uplink_conn_gone(uplink *u, broker_conn *c) {
  uplink_owner_conn_gone(u, c);
  uplink_link_forget(&u->command, c);
  uplink_link_forget(&u->subscriber, c);
  table_sweep(u->topics, uplink_topic_forget_visit, c);
}
