/* broker: routing, subscriptions and key/value state on a thread of its own
 * (see broker.h).
 *
 * Life of a frame: the connection's poll callback reads everything the
 * socket holds (up to a budget, for fairness) into the connection's input
 * buffer, then every complete frame is handled in order. Whatever a frame
 * produces (deliveries to subscribers, a reply) is appended to the output
 * buffers of the connections concerned, and all output is written in the
 * prepare phase, right before the loop waits again: one write per
 * connection per loop turn, however many frames.
 *
 * A connection that fails, closes or is cut off is only marked dead at first;
 * it is reaped (subscriptions dropped, handle closed, memory freed) after the
 * current work, so no list being walked changes under the walker.
 *
 * Shared payloads (shm.h): the broker gives each connection a region of the
 * pool, routes a shared PUBLISH as small shared MESSAGE frames to the
 * subscribers that said they read the pool (and as ordinary frames, copied
 * out of the pool, to the others), and keeps the books: per slot, how many
 * deliveries are unread; per region, the deliveries its process was handed,
 * oldest first. A process reads its deliveries in order and says how many
 * it has read (FRAME_SHARED_READ, and in its region's header for when its
 * connection is gone), so the broker only has to take that many off the
 * front of its list to know which slots are free again. */
#define _GNU_SOURCE
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "broker_internal.h"
#include "shm.h"

#define BROKER_READ_CHUNK_MIN (16u * 1024u)
#define BROKER_READ_CHUNK_MAX (256u * 1024u)
#define BROKER_READ_BUDGET (4u * 1024u * 1024u) /* per connection per turn */
#define BROKER_WRITE_EARLY (1024u * 1024u)      /* write at once past this much output */
#define BROKER_KEEP_BUFFER (4u * 1024u * 1024u) /* idle buffers larger than this are freed */
/* The send buffer of the broker's end: small enough that what the kernel
 * holds for a reader (about twice this) is a few ms of messages, since a
 * message that overtakes the broker's queue (urgent, below) still waits
 * behind it; large enough for big batches. Only with a queue limit of at
 * least BROKER_SMALL_SEND_LIMIT: under a smaller one, the kernel's room
 * is a good part of what a process that floods itself (never held back)
 * may have waiting before it is cut off, and it stays what it was. */
#define BROKER_SEND_BUFFER (128 * 1024)
#define BROKER_SMALL_SEND_LIMIT (16ull * 1024u * 1024u)
#define BROKER_EXPIRE_BATCH 10000u
/* Flow control: a connection with more than this queued (or half its
 * queue limit, when that is less) is congested, and a publish that would
 * go to it waits (with everything its publisher sent after it) until it is
 * down to half of it. Past a few MiB a longer queue only costs memory (and
 * page faults to grow it again after it was freed): the reader cannot take
 * it any faster. */
#define BROKER_HIGH_WATER_MAX (2u * 1024u * 1024u)
/* Fair queueing: order is promised per publisher, not across publishers,
 * so a message from a publisher that has nothing queued for a reader may
 * overtake the others' (a quiet publisher does not wait behind a storm):
 * it goes to the reader's urgent lane, which is sent before the next frame
 * of its ordinary queue, up to this much. */
#define BROKER_URGENT_MAX (64u * 1024u)
/* How often an idle broker looks whether gone connections' processes have
 * exited (their regions come back then, and their pidfds are closed). */
#define BROKER_REGION_CHECK_MS 100u

void broker_options_default(broker_options *options) {
  options->max_frame_size = BROKER_DEFAULT_MAX_FRAME_SIZE;
  options->queue_limit = BROKER_DEFAULT_QUEUE_LIMIT;
  options->stall_ms = BROKER_DEFAULT_STALL_MS;
  options->shared = 1;
}

/* ---- output ------------------------------------------------------------ */

static void broker_conn_on_poll(uv_poll_t *handle, int status, int events);

static void broker_conn_set_events(broker_conn *c, int events) {
  if (c->dead || events == c->poll_events) return;
  if (uv_poll_start(&c->poll, events, broker_conn_on_poll) != 0) {
    broker_conn_kill(c);
    return;
  }
  c->poll_events = events;
}

/* What to watch c for: its input, unless a publish of its waits for a
 * congested reader (flow control; its hang-up is noticed once it goes on),
 * and its socket's room while output waits for it. */
static void broker_conn_watch(broker_conn *c) {
  int events = c->held ? 0 : UV_READABLE | UV_DISCONNECT;
  if (c->blocked) events |= UV_WRITABLE;
  broker_conn_set_events(c, events);
}

static void broker_conn_on_stall_check(uv_timer_t *timer);

/* The set of congested connections became empty, or stopped being. */
static void broker_conn_congestion_changed(broker *b) {
  if (b->congested_count > 0) {
    uint64_t every = b->options.stall_ms / 4 ? b->options.stall_ms / 4 : 1;
    b->stall_tick = uv_now(&b->loop);
    uv_timer_start(&b->stall_timer, broker_conn_on_stall_check, every, every);
  } else {
    uv_timer_stop(&b->stall_timer);
  }
}

