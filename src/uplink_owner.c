/* uplink_owner: each client's data kept by one machine, its owner (see
 * uplink.h).
 *
 * The owner keeps the client's data in its broker's own store and serves
 * its workers' requests there, as on one machine: no Redis round trip. In
 * Redis there is only the client's ownership record (uplink_claim.c).
 * Another machine that gets a request for the client asks Redis once,
 * remembers the owner, and sends its requests there (uplink_note.c), one
 * at a time per client, the others waiting in order: each client's data
 * sees one order of operations, the owner's, linearizable as inside a
 * machine.
 *
 * A client's entry (u->owners) says what this machine knows: MINE (as of
 * the claim epoch: every time the links close the epoch moves on, so each
 * client is asked for again once Redis is back, since another machine may
 * have taken it over meanwhile), REMOTE (the owner's origin), or a claim
 * or a release on its way; requests that cannot be served now wait in the
 * entry, in order.
 *
 * The record goes when the data does: destroy() (a CLEAR), or the end of
 * destroy(seconds) (an EXPIRE's deadline, kept here too), makes the owner
 * delete it. While Redis is away each machine serves every request from
 * its own store (its own clients as before; others from what it wrote
 * meanwhile); once Redis is back, each machine claims again the clients it
 * has data of, and a view of a client another machine owns is dropped. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

#define UPLINK_REMOTE_MAX 65536u /* other machines' clients remembered, at most */

uint64_t uplink_owner_now(uplink *u) {
  uv_update_time(&u->broker->loop);
  return uv_now(&u->broker->loop);
}

static uplink_owner *uplink_owner_of_deadline(expiry_node *n) {
  return (uplink_owner *)((char *)n - offsetof(uplink_owner, deadline));
}

static uplink_owner *uplink_owner_new(uplink *u, const uint8_t *name, size_t len) {
  uplink_owner *o = calloc(1, sizeof(*o));
  if (!o) return NULL;
  o->name = malloc(len ? len : 1);
  if (!o->name || table_put(u->owners->by_name, name, len, o, NULL) != 0) {
    free(o->name);
    free(o);
    return NULL;
  }
  if (len) memcpy(o->name, name, len);
  o->name_len = len;
  o->state = UPLINK_OWNER_UNKNOWN;
  expiry_node_init(&o->deadline);
  expiry_node_init(&o->route_timeout);
  return o;
}

void uplink_owner_set_state(uplink *u, uplink_owner *o, int state) {
  if (o->state == UPLINK_OWNER_REMOTE) u->owners->remote--;
  if (state == UPLINK_OWNER_REMOTE) u->owners->remote++;
  o->state = state;
}

/* Frees o (out of the table already, or being taken out by a sweep). */
static void uplink_owner_free_entry(uplink *u, uplink_owner *o) {
  uplink_owners *s = u->owners;
  expiry_cancel(&s->deadlines, &o->deadline);
  expiry_cancel(&s->routes, &o->route_timeout);
  if (o->state == UPLINK_OWNER_REMOTE) s->remote--;
  kv_slot_release(&o->ns);
  for (uplink_waiting *w = o->head; w;) {
    uplink_waiting *next = w->next;
    free(w);
    w = next;
  }
  free(o->name);
  free(o);
}

void uplink_owner_drop(uplink *u, uplink_owner *o) {
  table_remove(u->owners->by_name, o->name, o->name_len);
  uplink_owner_free_entry(u, o);
}

static int uplink_owner_wait(uplink_owner *o, broker_conn *c, const uint8_t *asker, uint32_t id,
                             uint8_t type, const uint8_t *key, uint32_t key_len,
                             const uint8_t *payload, uint32_t payload_len) {
  uplink_waiting *w = malloc(sizeof(*w) + (size_t)key_len + payload_len);
  if (!w) return -1;
  w->next = NULL;
  w->conn = c;
  w->remote = asker != NULL;
  if (asker) memcpy(w->asker, asker, UPLINK_ORIGIN_SIZE);
  w->id = id;
  w->type = type;
  w->key_len = key_len;
  w->payload_len = payload_len;
  if (key_len) memcpy(w->bytes, key, key_len);
  if (payload_len) memcpy(w->bytes + key_len, payload, payload_len);
  if (o->tail)
    o->tail->next = w;
  else
    o->head = w;
  o->tail = w;
  return 0;
}

