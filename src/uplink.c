/* uplink: lifecycle, connecting, faults and what each reply means (see
 * uplink.h for what the uplink does, uplink_internal.h for its files).
 *
 * Connecting: the host's name is looked up on libuv's pool, then both
 * links connect at once and send their handshake, pipelined: AUTH (with
 * the ACL user when there is one), SELECT for the command link, a PING;
 * SUBSCRIBE to the control channel and to every local topic for the
 * subscriber link. Every handshake reply must be a success. Once both
 * links have all theirs, the uplink is up and says hello to the other
 * machines (uplink_topic_announce).
 *
 * Any fault closes both links (what they awaited is answered with an
 * error or let go), records what went wrong where stats() and the master's
 * log can say it, and schedules the next try, UPLINK_BACKOFF_MIN_MS
 * doubling up to UPLINK_BACKOFF_MAX_MS. A timer ticks every
 * UPLINK_TICK_MS: retries, connect timeouts, and a Redis that stopped
 * answering (after reading what arrived: libuv runs timers before it polls,
 * and a broker thread the machine did not schedule for a while must not
 * take a reply waiting in its socket for silence). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

#define UPLINK_CONNECT_TIMEOUT_MS 3000u

static void uplink_connect(uplink *u);

/* ---- faults ------------------------------------------------------------------ */

static void uplink_set_fault(uplink *u, int fault, const char *text) {
  uv_mutex_lock(&u->fault_lock);
  u->fault = fault;
  if (text)
    snprintf(u->fault_text, sizeof(u->fault_text), "Redis at %s:%u: %s", u->options.host,
             (unsigned)u->options.port, text);
  else
    u->fault_text[0] = '\0';
  uv_mutex_unlock(&u->fault_lock);
}

void uplink_fault_text(uplink *u, char *out, size_t out_len) {
  uv_mutex_lock(&u->fault_lock);
  snprintf(out, out_len, "%s", u->fault_text);
  uv_mutex_unlock(&u->fault_lock);
}

void uplink_fail(uplink *u, int fault, const char *text) {
  if (fault == UPLINK_FAULT_LOST && u->state == UPLINK_UP && !u->draining) {
    /* What Redis sent before the connection broke is still taken: the
     * messages it pushed here (another machine's PUBLISH it acknowledged)
     * and the replies to what this machine sent. One link's end may be
     * seen while the other still has unread bytes. */
    u->draining = 1;
    uplink_link_drain(&u->subscriber);
    uplink_link_drain(&u->command);
    u->draining = 0;
    if (u->state != UPLINK_UP) return; /* what it read made it fail already */
  }
  uplink_set_fault(u, fault, text);
  uplink_topic_send_batch(u, 1);
  uplink_link_close(&u->command);
  uplink_link_close(&u->subscriber);
  uplink_topic_reset(u);
  if (u->stopping) return;
  int was_up = u->state == UPLINK_UP;
  u->state = UPLINK_DOWN;
  if (was_up) {
    uplink_owner_down(u);
    uplink_member_forget(u, NULL); /* no request waits for what it cannot reach */
  }
  uv_update_time(&u->broker->loop);
  u->retry_at = uv_now(&u->broker->loop) + u->backoff_ms;
  u->backoff_ms =
      u->backoff_ms * 2 > UPLINK_BACKOFF_MAX_MS ? UPLINK_BACKOFF_MAX_MS : u->backoff_ms * 2;
}

/* ---- sending ------------------------------------------------------------------- */

int uplink_send(uplink *u, uplink_link *link, const resp_arg *args, size_t argc,
                const uplink_entry *entry) {
  /* What is gathered for the command link goes first, in order. */
  if (link == &u->command && u->batch_topic && !u->sending_batch) uplink_topic_send_batch(u, 0);
  if (link == &u->command && uplink_note_gathering(u)) uplink_note_send(u, 0);
  if (uplink_link_queue(link, args, argc, entry) != 0) {
    free(entry->name);
    return -1;
  }
  return 0;
}