static void broker_conn_set_congested(broker_conn *c, int congested) {
  broker *b = c->broker;
  if (c->congested == congested) return;
  c->congested = congested;
  if (congested) {
    c->progress = uv_now(&b->loop);
    b->congested_count++;
  } else {
    b->congested_count--;
    b->eased = 1;
  }
  if (b->congested_count == (size_t)congested) broker_conn_congestion_changed(b);
}

static uint64_t broker_conn_high_water(const broker *b) {
  uint64_t half = b->options.queue_limit / 2;
  return half < BROKER_HIGH_WATER_MAX ? half : BROKER_HIGH_WATER_MAX;
}

size_t broker_conn_queued_bytes(const broker_conn *c) {
  return buffer_length(&c->out) + buffer_length(&c->urgent);
}

/* Sends up to len bytes from the front of at; how many the socket took
 * (fewer: it is full), or -1 when c died. */
static ssize_t broker_conn_send(broker_conn *c, const uint8_t *at, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = send(c->fd, at + done, len - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    broker_conn_kill(c); /* EPIPE, ECONNRESET: the process went away */
    return -1;
  }
  return (ssize_t)done;
}

/* n bytes of out were sent: drops them, and keeps track of where the
 * frame at the front stands (urgent frames go in only between frames). */
static void broker_conn_out_sent(broker_conn *c, size_t n) {
  const uint8_t *at = buffer_begin(&c->out);
  size_t left = c->out_front_left;
  size_t pos = 0;
  while (n > 0) {
    if (left == 0) left = frame_load_u32(at + pos); /* whole frames follow the front */
    size_t take = left < n ? left : n;
    pos += take;
    n -= take;
    left -= take;
  }
  c->out_front_left = left;
  c->out_sent += pos;
  buffer_consume(&c->out, pos);
}

/* Writes what the socket takes: the rest of a frame of out already begun,
 * then the urgent lane, then out. */
static void broker_conn_write(broker_conn *c) {
  broker *b = c->broker;
  int wrote = 0;
  ssize_t n = 0;
  size_t want = 0;
  if (buffer_length(&c->urgent) > 0 && c->out_front_left > 0) {
    want = c->out_front_left;
    if ((n = broker_conn_send(c, buffer_begin(&c->out), want)) < 0) return;
    broker_conn_out_sent(c, (size_t)n);
    wrote |= n > 0;
  }
  if ((size_t)n == want && buffer_length(&c->urgent) > 0) {
    want = buffer_length(&c->urgent);
    if ((n = broker_conn_send(c, buffer_begin(&c->urgent), want)) < 0) return;
    buffer_consume(&c->urgent, (size_t)n);
    wrote |= n > 0;
  }
  if ((size_t)n == want && buffer_length(&c->out) > 0) {
    if ((n = broker_conn_send(c, buffer_begin(&c->out), buffer_length(&c->out))) < 0) return;
    broker_conn_out_sent(c, (size_t)n);
    wrote |= n > 0;
  }
  if (wrote) c->progress = uv_now(&b->loop);
  c->blocked = broker_conn_queued_bytes(c) > 0;
  if (c->congested && broker_conn_queued_bytes(c) <= broker_conn_high_water(b) / 2)
    broker_conn_set_congested(c, 0);
  if (!c->blocked) {
    buffer_trim(&c->out, BROKER_KEEP_BUFFER);
    buffer_trim(&c->urgent, BROKER_KEEP_BUFFER);
  }
  broker_conn_watch(c);
}

/* Cuts c off for falling behind (why: SHM_CUT_*), saying why in its
 * region's header first when it has one, so its process can tell the user
 * rather than guess between this and the master going away. */
static void broker_conn_cut(broker_conn *c, uint32_t why) {
  broker *b = c->broker;
  if (c->dead) return;
  if (c->region >= 0) broker_pool_say_cut(&b->pool, (uint32_t)c->region, why);
  b->counters[FRAME_STAT_CONNECTIONS_CUT]++;
  broker_conn_kill(c);
}

/* Reserves room for one frame on lane (c's out or urgent), or NULL when c
 * cannot take it (dead, out of memory, or cut off for passing the queue
 * limit). */
uint8_t *broker_conn_reserve_on(broker_conn *c, buffer *lane, uint32_t size) {
  broker *b = c->broker;
  if (c->dead) return NULL;
  if (size == 0 || broker_conn_queued_bytes(c) + size > b->options.queue_limit) {
    broker_conn_cut(c, SHM_CUT_QUEUE_LIMIT);
    return NULL;
  }
  uint8_t *at = buffer_reserve(lane, size);
  if (!at) {
    broker_conn_kill(c);
    return NULL;
  }
  return at;
}

uint8_t *broker_conn_reserve(broker_conn *c, uint32_t size) {
  return broker_conn_reserve_on(c, &c->out, size);
}

