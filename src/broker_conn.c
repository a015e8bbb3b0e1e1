/* broker_conn: a connection, the broker's end of a process's channel.
 *
 * Reading: the poll callback reads what the socket holds (up to a budget
 * a turn, for fairness) into the input buffer, and the frame loop handles
 * every complete frame in order: the hello first, then broker_handle. A
 * frame over the broker's limit is refused and skipped, not fatal.
 *
 * Writing: output is queued (out, and the urgent lane for messages that
 * overtake it between two frames of out) and flushed once a loop turn, in
 * the prepare phase, or at once past BROKER_WRITE_EARLY bytes. Marks keep
 * each publisher's messages in order: a message may take the urgent lane
 * only when nothing of its publisher's, and no reply or hello, waits in
 * out.
 *
 * Flow control: a connection with more than the high water mark queued is
 * congested; a publish that would add to a congested reader's queue holds
 * its publisher (nothing more is read from it) until the reader is down to
 * half of it. The same holds a publisher for a late reader, whose queue
 * stood too long (broker_pace.c), until that queue is empty and the
 * publisher's penalty is over. A congested connection that takes nothing
 * for stall_ms, or whose queue reaches the limit, is cut off. A connection that fails,
 * closes or is cut off is only marked dead; broker_conn_reap frees it
 * after the current work. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker_internal.h"
#include "shm.h"
#include "uplink.h"

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
#define BROKER_SEND_BUFFER (32 * 1024)
#define BROKER_SMALL_SEND_LIMIT (16ull * 1024u * 1024u)
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

/* ---- output and flow control -------------------------------------------- */

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
    ssize_t n = fdpass_send(c->fd, at + done, len - done, &c->fds_out);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n == 0) break;   /* the socket is full */
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
    if (left == 0) left = frame_header_size(at + pos); /* whole frames follow the front */
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
    c->urgent_sent += (uint64_t)n;
    wrote |= n > 0;
  }
  if ((size_t)n == want && buffer_length(&c->out) > 0) {
    if ((n = broker_conn_send(c, buffer_begin(&c->out), buffer_length(&c->out))) < 0) return;
    broker_conn_out_sent(c, (size_t)n);
    wrote |= n > 0;
  }
  if (wrote) c->progress = uv_now(&b->loop);
  c->blocked = broker_conn_queued_bytes(c) > 0;
  if (!c->blocked) broker_pace_emptied(c);
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
  if (queued > 0) broker_pace_standing(c);
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

/* from's mark on to, or a spare one given to it (its ends cleared), or
 * NULL when every one is in use. */
static broker_mark *broker_conn_find_mark(broker_conn *to, const broker_conn *from) {
  broker_mark *spare = NULL;
  for (size_t i = 0; i < BROKER_MARKS; i++) {
    broker_mark *m = &to->marks[i];
    if (m->from == from) return m;
    if (!spare && m->end <= to->out_sent && m->urgent_end <= to->urgent_sent) spare = m;
  }
  if (spare) {
    spare->from = from;
    spare->end = 0;
    spare->urgent_end = 0;
    spare->urgent_bytes = 0;
  }
  return spare;
}

/* A message from `from` was queued on to's out: its next one to `to` must
 * not overtake it. */
void broker_conn_mark(broker_conn *to, const broker_conn *from) {
  uint64_t end = to->out_sent + buffer_length(&to->out);
  broker_mark *m = broker_conn_find_mark(to, from);
  if (m)
    m->end = end;
  else
    to->unmarked_end = end; /* too many publishers queued: none overtakes this */
}

void broker_conn_mark_urgent(broker_conn *to, const broker_conn *from, uint32_t size) {
  broker_mark *m = broker_conn_find_mark(to, from);
  /* No mark to spare: none was when the lane was granted either (see
   * broker_conn_may_overtake), unless this one took the last. */
  if (!m) return;
  if (m->urgent_end <= to->urgent_sent) m->urgent_bytes = 0;
  m->urgent_bytes += size;
  m->urgent_end = to->urgent_sent + buffer_length(&to->urgent);
}

int broker_conn_queued_from(const broker_conn *to, const broker_conn *from) {
  for (size_t i = 0; i < BROKER_MARKS; i++) {
    const broker_mark *m = &to->marks[i];
    if (m->from == from) return m->end > to->out_sent;
  }
  return 0;
}

/* Whether a message of size bytes from `from` may go to to's urgent lane:
 * out holds something to overtake, but nothing of from's, no reply or
 * hello, from's share of the lane is not used up, and it has room (at most half the high water mark
 * too, so a small queue limit is not reached through it). */
