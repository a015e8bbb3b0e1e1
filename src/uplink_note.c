/* uplink_note: per-client data between machines, through Redis (see
 * uplink_owner.c; the bytes are uplink_wire.h's notes).
 *
 * Each machine listens on its own channel PREFIX:q:ORIGIN (its origin in
 * hex). A machine sends the requests of clients another owns there, and
 * gets their answers on its own; a turn's items for one machine and of one
 * kind go in one note (one PUBLISH), sent at the end of the turn or before
 * anything else goes on the command link. A request its owner does not
 * answer in UPLINK_ROUTE_MS fails, saying it may or may not have been
 * applied. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

#define UPLINK_ROUTE_MS UPLINK_STALL_MS /* a request an owner does not answer this long fails */

static uplink_owner *uplink_owner_of_route(expiry_node *n) {
  return (uplink_owner *)((char *)n - offsetof(uplink_owner, route_timeout));
}

void uplink_note_channel(const uplink *u, const uint8_t *origin, char *out, size_t *out_len) {
  static const char hex[] = "0123456789abcdef";
  memcpy(out, u->note_prefix, u->note_prefix_len);
  for (size_t i = 0; i < UPLINK_ORIGIN_SIZE; i++) {
    out[u->note_prefix_len + 2 * i] = hex[origin[i] >> 4];
    out[u->note_prefix_len + 2 * i + 1] = hex[origin[i] & 15];
  }
  *out_len = u->note_prefix_len + 2 * UPLINK_ORIGIN_SIZE;
}

void uplink_note_send(uplink *u, int drop) {
  uplink_owners *s = u->owners;
  if (!s->note_open) return;
  s->note_open = 0;
  if (!drop && u->state == UPLINK_UP) {
    char channel[sizeof(u->note_prefix) + 2 * UPLINK_ORIGIN_SIZE];
    size_t channel_len;
    uplink_note_channel(u, s->note_to, channel, &channel_len);
    resp_arg args[3] = {{"PUBLISH", 7, NULL, 0},
                        {channel, channel_len, NULL, 0},
                        {buffer_begin(&s->note), buffer_length(&s->note), NULL, 0}};
    uplink_entry e = {UPLINK_E_IGNORE, 0, 0, NULL, NULL, 0, 0};
    s->sending_note = 1;
    (void)uplink_send(u, &u->command, args, 3, &e); /* lost: its requests time out */
    s->sending_note = 0;
  }
  buffer_consume(&s->note, buffer_length(&s->note));
  buffer_trim(&s->note, 4 * UPLINK_BATCH_MAX);
}

int uplink_note_gathering(const uplink *u) {
  return u->owners->note_open && !u->owners->sending_note;
}

/* Adds an item to the note for `to` (sent at the end of the loop turn,
 * or before anything else goes on the command link). */
void uplink_note_add(uplink *u, const uint8_t *to, uint8_t op, const uplink_wire_item *item) {
  uplink_owners *s = u->owners;
  size_t size = uplink_wire_item_size(op, item->a_len, item->b_len, item->c_len);
  if (size == 0) return;
  if (s->note_open && (s->note_op != op || memcmp(s->note_to, to, UPLINK_ORIGIN_SIZE) != 0 ||
                       buffer_length(&s->note) + size > UPLINK_BATCH_MAX))
    uplink_note_send(u, 0);
  if (!s->note_open) {
    /* Anything queued for the command link goes first, in order. */
    uplink_topic_send_batch(u, 0);
    uint8_t *head = buffer_reserve(&s->note, UPLINK_ORIGIN_SIZE + 1);
    if (!head) return;
    memcpy(head, u->origin, UPLINK_ORIGIN_SIZE);
    head[UPLINK_ORIGIN_SIZE] = op;
    buffer_commit(&s->note, UPLINK_ORIGIN_SIZE + 1);
    memcpy(s->note_to, to, UPLINK_ORIGIN_SIZE);
    s->note_op = op;
    s->note_open = 1;
  }
  uint8_t *at = buffer_reserve(&s->note, size);
  if (!at) {
    uplink_note_send(u, 1);
    return;
  }
  buffer_commit(&s->note, uplink_wire_item_write(at, op, item));
  if (buffer_length(&s->note) >= UPLINK_BATCH_MAX) uplink_note_send(u, 0);
}