/* A handshake command (no name, no process). */
static int uplink_send_handshake(uplink *u, uplink_link *link, const resp_arg *args, size_t argc) {
  uplink_entry e = {UPLINK_E_HANDSHAKE, 0, 0, NULL, NULL, 0, 0};
  if (uplink_send(u, link, args, argc, &e) != 0) return -1;
  link->handshake_left++;
  return 0;
}

static int uplink_send_auth(uplink *u, uplink_link *link) {
  const uplink_options *o = &u->options;
  if (!o->password[0]) return 0;
  resp_arg args[3] = {{"AUTH", 4, NULL, 0},
                      {o->user, strlen(o->user), NULL, 0},
                      {o->password, strlen(o->password), NULL, 0}};
  if (o->user[0]) return uplink_send_handshake(u, link, args, 3);
  args[1] = args[2];
  return uplink_send_handshake(u, link, args, 2);
}

/* ---- connecting ------------------------------------------------------------------ */

static void uplink_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  uplink *u = req->data;
  u->resolving = 0;
  if (u->stopping) {
    if (res) uv_freeaddrinfo(res);
    return;
  }
  if (status < 0 || !res) {
    char text[300];
    snprintf(text, sizeof(text), "cannot resolve the host name: %s", uv_strerror(status));
    if (res) uv_freeaddrinfo(res);
    uplink_fail(u, UPLINK_FAULT_UNREACHABLE, text);
    return;
  }
  memcpy(&u->address, res->ai_addr, res->ai_addrlen);
  u->address_len = (socklen_t)res->ai_addrlen;
  uv_freeaddrinfo(res);

  char text[200];
  const struct sockaddr *addr = (const struct sockaddr *)&u->address;
  if (uplink_link_open(&u->command, addr, u->address_len, text, sizeof(text)) != 0 ||
      uplink_link_open(&u->subscriber, addr, u->address_len, text, sizeof(text)) != 0) {
    char why[300];
    snprintf(why, sizeof(why), "cannot connect: %s", text);
    uplink_fail(u, UPLINK_FAULT_UNREACHABLE, why);
    return;
  }
  char db[16];
  snprintf(db, sizeof(db), "%u", (unsigned)u->options.db);
  resp_arg select[2] = {{"SELECT", 6, NULL, 0}, {db, strlen(db), NULL, 0}};
  resp_arg ping[1] = {{"PING", 4, NULL, 0}};
  resp_arg control[2] = {{"SUBSCRIBE", 9, NULL, 0}, {u->control, u->control_len, NULL, 0}};
  resp_arg notes[2] = {{"SUBSCRIBE", 9, NULL, 0}, {u->notes, u->notes_len, NULL, 0}};
  if (uplink_send_auth(u, &u->command) != 0 ||
      (u->options.db && uplink_send_handshake(u, &u->command, select, 2) != 0) ||
      uplink_send_handshake(u, &u->command, ping, 1) != 0 ||
      uplink_send_auth(u, &u->subscriber) != 0 ||
      uplink_send_handshake(u, &u->subscriber, control, 2) != 0 ||
      uplink_send_handshake(u, &u->subscriber, notes, 2) != 0 || uplink_topic_subscribe_all(u) != 0)
    uplink_fail(u, UPLINK_FAULT_LOST, "out of memory saying hello to Redis");
}