/* Bookkeeping after output was added to c's queue. */
void broker_conn_queued(broker_conn *c) {
  broker *b = c->broker;
  size_t queued = broker_conn_queued_bytes(c);
  if (queued > b->counters[FRAME_STAT_MAX_QUEUED_BYTES])
    b->counters[FRAME_STAT_MAX_QUEUED_BYTES] = queued;
  if (queued > broker_conn_high_water(b)) broker_conn_set_congested(c, 1);
  /* Write early to bound memory, unless the socket is known to be full:
   * then its writable event resumes the writing. */
  if (queued >= BROKER_WRITE_EARLY && !c->blocked) broker_conn_write(c);
  if (!c->dead && !c->queued_for_write && broker_conn_queued_bytes(c) > 0) {
    c->queued_for_write = 1;
    c->write_next = b->write_list;
    b->write_list = c;
  }
}

void broker_conn_committed(broker_conn *c, uint32_t size) {
  buffer_commit(&c->out, size);
  broker_conn_queued(c);
}

/* A frame that is not a message was queued on out: no message may
 * overtake it (a reply says what happened before it, a hello comes
 * first). */
void broker_conn_control_queued(broker_conn *c) {
  c->control_end = c->out_sent + buffer_length(&c->out);
}

/* A message from `from` was queued on to's out: its next one to `to` must
 * not overtake it. */
void broker_conn_mark(broker_conn *to, const broker_conn *from) {
  uint64_t end = to->out_sent + buffer_length(&to->out);
  broker_mark *spare = NULL;
  for (size_t i = 0; i < BROKER_MARKS; i++) {
    broker_mark *m = &to->marks[i];
    if (m->from == from) {
      m->end = end;
      return;
    }
    if (!spare && m->end <= to->out_sent) spare = m;
  }
  if (spare) {
    spare->from = from;
    spare->end = end;
  } else {
    to->unmarked_end = end; /* too many publishers queued: none overtakes this */
  }
}

/* Whether a message of size bytes from `from` may go to to's urgent lane:
 * out holds something to overtake, but nothing of from's, no reply or
 * hello, and the lane has room (at most half the high water mark too, so
 * a small queue limit is not reached through it). */
int broker_conn_may_overtake(const broker_conn *to, const broker_conn *from, uint32_t size) {
  uint64_t sent = to->out_sent;
  uint64_t room = broker_conn_high_water(to->broker) / 2;
  if (room > BROKER_URGENT_MAX) room = BROKER_URGENT_MAX;
  if (buffer_length(&to->out) == 0 || to->control_end > sent || to->unmarked_end > sent ||
      buffer_length(&to->urgent) + (uint64_t)size > room)
    return 0;
  for (size_t i = 0; i < BROKER_MARKS; i++)
    if (to->marks[i].from == from && to->marks[i].end > sent) return 0;
  return 1;
}

void broker_conn_reply(broker_conn *c, uint32_t request_id, uint8_t status, const void *payload,
                       size_t payload_len) {
  if (request_id == 0) return; /* the sender asked for no reply */
  uint32_t size = frame_size(0, 0, payload_len);
  if (size == 0 || size > c->peer_max) {
    char why[200];
    snprintf(why, sizeof(why),
             "an answer of %zu bytes is over this process's maximum of %u bytes (maxFrameSize)",
             payload_len, (unsigned)c->peer_max);
    broker_conn_reply(c, request_id, FRAME_STATUS_BAD_REQUEST, why, strlen(why));
    return;
  }
  uint8_t *at = broker_conn_reserve(c, size);
  if (!at) return;
  frame_encode(at, FRAME_REPLY, status, 0, request_id, NULL, 0, NULL, 0, payload, payload_len);
  broker_conn_committed(c, size);
  broker_conn_control_queued(c);
}

void broker_conn_reply_text(broker_conn *c, uint32_t request_id, uint8_t status, const char *text) {
  broker_conn_reply(c, request_id, status, text, strlen(text));
}

/* ---- the shared pool's timer -------------------------------------------- */

static void broker_on_region_check(uv_timer_t *timer) {
  broker *b = timer->data;
  broker_pool_collect_gone(&b->pool);
  if (!broker_pool_waiting(&b->pool)) uv_timer_stop(&b->region_timer);
}

/* A gone connection's region may wait for its process to exit or say it is
 * done: then an idle loop must still look now and then (an exit brings no
 * event to the loop). Should the timer not start (it cannot fail on an open
 * loop), the prepare phase still looks at every turn the loop makes. */
void broker_watch_regions(broker *b) {
  if (broker_pool_waiting(&b->pool) && !uv_is_active((uv_handle_t *)&b->region_timer))
    (void)uv_timer_start(&b->region_timer, broker_on_region_check, BROKER_REGION_CHECK_MS,
                         BROKER_REGION_CHECK_MS);
}

/* ---- requests ---------------------------------------------------------- */

/* Takes in everything the other connections have already sent, so that a
 * reply to c reflects every write that happened before c asked. */
static void broker_drain_others(broker *b, broker_conn *c) {
  b->draining = 1;
  for (broker_conn *o = b->conns; o; o = o->next)
    if (o != c && !o->dead) broker_conn_read(o, SIZE_MAX);
  b->draining = 0;
}

