/* broker_topic: subscriptions per topic, and routing a publish to them.
 *
 * A topic is a pub/sub name (opaque bytes) and its subscribers, each a
 * connection and one of its endpoints; the broker's topics table holds
 * them by name, and a topic goes when its last subscriber does. Routing
 * copies a publish to every subscriber but the publishing endpoint, in the
 * order they subscribed: a large payload straight to an idle subscriber's
 * socket, a small one onto its queue (or its urgent lane, when it may
 * overtake), a payload in the shared pool as a descriptor to the
 * subscribers that read the pool. Flow control asks here whether a publish
 * would add to a congested reader's queue (broker_topic_publish_waits). */
#define _GNU_SOURCE /* uv.h needs POSIX under -std=c11 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "broker_internal.h"
#include "shm.h"
#include "uplink.h"

/* A delivery whose payload is large (BUFFER_PARTS_MIN) goes to an idle
 * subscriber's socket straight from the publisher's input, not through the
 * subscriber's queue: one copy of the payload less, where copies are most of
 * the cost. Smaller ones are queued and written in one batch per turn. */
#define BROKER_DIRECT_NAME_MAX 256u

void broker_topic_free(void *value, void *ctx) {
  (void)ctx;
  broker_topic *topic = value;
  for (size_t i = 0; i < topic->count; i++)
    broker_presence_forget(&topic->subscribers[i]);
  free(topic->subscribers);
  free(topic);
}

broker_topic *broker_topic_find(broker *b, const frame *f) {
  return table_get(b->topics, f->a, f->a_len);
}

int broker_topic_subscribe(broker *b, const frame *f, broker_conn *c) {
  if (f->payload_len > FRAME_TAG_MAX) return -2;
  broker_topic *topic = table_get(b->topics, f->a, f->a_len);
  if (!topic) {
    topic = calloc(1, sizeof(*topic));
    if (!topic) return -1;
    if (table_put(b->topics, f->a, f->a_len, topic, NULL) != 0) {
      free(topic);
      return -1;
    }
  }
  for (size_t i = 0; i < topic->count; i++)
    if (topic->subscribers[i].conn == c && topic->subscribers[i].endpoint == f->endpoint) return 0;
  if (topic->count == topic->capacity) {
    size_t capacity = topic->capacity ? topic->capacity * 2 : 4;
    broker_subscriber *grown = realloc(topic->subscribers, capacity * sizeof(*grown));
    if (!grown) {
      if (topic->count == 0) broker_topic_free(table_remove(b->topics, f->a, f->a_len), NULL);
      return -1;
    }
    topic->subscribers = grown;
    topic->capacity = capacity;
  }
  broker_subscriber *s = &topic->subscribers[topic->count];
  s->conn = c;
  s->endpoint = f->endpoint;
  s->tag = NULL;
  s->tag_len = 0;
  if (f->payload_len > 0 && broker_presence_join(s, f) != 0) {
    if (topic->count == 0) broker_topic_free(table_remove(b->topics, f->a, f->a_len), NULL);
    return -1;
  }
  topic->count++;
  b->counters[FRAME_STAT_SUBSCRIPTIONS]++;
  broker_presence_tell(topic, f->a, f->a_len, s, FRAME_JOINED);
  if (s->tag && b->uplink) uplink_member_local(b->uplink, f->a, f->a_len, s->tag, s->tag_len, 1);
  return 0;
}

/* Which subscribers to drop. */
typedef struct broker_topic_match {
  broker *broker;
  broker_conn *conn; /* NULL: match every dead connection */
  uint32_t endpoint; /* with conn: this endpoint only, unless any_endpoint */
  int any_endpoint;
} broker_topic_match;

static int broker_topic_matches(const broker_subscriber *s, const broker_topic_match *m) {
  return m->conn ? (s->conn == m->conn && (m->any_endpoint || s->endpoint == m->endpoint))
                 : s->conn->dead;
}

/* Removes the subscribers that match from topic (named name); every member
 * that stays is told of each member that goes. Returns how many remain. */
