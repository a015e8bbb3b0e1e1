/* uplink_topic: topics across machines, by interest (see uplink.h).
 *
 * What this machine wants: u->topics, one entry a topic some local process
 * subscribes to. Its first local subscriber makes the subscriber link
 * SUBSCRIBE to PREFIX:t:TOPIC; once Redis confirms, the machine publishes
 * its interest on the control channel, and once Redis has taken that, the
 * local subscribers that waited are answered: from then on any machine
 * that has read the notice sends that topic's messages here. Its last
 * local subscriber gone, the link unsubscribes and the machine says so.
 *
 * What the others want: u->interest, the origins that want each topic.
 * It is kept while Redis is away, so what is published meanwhile for a
 * topic another machine wanted is counted as dropped; a machine's hello
 * (it joined, or came back) forgets what it wanted before, and everyone
 * tells it what they want.
 *
 * A control message is ORIGIN (8 bytes), an op ('h' hello, 'b' bye, '+'
 * wants, '-' no longer wants, 'p' still there, 'q' say what you want, 'j'
 * and 'l' members joined and left: uplink_member.c) and, for '+' and '-',
 * topic names, each a 4-byte little-endian length and the bytes. Every machine says 'p' every
 * UPLINK_PRESENCE_MS; one not heard of for three times that (it died without a goodbye) is no
 * longer sent anything, and if it was only slow, its next 'p' gets it asked ('q'). A topic's
 * message is ORIGIN and one or more opaque payloads, each a 4-byte little-endian length and the
 * bytes: a machine's messages for one topic in one loop turn (up to UPLINK_BATCH_MAX) go in one
 * PUBLISH, which is most of what Redis spends on a message. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"
#include "uplink_wire.h"

/* Control messages carry at most this much of a list; more goes in more. */
#define UPLINK_CONTROL_MAX (64u * 1024u)

void uplink_topic_free(void *value, void *ctx) {
  (void)ctx;
  uplink_topic *t = value;
  free(t->waiters);
  free(t);
}

void uplink_interest_free(void *value, void *ctx) {
  (void)ctx;
  uplink_interest *i = value;
  free(i->origins);
  free(i);
}

static uint8_t *uplink_copy(const uint8_t *name, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  if (copy && len) memcpy(copy, name, len);
  return copy;
}

/* ---- this machine's topics ------------------------------------------------------ */

static void uplink_topic_answer(uplink_topic *t) {
  for (size_t i = 0; i < t->waiting; i++)
    if (t->waiters[i].conn)
      broker_conn_reply(t->waiters[i].conn, t->waiters[i].request_id, FRAME_STATUS_OK, NULL, 0);
  t->waiting = 0;
}

static int uplink_topic_wait(uplink_topic *t, broker_conn *c, uint32_t request_id) {
  if (t->waiting == t->capacity) {
    size_t capacity = t->capacity ? t->capacity * 2 : 2;
    void *grown = realloc(t->waiters, capacity * sizeof(*t->waiters));
    if (!grown) return -1;
    t->waiters = grown;
    t->capacity = capacity;
  }
  t->waiters[t->waiting].conn = c;
  t->waiters[t->waiting].request_id = request_id;
  t->waiting++;
  return 0;
}

/* SUBSCRIBE or UNSUBSCRIBE for a topic on the subscriber link. */
static int uplink_topic_command(uplink *u, const char *verb, const uint8_t *name, size_t len,
                                int kind) {
  resp_arg args[2] = {{verb, strlen(verb), NULL, 0},
                      {u->topic_prefix, u->topic_prefix_len, name, len}};
  uplink_entry e = {(uint8_t)kind, 0, 0, NULL, NULL, 0, 0};
  if (kind == UPLINK_E_SUBSCRIBE) {
    e.name = uplink_copy(name, len);
    e.name_len = len;
    if (!e.name) return -1;
  }
  return uplink_send(u, &u->subscriber, args, 2, &e);
}

