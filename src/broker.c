/* broker: the thread, its loop, and what each frame asks (see broker.h).
 *
 * Life of a frame: a connection's poll callback reads what its socket
 * holds and hands each complete frame, in order, to broker_handle here,
 * which says what each frame type does: routes a publish (broker_topic.c),
 * answers a request from the key/value store (kv.h) or the subscriptions,
 * keeps the books of the shared pool (broker_pool.c). Whatever a frame
 * produces is queued on the connections concerned (broker_conn.c), and all
 * output is flushed in the prepare phase, right before the loop waits
 * again: one write per connection per loop turn, however many frames.
 *
 * The prepare phase also lets held publishers go on once their readers
 * caught up, reaps the dead connections (only marked dead while the work
 * was under way, so no list being walked changes under the walker), takes
 * back what gone processes read of the pool, re-arms the expiry timer and
 * publishes the stats snapshot that broker_get_stats reads from another
 * thread. Lifecycle: broker_create / broker_start make the loop (and the
 * thread), broker_attach hands it sockets through the wake handle, and
 * broker_stop closes every handle and frees the broker. */
#define _GNU_SOURCE
#include "broker.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "broker_internal.h"
#include "fdpass.h"
#include "shm.h"
#include "uplink.h"

#define BROKER_EXPIRE_BATCH 10000u
/* How often an idle broker looks whether gone connections' processes have
 * exited (their regions come back then, and their pidfds are closed). */
#define BROKER_REGION_CHECK_MS 100u

void broker_options_default(broker_options *options) {
  options->max_frame_size = BROKER_DEFAULT_MAX_FRAME_SIZE;
  options->queue_limit = BROKER_DEFAULT_QUEUE_LIMIT;
  options->stall_ms = BROKER_DEFAULT_STALL_MS;
  options->shared = 1;
  options->retain_messages = BROKER_DEFAULT_RETAIN_MESSAGES;
  options->retain_bytes = BROKER_DEFAULT_RETAIN_BYTES;
  options->retain_ms = BROKER_DEFAULT_RETAIN_MS;
  options->uplink = NULL;
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
  b->counters[FRAME_STAT_NAMESPACES_BOUND] = table_count(b->bindings);
  broker_retain_stats(b, b->counters);
  if (b->uplink) uplink_fill_stats(b->uplink, b->counters);
  memcpy(out, b->counters, sizeof(b->counters));
}

/* Text answers of broker_kv_apply. */
static void broker_kv_text(broker_kv_answer *out, uint8_t status, const char *text) {
  out->status = status;
  out->value = text;
  out->len = strlen(text);
}