int broker_conn_may_overtake(const broker_conn *to, const broker_conn *from, uint32_t size) {
  uint64_t sent = to->out_sent;
  uint64_t room = broker_conn_high_water(to->broker) / 2;
  if (room > BROKER_URGENT_MAX) room = BROKER_URGENT_MAX;
  if (buffer_length(&to->out) == 0 || to->control_end > sent || to->unmarked_end > sent ||
      buffer_length(&to->urgent) + (uint64_t)size > room)
    return 0;
  int spare = 0;
  for (size_t i = 0; i < BROKER_MARKS; i++) {
    const broker_mark *m = &to->marks[i];
    int waiting = m->urgent_end > to->urgent_sent;
    if (m->from == from)
      return m->end <= sent && (!waiting || m->urgent_bytes + size <= BROKER_URGENT_SHARE);
    if (m->end <= sent && !waiting) spare = 1;
  }
  return spare; /* without a mark, its share could not be counted */
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

/* ---- input: reading and the frame loop ---------------------------------- */

void broker_conn_process(broker_conn *c) {
  broker *b = c->broker;
  unsigned handled = 0;
  c->held = 0;
  b->clock = uv_hrtime();
  if (broker_pace_paying(c)) c->held = 1;
  while (!c->dead && !c->held) {
    if ((++handled & 31u) == 0) b->clock = uv_hrtime(); /* how long queues stood, closely enough */
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
      frame_header h;
      frame_header_read(buffer_begin(&c->in), &h);
      if (!c->greeted || h.type == 0 || h.type > FRAME_TYPE_MAX) {
        broker_conn_protocol_error(c, "malformed frame");
        break;
      }
      char why[200];
      snprintf(why, sizeof(why),
               "a frame of %u bytes is over the broker's maximum of %u bytes (maxFrameSize)",
               (unsigned)h.size, (unsigned)b->options.max_frame_size);
      broker_conn_reply_text(c, h.request_id, FRAME_STATUS_BAD_REQUEST, why);
      b->counters[FRAME_STAT_FRAMES_IN]++;
      c->skip = h.size;
      broker_handoff_skip(c, h.type);
      continue;
    }
    if (rc != FRAME_OK) {
      broker_conn_protocol_error(c, "malformed frame");
      break;
    }
    if (c->greeted && f.type == FRAME_PUBLISH) {
      int waits = broker_topic_publish_waits(b, c, &f);
      if (waits == BROKER_WAIT_LATE) broker_pace_held(c);
      if (waits != BROKER_GO || broker_pace_released(c)) {
        c->held = 1;
        break;
      }
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
    int got_fds = 0, truncated = 0;
    ssize_t n = fdpass_recv(c->fd, at, room, &c->fds_in, &got_fds, &truncated);
    if (truncated || fdpass_count(&c->fds_in) > BROKER_HANDOFF_IN_MAX) {
      broker_conn_protocol_error(c, "descriptors sent without their hand-off frames");
      return;
    }
    if (n > 0) {
      buffer_commit(&c->in, (size_t)n);
      taken += (size_t)n;
      b->counters[FRAME_STAT_BYTES_IN] += (uint64_t)n;
      /* Descriptors came (their read ends with them, drained or not):
       * their frames are handled before more is read, so few wait at a
       * time (BROKER_HANDOFF_IN_MAX). */
      if (got_fds) {
        broker_conn_process(c);
        continue;
      }
      if ((size_t)n < room) break; /* the socket is drained: spare a read that would fail */
      if (c->read_chunk < BROKER_READ_CHUNK_MAX) c->read_chunk *= 2;
      /* Route what came before reading on: a publish that must wait holds
       * the connection, and what is not read yet stays in the process's
       * socket, behind the publisher's own flow control, rather than in
       * this buffer, where nothing bounds how long it stays. */
      broker_conn_process(c);
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

/* ---- life and death: adding, stall checks, reaping ------------------------ */

void broker_conn_kill(broker_conn *c) {
  if (c->dead) return;
  broker_conn_set_congested(c, 0);
  broker_pace_emptied(c);
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
  fdpass_free(&c->fds_in);
  fdpass_free(&c->fds_out);
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
  broker_topic_drop_dead(b);
  broker_bind_drop_dead(b);
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
      if (b->uplink) uplink_conn_gone(b->uplink, c);
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
  if (++b->last_number == 0) b->last_number = 1;
  c->number = b->last_number;
  buffer_init(&c->in);
  buffer_init(&c->out);
  buffer_init(&c->urgent);
  fdpass_init(&c->fds_in);
  fdpass_init(&c->fds_out);
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

/* ---- the flush, once a loop turn ---------------------------------------- */

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