static void broker_fill_stats(broker *b, uint64_t *out) {
  kv_stats ks;
  kv_get_stats(b->store, &ks);
  uint64_t queued = 0;
  uint64_t connections = 0;
  for (broker_conn *c = b->conns; c; c = c->next) {
    if (c->dead) continue;
    connections++;
    queued += broker_conn_queued_bytes(c);
  }
  b->counters[FRAME_STAT_CONNECTIONS] = connections;
  b->counters[FRAME_STAT_CHANNELS] = table_count(b->topics); /* topics (JS's name: channels) */
  b->counters[FRAME_STAT_NAMESPACES] = ks.namespaces;
  b->counters[FRAME_STAT_KEYS] = ks.keys;
  b->counters[FRAME_STAT_KV_BYTES] = ks.bytes;
  b->counters[FRAME_STAT_QUEUED_BYTES] = queued;
  b->counters[FRAME_STAT_QUEUE_LIMIT] = b->options.queue_limit;
  b->counters[FRAME_STAT_MAX_FRAME_SIZE] = b->options.max_frame_size;
  memcpy(out, b->counters, sizeof(b->counters));
}

void broker_handle(broker *b, broker_conn *c, const frame *f) {
  if ((f->flags & FRAME_FLAG_BARRIER) && !b->draining) broker_drain_others(b, c);
  switch (f->type) {
  case FRAME_PUBLISH:
    if (f->flags & FRAME_FLAG_SHARED)
      broker_topic_route_shared(b, f, c);
    else
      broker_topic_route(b, f, c, UINT32_MAX);
    return;
  case FRAME_SHARED:
    /* The process mapped the pool: shared messages may go to it now. */
    if (c->region >= 0) {
      c->shared_ready = 1;
      if (f->payload_len == 4) c->pid = frame_load_u32(f->payload);
    } else
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST, "no shared region given");
    return;
  case FRAME_SHARED_READ:
    if (c->region < 0 || f->payload_len != 8)
      broker_conn_protocol_error(c, "malformed shared read count");
    else if (broker_pool_collect(&b->pool, (uint32_t)c->region, frame_load_u64(f->payload), 0) != 0)
      broker_conn_protocol_error(c, "shared pool count out of step");
    return;
  case FRAME_SUBSCRIBE:
    if (broker_topic_subscribe(b, f, c) != 0)
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    else
      broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  case FRAME_UNSUBSCRIBE:
    broker_topic_unsubscribe(b, f, c);
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  case FRAME_KV_GET: {
    size_t len = 0;
    const void *value = kv_get(b->store, f->a, f->a_len, f->b, f->b_len, &len);
    if (value)
      broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, value, len);
    else
      broker_conn_reply(c, f->request_id, FRAME_STATUS_MISSING, NULL, 0);
    return;
  }
  case FRAME_KV_SET:
    if (kv_set(b->store, f->a, f->a_len, f->b, f->b_len, f->payload, f->payload_len) != 0)
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    else
      broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  case FRAME_KV_HAS:
    broker_conn_reply(c, f->request_id,
                      kv_has(b->store, f->a, f->a_len, f->b, f->b_len) ? FRAME_STATUS_OK
                                                                       : FRAME_STATUS_MISSING,
                      NULL, 0);
    return;
  case FRAME_KV_DEL:
    broker_conn_reply(c, f->request_id,
                      kv_del(b->store, f->a, f->a_len, f->b, f->b_len) ? FRAME_STATUS_OK
                                                                       : FRAME_STATUS_MISSING,
                      NULL, 0);
    return;
  case FRAME_KV_CLEAR:
    broker_conn_reply(c, f->request_id,
                      kv_clear(b->store, f->a, f->a_len) ? FRAME_STATUS_OK : FRAME_STATUS_MISSING,
                      NULL, 0);
    b->expiry_changed = 1;
    return;
  case FRAME_KV_EXPIRE: {
    if (f->payload_len != 4) {
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST,
                             "expire needs a 4-byte millisecond count");
      return;
    }
    uv_update_time(&b->loop);
    uint64_t deadline = uv_now(&b->loop) + frame_load_u32(f->payload);
    int rc = kv_expire_at(b->store, f->a, f->a_len, deadline);
    if (rc < 0)
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    else
      broker_conn_reply(c, f->request_id, rc ? FRAME_STATUS_OK : FRAME_STATUS_MISSING, NULL, 0);
    b->expiry_changed = 1;
    return;
  }
  case FRAME_KV_PERSIST:
    broker_conn_reply(c, f->request_id,
                      kv_persist(b->store, f->a, f->a_len) ? FRAME_STATUS_OK : FRAME_STATUS_MISSING,
                      NULL, 0);
    b->expiry_changed = 1;
    return;
  case FRAME_CLOSE: {
    broker_topic_match m = {b, c, f->endpoint, 0};
    table_sweep(b->topics, broker_topic_sweep_visit, &m);
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  }
  case FRAME_STATS: {
    uint64_t values[FRAME_STATS_COUNT];
    uint8_t payload[FRAME_STATS_COUNT * 8];
    broker_fill_stats(b, values);
    for (size_t i = 0; i < FRAME_STATS_COUNT; i++)
      frame_store_u64(payload + i * 8, values[i]);
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, payload, sizeof(payload));
    return;
  }
  case FRAME_SYNC:
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  default:
    /* HELLO twice, or a broker-to-process frame sent the wrong way. */
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST,
                           "frame type not accepted by the broker");
    return;
  }
}