uplink_waiting *uplink_owner_pop(uplink_owner *o) {
  uplink_waiting *w = o->head;
  if (!w) return NULL;
  o->head = w->next;
  if (!o->head) o->tail = NULL;
  return w;
}

/* The request w as a frame (its fields point into w and o). */
static void uplink_owner_frame(const uplink_owner *o, const uplink_waiting *w, frame *f) {
  memset(f, 0, sizeof(*f));
  f->type = w->type;
  f->request_id = w->id;
  f->a = o->name;
  f->a_len = (uint32_t)o->name_len;
  f->b = w->bytes;
  f->b_len = w->key_len;
  f->payload = w->bytes + w->key_len;
  f->payload_len = w->payload_len;
}

int uplink_owner_writes(uint8_t type) {
  return type == FRAME_KV_SET;
}

/* Answers the request w of client o, a local one or another machine's. */
void uplink_owner_answer(uplink *u, const uplink_owner *o, const uplink_waiting *w, uint8_t status,
                         const void *value, size_t len) {
  if (w->remote)
    uplink_note_answer(u, o, w, status, value, len);
  else if (w->conn)
    broker_conn_reply(w->conn, w->id, status, value, len);
}

void uplink_owner_fail(uplink *u, const uplink_owner *o, const uplink_waiting *w,
                       const char *text) {
  uplink_owner_answer(u, o, w, FRAME_STATUS_BAD_REQUEST, text, strlen(text));
}

void uplink_owner_clear_here(uplink *u, uplink_owner *o) {
  frame f;
  memset(&f, 0, sizeof(f));
  f.type = FRAME_KV_CLEAR;
  f.a = o->name;
  f.a_len = (uint32_t)o->name_len;
  broker_kv_answer ignored;
  broker_kv_apply(u->broker, &f, &o->ns, &ignored);
}

/* The data's deadline passed: it is gone here (the store may not have
 * swept it yet), and so is the record once nothing waits. */
static void uplink_owner_expired(uplink *u, uplink_owner *o) {
  expiry_cancel(&u->owners->deadlines, &o->deadline);
  uplink_owner_clear_here(u, o);
  o->release_wanted = 1;
  uplink_claim_release(u, o);
}

/* Applies a request of a client this machine serves now, and answers it. */
static void uplink_owner_apply(uplink *u, uplink_owner *o, const frame *f, broker_conn *c,
                               const uplink_waiting *w) {
  broker_kv_answer answer;
  broker_kv_apply(u->broker, f, &o->ns, &answer);
  /* Whether the data's life changed, and with it the record's. */
  if (f->type == FRAME_KV_EXPIRE && answer.status == FRAME_STATUS_OK) {
    uint32_t ms;
    if (frame_expire_parse(f->payload, f->payload_len, &ms) == 0 &&
        expiry_schedule(&u->owners->deadlines, &o->deadline, uv_now(&u->broker->loop) + ms) != 0)
      expiry_cancel(&u->owners->deadlines, &o->deadline); /* the record stays */
  } else if (f->type == FRAME_KV_PERSIST) {
    expiry_cancel(&u->owners->deadlines, &o->deadline);
  } else if (f->type == FRAME_KV_CLEAR) {
    expiry_cancel(&u->owners->deadlines, &o->deadline);
    o->release_wanted = 1;
  } else if (f->type == FRAME_KV_SET && answer.status == FRAME_STATUS_OK) {
    o->release_wanted = 0; /* data again */
  }
  if (w)
    uplink_owner_answer(u, o, w, answer.status, answer.value, answer.len);
  else
    broker_conn_reply(c, f->request_id, answer.status, answer.value, answer.len);
  uplink_claim_release(u, o);
}

/* Whether o's requests are served here now, without asking Redis. */
static int uplink_owner_serves(uplink *u, uplink_owner *o) {
  if (o->state != UPLINK_OWNER_MINE) return 0;
  if (o->deadline.slot != EXPIRY_UNSCHEDULED && uv_now(&u->broker->loop) >= o->deadline.deadline)
    uplink_owner_expired(u, o);
  if (o->state != UPLINK_OWNER_MINE) return 0; /* released */
  return u->state != UPLINK_UP || o->epoch == u->owners->epoch;
}

