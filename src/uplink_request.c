/* uplink_request: per-client data in Redis, and the barriers across
 * machines (see uplink.h).
 *
 * Per-client data: a client's namespace is the hash PREFIX:k:CLIENT, a key
 * is a field of it, a value the field's bytes as the shim encoded them.
 * Every request of every worker goes on the one command link, in the order
 * the broker takes them, and Redis answers them in that order: each
 * client's data sees one order of operations (linearizable), as it does in
 * the broker's own store. GET is HGET, SET HSET, HAS HEXISTS, DEL HDEL,
 * CLEAR DEL, EXPIRE PEXPIRE (a hash's TTL stays across writes, as the
 * broker's expiry does), PERSIST PERSIST.
 *
 * A request Redis never answers (the link closed first) gets an error that
 * says it may or may not have been applied. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

int uplink_kv(uplink *u, broker_conn *c, const frame *f) {
  if (u->state != UPLINK_UP) return 0;
  char ms_text[16];
  resp_arg args[4] = {{NULL, 0, NULL, 0},
                      {u->key_prefix, u->key_prefix_len, f->a, f->a_len},
                      {f->b, f->b_len, NULL, 0},
                      {f->payload, f->payload_len, NULL, 0}};
  size_t argc = 3;
  const char *verb;
  switch (f->type) {
  case FRAME_KV_GET:
    verb = "HGET";
    break;
  case FRAME_KV_SET:
    verb = "HSET";
    argc = 4;
    break;
  case FRAME_KV_HAS:
    verb = "HEXISTS";
    break;
  case FRAME_KV_DEL:
    verb = "HDEL";
    break;
  case FRAME_KV_CLEAR:
    verb = "DEL";
    argc = 2;
    break;
  case FRAME_KV_PERSIST:
    verb = "PERSIST";
    argc = 2;
    break;
  case FRAME_KV_EXPIRE: {
    uint32_t ms;
    if (frame_expire_parse(f->payload, f->payload_len, &ms) != 0)
      return 0; /* the broker says why */
    snprintf(ms_text, sizeof(ms_text), "%u", (unsigned)ms);
    verb = "PEXPIRE";
    args[2] = (resp_arg){ms_text, strlen(ms_text), NULL, 0};
    break;
  }
  default:
    return 0;
  }
  args[0] = (resp_arg){verb, strlen(verb), NULL, 0};
  uplink_entry e = {UPLINK_E_KV, f->type, f->request_id, c, NULL, 0};
  if (uplink_send(u, &u->command, args, argc, &e) != 0)
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST,
                           "Redis is not keeping up with this machine's requests (the uplink's "
                           "queue is full); try again");
  return 1;
}

void uplink_kv_reply(uplink *u, const uplink_entry *e, const resp_item *item, const uint8_t *reply,
                     size_t len) {
  (void)u;
  (void)reply;
  (void)len;
  if (!e->conn) return;
  if (item->type == RESP_ERROR) {
    char text[300];
    snprintf(text, sizeof(text), "Redis refused the request: %.*s",
             item->len > 200 ? 200 : (int)item->len, (const char *)item->str);
    broker_conn_reply_text(e->conn, e->request_id, FRAME_STATUS_BAD_REQUEST, text);
    return;
  }
  uint8_t status;
  switch (e->op) {
  case FRAME_KV_GET:
    if (item->type == RESP_BULK && !item->null) {
      broker_conn_reply(e->conn, e->request_id, FRAME_STATUS_OK, item->str, item->len);
      return;
    }
    status = FRAME_STATUS_MISSING;
    break;
  case FRAME_KV_SET:
    status = FRAME_STATUS_OK;
    break;
  default:
    status =
        item->type == RESP_INTEGER && item->integer > 0 ? FRAME_STATUS_OK : FRAME_STATUS_MISSING;
    break;
  }
  broker_conn_reply(e->conn, e->request_id, status, NULL, 0);
}

void uplink_entry_failed(uplink *u, uplink_entry *e) {
  /* Sent, but Redis never said it took them: they may or may not have
   * reached the others, and count as dropped (at-most-once). */
  if (e->kind == UPLINK_E_MESSAGES) u->dropped += e->request_id;
  if (e->conn && e->kind == UPLINK_E_KV) {
    u->lost_replies++;
    broker_conn_reply_text(e->conn, e->request_id, FRAME_STATUS_BAD_REQUEST,
                           "the connection to Redis was lost before it answered; the request may "
                           "or may not have been applied");
  } else if (e->conn && e->kind == UPLINK_E_ANSWER) {
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
  uplink_entry e = {UPLINK_E_ANSWER, 0, f->request_id, c, NULL, 0};
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
  uplink_link_forget(&u->command, c);
  uplink_link_forget(&u->subscriber, c);
  table_sweep(u->topics, uplink_topic_forget_visit, c);
}
