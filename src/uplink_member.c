/* uplink_member: the members of topics (broker_presence.c) on the other
 * machines.
 *
 * A member is a subscriber with a tag: a socket.io 4 adapter is one of its
 * namespace's topic, its tag its uid, and its server count and the replies
 * a request waits for come from the list of the others. Across machines a
 * machine tells the others on the control channel when one of its members
 * joins ('j') or leaves ('l'), and every member it has when it says hello
 * or is asked; each machine keeps the others' members by topic, and its
 * broker tells its own members of them as of local ones: in the list a new
 * member's SUBSCRIBE is answered with, and with JOINED and LEFT.
 *
 * A member is told only once its topic is live across machines (its
 * interest published): whoever learns of it can reach it. A machine's
 * members leave when it says goodbye or hello (then it tells them again),
 * when it has not been heard of for three presence periods, and all the
 * others' leave here when this machine's uplink goes down: a request then
 * waits for no one it cannot reach.
 *
 * 'j' and 'l' carry records in pairs, the topic's name then the tag. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

/* The others' members remembered, at most (more are ignored). */
#define UPLINK_MEMBERS_MAX 65536u
/* Control messages carry at most this much of a list; more goes in more. */
#define UPLINK_MEMBER_LIST_MAX (64u * 1024u)

void uplink_members_free(void *value, void *ctx) {
  (void)ctx;
  uplink_members *m = value;
  for (size_t i = 0; i < m->count; i++)
    free(m->list[i].tag);
  free(m->list);
  free(m);
}

const uplink_members *uplink_members_find(uplink *u, const uint8_t *topic, size_t len) {
  return table_get(u->members, topic, len);
}

/* ---- telling the others of this machine's members ------------------------------ */

/* Records one pair (topic, tag) in list. 0, or -1 when out of memory. */
static int uplink_member_record(buffer *list, const uint8_t *topic, size_t len, const uint8_t *tag,
                                size_t tag_len) {
  uint8_t *at = buffer_reserve(list, 8 + len + tag_len);
  if (!at) return -1;
  uplink_wire_record_head(at, (uint32_t)len);
  if (len) memcpy(at + 4, topic, len);
  uplink_wire_record_head(at + 4 + len, (uint32_t)tag_len);
  if (tag_len) memcpy(at + 8 + len, tag, tag_len);
  buffer_commit(list, 8 + len + tag_len);
  return 0;
}

static void uplink_member_send(uplink *u, uint8_t op, buffer *list) {
  if (buffer_length(list) == 0) return;
  (void)uplink_control(u, op, buffer_begin(list), buffer_length(list), UPLINK_E_IGNORE, NULL, 0);
  buffer_consume(list, buffer_length(list));
}

/* Whether the others can reach topic here: its interest was published. */
static int uplink_member_live(uplink *u, const uint8_t *topic, size_t len) {
  const uplink_topic *t = table_get(u->topics, topic, len);
  return u->state == UPLINK_UP && t && t->live;
}

void uplink_member_local(uplink *u, const uint8_t *topic, size_t len, const uint8_t *tag,
                         size_t tag_len, int joined) {
  /* A member of a topic not live yet is told once it is
   * (uplink_member_tell_topic); one that leaves is told in any case. */
  if (u->state != UPLINK_UP || uplink_topic_is_local(topic, len) ||
      (joined && !uplink_member_live(u, topic, len)))
    return;
  buffer list;
  buffer_init(&list);
  if (uplink_member_record(&list, topic, len, tag, tag_len) == 0)
    uplink_member_send(u, joined ? 'j' : 'l', &list);
  buffer_free(&list);
}

typedef struct uplink_member_gather {
  uplink *u;
  buffer list;
} uplink_member_gather;

/* Adds topic's local members to g's list. */
static void uplink_member_gather_topic(uplink_member_gather *g, const uint8_t *name, size_t len,
                                       const broker_topic *topic) {
  for (size_t i = 0; i < topic->count; i++) {
    const broker_subscriber *s = &topic->subscribers[i];
    if (!s->tag) continue;
    if (buffer_length(&g->list) + 8 + len + s->tag_len > UPLINK_MEMBER_LIST_MAX)
      uplink_member_send(g->u, 'j', &g->list);
    (void)uplink_member_record(&g->list, name, len, s->tag, s->tag_len);
  }
}

void uplink_member_tell_topic(uplink *u, const uint8_t *name, size_t len) {
  const broker_topic *topic = table_get(u->broker->topics, name, len);
  if (!topic || !uplink_member_live(u, name, len)) return;
  uplink_member_gather g = {u, {0}};
  buffer_init(&g.list);
  uplink_member_gather_topic(&g, name, len, topic);
  uplink_member_send(u, 'j', &g.list);
  buffer_free(&g.list);
}