static void uplink_connect(uplink *u) {
  char port[16];
  snprintf(port, sizeof(port), "%u", (unsigned)u->options.port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  u->state = UPLINK_CONNECTING;
  u->connect_started = uv_now(&u->broker->loop);
  u->resolver.data = u;
  int rc = uv_getaddrinfo(&u->broker->loop, &u->resolver, uplink_on_resolved, u->options.host, port,
                          &hints);
  if (rc != 0) {
    char text[200];
    snprintf(text, sizeof(text), "cannot look the host up: %s", uv_strerror(rc));
    uplink_fail(u, UPLINK_FAULT_UNREACHABLE, text);
    return;
  }
  u->resolving = 1;
}

/* Both links have had every handshake reply. */
static void uplink_up(uplink *u) {
  u->state = UPLINK_UP;
  u->backoff_ms = UPLINK_BACKOFF_MIN_MS;
  u->connects++;
  uv_update_time(&u->broker->loop);
  uplink_topic_machines_seen_now(u, uv_now(&u->broker->loop));
  u->presence_sent = uv_now(&u->broker->loop);
  uplink_topic_announce(u);
  uplink_owner_up(u);
}

/* Whether a link has waited for Redis longer than UPLINK_STALL_MS at now.
 * A reply awaited since after now (a command sent during this tick, with
 * the loop's time updated since) has not waited at all. */
static int uplink_stalled(const uplink_link *link, uint64_t now) {
  return link->waiting_since && now > link->waiting_since &&
         now - link->waiting_since > UPLINK_STALL_MS;
}

static void uplink_on_tick(uv_timer_t *timer) {
  uplink *u = timer->data;
  uv_update_time(&u->broker->loop);
  uint64_t now = uv_now(&u->broker->loop);
  uplink_owner_tick(u, now);
  if (u->state == UPLINK_DOWN && now >= u->retry_at && !u->resolving) {
    uplink_connect(u);
    return;
  }
  if (u->state == UPLINK_CONNECTING && !u->resolving &&
      now - u->connect_started > UPLINK_CONNECT_TIMEOUT_MS) {
    int tcp =
        u->command.state == UPLINK_LINK_CONNECTING || u->subscriber.state == UPLINK_LINK_CONNECTING;
    uplink_fail(u, tcp ? UPLINK_FAULT_UNREACHABLE : UPLINK_FAULT_STALLED,
                tcp ? "connecting timed out"
                    : "no answer to the handshake (is it Redis? is it stopped?)");
    return;
  }
  if (u->state != UPLINK_UP) return;
  uplink_topic_presence(u, now);
  uplink_link *links[2] = {&u->command, &u->subscriber};
  for (int i = 0; i < 2; i++) {
    uplink_link *link = links[i];
    if (!uplink_stalled(link, now)) continue;
    uplink_link_read_waiting(link);
    if (u->state != UPLINK_UP) return; /* what it read made it fail */
    if (uplink_stalled(link, now)) {
      uplink_fail(u, UPLINK_FAULT_STALLED, "Redis stopped answering");
      return;
    }
  }
}

/* ---- replies ----------------------------------------------------------------------- */

/* A handshake reply: a success, or the fault it shows. */
static void uplink_handshake_reply(uplink *u, uplink_link *link, const resp_item *first) {
  if (first->type == RESP_ERROR) {
    char text[300];
    int len = first->len > 200 ? 200 : (int)first->len;
    int auth = (first->len >= 9 && memcmp(first->str, "WRONGPASS", 9) == 0) ||
               (first->len >= 6 && memcmp(first->str, "NOAUTH", 6) == 0) ||
               (first->len >= 20 && memmem(first->str, first->len, "password", 8) != NULL);
    snprintf(text, sizeof(text), "%s on the %s link: %.*s",
             auth ? "authentication failed" : "Redis refused the handshake", link->name, len,
             (const char *)first->str);
    uplink_fail(u, auth ? UPLINK_FAULT_AUTH : UPLINK_FAULT_REFUSED, text);
    return;
  }
  if (--link->handshake_left > 0) return;
  link->state = UPLINK_LINK_READY;
  if (u->command.state == UPLINK_LINK_READY && u->subscriber.state == UPLINK_LINK_READY)
    uplink_up(u);
}

static void uplink_entry_reply(uplink *u, uplink_link *link, uplink_entry *e,
                               const resp_item *first) {
  switch (e->kind) {
  case UPLINK_E_HANDSHAKE:
    uplink_handshake_reply(u, link, first);
    break;
  case UPLINK_E_CLAIM:
    uplink_claim_reply(u, e, first);
    break;
  case UPLINK_E_RELEASE:
    uplink_claim_release_reply(u, e);
    break;
  case UPLINK_E_MESSAGES:
    /* PUBLISH says how many subscribers Redis gave them to. Fewer than
     * the machines that wanted them: one of those was not subscribed (it
     * was reconnecting, or had just stopped wanting the topic), and these
     * did not reach it. */
    if (first->type == RESP_INTEGER && first->integer >= 0 && (uint64_t)first->integer < e->wanted)
      u->dropped += e->request_id;
    break;
  case UPLINK_E_ANSWER:
    if (e->conn) broker_conn_reply(e->conn, e->request_id, FRAME_STATUS_OK, NULL, 0);
    break;
  case UPLINK_E_SUBSCRIBE:
    if (first->type != RESP_ERROR) uplink_topic_confirmed(u, e->name, e->name_len);
    break;
  case UPLINK_E_INTEREST:
    uplink_topic_interest_sent(u, e->name, e->name_len);
    break;
  default:
    break; /* UPLINK_E_IGNORE, UPLINK_E_UNSUBSCRIBE */
  }
  free(e->name);
}

void uplink_on_reply(uplink *u, uplink_link *link, const uint8_t *reply, size_t len) {
  resp_item first;
  size_t pos = 0;
  if (resp_item_read(reply, len, &pos, &first) != 0) return;
  if (link == &u->subscriber && first.type == RESP_ARRAY && first.integer >= 3) {
    resp_item kind, channel, payload;
    if (resp_item_read(reply, len, &pos, &kind) == 0 && resp_item_is(&kind, "message", 7)) {
      if (resp_item_read(reply, len, &pos, &channel) == 0 &&
          resp_item_read(reply, len, &pos, &payload) == 0 && channel.type == RESP_BULK &&
          payload.type == RESP_BULK)
        uplink_topic_message(u, channel.str, channel.len, payload.str, payload.len);
      return; /* a push, not a reply */
    }
  }
  uplink_entry e;
  if (uplink_link_pop(link, &e) != 0) {
    uplink_fail(u, UPLINK_FAULT_NOT_REDIS, "a reply came that no command asked for");
    return;
  }
  uplink_entry_reply(u, link, &e, &first);
}

void uplink_flush(uplink *u) {
  uplink_topic_send_batch(u, 0);
  uplink_note_send(u, 0);
  uplink_link_flush(&u->command);
  uplink_link_flush(&u->subscriber);
}

/* ---- life ------------------------------------------------------------------------------ */

static int uplink_prefixed(char *dst, size_t dst_len, size_t *out_len, const char *prefix,
                           const char *suffix) {
  int n = snprintf(dst, dst_len, "%s%s", prefix, suffix);
  if (n < 0 || (size_t)n >= dst_len) return -1;
  *out_len = (size_t)n;
  return 0;
}

int uplink_create(uplink **out, broker *b, const uplink_options *options, char *err,
                  size_t err_len) {
  uplink *u = calloc(1, sizeof(*u));
  if (!u) {
    snprintf(err, err_len, "out of memory starting the uplink");
    return -1;
  }
  u->broker = b;
  u->options = *options;
  if (!u->options.presence_ms) u->options.presence_ms = UPLINK_PRESENCE_MS;
  if (uv_random(NULL, NULL, u->origin, sizeof(u->origin), 0, NULL) != 0) {
    uint64_t mix = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^ (uint64_t)(uintptr_t)u;
    memcpy(u->origin, &mix, sizeof(u->origin));
  }
  if (uplink_prefixed(u->control, sizeof(u->control), &u->control_len, options->prefix, ":c") ||
      uplink_prefixed(u->topic_prefix, sizeof(u->topic_prefix), &u->topic_prefix_len,
                      options->prefix, ":t:") ||
      uplink_prefixed(u->owner_prefix, sizeof(u->owner_prefix), &u->owner_prefix_len,
                      options->prefix, ":o:") ||
      uplink_prefixed(u->note_prefix, sizeof(u->note_prefix), &u->note_prefix_len, options->prefix,
                      ":q:")) {
    snprintf(err, err_len, "the Redis key prefix is too long");
    free(u);
    return -1;
  }
  u->topics = table_create();
  u->interest = table_create();
  u->machines = table_create();
  u->members = table_create();
  if (!u->topics || !u->interest || !u->machines || !u->members || uplink_owner_init(u) != 0 ||
      uv_mutex_init(&u->fault_lock) != 0) {
    snprintf(err, err_len, "out of memory starting the uplink");
    if (u->topics) table_destroy(u->topics, NULL, NULL);
    if (u->interest) table_destroy(u->interest, NULL, NULL);
    if (u->machines) table_destroy(u->machines, NULL, NULL);
    if (u->members) table_destroy(u->members, NULL, NULL);
    uplink_owner_free(u);
    free(u);
    return -1;
  }
  uplink_note_channel(u, u->origin, u->notes, &u->notes_len);
  buffer_init(&u->batch);
  uplink_link_init(&u->command, u, "command");
  uplink_link_init(&u->subscriber, u, "subscriber");
  if (uv_timer_init(&b->loop, &u->timer) != 0) {
    snprintf(err, err_len, "uplink timer");
    uplink_stop(u);
    uplink_free(u);
    return -1;
  }
  u->timer.data = u;
  uv_unref((uv_handle_t *)&u->timer);
  u->backoff_ms = UPLINK_BACKOFF_MIN_MS;
  u->state = UPLINK_DOWN; /* the first tick connects */
  u->retry_at = 0;
  uv_timer_start(&u->timer, uplink_on_tick, 0, UPLINK_TICK_MS);
  *out = u;
  return 0;
}

void uplink_stop(uplink *u) {
  if (u->stopping) return;
  /* A clean goodbye, if it can still go: the others stop sending here. */
  if (u->state == UPLINK_UP) {
    uint8_t bye[UPLINK_ORIGIN_SIZE + 1];
    memcpy(bye, u->origin, UPLINK_ORIGIN_SIZE);
    bye[UPLINK_ORIGIN_SIZE] = 'b';
    resp_arg args[3] = {{"PUBLISH", 7, NULL, 0},
                        {u->control, u->control_len, NULL, 0},
                        {bye, sizeof(bye), NULL, 0}};
    uplink_entry e = {UPLINK_E_IGNORE, 0, 0, NULL, NULL, 0, 0};
    if (uplink_send(u, &u->command, args, 3, &e) == 0) uplink_link_flush(&u->command);
  }
  uplink_topic_send_batch(u, 1); /* only when down: up, the goodbye sent it */
  u->stopping = 1;
  if (u->resolving) uv_cancel((uv_req_t *)&u->resolver);
  uplink_link_close(&u->command);
  uplink_link_close(&u->subscriber);
  uplink_topic_reset(u);
  if (!uv_is_closing((uv_handle_t *)&u->timer)) uv_close((uv_handle_t *)&u->timer, NULL);
}

void uplink_free(uplink *u) {
  free(u->batch_topic);
  buffer_free(&u->batch);
  uplink_link_free(&u->command);
  uplink_link_free(&u->subscriber);
  table_destroy(u->topics, uplink_topic_free, NULL);
  table_destroy(u->interest, uplink_interest_free, NULL);
  table_destroy(u->machines, uplink_machine_free, NULL);
  table_destroy(u->members, uplink_members_free, NULL);
  uplink_owner_free(u);
  uv_mutex_destroy(&u->fault_lock);
  free(u);
}

void uplink_fill_stats(uplink *u, uint64_t *counters) {
  counters[FRAME_STAT_UPLINK_STATE] = (uint64_t)u->state;
  counters[FRAME_STAT_UPLINK_FAULT] = (uint64_t)u->fault;
  counters[FRAME_STAT_UPLINK_CONNECTS] = u->connects;
  counters[FRAME_STAT_UPLINK_PUBLISHED] = u->published;
  counters[FRAME_STAT_UPLINK_RECEIVED] = u->received;
  counters[FRAME_STAT_UPLINK_DROPPED] = u->dropped;
  counters[FRAME_STAT_UPLINK_FAILED_REQUESTS] = u->lost_replies;
  counters[FRAME_STAT_UPLINK_QUEUED_BYTES] =
      uplink_link_queued(&u->command) + uplink_link_queued(&u->subscriber);
  counters[FRAME_STAT_UPLINK_REMOTE_TOPICS] = table_count(u->interest);
}