/* A control message: op and the names (count of them) at names. */
int uplink_control(uplink *u, uint8_t op, const uint8_t *list, size_t list_len, int kind,
                   const uint8_t *name, size_t name_len) {
  uint8_t head[UPLINK_ORIGIN_SIZE + 1];
  memcpy(head, u->origin, UPLINK_ORIGIN_SIZE);
  head[UPLINK_ORIGIN_SIZE] = op;
  resp_arg args[3] = {{"PUBLISH", 7, NULL, 0},
                      {u->control, u->control_len, NULL, 0},
                      {head, sizeof(head), list, list_len}};
  uplink_entry e = {(uint8_t)kind, 0, 0, NULL, NULL, 0, 0};
  if (name) {
    e.name = uplink_copy(name, name_len);
    e.name_len = name_len;
    if (!e.name) return -1;
  }
  return uplink_send(u, &u->command, args, 3, &e);
}

/* One name as a control message lists it. */
static uint8_t *uplink_list_one(const uint8_t *name, size_t len, size_t *out_len) {
  uint8_t *list = malloc(4 + len);
  if (!list) return NULL;
  uplink_wire_record_head(list, (uint32_t)len);
  if (len) memcpy(list + 4, name, len);
  *out_len = 4 + len;
  return list;
}

static int uplink_topic_subscribe_visit(const void *key, size_t key_len, void *value, void *ctx);

/* A topic new while the uplink connects. Its links' handshake may be on
 * its way already (the topics then were in it): this one must be
 * subscribed to on this connection too, or the others would be told this
 * machine wants it (uplink_topic_announce) while Redis sends it nothing.
 * While the subscriber link says hello, it joins the hello; once that is
 * done (the command link is not yet), it is subscribed to as when up, and
 * told when Redis confirms and the uplink is up. With no connection under
 * way, the next one subscribes to it. */
static void uplink_topic_subscribe_early(uplink *u, const uint8_t *topic, size_t len,
                                         uplink_topic *t) {
  if (u->subscriber.state == UPLINK_LINK_CLOSED) return;
  if (u->subscriber.state != UPLINK_LINK_READY) {
    (void)uplink_topic_subscribe_visit(topic, len, t, u);
    return;
  }
  if (uplink_topic_command(u, "SUBSCRIBE", topic, len, UPLINK_E_SUBSCRIBE) != 0)
    uplink_fail(u, UPLINK_FAULT_LOST, "out of memory subscribing on Redis");
}

int uplink_topic_is_local(const uint8_t *topic, size_t len) {
  size_t n = sizeof(UPLINK_LOCAL_PREFIX) - 1;
  return len >= n && memcmp(topic, UPLINK_LOCAL_PREFIX, n) == 0;
}

int uplink_subscribed(uplink *u, const uint8_t *topic, size_t len, broker_conn *c,
                      uint32_t request_id) {
  if (uplink_topic_is_local(topic, len)) return 0;
  uplink_topic *t = table_get(u->topics, topic, len);
  if (!t) {
    t = calloc(1, sizeof(*t));
    if (!t) return 0;
    if (table_put(u->topics, topic, len, t, NULL) != 0) {
      free(t);
      return 0;
    }
    if (u->state != UPLINK_UP) {
      uplink_topic_subscribe_early(u, topic, len, t);
      return 0; /* live across machines once the uplink is up */
    }
    if (uplink_topic_command(u, "SUBSCRIBE", topic, len, UPLINK_E_SUBSCRIBE) != 0) return 0;
  } else if (t->live || u->state != UPLINK_UP) {
    return 0;
  }
  return uplink_topic_wait(t, c, request_id) == 0;
}