static int uplink_member_gather_visit(const void *key, size_t key_len, void *value, void *ctx) {
  uplink_member_gather *g = ctx;
  if (uplink_member_live(g->u, key, key_len)) uplink_member_gather_topic(g, key, key_len, value);
  return 0;
}

void uplink_member_tell_all(uplink *u) {
  uplink_member_gather g = {u, {0}};
  buffer_init(&g.list);
  table_sweep(u->broker->topics, uplink_member_gather_visit, &g);
  uplink_member_send(u, 'j', &g.list);
  buffer_free(&g.list);
}

/* ---- the others' members ------------------------------------------------------- */

static size_t uplink_member_index(const uplink_members *m, const uint8_t *origin,
                                  const uint8_t *tag, size_t tag_len) {
  for (size_t i = 0; i < m->count; i++)
    if (m->list[i].tag_len == tag_len &&
        memcmp(m->list[i].origin, origin, UPLINK_ORIGIN_SIZE) == 0 &&
        memcmp(m->list[i].tag, tag, tag_len) == 0)
      return i;
  return m->count;
}

static void uplink_member_joined(uplink *u, const uint8_t *origin, const uint8_t *topic, size_t len,
                                 const uint8_t *tag, size_t tag_len) {
  if (tag_len == 0 || tag_len > FRAME_TAG_MAX || u->member_count >= UPLINK_MEMBERS_MAX ||
      uplink_topic_is_local(topic, len))
    return;
  uplink_members *m = table_get(u->members, topic, len);
  if (!m) {
    m = calloc(1, sizeof(*m));
    if (!m) return;
    if (table_put(u->members, topic, len, m, NULL) != 0) {
      free(m);
      return;
    }
  }
  if (uplink_member_index(m, origin, tag, tag_len) < m->count) return; /* known */
  if (m->count == m->capacity) {
    size_t capacity = m->capacity ? m->capacity * 2 : 4;
    uplink_member *grown = realloc(m->list, capacity * sizeof(*grown));
    if (!grown) return;
    m->list = grown;
    m->capacity = capacity;
  }
  uint8_t *copy = malloc(tag_len);
  if (!copy) return;
  memcpy(copy, tag, tag_len);
  uplink_member *e = &m->list[m->count++];
  memcpy(e->origin, origin, UPLINK_ORIGIN_SIZE);
  e->tag = copy;
  e->tag_len = (uint32_t)tag_len;
  u->member_count++;
  broker_presence_remote(u->broker, topic, len, copy, (uint32_t)tag_len, FRAME_JOINED);
}

/* Removes m's i-th member and tells the local ones it left. */
static void uplink_member_remove(uplink *u, uplink_members *m, size_t i, const uint8_t *topic,
                                 size_t len) {
  uplink_member gone = m->list[i];
  m->list[i] = m->list[--m->count];
  u->member_count--;
  broker_presence_remote(u->broker, topic, len, gone.tag, gone.tag_len, FRAME_LEFT);
  free(gone.tag);
}

static void uplink_member_left(uplink *u, const uint8_t *origin, const uint8_t *topic, size_t len,
                               const uint8_t *tag, size_t tag_len) {
  uplink_members *m = table_get(u->members, topic, len);
  if (!m) return;
  size_t i = uplink_member_index(m, origin, tag, tag_len);
  if (i < m->count) uplink_member_remove(u, m, i, topic, len);
  if (m->count == 0) uplink_members_free(table_remove(u->members, topic, len), NULL);
}

void uplink_member_control(uplink *u, const uint8_t *origin, uint8_t op, const uint8_t *p,
                           size_t len, size_t at) {
  const uint8_t *topic, *tag;
  uint32_t topic_len, tag_len;
  /* Pairs; what does not parse ends the list. */
  while (uplink_wire_record(p, len, &at, &topic, &topic_len) == 1 &&
         uplink_wire_record(p, len, &at, &tag, &tag_len) == 1) {
    if (op == 'j')
      uplink_member_joined(u, origin, topic, topic_len, tag, tag_len);
    else
      uplink_member_left(u, origin, topic, topic_len, tag, tag_len);
  }
}

typedef struct uplink_member_forget_ctx {
  uplink *u;
  const uint8_t *origin; /* NULL: every machine's */
} uplink_member_forget_ctx;

static int uplink_member_forget_visit(const void *key, size_t key_len, void *value, void *ctx) {
  uplink_member_forget_ctx *f = ctx;
  uplink_members *m = value;
  for (size_t i = m->count; i-- > 0;)
    if (!f->origin || memcmp(m->list[i].origin, f->origin, UPLINK_ORIGIN_SIZE) == 0)
      uplink_member_remove(f->u, m, i, key, key_len);
  if (m->count > 0) return 0;
  uplink_members_free(m, NULL);
  return 1;
}

void uplink_member_forget(uplink *u, const uint8_t *origin) {
  uplink_member_forget_ctx f = {u, origin};
  table_sweep(u->members, uplink_member_forget_visit, &f);
}