/* Says why before hanging up, so the process can report it. */
void broker_conn_protocol_error(broker_conn *c, const char *why) {
  if (c->dead) return;
  uint32_t size = frame_size(0, 0, strlen(why));
  uint8_t *at = buffer_reserve(&c->out, size);
  if (at) {
    frame_encode(at, FRAME_REPLY, FRAME_STATUS_BAD_REQUEST, 0, 0, NULL, 0, NULL, 0, why,
                 strlen(why));
    buffer_commit(&c->out, size);
    broker_conn_write(c);
  }
  broker_conn_kill(c);
}

/* The hello, and with it the offer of a region of the shared pool (the
 * pool's descriptor passed along with the bytes) when there is one to give.
 * Nothing was sent to c before, so its socket takes both at once. */
void broker_greet(broker_conn *c) {
  broker *b = c->broker;
  uint8_t bytes[2 * FRAME_HEADER_SIZE + FRAME_HELLO_PAYLOAD_SIZE + SHM_OFFER_SIZE];
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, b->options.max_frame_size);
  size_t len = frame_encode(bytes, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  ssize_t sent = 0;
  int region = broker_conn_queued_bytes(c) == 0 ? broker_pool_take(&b->pool) : -1;
  size_t hello_len = len;
  if (region >= 0) {
    uint8_t offer[SHM_OFFER_SIZE];
    frame_store_u32(offer, (uint32_t)region);
    frame_store_u32(offer + 4, SHM_REGION_SIZE);
    frame_store_u32(offer + 8, SHM_SLOTS);
    frame_store_u32(offer + 12, SHM_PAYLOAD_MAX);
    frame_store_u32(offer + 16, b->pool.regions[region].generation);
    len += frame_encode(bytes + len, FRAME_SHARED, 0, 0, 0, NULL, 0, NULL, 0, offer, sizeof(offer));
    sent = shm_send_fd(c->fd, bytes, len, b->pool.map->fd);
    if (sent <= 0) {
      /* The descriptor did not go: the process never heard of the region. */
      broker_pool_withdraw(&b->pool, (uint32_t)region);
      if (sent < 0) {
        broker_conn_kill(c); /* EPIPE, ECONNRESET: the process went away */
        return;
      }
      len = hello_len; /* this connection does without the pool */
    } else {
      c->region = region;
      c->progress = uv_now(&b->loop);
    }
  }
  if ((size_t)sent == len) return;
  uint8_t *at = broker_conn_reserve(c, (uint32_t)(len - (size_t)sent));
  if (!at) return;
  memcpy(at, bytes + sent, len - (size_t)sent);
  /* Something was sent only when out was empty: the rest starts inside the
   * hello or the offer. */
  if (sent > 0) c->out_front_left = ((size_t)sent < hello_len ? hello_len : len) - (size_t)sent;
  broker_conn_committed(c, (uint32_t)(len - (size_t)sent));
  broker_conn_control_queued(c);
}

void broker_conn_process(broker_conn *c) {
  broker *b = c->broker;
  c->held = 0;
  while (!c->dead) {
    if (c->skip > 0) {
      size_t n = buffer_length(&c->in) < c->skip ? buffer_length(&c->in) : (size_t)c->skip;
      buffer_consume(&c->in, n);
      c->skip -= n;
      if (c->skip > 0) break;
      continue;
    }
    frame f;
    int rc =
        frame_decode(buffer_begin(&c->in), buffer_length(&c->in), b->options.max_frame_size, &f);
    if (rc == FRAME_INCOMPLETE) break;
    if (rc == FRAME_TOO_LARGE) {
      /* A frame over the limit is refused, not fatal: the sender may not
       * have heard the broker's limit yet. Its request gets an error, its
       * bytes are skipped, and the connection goes on. */
      if (buffer_length(&c->in) < FRAME_HEADER_SIZE) break;
      const uint8_t *h = buffer_begin(&c->in);
      uint32_t size = frame_load_u32(h);
      if (!c->greeted || h[4] == 0 || h[4] > FRAME_TYPE_MAX) {
        broker_conn_protocol_error(c, "malformed frame");
        break;
      }
      char why[200];
      snprintf(why, sizeof(why),
               "a frame of %u bytes is over the broker's maximum of %u bytes (maxFrameSize)",
               (unsigned)size, (unsigned)b->options.max_frame_size);
      broker_conn_reply_text(c, frame_load_u32(h + 12), FRAME_STATUS_BAD_REQUEST, why);
      b->counters[FRAME_STAT_FRAMES_IN]++;
      c->skip = size;
      continue;
    }
    if (rc != FRAME_OK) {
      broker_conn_protocol_error(c, "malformed frame");
      break;
    }
    if (c->greeted && f.type == FRAME_PUBLISH && broker_topic_publish_waits(b, c, &f)) {
      c->held = 1;
      break;
    }
    b->counters[FRAME_STAT_FRAMES_IN]++;
    if (!c->greeted) {
      uint32_t version = 0;
      uint32_t peer_max = 0;
      if (f.type != FRAME_HELLO ||
          frame_hello_parse(f.payload, f.payload_len, &version, &peer_max) != 0) {
        broker_conn_protocol_error(c, "expected a hello frame first");
        break;
      }
      if (version != FRAME_VERSION) {
        broker_conn_protocol_error(c, "protocol version not supported by this broker");
        break;
      }
      if (peer_max < FRAME_MIN_MAX_SIZE) {
        broker_conn_protocol_error(
            c, "hello states a maximum frame size under the protocol's minimum");
        break;
      }
      c->peer_max = peer_max;
      c->greeted = 1;
      broker_greet(c);
    } else {
      broker_handle(b, c, &f);
    }
    buffer_consume(&c->in, f.size);
  }
  if (c->dead) return;
  buffer_trim(&c->in, BROKER_KEEP_BUFFER);
  broker_conn_watch(c); /* held: stop reading it; no longer: read it again */
}