void uplink_topic_gone(uplink *u, const uint8_t *topic, size_t len) {
  uplink_topic *t = table_remove(u->topics, topic, len);
  if (!t) return;
  uplink_topic_answer(t);
  uplink_topic_free(t, NULL);
  if (u->state != UPLINK_UP) return;
  size_t list_len;
  uint8_t *list = uplink_list_one(topic, len, &list_len);
  if (list) {
    (void)uplink_control(u, '-', list, list_len, UPLINK_E_IGNORE, NULL, 0);
    free(list);
  }
  (void)uplink_topic_command(u, "UNSUBSCRIBE", topic, len, UPLINK_E_UNSUBSCRIBE);
}

void uplink_topic_confirmed(uplink *u, const uint8_t *name, size_t len) {
  uplink_topic *t = table_get(u->topics, name, len);
  if (!t) return; /* gone since */
  t->subscribed = 1;
  if (u->state != UPLINK_UP) return; /* told once up (uplink_topic_announce) */
  size_t list_len;
  uint8_t *list = uplink_list_one(name, len, &list_len);
  if (!list || uplink_control(u, '+', list, list_len, UPLINK_E_INTEREST, name, len) != 0) {
    t->live = 1; /* the notice cannot go: do not hold the subscribers */
    uplink_topic_answer(t);
  }
  free(list);
}

void uplink_topic_interest_sent(uplink *u, const uint8_t *name, size_t len) {
  uplink_topic *t = table_get(u->topics, name, len);
  if (!t) return;
  t->live = 1;
  uplink_topic_answer(t);
  uplink_member_tell_topic(u, name, len);
}

static int uplink_topic_subscribe_visit(const void *key, size_t key_len, void *value, void *ctx) {
  uplink *u = ctx;
  uplink_topic *t = value;
  resp_arg args[2] = {{"SUBSCRIBE", 9, NULL, 0},
                      {u->topic_prefix, u->topic_prefix_len, key, key_len}};
  uplink_entry e = {UPLINK_E_HANDSHAKE, 0, 0, NULL, NULL, 0, 0};
  t->live = 0;
  t->subscribed = 0;
  t->in_handshake = 0;
  if (uplink_send(u, &u->subscriber, args, 2, &e) == 0) {
    u->subscriber.handshake_left++;
    t->in_handshake = 1;
  }
  return 0;
}

int uplink_topic_subscribe_all(uplink *u) {
  table_sweep(u->topics, uplink_topic_subscribe_visit, u);
  return 0;
}

/* Gathers topic names into control messages of UPLINK_CONTROL_MAX. */
typedef struct uplink_gather {
  uplink *u;
  buffer list;
} uplink_gather;

static void uplink_gather_send(uplink_gather *g) {
  if (buffer_length(&g->list) == 0) return;
  (void)uplink_control(g->u, '+', buffer_begin(&g->list), buffer_length(&g->list), UPLINK_E_IGNORE,
                       NULL, 0);
  buffer_consume(&g->list, buffer_length(&g->list));
}

static int uplink_topic_gather_visit(const void *key, size_t key_len, void *value, void *ctx) {
  uplink_gather *g = ctx;
  uplink_topic *t = value;
  if (!t->live) return 0; /* told once Redis confirms its SUBSCRIBE */
  if (buffer_length(&g->list) + 4 + key_len > UPLINK_CONTROL_MAX) uplink_gather_send(g);
  uint8_t *at = buffer_reserve(&g->list, 4 + key_len);
  if (!at) return 0;
  uplink_wire_record_head(at, (uint32_t)key_len);
  if (key_len) memcpy(at + 4, key, key_len);
  buffer_commit(&g->list, 4 + key_len);
  return 0;
}

/* Tells the others every topic this machine wants. */
static void uplink_topic_tell_all(uplink *u) {
  uplink_gather g = {u, {0}};
  buffer_init(&g.list);
  table_sweep(u->topics, uplink_topic_gather_visit, &g);
  uplink_gather_send(&g);
  buffer_free(&g.list);
  uplink_member_tell_all(u);
}