void broker_kv_apply(broker *b, const frame *f, kv_namespace **slot, broker_kv_answer *out) {
  out->status = FRAME_STATUS_OK;
  out->value = NULL;
  out->len = 0;
  switch (f->type) {
  case FRAME_KV_GET:
    out->value = kv_slot_get(b->store, slot, f->a, f->a_len, f->b, f->b_len, &out->len);
    if (!out->value) out->status = FRAME_STATUS_MISSING;
    return;
  case FRAME_KV_SET:
    if (kv_slot_set(b->store, slot, f->a, f->a_len, f->b, f->b_len, f->payload, f->payload_len) !=
        0)
      broker_kv_text(out, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    return;
  case FRAME_KV_HAS:
    if (!kv_slot_get(b->store, slot, f->a, f->a_len, f->b, f->b_len, NULL))
      out->status = FRAME_STATUS_MISSING;
    return;
  case FRAME_KV_DEL:
    if (!kv_slot_del(b->store, slot, f->a, f->a_len, f->b, f->b_len))
      out->status = FRAME_STATUS_MISSING;
    return;
  case FRAME_KV_CLEAR:
    broker_bind_release(b, f->a, f->a_len);
    if (!kv_clear(b->store, f->a, f->a_len)) out->status = FRAME_STATUS_MISSING;
    b->expiry_changed = 1;
    return;
  case FRAME_KV_EXPIRE: {
    uint32_t ms;
    if (frame_expire_parse(f->payload, f->payload_len, &ms) != 0) {
      broker_kv_text(out, FRAME_STATUS_BAD_REQUEST, "expire needs a 4-byte millisecond count");
      return;
    }
    uv_update_time(&b->loop);
    uint64_t deadline = uv_now(&b->loop) + ms;
    int rc = kv_expire_at(b->store, f->a, f->a_len, deadline);
    if (rc > 0) broker_bind_release(b, f->a, f->a_len);
    if (rc < 0)
      broker_kv_text(out, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    else if (rc == 0)
      out->status = FRAME_STATUS_MISSING;
    b->expiry_changed = 1;
    return;
  }
  case FRAME_KV_PERSIST:
    broker_bind_release(b, f->a, f->a_len);
    if (!kv_persist(b->store, f->a, f->a_len)) out->status = FRAME_STATUS_MISSING;
    b->expiry_changed = 1;
    return;
  default:
    broker_kv_text(out, FRAME_STATUS_BAD_REQUEST, "not a per-client data request");
    return;
  }
}

void broker_handle(broker *b, broker_conn *c, const frame *f) {
  if ((f->flags & FRAME_FLAG_BARRIER) && !b->draining) broker_drain_others(b, c);
  /* Joined to other machines: the per-client data is Redis's while it is
   * there, and a SYNC may wait for it (uplink.h). */
  if (b->uplink && f->type >= FRAME_KV_GET && f->type <= FRAME_KV_PERSIST &&
      uplink_kv(b->uplink, c, f))
    return;
  if (b->uplink && f->type == FRAME_SYNC && uplink_sync(b->uplink, c, f)) return;
  switch (f->type) {
  case FRAME_PUBLISH: {
    if (f->flags & FRAME_FLAG_RETAIN) {
      broker_retain_publish(b, c, f);
      return;
    }
    /* Field b of a MESSAGE is a retained message's offset: none here. */
    frame plain = *f;
    plain.b_len = 0;
    if (f->flags & FRAME_FLAG_SHARED)
      broker_topic_route_shared(b, &plain, c);
    else
      broker_topic_route(b, &plain, c, UINT32_MAX);
    return;
  }
  case FRAME_RETAINED_READ:
    broker_retain_read(b, c, f);
    return;
  case FRAME_KV_BIND:
    broker_bind_handle(b, c, f);
    return;
  case FRAME_KV_TAKE:
    broker_bind_take(b, c, f);
    return;
  case FRAME_SHARED:
    /* The process mapped the pool: shared messages may go to it now. */
    if (c->region >= 0) {
      c->shared_ready = 1;
      uint32_t pid;
      if (frame_shared_ready_parse(f->payload, f->payload_len, &pid) == 0) c->pid = pid;
    } else
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST, "no shared region given");
    return;
  case FRAME_SHARED_READ: {
    uint64_t count;
    if (c->region < 0 || frame_read_count_parse(f->payload, f->payload_len, &count) != 0)
      broker_conn_protocol_error(c, "malformed shared read count");
    else if (broker_pool_collect(&b->pool, (uint32_t)c->region, count, 0) != 0)
      broker_conn_protocol_error(c, "shared pool count out of step");
    return;
  }
  case FRAME_SUBSCRIBE: {
    int rc = broker_topic_subscribe(b, f, c);
    if (rc == -2)
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST,
                             "a member's tag is at most 1024 bytes");
    else if (rc != 0)
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    else if (f->payload_len > 0) { /* a member: the reply lists the others */
      if (b->uplink) (void)uplink_subscribed(b->uplink, f->a, f->a_len, c, 0);
      broker_presence_reply(c, f->request_id, broker_topic_find(b, f), f->a, f->a_len, f->endpoint);
    } else if (!b->uplink || !uplink_subscribed(b->uplink, f->a, f->a_len, c, f->request_id))
      broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  }
  case FRAME_UNSUBSCRIBE:
    broker_topic_unsubscribe(b, f, c);
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  case FRAME_KV_GET:
  case FRAME_KV_SET:
  case FRAME_KV_HAS:
  case FRAME_KV_DEL:
  case FRAME_KV_CLEAR:
  case FRAME_KV_EXPIRE:
  case FRAME_KV_PERSIST: {
    broker_kv_answer answer;
    broker_kv_apply(b, f, NULL, &answer);
    broker_conn_reply(c, f->request_id, answer.status, answer.value, answer.len);
    return;
  }
  case FRAME_CLOSE:
    broker_topic_drop_endpoint(b, c, f->endpoint);
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  case FRAME_STATS: {
    uint64_t values[FRAME_STATS_COUNT];
    uint8_t payload[FRAME_STATS_SIZE];
    broker_fill_stats(b, values);
    frame_stats_write(payload, values);
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, payload, sizeof(payload));
    return;
  }
  case FRAME_SYNC:
    broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
    return;
  case FRAME_HANDOFF:
    broker_handoff(b, c, f);
    return;
  default:
    /* HELLO twice, or a broker-to-process frame sent the wrong way. */
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST,
                           "frame type not accepted by the broker");
    return;
  }
}