void broker_conn_read(broker_conn *c, size_t budget) {
  broker *b = c->broker;
  size_t taken = 0;
  while (!c->dead && taken < budget && (!c->held || b->draining)) {
    uint8_t *at = buffer_reserve(&c->in, c->read_chunk);
    if (!at) {
      broker_conn_kill(c);
      return;
    }
    size_t room = buffer_spare(&c->in);
    ssize_t n = read(c->fd, at, room);
    if (n > 0) {
      buffer_commit(&c->in, (size_t)n);
      taken += (size_t)n;
      b->counters[FRAME_STAT_BYTES_IN] += (uint64_t)n;
      if ((size_t)n < room) break; /* the socket is drained: spare a read that would fail */
      if (c->read_chunk < BROKER_READ_CHUNK_MAX) c->read_chunk *= 2;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    broker_conn_process(c); /* complete frames before the end still count */
    broker_conn_kill(c);    /* end of file or error: the process went away */
    return;
  }
  broker_conn_process(c);
}

/* ---- connections ------------------------------------------------------- */

void broker_conn_kill(broker_conn *c) {
  if (c->dead) return;
  broker_conn_set_congested(c, 0);
  c->dead = 1;
  c->broker->dead_count++;
  uv_poll_stop(&c->poll);
}

/* Cuts off congested connections that took nothing for stall_ms: they
 * stopped reading, and the others must not wait for them any longer.
 *
 * Only time the broker was there to write counts: a tick that comes later
 * than its interval means the broker itself was away (the master stopped
 * or paused, a long turn), and timers run before the poll phase that would
 * have seen the connection's progress. That much is added to every
 * baseline, so a pause of the master cuts no one off. */
static void broker_conn_on_stall_check(uv_timer_t *timer) {
  broker *b = timer->data;
  uv_update_time(&b->loop);
  uint64_t now = uv_now(&b->loop);
  uint64_t every = uv_timer_get_repeat(timer);
  uint64_t away = now - b->stall_tick > every ? now - b->stall_tick - every : 0;
  b->stall_tick = now;
  for (broker_conn *c = b->conns; c; c = c->next) {
    if (c->dead || !c->congested) continue;
    c->progress = now - c->progress > away ? c->progress + away : now;
    if (now - c->progress >= b->options.stall_ms) broker_conn_cut(c, SHM_CUT_STALLED);
  }
}

void broker_conn_closed(uv_handle_t *handle) {
  broker_conn *c = handle->data;
  close(c->fd);
  buffer_free(&c->in);
  buffer_free(&c->out);
  buffer_free(&c->urgent);
  free(c);
}

/* Drops the subscriptions of every dead connection in one sweep, then
 * closes and frees them. */
void broker_conn_reap(broker *b) {
  if (b->dead_count == 0) return;
  int released = 0;
  broker_topic_match m = {b, NULL, 0, 1};
  table_sweep(b->topics, broker_topic_sweep_visit, &m);
  broker_conn **link = &b->write_list;
  while (*link) {
    if ((*link)->dead)
      *link = (*link)->write_next;
    else
      link = &(*link)->write_next;
  }
  broker_conn *c = b->conns;
  while (c) {
    broker_conn *next = c->next;
    if (c->dead) {
      if (c->region >= 0) {
        broker_pool_release(&b->pool, (uint32_t)c->region, c->pid);
        c->region = -1;
        released = 1;
      }
      if (c->prev)
        c->prev->next = c->next;
      else
        b->conns = c->next;
      if (c->next) c->next->prev = c->prev;
      uv_close((uv_handle_t *)&c->poll, broker_conn_closed);
    }
    c = next;
  }
  b->dead_count = 0;
  if (released) broker_watch_regions(b);
}

static void broker_conn_on_poll(uv_poll_t *handle, int status, int events) {
  broker_conn *c = handle->data;
  if (status < 0) {
    broker_conn_kill(c);
  } else {
    if (events & UV_WRITABLE) broker_conn_write(c);
    if (events & (UV_READABLE | UV_DISCONNECT)) broker_conn_read(c, BROKER_READ_BUDGET);
  }
}

void broker_conn_add(broker *b, int fd) {
  broker_conn *c = calloc(1, sizeof(*c));
  if (!c) {
    close(fd);
    return;
  }
  c->broker = b;
  c->fd = fd;
  c->read_chunk = BROKER_READ_CHUNK_MIN;
  c->region = -1;
  c->peer_max = FRAME_LIMIT_MAX_SIZE;
  buffer_init(&c->in);
  buffer_init(&c->out);
  buffer_init(&c->urgent);
  int size = BROKER_SOCKET_BUFFER;
  int send_size =
      b->options.queue_limit >= BROKER_SMALL_SEND_LIMIT ? BROKER_SEND_BUFFER : BROKER_SOCKET_BUFFER;
  /* Larger socket buffers mean fewer wake-ups under load; the kernel caps
   * them, and failing to set them is harmless. */
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_size, sizeof(send_size));
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (uv_poll_init(&b->loop, &c->poll, fd) != 0) {
    close(fd);
    free(c);
    return;
  }
  c->poll.data = c;
  if (uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, broker_conn_on_poll) != 0) {
    uv_close((uv_handle_t *)&c->poll, broker_conn_closed);
    return;
  }
  c->poll_events = UV_READABLE | UV_DISCONNECT;
  c->next = b->conns;
  if (b->conns) b->conns->prev = c;
  b->conns = c;
  broker_conn_watch(c); /* paused from the start if others are congested */
}