static int uplink_topic_live_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  (void)ctx;
  uplink_topic *t = value;
  if (t->in_handshake) t->subscribed = 1; /* every handshake reply came */
  t->in_handshake = 0;
  if (t->subscribed) {
    t->live = 1;
    uplink_topic_answer(t);
  }
  return 0;
}

void uplink_topic_announce(uplink *u) {
  /* What Redis sends here now: the topics of the handshake, and those
   * subscribed to since whose SUBSCRIBE was confirmed; the others are told
   * once theirs is. */
  table_sweep(u->topics, uplink_topic_live_visit, NULL);
  (void)uplink_control(u, 'h', NULL, 0, UPLINK_E_IGNORE, NULL, 0);
  uplink_topic_tell_all(u);
}

static int uplink_topic_reset_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  (void)ctx;
  uplink_topic *t = value;
  t->live = 0;
  t->subscribed = 0;
  t->in_handshake = 0;
  uplink_topic_answer(t);
  return 0;
}

void uplink_topic_reset(uplink *u) {
  table_sweep(u->topics, uplink_topic_reset_visit, u);
}

/* ---- what the others want ----------------------------------------------------------- */

static void uplink_interest_add(uplink *u, const uint8_t *origin, const uint8_t *name, size_t len) {
  uplink_interest *i = table_get(u->interest, name, len);
  if (!i) {
    i = calloc(1, sizeof(*i));
    if (!i) return;
    if (table_put(u->interest, name, len, i, NULL) != 0) {
      free(i);
      return;
    }
  }
  for (size_t k = 0; k < i->count; k++)
    if (memcmp(i->origins[k], origin, UPLINK_ORIGIN_SIZE) == 0) return;
  if (i->count == i->capacity) {
    size_t capacity = i->capacity ? i->capacity * 2 : 2;
    void *grown = realloc(i->origins, capacity * UPLINK_ORIGIN_SIZE);
    if (!grown) return;
    i->origins = grown;
    i->capacity = capacity;
  }
  memcpy(i->origins[i->count++], origin, UPLINK_ORIGIN_SIZE);
}

/* Drops origin from i; whether i is now empty. */
static int uplink_interest_drop(uplink_interest *i, const uint8_t *origin) {
  for (size_t k = 0; k < i->count; k++)
    if (memcmp(i->origins[k], origin, UPLINK_ORIGIN_SIZE) == 0) {
      memmove(i->origins[k], i->origins[k + 1], (i->count - k - 1) * UPLINK_ORIGIN_SIZE);
      i->count--;
      break;
    }
  return i->count == 0;
}

static int uplink_interest_forget_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key;
  (void)key_len;
  if (!uplink_interest_drop(value, ctx)) return 0;
  uplink_interest_free(value, NULL);
  return 1;
}

static void uplink_interest_remove(uplink *u, const uint8_t *origin, const uint8_t *name,
                                   size_t len) {
  uplink_interest *i = table_get(u->interest, name, len);
  if (i && uplink_interest_drop(i, origin))
    uplink_interest_free(table_remove(u->interest, name, len), NULL);
}

/* ---- who is there --------------------------------------------------------------- */

void uplink_machine_free(void *value, void *ctx) {
  (void)ctx;
  free(value);
}

/* Whether origin was known; it is now, heard of at this loop time. */
static int uplink_machine_seen(uplink *u, const uint8_t *origin) {
  uint64_t *seen = table_get(u->machines, origin, UPLINK_ORIGIN_SIZE);
  int known = seen != NULL;
  if (!seen) {
    seen = malloc(sizeof(*seen));
    if (!seen) return 0;
    if (table_put(u->machines, origin, UPLINK_ORIGIN_SIZE, seen, NULL) != 0) {
      free(seen);
      return 0;
    }
  }
  *seen = uv_now(&u->broker->loop);
  return known;
}

/* Forgets what origin wanted, and its members. */
static void uplink_machine_forget_interest(uplink *u, const uint8_t *origin) {
  uplink_member_forget(u, origin);
  uint8_t copy[UPLINK_ORIGIN_SIZE];
  memcpy(copy, origin, sizeof(copy));
  table_sweep(u->interest, uplink_interest_forget_visit, copy);
}