static size_t broker_topic_drop(broker_topic *topic, const uint8_t *name, size_t name_len,
                                const broker_topic_match *m) {
  for (size_t i = 0; i < topic->count; i++) {
    const broker_subscriber *gone = &topic->subscribers[i];
    if (!gone->tag || !broker_topic_matches(gone, m)) continue;
    if (m->broker->uplink)
      uplink_member_local(m->broker->uplink, name, name_len, gone->tag, gone->tag_len, 0);
    for (size_t j = 0; j < topic->count; j++) {
      const broker_subscriber *s = &topic->subscribers[j];
      if (s->tag && !broker_topic_matches(s, m))
        broker_presence_send(s, name, name_len, gone, FRAME_LEFT);
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < topic->count; i++) {
    broker_subscriber s = topic->subscribers[i];
    if (broker_topic_matches(&s, m)) {
      m->broker->counters[FRAME_STAT_SUBSCRIPTIONS]--;
      broker_presence_forget(&s);
    } else {
      topic->subscribers[kept++] = s;
    }
  }
  topic->count = kept;
  return kept;
}

static int broker_topic_sweep_visit(const void *key, size_t key_len, void *value, void *ctx) {
  broker_topic *topic = value;
  const broker_topic_match *m = ctx;
  if (broker_topic_drop(topic, key, key_len, ctx) > 0) return 0;
  broker_topic_free(topic, NULL);
  if (m->broker->uplink) uplink_topic_gone(m->broker->uplink, key, key_len);
  return 1;
}

void broker_topic_drop_endpoint(broker *b, broker_conn *c, uint32_t endpoint) {
  broker_topic_match m = {b, c, endpoint, 0};
  table_sweep(b->topics, broker_topic_sweep_visit, &m);
}

void broker_topic_drop_dead(broker *b) {
  broker_topic_match m = {b, NULL, 0, 1};
  table_sweep(b->topics, broker_topic_sweep_visit, &m);
}

void broker_topic_unsubscribe(broker *b, const frame *f, broker_conn *c) {
  broker_topic *topic = table_get(b->topics, f->a, f->a_len);
  if (!topic) return;
  broker_topic_match m = {b, c, f->endpoint, 0};
  if (broker_topic_drop(topic, f->a, f->a_len, &m) == 0) {
    broker_topic_free(table_remove(b->topics, f->a, f->a_len), NULL);
    if (b->uplink) uplink_topic_gone(b->uplink, f->a, f->a_len);
  }
}

broker_conn *broker_topic_first(broker *b, const uint8_t *name, size_t name_len,
                                const broker_conn *from, uint32_t endpoint,
                                uint32_t *out_endpoint) {
  broker_topic *topic = table_get(b->topics, name, name_len);
  if (!topic) return NULL;
  for (size_t i = 0; i < topic->count; i++) {
    broker_subscriber s = topic->subscribers[i];
    if (s.conn->dead || (s.conn == from && s.endpoint == endpoint)) continue;
    *out_endpoint = s.endpoint;
    return s.conn;
  }
  return NULL;
}

/* Delivers a large payload to c, which has nothing queued: straight from
 * the publisher's input to the socket (header and topic name, then the
 * payload), and whatever the socket does not take is queued as usual.
 * 0, or -1 when c could not take it (and is dead). */
static int broker_topic_deliver_direct(broker_conn *c, const frame *f, uint32_t endpoint,
                                       uint32_t publisher, uint32_t size) {
  uint8_t head[FRAME_HEADER_SIZE + BROKER_DIRECT_NAME_MAX];
  size_t head_len = FRAME_HEADER_SIZE + f->a_len + f->b_len;
  frame_write_header(head, FRAME_MESSAGE, 0, 0, endpoint, publisher, f->a_len, f->b_len,
                     f->payload_len);
  if (f->a_len) memcpy(head + FRAME_HEADER_SIZE, f->a, f->a_len);
  if (f->b_len) memcpy(head + FRAME_HEADER_SIZE + f->a_len, f->b, f->b_len);
  ssize_t sent = buffer_send_parts(c->fd, head, head_len, f->payload, f->payload_len);
  if (sent < 0) {
    broker_conn_kill(c); /* EPIPE, ECONNRESET: the process went away */
    return -1;
  }
  if (sent > 0) c->progress = uv_now(&c->broker->loop);
  if ((size_t)sent == size) return 0;
  if (!broker_conn_reserve(c, size - (uint32_t)sent)) return -1;
  /* Cannot fail: the room is reserved. */
  (void)buffer_append_parts(&c->out, head, head_len, f->payload, f->payload_len, (size_t)sent);
  c->out_front_left = size - (size_t)sent; /* out was empty */
  broker_conn_queued(c);
  return 0;
}

/* The number a MESSAGE says its publisher is: from's, or the uplink's for
 * a message from another machine (from NULL). */
static uint32_t broker_topic_publisher(const broker *b, const broker_conn *from) {
  return from ? from->number : b->uplink_number;
}

/* One ordinary delivery of f, whose payload is in hand, from `from` to s. */
static void broker_topic_deliver(broker *b, broker_subscriber s, const frame *f,
                                 const broker_conn *from, uint32_t size, int direct) {
  broker_conn *to = s.conn;
  broker_pace_fed(to, from);
  if (direct && !to->dead && !to->blocked && broker_conn_queued_bytes(to) == 0) {
    if (broker_topic_deliver_direct(to, f, s.endpoint, broker_topic_publisher(b, from), size) != 0)
      return;
    if (!to->dead && buffer_length(&to->out) > 0) broker_conn_mark(to, from);
  } else {
    /* A retained message (it carries its offset in b) never overtakes:
     * every reader gets the retained messages in the order of their
     * offsets, so the last offset a reader saw tells what it has. */
    int urgent = f->b_len == 0 && broker_conn_may_overtake(to, from, size);
    uint8_t *at = broker_conn_reserve_on(to, urgent ? &to->urgent : &to->out, size);
    if (!at) return;
    frame_encode(at, FRAME_MESSAGE, 0, s.endpoint, broker_topic_publisher(b, from), f->a, f->a_len,
                 f->b, f->b_len, f->payload, f->payload_len);
    buffer_commit(urgent ? &to->urgent : &to->out, size);
    broker_conn_queued(to);
    if (!to->dead) {
      if (urgent)
        broker_conn_mark_urgent(to, from, size);
      else
        broker_conn_mark(to, from);
    }
  }
  b->counters[FRAME_STAT_MESSAGES_DELIVERED]++;
  b->counters[FRAME_STAT_BYTES_DELIVERED] += size;
}

static int broker_topic_deliver_shared(broker *b, broker_subscriber s, const frame *f,
                                       const broker_conn *from, uint32_t size, uint32_t id);

/* Routes f, whose payload is in hand, to the subscribers of its topic.
 * shared_id: the pool-wide slot the payload lies in, whose descriptor goes
 * to the subscribers that read the pool; UINT32_MAX when it is not in the
 * pool. Field b of f goes along in every MESSAGE (a retained message's
 * offset; empty otherwise), so a message with one is never shared. */
void broker_topic_route(broker *b, const frame *f, broker_conn *from, uint32_t shared_id) {
  b->counters[FRAME_STAT_MESSAGES_PUBLISHED]++;
  if (from && b->uplink) uplink_publish(b->uplink, f); /* other machines that want it */
  broker_topic *topic = table_get(b->topics, f->a, f->a_len);
  if (!topic) return;
  uint32_t size = frame_size(f->a_len, f->b_len, f->payload_len);
  int direct =
      f->payload_len >= BUFFER_PARTS_MIN && (size_t)f->a_len + f->b_len <= BROKER_DIRECT_NAME_MAX;
  int remote = (f->flags & FRAME_FLAG_REMOTE) != 0; /* its process delivered it there itself */
  if (f->b_len) shared_id = UINT32_MAX;
  for (size_t i = 0; i < topic->count; i++) {
    broker_subscriber s = topic->subscribers[i];
    if (s.conn == from && (remote || s.endpoint == f->endpoint)) continue; /* never back */
    if (size > s.conn->peer_max) continue; /* its process could not take it */
    if (shared_id != UINT32_MAX &&
        broker_topic_deliver_shared(b, s, f, from, size, shared_id) == 0) {
      if (!s.conn->dead) broker_conn_mark(s.conn, from); /* descriptors go to out */
      continue;
    }
    broker_topic_deliver(b, s, f, from, size, direct);
  }
}

/* A delivery of the payload in pool-wide slot id (f's payload points at it)
 * to s as a descriptor: 0, or -1 when s does not read the pool (or its books
 * are full), and takes an ordinary copy instead. */
static int broker_topic_deliver_shared(broker *b, broker_subscriber s, const frame *f,
                                       const broker_conn *from, uint32_t size, uint32_t id) {
  broker_conn *to = s.conn;
  if (!to->shared_ready || to->region < 0 || to->dead) return -1;
  if (broker_pool_hand_room(&b->pool, (uint32_t)to->region) != 0) return -1;
  broker_pace_fed(to, from);
  uint32_t small = frame_size(f->a_len, 0, FRAME_MESSAGE_DESC_SIZE);
  uint8_t *at = broker_conn_reserve(to, small);
  if (!at) return 0; /* cut off: nothing more goes to it */
  frame_message_desc desc = {(uint32_t)(f->payload - b->pool.map->base), f->payload_len};
  frame_encode_message_shared(at, s.endpoint, f->a, f->a_len, &desc);
  frame_set_publisher(at, broker_topic_publisher(b, from));
  broker_pool_hand(&b->pool, (uint32_t)to->region, id);
  broker_conn_committed(to, small);
  b->counters[FRAME_STAT_MESSAGES_DELIVERED]++;
  b->counters[FRAME_STAT_BYTES_DELIVERED] += size;
  b->counters[FRAME_STAT_SHARED_DELIVERED]++;
  return 0;
}

int broker_topic_shared_take(broker *b, const frame *f, broker_conn *from, frame *out,
                             uint32_t *id) {
  int r = from->region;
  frame_publish_desc d;
  if (r < 0 || frame_publish_desc_parse(f->payload, f->payload_len, &d) != 0 ||
      broker_pool_slot_busy(&b->pool, (uint32_t)r, d.slot)) {
    broker_conn_protocol_error(from, "malformed shared publish");
    return -1;
  }
  uint32_t size = frame_size(f->a_len, f->b_len, d.length);
  if (size == 0 || size > b->options.max_frame_size) {
    broker_conn_protocol_error(from, "shared publish over the maximum frame size");
    return -1;
  }
  broker_pool_slot_take(&b->pool, (uint32_t)r, d.slot);
  *out = *f;
  out->payload = b->pool.map->base + shm_data_offset((uint32_t)r) + d.offset;
  out->payload_len = d.length;
  *id = (uint32_t)r * SHM_SLOTS + d.slot;
  return 0;
}

void broker_topic_shared_settle(broker *b, uint32_t id) {
  broker_pool_slot_settle(&b->pool, id / SHM_SLOTS, id % SHM_SLOTS);
}

/* A PUBLISH whose payload waits in the publisher's region: subscribers that
 * read the pool get a descriptor of it, the others a copy from the pool. */
void broker_topic_route_shared(broker *b, const frame *f, broker_conn *from) {
  frame copy;
  uint32_t id;
  if (broker_topic_shared_take(b, f, from, &copy, &id) != 0) return;
  broker_topic_route(b, &copy, from, id);
  broker_topic_shared_settle(b, id);
}

/* Flow control: whether f, a publish from c, would go to another
 * connection that is congested, or late (broker_pace.c). It then waits, and
 * c's later frames with it (they are handled in order), so only the
 * publishers that feed such a reader slow down; a barrier still takes
 * everything in. What c publishes to itself never waits: its process would
 * read it while blocked writing, and its queue limit is what bounds a
 * process that floods itself. */
int broker_topic_publish_waits(broker *b, const broker_conn *c, const frame *f) {
  if (b->draining || (b->congested_count == 0 && !broker_pace_may_be_late(b))) return BROKER_GO;
  broker_topic *topic = table_get(b->topics, f->a, f->a_len);
  if (!topic) return BROKER_GO;
  /* A message that may overtake a congested reader's queue does not add to
   * it (much: the urgent lane is bounded), so its publisher need not wait. */
  uint32_t size =
      (f->flags & FRAME_FLAG_SHARED) ? UINT32_MAX : frame_size(f->a_len, 0, f->payload_len);
  int waits = BROKER_GO;
  for (size_t i = 0; i < topic->count && waits != BROKER_WAIT_LATE; i++) {
    broker_conn *to = topic->subscribers[i].conn;
    if (to == c || to->dead) continue;
    /* Late: only the publishers whose messages stand in its queue wait. */
    if (broker_pace_late(to) && broker_conn_queued_from(to, c))
      waits = BROKER_WAIT_LATE;
    else if (to->congested && !broker_conn_may_overtake(to, c, size))
      waits = BROKER_WAIT_CONGESTED;
  }
  return waits;
}