/* ---- loop phases ------------------------------------------------------- */

static void broker_on_expiry(uv_timer_t *timer) {
  broker *b = timer->data;
  uv_update_time(&b->loop);
  kv_expire_due(b->store, uv_now(&b->loop), BROKER_EXPIRE_BATCH);
  b->expiry_changed = 1;
}

static void broker_arm_expiry(broker *b) {
  uint64_t deadline;
  b->expiry_changed = 0;
  if (!kv_next_deadline(b->store, &deadline)) {
    uv_timer_stop(&b->expiry_timer);
    return;
  }
  uint64_t now = uv_now(&b->loop);
  uv_timer_start(&b->expiry_timer, broker_on_expiry, deadline > now ? deadline - now : 0, 0);
}

void broker_conn_flush(broker *b) {
  broker_conn *c = b->write_list;
  b->write_list = NULL;
  while (c) {
    broker_conn *next = c->write_next;
    c->queued_for_write = 0;
    if (!c->blocked) broker_conn_write(c);
    c = next;
  }
}

static void broker_on_prepare(uv_prepare_t *prepare) {
  broker *b = prepare->data;
  broker_conn_flush(b);
  /* A reader caught up: handle the input that waited for it. Its sockets
   * may hold nothing more, so no readable event would bring it back. */
  for (int round = 0; b->eased && round < 4; round++) {
    b->eased = 0;
    for (broker_conn *o = b->conns; o; o = o->next)
      if (!o->dead && o->held) broker_conn_process(o);
    broker_conn_flush(b);
  }
  /* Still some left: come straight back instead of waiting for events. */
  if (b->eased) uv_async_send(&b->wake);
  broker_conn_reap(b);
  broker_pool_collect_gone(&b->pool);
  if (b->expiry_changed) broker_arm_expiry(b);
  uint64_t values[FRAME_STATS_COUNT];
  broker_fill_stats(b, values);
  for (size_t i = 0; i < FRAME_STATS_COUNT; i++)
    atomic_store_explicit(&b->snapshot[i], values[i], memory_order_relaxed);
}

static void broker_close_handle(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle)) uv_close(handle, handle->type == UV_POLL ? broker_conn_closed : NULL);
}

static void broker_on_wake(uv_async_t *async) {
  broker *b = async->data;
  uv_mutex_lock(&b->lock);
  int stopping = b->stopping;
  int *fds = b->pending_fds;
  size_t count = b->pending_count;
  b->pending_fds = NULL;
  b->pending_count = 0;
  b->pending_capacity = 0;
  uv_mutex_unlock(&b->lock);
  for (size_t i = 0; i < count; i++) {
    if (stopping)
      close(fds[i]);
    else
      broker_conn_add(b, fds[i]);
  }
  free(fds);
  if (stopping) uv_walk(&b->loop, broker_close_handle, NULL);
}

static void broker_run(void *arg) {
  broker *b = arg;
  /* Named, so top -H, perf and gdb show which thread is the broker. */
  (void)prctl(PR_SET_NAME, "sio-cluster-brk", 0, 0, 0);
  uv_run(&b->loop, UV_RUN_DEFAULT);
}

/* ---- public ------------------------------------------------------------ */