typedef struct uplink_presence_sweep {
  uplink *u;
  uint64_t now;
  int reset; /* set every machine's time to now */
} uplink_presence_sweep;

static int uplink_presence_visit(const void *key, size_t key_len, void *value, void *ctx) {
  (void)key_len;
  uplink_presence_sweep *p = ctx;
  uint64_t *seen = value;
  if (p->reset || *seen > p->now) {
    *seen = p->now;
    return 0;
  }
  if (p->now - *seen <= 3u * (uint64_t)p->u->options.presence_ms) return 0;
  uplink_machine_forget_interest(p->u, key); /* it died without a goodbye */
  free(seen);
  return 1;
}

void uplink_topic_machines_seen_now(uplink *u, uint64_t now) {
  uplink_presence_sweep p = {u, now, 1};
  table_sweep(u->machines, uplink_presence_visit, &p);
}

void uplink_topic_presence(uplink *u, uint64_t now) {
  if (now - u->presence_sent >= u->options.presence_ms) {
    u->presence_sent = now;
    (void)uplink_control(u, 'p', NULL, 0, UPLINK_E_IGNORE, NULL, 0);
  }
  uplink_presence_sweep p = {u, now, 0};
  table_sweep(u->machines, uplink_presence_visit, &p);
}

/* ---- control messages ------------------------------------------------------------ */

static void uplink_control_message(uplink *u, const uint8_t *p, size_t len) {
  const uint8_t *origin;
  uint8_t op;
  size_t at;
  if (uplink_wire_control(p, len, &origin, &op, &at) != 0) return;
  if (memcmp(origin, u->origin, UPLINK_ORIGIN_SIZE) == 0) return; /* our own */
  if (op == 'b') {                                                /* goodbye */
    free(table_remove(u->machines, origin, UPLINK_ORIGIN_SIZE));
    uplink_machine_forget_interest(u, origin);
    return;
  }
  int known = uplink_machine_seen(u, origin);
  switch (op) {
  case 'h': /* hello: it (re)joined; what it wanted before is void */
    uplink_machine_forget_interest(u, origin);
    uplink_topic_tell_all(u);
    return;
  case 'q': /* it asks what this machine wants */
    uplink_topic_tell_all(u);
    return;
  case 'p': /* there; one given up on is asked what it wants again */
    if (!known) (void)uplink_control(u, 'q', NULL, 0, UPLINK_E_IGNORE, NULL, 0);
    return;
  case 'j': /* its members joined */
  case 'l': /* left */
    uplink_member_control(u, origin, op, p, len, at);
    return;
  case '+':
  case '-':
    break;
  default:
    return;
  }
  const uint8_t *name;
  uint32_t n;
  while (uplink_wire_record(p, len, &at, &name, &n) == 1) { /* what does not parse is ignored */
    if (op == '+')
      uplink_interest_add(u, origin, name, n);
    else
      uplink_interest_remove(u, origin, name, n);
  }
}

void uplink_topic_message(uplink *u, const uint8_t *channel, size_t channel_len,
                          const uint8_t *payload, size_t len) {
  if (channel_len == u->control_len && memcmp(channel, u->control, channel_len) == 0) {
    uplink_control_message(u, payload, len);
    return;
  }
  if (channel_len == u->notes_len && memcmp(channel, u->notes, channel_len) == 0) {
    uplink_note_came(u, payload, len);
    return;
  }
  const uint8_t *origin;
  size_t at;
  if (channel_len < u->topic_prefix_len ||
      memcmp(channel, u->topic_prefix, u->topic_prefix_len) != 0 ||
      uplink_wire_message(payload, len, &origin, &at) != 0)
    return;
  if (memcmp(origin, u->origin, UPLINK_ORIGIN_SIZE) == 0) return; /* delivered here already */
  frame f;
  memset(&f, 0, sizeof(f));
  f.type = FRAME_PUBLISH;
  f.a = channel + u->topic_prefix_len;
  f.a_len = (uint32_t)(channel_len - u->topic_prefix_len);
  /* What does not parse is dropped with the rest of the message. */
  while (uplink_wire_record(payload, len, &at, &f.payload, &f.payload_len) == 1) {
    f.size = frame_size(f.a_len, 0, f.payload_len);
    if (f.size == 0 || f.size > u->broker->options.max_frame_size) continue;
    u->received++;
    broker_topic_route(u->broker, &f, NULL, UINT32_MAX);
  }
}