/* Does what o's waiting requests need next. */
void uplink_owner_progress(uplink *u, uplink_owner *o) {
  while (o->head) {
    uplink_waiting *w = o->head;
    if (u->state != UPLINK_UP &&
        (o->state == UPLINK_OWNER_UNKNOWN || o->state == UPLINK_OWNER_MINE)) {
      /* On its own: served from this machine's view. */
      uplink_owner_set_state(u, o, UPLINK_OWNER_MINE);
      o->local_data = 1;
    }
    if (o->state == UPLINK_OWNER_UNKNOWN ||
        (o->state == UPLINK_OWNER_MINE && !uplink_owner_serves(u, o))) {
      if (o->state != UPLINK_OWNER_RELEASING && o->state != UPLINK_OWNER_CLAIMING)
        uplink_claim_ask(u, o, NULL);
      return;
    }
    if (o->state == UPLINK_OWNER_MINE) {
      frame f;
      uplink_owner_frame(o, w, &f);
      uplink_owner_pop(o);
      uplink_owner_apply(u, o, &f, NULL, w);
      free(w);
      continue;
    }
    if (o->state != UPLINK_OWNER_REMOTE) return; /* an answer from Redis comes first */
    if (w->remote) {
      /* Asked as the owner, and it is not: the asker asks Redis again. */
      uplink_owner_pop(o);
      uplink_note_answer(u, o, w, UPLINK_WIRE_NOT_OWNER, NULL, 0);
      free(w);
      continue;
    }
    if (o->routed) return;
    if (uplink_claim_gone(u, o->origin)) {
      /* Its owner is gone: Redis says whether it still has it. */
      uplink_owner_set_state(u, o, UPLINK_OWNER_UNKNOWN);
      uplink_claim_ask(u, o, NULL);
      return;
    }
    uplink_note_route(u, o, w);
    return;
  }
  uplink_claim_release(u, o);
}

/* A request for client (name) from c, or from another machine (asker). */
void uplink_owner_request(uplink *u, const uint8_t *name, size_t name_len, broker_conn *c,
                          const uint8_t *asker, uint32_t id, uint8_t type, const uint8_t *key,
                          uint32_t key_len, const uint8_t *payload, uint32_t payload_len) {
  static const char no_memory[] = "broker out of memory";
  uplink_owner *o = table_get(u->owners->by_name, name, name_len);
  if (!o) o = uplink_owner_new(u, name, name_len);
  if (o && !asker && !o->head && uplink_owner_serves(u, o)) {
    frame f; /* the fast way: a client of this machine's, nothing waiting */
    memset(&f, 0, sizeof(f));
    f.type = type;
    f.request_id = id;
    f.a = name;
    f.a_len = (uint32_t)name_len;
    f.b = key;
    f.b_len = key_len;
    f.payload = payload;
    f.payload_len = payload_len;
    uplink_owner_apply(u, o, &f, c, NULL);
    return;
  }
  if (!o || uplink_owner_wait(o, c, asker, id, type, key, key_len, payload, payload_len) != 0) {
    if (!asker) broker_conn_reply_text(c, id, FRAME_STATUS_NO_MEMORY, no_memory);
    return; /* another machine's request: its wait times out */
  }
  if (o->head != o->tail) return; /* the ones before it move it on */
  if (asker && o->state == UPLINK_OWNER_REMOTE) {
    /* The asker thinks this machine owns it: Redis says who does. */
    uplink_claim_ask(u, o, NULL);
    return;
  }
  uplink_owner_progress(u, o);
}

int uplink_kv(uplink *u, broker_conn *c, const frame *f) {
  uplink_owner_request(u, f->a, f->a_len, c, NULL, f->request_id, f->type, f->b, f->b_len,
                       f->payload, f->payload_len);
  return 1;
}

static int uplink_owner_forget_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  uplink_owner *o = value;
  if (o->state != UPLINK_OWNER_REMOTE || o->head) return 0;
  uplink_owner_free_entry(ctx, o);
  return 1;
}

void uplink_owner_tick(uplink *u, uint64_t now) {
  uplink_owners *s = u->owners;
  for (expiry_node *n; (n = expiry_pop_due(&s->deadlines, now));) {
    uplink_owner *o = uplink_owner_of_deadline(n);
    uplink_owner_expired(u, o);
  }
  uplink_note_timeouts(u, now);
  /* Remembering every other machine's client costs memory: past a bound,
   * the ones with nothing on their way are forgotten (Redis says again). */
  if (s->remote > UPLINK_REMOTE_MAX) table_sweep(s->by_name, uplink_owner_forget_visit, u);
}