int broker_create(broker **out, const broker_options *options, char *err, size_t err_len) {
  broker *b = calloc(1, sizeof(*b));
  int rc;
  if (!b) {
    snprintf(err, err_len, "out of memory starting the broker");
    return -1;
  }
  b->options = *options;
  broker_pool_init(&b->pool, options->shared);
  b->topics = table_create();
  b->store = kv_create();
  if (!b->topics || !b->store) {
    snprintf(err, err_len, "out of memory starting the broker");
    goto fail_tables;
  }
  if ((rc = uv_mutex_init(&b->lock)) != 0) {
    snprintf(err, err_len, "broker mutex: %s", uv_strerror(rc));
    goto fail_tables;
  }
  if ((rc = uv_loop_init(&b->loop)) != 0) {
    snprintf(err, err_len, "broker loop: %s", uv_strerror(rc));
    goto fail_mutex;
  }
  if ((rc = uv_async_init(&b->loop, &b->wake, broker_on_wake)) != 0 ||
      (rc = uv_prepare_init(&b->loop, &b->prepare)) != 0 ||
      (rc = uv_prepare_start(&b->prepare, broker_on_prepare)) != 0 ||
      (rc = uv_timer_init(&b->loop, &b->expiry_timer)) != 0 ||
      (rc = uv_timer_init(&b->loop, &b->stall_timer)) != 0 ||
      (rc = uv_timer_init(&b->loop, &b->region_timer)) != 0) {
    snprintf(err, err_len, "broker handles: %s", uv_strerror(rc));
    goto fail_loop;
  }
  b->wake.data = b;
  b->prepare.data = b;
  b->expiry_timer.data = b;
  b->stall_timer.data = b;
  b->region_timer.data = b;
  /* The prepare and timer handles must not keep the loop alive: only the
   * wake handle does, until broker_stop closes it. */
  uv_unref((uv_handle_t *)&b->prepare);
  uv_unref((uv_handle_t *)&b->expiry_timer);
  uv_unref((uv_handle_t *)&b->stall_timer);
  uv_unref((uv_handle_t *)&b->region_timer);
  *out = b;
  return 0;

fail_loop:
  uv_walk(&b->loop, broker_close_handle, NULL);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  uv_loop_close(&b->loop);
fail_mutex:
  uv_mutex_destroy(&b->lock);
fail_tables:
  if (b->topics) table_destroy(b->topics, broker_topic_free, NULL);
  if (b->store) kv_destroy(b->store);
  broker_pool_destroy(&b->pool);
  free(b);
  return -1;
}

int broker_start(broker **out, const broker_options *options, char *err, size_t err_len) {
  broker *b;
  if (broker_create(&b, options, err, err_len) != 0) return -1;
  int rc = uv_thread_create(&b->thread, broker_run, b);
  if (rc != 0) {
    snprintf(err, err_len, "broker thread: %s", uv_strerror(rc));
    broker_stop(b);
    return -1;
  }
  b->threaded = 1;
  *out = b;
  return 0;
}

void broker_run_once(broker *b) {
  uv_run(&b->loop, UV_RUN_NOWAIT);
}

int broker_attach(broker *b, int fd) {
  uv_mutex_lock(&b->lock);
  if (b->stopping) {
    uv_mutex_unlock(&b->lock);
    close(fd);
    errno = ESHUTDOWN;
    return -1;
  }
  if (b->pending_count == b->pending_capacity) {
    size_t capacity = b->pending_capacity ? b->pending_capacity * 2 : 8;
    int *grown = realloc(b->pending_fds, capacity * sizeof(*grown));
    if (!grown) {
      uv_mutex_unlock(&b->lock);
      close(fd);
      errno = ENOMEM;
      return -1;
    }
    b->pending_fds = grown;
    b->pending_capacity = capacity;
  }
  b->pending_fds[b->pending_count++] = fd;
  uv_mutex_unlock(&b->lock);
  int rc = uv_async_send(&b->wake);
  if (rc != 0) {
    errno = -rc;
    return -1;
  }
  return 0;
}

int broker_connect_pair(broker *b, int *peer_fd) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  int size = BROKER_SOCKET_BUFFER;
  (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (broker_attach(b, sv[0]) != 0) {
    int saved = errno;
    close(sv[1]);
    errno = saved;
    return -1;
  }
  *peer_fd = sv[1];
  return 0;
}

void broker_get_stats(broker *b, uint64_t out[FRAME_STATS_COUNT]) {
  for (size_t i = 0; i < FRAME_STATS_COUNT; i++)
    out[i] = atomic_load_explicit(&b->snapshot[i], memory_order_relaxed);
}

void broker_stop(broker *b) {
  uv_mutex_lock(&b->lock);
  b->stopping = 1;
  uv_mutex_unlock(&b->lock);
  uv_async_send(&b->wake);
  if (b->threaded) uv_thread_join(&b->thread);
  /* The thread has closed every handle (without a thread, the wake handler
   * runs here); run until the last close callback is done. */
  uv_run(&b->loop, UV_RUN_DEFAULT);
  uv_loop_close(&b->loop);
  uv_mutex_destroy(&b->lock);
  for (size_t i = 0; i < b->pending_count; i++)
    close(b->pending_fds[i]);
  free(b->pending_fds);
  table_destroy(b->topics, broker_topic_free, NULL);
  kv_destroy(b->store);
  broker_pool_destroy(&b->pool);
  free(b);
}