/* The hello, and with it the offer of a region of the shared pool (the
 * pool's descriptor passed along with the bytes) when there is one to give.
 * Nothing was sent to c before, so its socket takes both at once. */
void broker_greet(broker_conn *c) {
  broker *b = c->broker;
  uint8_t bytes[2 * FRAME_HEADER_SIZE + FRAME_HELLO_PAYLOAD_SIZE + FRAME_OFFER_SIZE];
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, b->options.max_frame_size);
  size_t len = frame_encode(bytes, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  ssize_t sent = 0;
  int region = broker_conn_queued_bytes(c) == 0 ? broker_pool_take(&b->pool) : -1;
  size_t hello_len = len;
  if (region >= 0) {
    uint8_t offer[FRAME_OFFER_SIZE];
    frame_offer o = {(uint32_t)region, SHM_REGION_SIZE, SHM_SLOTS, SHM_PAYLOAD_MAX,
                     b->pool.regions[region].generation};
    frame_offer_write(offer, &o);
    len += frame_encode(bytes + len, FRAME_SHARED, 0, 0, 0, NULL, 0, NULL, 0, offer, sizeof(offer));
    sent = fdpass_send_copy(c->fd, bytes, len, b->pool.map->fd);
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

static void broker_on_prepare(uv_prepare_t *prepare) {
  broker *b = prepare->data;
  if (b->uplink) uplink_flush(b->uplink);
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
  /* The members of the reaped connections' topics were told they left:
   * that output goes now, not whenever the loop next wakes. */
  if (b->write_list) broker_conn_flush(b);
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
  if (stopping && b->uplink) uplink_stop(b->uplink); /* its handles, with their own callbacks */
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
  if (!b->topics || !b->store || broker_retain_init(b) != 0 || broker_bind_init(b) != 0) {
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
      (rc = uv_timer_init(&b->loop, &b->region_timer)) != 0 ||
      (rc = uv_timer_init(&b->loop, &b->pace_timer)) != 0) {
    snprintf(err, err_len, "broker handles: %s", uv_strerror(rc));
    goto fail_loop;
  }
  b->wake.data = b;
  b->prepare.data = b;
  b->expiry_timer.data = b;
  b->stall_timer.data = b;
  b->region_timer.data = b;
  b->pace_timer.data = b;
  /* The prepare and timer handles must not keep the loop alive: only the
   * wake handle does, until broker_stop closes it. */
  uv_unref((uv_handle_t *)&b->prepare);
  uv_unref((uv_handle_t *)&b->expiry_timer);
  uv_unref((uv_handle_t *)&b->stall_timer);
  uv_unref((uv_handle_t *)&b->region_timer);
  uv_unref((uv_handle_t *)&b->pace_timer);
  if (options->uplink) {
    if (uplink_create(&b->uplink, b, options->uplink, err, err_len) != 0) goto fail_loop;
    b->uplink_number = ++b->last_number; /* the first number given: never 0 */
  }
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
  broker_retain_free(b);
  broker_bind_free(b);
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
  int send_size = BROKER_PROCESS_SEND_BUFFER;
  (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &send_size, sizeof(send_size));
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

void broker_uplink_fault(broker *b, char *out, size_t out_len) {
  if (b->uplink)
    uplink_fault_text(b->uplink, out, out_len);
  else if (out_len)
    out[0] = '\0';
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
  if (b->uplink) uplink_free(b->uplink);
  uv_mutex_destroy(&b->lock);
  for (size_t i = 0; i < b->pending_count; i++)
    close(b->pending_fds[i]);
  free(b->pending_fds);
  table_destroy(b->topics, broker_topic_free, NULL);
  kv_destroy(b->store);
  broker_retain_free(b);
  broker_bind_free(b);
  broker_pool_destroy(&b->pool);
  free(b);
}