void uplink_topic_send_batch(uplink *u, int drop) {
  if (!u->batch_topic) return;
  uint64_t count = u->batch_count;
  int sent = 0;
  if (!drop && u->state == UPLINK_UP) {
    resp_arg args[3] = {
        {"PUBLISH", 7, NULL, 0},
        {u->topic_prefix, u->topic_prefix_len, u->batch_topic, u->batch_topic_len},
        {u->origin, UPLINK_ORIGIN_SIZE, buffer_begin(&u->batch), buffer_length(&u->batch)}};
    /* The subscribers Redis should give them to: each machine that
     * wants them, and this one when Redis has confirmed it listens too. */
    uplink_interest *i = table_get(u->interest, u->batch_topic, u->batch_topic_len);
    uplink_topic *own = table_get(u->topics, u->batch_topic, u->batch_topic_len);
    size_t wanted = (i ? i->count : 0) + (own && own->subscribed ? 1 : 0);
    uplink_entry e = {UPLINK_E_MESSAGES,
                      0,
                      (uint32_t)count,
                      NULL,
                      NULL,
                      0,
                      wanted < UINT32_MAX ? (uint32_t)wanted : UINT32_MAX};
    u->sending_batch = 1;
    sent = uplink_send(u, &u->command, args, 3, &e) == 0;
    u->sending_batch = 0;
  }
  if (sent)
    u->published += count;
  else
    u->dropped += count;
  free(u->batch_topic);
  u->batch_topic = NULL;
  u->batch_count = 0;
  buffer_consume(&u->batch, buffer_length(&u->batch));
  buffer_trim(&u->batch, 4 * UPLINK_BATCH_MAX);
}

void uplink_publish(uplink *u, const frame *f) {
  if (uplink_topic_is_local(f->a, f->a_len)) return;
  uplink_interest *i = table_get(u->interest, f->a, f->a_len);
  if (!i || i->count == 0) return; /* no other machine wants it */
  if (u->state != UPLINK_UP) {
    u->dropped++;
    return;
  }
  /* Another topic, or no room left: what was gathered goes first. */
  if (u->batch_topic &&
      (u->batch_topic_len != f->a_len || memcmp(u->batch_topic, f->a, f->a_len) != 0 ||
       buffer_length(&u->batch) + 4 + f->payload_len > UPLINK_BATCH_MAX))
    uplink_topic_send_batch(u, 0);
  if (!u->batch_topic) {
    u->batch_topic = uplink_copy(f->a, f->a_len);
    if (!u->batch_topic) {
      u->dropped++;
      return;
    }
    u->batch_topic_len = f->a_len;
  }
  uint8_t *at = buffer_reserve(&u->batch, 4 + (size_t)f->payload_len);
  if (!at) {
    u->dropped++;
    return;
  }
  uplink_wire_record_head(at, f->payload_len);
  if (f->payload_len) memcpy(at + 4, f->payload, f->payload_len);
  buffer_commit(&u->batch, 4 + (size_t)f->payload_len);
  u->batch_count++;
  /* A large one alone fills a batch: it goes now, not copied again later. */
  if (buffer_length(&u->batch) >= UPLINK_BATCH_MAX) uplink_topic_send_batch(u, 0);
}