static int uplink_owner_down_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  uplink *u = ctx;
  uplink_owner *o = value;
  expiry_cancel(&u->owners->routes, &o->route_timeout);
  if (o->routed) {
    /* On its way to the owner: no telling whether it got there. */
    o->routed = 0;
    uplink_waiting *w = uplink_owner_pop(o);
    if (w) {
      u->lost_replies++;
      uplink_owner_fail(u, o, w,
                        "the connection to Redis was lost before the machine that keeps this "
                        "client's data answered; the request may or may not have been applied");
      free(w);
    }
  }
  if (o->state == UPLINK_OWNER_RELEASING) {
    o->release_wanted = 1; /* whether the record went is not known */
    o->local_data = 1;
  } else if (o->state != UPLINK_OWNER_MINE) {
    if (!o->head) { /* nothing here: forgotten, Redis says again */
      uplink_owner_free_entry(u, o);
      return 1;
    }
    o->local_data = 1; /* what waits is served here */
  }
  /* Every client is served here until Redis is back, then asked for. */
  uplink_owner_set_state(u, o, UPLINK_OWNER_MINE);
  /* What waited for Redis is served from this machine's view, in order;
   * other machines' requests are not answered (they time out there). */
  for (uplink_waiting *w; (w = uplink_owner_pop(o));) {
    if (!w->remote) {
      frame f;
      uplink_owner_frame(o, w, &f);
      uplink_owner_apply(u, o, &f, NULL, w);
    }
    free(w);
  }
  return 0;
}

void uplink_owner_down(uplink *u) {
  uplink_owners *s = u->owners;
  uplink_note_send(u, 1);
  s->epoch++; /* every client is asked for again once Redis is back */
  if (s->sweeping) {
    s->down_pending = 1; /* a sweep may not run inside another */
    return;
  }
  table_sweep(s->by_name, uplink_owner_down_visit, u);
}

static int uplink_owner_up_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  uplink *u = ctx;
  uplink_owner *o = value;
  if (u->state != UPLINK_UP || o->state != UPLINK_OWNER_MINE || o->head) return 0;
  /* Within half the queue's limit; the others are asked for when used. */
  if (uplink_link_queued(&u->command) > UPLINK_QUEUE_LIMIT / 2) return 0;
  if (o->release_wanted)
    uplink_claim_release(u, o);
  else
    uplink_claim_ask(u, o, NULL); /* says so again (Redis may have restarted empty) */
  return 0;
}

void uplink_owner_up(uplink *u) {
  uplink_owners *s = u->owners;
  s->up_since = uplink_owner_now(u);
  s->sweeping = 1;
  table_sweep(s->by_name, uplink_owner_up_visit, u);
  s->sweeping = 0;
  if (s->down_pending) {
    s->down_pending = 0;
    table_sweep(s->by_name, uplink_owner_down_visit, u);
  }
}

static int uplink_owner_conn_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  uplink_owner *o = value;
  for (uplink_waiting *w = o->head; w; w = w->next)
    if (w->conn == ctx) w->conn = NULL; /* still applied, in order; not answered */
  return 0;
}

void uplink_owner_conn_gone(uplink *u, broker_conn *c) {
  table_sweep(u->owners->by_name, uplink_owner_conn_visit, c);
}

int uplink_owner_init(uplink *u) {
  uplink_owners *s = calloc(1, sizeof(*s));
  if (!s) return -1;
  s->by_name = table_create();
  if (!s->by_name) {
    free(s);
    return -1;
  }
  expiry_init(&s->deadlines);
  expiry_init(&s->routes);
  buffer_init(&s->note);
  s->epoch = 1; /* entries start at 0: never claimed */
  u->owners = s;
  return 0;
}

static int uplink_owner_free_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  uplink_owner_free_entry(ctx, value);
  return 1;
}

void uplink_owner_free(uplink *u) {
  uplink_owners *s = u->owners;
  if (!s) return;
  table_sweep(s->by_name, uplink_owner_free_visit, u);
  table_destroy(s->by_name, NULL, NULL);
  expiry_free(&s->deadlines);
  expiry_free(&s->routes);
  buffer_free(&s->note);
  free(s);
  u->owners = NULL;
}