void uplink_note_answer(uplink *u, const uplink_owner *o, const uplink_waiting *w, uint8_t status,
                        const void *value, size_t len) {
  uplink_wire_item item = {.id = w->id,
                           .type = status,
                           .a = o->name,
                           .a_len = (uint32_t)o->name_len,
                           .b = value ? value : (const uint8_t *)"",
                           .b_len = (uint32_t)len};
  uplink_note_add(u, w->asker, UPLINK_WIRE_ANSWER, &item);
}

void uplink_note_route(uplink *u, uplink_owner *o, const uplink_waiting *w) {
  uint32_t id = ++u->owners->next_id;
  if (id == 0) id = ++u->owners->next_id;
  uplink_wire_item item = {.id = id,
                           .type = w->type,
                           .a = o->name,
                           .a_len = (uint32_t)o->name_len,
                           .b = w->bytes,
                           .b_len = w->key_len,
                           .c = w->bytes + w->key_len,
                           .c_len = w->payload_len};
  o->routed = id;
  uplink_note_add(u, o->origin, UPLINK_WIRE_REQUEST, &item);
  if (expiry_schedule(&u->owners->routes, &o->route_timeout,
                      uv_now(&u->broker->loop) + UPLINK_ROUTE_MS) != 0)
    uplink_fail(u, UPLINK_FAULT_LOST, "out of memory sending a request to another machine");
}

/* The answer to a request this machine sent (item). */
static void uplink_note_answered(uplink *u, const uint8_t *from, const uplink_wire_item *item) {
  uplink_owner *o = table_get(u->owners->by_name, item->a, item->a_len);
  if (!o || o->state != UPLINK_OWNER_REMOTE || o->routed != item->id ||
      memcmp(o->origin, from, UPLINK_ORIGIN_SIZE) != 0)
    return; /* given up on already */
  expiry_cancel(&u->owners->routes, &o->route_timeout);
  o->routed = 0;
  if (item->type == UPLINK_WIRE_NOT_OWNER) {
    uplink_owner_set_state(u, o, UPLINK_OWNER_UNKNOWN); /* the request is asked again */
    uplink_claim_ask(u, o, NULL);
    return;
  }
  uplink_waiting *w = uplink_owner_pop(o);
  if (w) {
    uint8_t status = item->type <= FRAME_STATUS_MAX ? item->type : FRAME_STATUS_BAD_REQUEST;
    uplink_owner_answer(u, o, w, status, item->b, item->b_len);
    free(w);
  }
  uplink_owner_progress(u, o);
}

void uplink_note_came(uplink *u, const uint8_t *p, size_t len) {
  const uint8_t *from;
  uint8_t op;
  size_t at;
  if (u->state != UPLINK_UP || uplink_wire_control(p, len, &from, &op, &at) != 0) return;
  uplink_wire_item item;
  while (uplink_wire_item_read(p, len, op, &at, &item) == 1) { /* the rest if it does not parse */
    if (op == UPLINK_WIRE_ANSWER) {
      uplink_note_answered(u, from, &item);
    } else if (op == UPLINK_WIRE_REQUEST && item.type >= FRAME_KV_GET &&
               item.type <= FRAME_KV_PERSIST) {
      uplink_owner_request(u, item.a, item.a_len, NULL, from, item.id, item.type, item.b,
                           item.b_len, item.c, item.c_len);
    }
    if (u->state != UPLINK_UP) return; /* something failed the links meanwhile */
  }
}

/* Requests the owners did not answer in time fail (the owner is then
 * asked for again). */
void uplink_note_timeouts(uplink *u, uint64_t now) {
  uplink_owners *s = u->owners;
  for (expiry_node *n; (n = expiry_pop_due(&s->routes, now));) {
    uplink_owner *o = uplink_owner_of_route(n);
    if (!o->routed) continue;
    o->routed = 0;
    uplink_waiting *w = uplink_owner_pop(o);
    if (w) {
      u->lost_replies++;
      uplink_owner_fail(u, o, w,
                        "the machine that keeps this client's data did not answer in time; the "
                        "request may or may not have been applied");
      free(w);
    }
    /* Redis says again who owns it, for the requests that wait. */
    uplink_owner_set_state(u, o, UPLINK_OWNER_UNKNOWN);
    if (o->head)
      uplink_claim_ask(u, o, NULL);
    else
      uplink_owner_drop(u, o);
    if (u->state != UPLINK_UP) return;
  }
}
