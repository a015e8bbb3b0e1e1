/* channel: the socket end of a process's connection to the broker (see
 * channel.h): the hello, reading and writing on node's loop, the output
 * queue and its flushes, sending frames (a PUBLISH through the pool when it
 * fits), and closing. The blocking waits are in channel_wait.c, taking and
 * lending the input in channel_input.c, the pool's side in channel_pool.c;
 * what they share is in channel_internal.h.
 *
 * Failures found while JavaScript is calling in (a write error during a
 * send, end of file during a blocking wait) only mark the channel closed;
 * the owner hears of it from the loop, in the prepare phase, so no callback
 * ever runs inside another call. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel_internal.h"

static void channel_queued(channel *ch, int flush_now);
static void channel_on_idle(uv_idle_t *idle);

/* Why the channel broke: what the broker wrote in this process's region
 * before cutting it off, when it did, else the caller's general reason. */
static const char *channel_broken(const channel *ch, const char *otherwise) {
  const char *cut = channel_pool_cut_reason(&ch->pool);
  return cut ? cut : otherwise;
}

/* The channel broke writing to the master. */
static void channel_fail_broken(channel *ch) {
  channel_fail(ch, channel_broken(ch, "the channel to the master broke (the master exited or cut "
                                      "this process off)"));
}

static void channel_set_events(channel *ch, int events) {
  if (ch->closed || !ch->poll_started || events == ch->poll_events) return;
  if (uv_poll_start(&ch->poll, events, ch->poll.poll_cb) != 0) {
    channel_fail(ch, "could not watch the channel to the master");
    return;
  }
  ch->poll_events = events;
}

/* Non-blocking write of everything queued; 0 when all went out or the rest
 * waits for the socket, -1 when the channel failed. */
int channel_write(channel *ch) {
  while (!ch->closed && ch->fd >= 0 && buffer_length(&ch->out) > 0) {
    ssize_t n = fdpass_send(ch->fd, buffer_begin(&ch->out), buffer_length(&ch->out), &ch->fds_out);
    if (n > 0) {
      buffer_consume(&ch->out, (size_t)n);
      continue;
    }
    if (n == 0) {
      channel_set_events(ch, UV_READABLE | UV_WRITABLE | UV_DISCONNECT);
      return 0;
    }
    channel_fail_broken(ch);
    return -1;
  }
  if (ch->closed) return -1;
  if (ch->fd >= 0) {
    buffer_trim(&ch->out, CHANNEL_KEEP_BUFFER);
    channel_set_events(ch, UV_READABLE | UV_DISCONNECT);
  }
  return 0;
}

/* Reads what the socket holds, up to budget bytes. Returns 0, or -1 at end
 * of file or on error (the reason is recorded, the channel not yet closed,
 * so frames read before the end can still be taken). */
int channel_read(channel *ch, size_t budget, const char **why) {
  size_t taken = 0;
  if (channel_unshare(ch) != 0) {
    *why = "out of memory reading from the master";
    return -1;
  }
  while (taken < budget) {
    uint8_t *at = buffer_reserve(&ch->in, CHANNEL_READ_CHUNK);
    if (!at) {
      *why = "out of memory reading from the master";
      return -1;
    }
    size_t room = buffer_spare(&ch->in);
    if (room > budget - taken) room = budget - taken;
    /* Descriptors (the pool's, after the hello; hand-offs') wait in
     * fds_in for their frames (channel_input.c). */
    int got_fds = 0, truncated = 0;
    ssize_t n = fdpass_recv(ch->fd, at, room, &ch->fds_in, &got_fds, &truncated);
    if (truncated) {
      *why = "the master sent more descriptors than this process could take";
      return -1;
    }
    if (n > 0) {
      buffer_commit(&ch->in, (size_t)n);
      taken += (size_t)n;
      /* A read that brought descriptors ends with them, drained or not. */
      if ((size_t)n < room && !got_fds) return 0; /* drained: spare a read that would fail */
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    *why = channel_broken(ch, "the master closed the channel (it exited, or cut this process off "
                              "for not reading)");
    return -1;
  }
  return 0;
}

/* Tells the broker how many shared messages this process has read (the
 * owner was handed them, and its call returned), so their slots can be
 * written over. */
static void channel_tell_read(channel *ch) {
  channel_pool_tell_read(&ch->pool, ch->closed, ch->lent > 0, &ch->out);
}

void channel_keep_turning(channel *ch) {
  int on = ch->more && !ch->closed;
  if (on == uv_is_active((uv_handle_t *)&ch->idle)) return;
  if (on)
    uv_idle_start(&ch->idle, channel_on_idle);
  else
    uv_idle_stop(&ch->idle);
}

/* Hands the owner what it has not had yet, then turns the loop on as long
 * as some is left (slices: channel_lend_slice). */
static void channel_hand_over(channel *ch) {
  if (buffer_length(&ch->in) > 0) ch->events.on_input(ch, ch->ctx);
  channel_keep_turning(ch);
}

/* The idle phase comes before the prepare phase, where output is written:
 * what the last slice and the callbacks since published (a reply to a
 * quiet message) goes out now, not after one more slice. */
static void channel_on_idle(uv_idle_t *idle) {
  channel *ch = idle->data;
  channel_tell_read(ch);
  if (!ch->closed && buffer_length(&ch->out) > 0 && !(ch->poll_events & UV_WRITABLE))
    channel_write(ch);
  if (!ch->closed) channel_hand_over(ch);
  channel_tell_read(ch);
  channel_keep_turning(ch);
}

static void channel_on_poll(uv_poll_t *handle, int status, int events) {
  channel *ch = handle->data;
  if (status < 0) {
    channel_fail(ch, "error watching the channel to the master");
    return;
  }
  if (events & UV_WRITABLE) channel_write(ch);
  if (ch->closed || !(events & (UV_READABLE | UV_DISCONNECT))) return;
  const char *why = NULL;
  int rc = 0;
  /* What is held is bounded: the rest waits in the socket (where the
   * broker's flow control sees it, and a quiet publisher's message can
   * still overtake it), unless a large frame is still coming in. */
  size_t held = buffer_length(&ch->in);
  if (held < CHANNEL_SLICE_INPUT)
    rc = channel_read(ch, CHANNEL_SLICE_INPUT - held, &why);
  else if (!ch->more)
    rc = channel_read(ch, CHANNEL_READ_BUDGET, &why);
  channel_hand_over(ch);
  channel_tell_read(ch);
  if (rc != 0 && !ch->closed) channel_fail(ch, why);
}

static void channel_on_prepare(uv_prepare_t *prepare) {
  channel *ch = prepare->data;
  if (ch->input_waiting && !ch->closed) {
    /* Read while a blocking call waited: the socket may hold nothing more,
     * so no readable event would ever bring these frames in. */
    ch->input_waiting = 0;
    channel_hand_over(ch);
  }
  channel_tell_read(ch);
  if (!ch->closed && buffer_length(&ch->out) > 0 && !(ch->poll_events & UV_WRITABLE))
    channel_write(ch);
  if (ch->closed && !ch->reported) {
    ch->reported = 1;
    uv_unref((uv_handle_t *)&ch->prepare);
    ch->events.on_close(ch, ch->reason, ch->ctx);
  }
}

static void channel_on_handle_closed(uv_handle_t *handle) {
  channel *ch = handle->data;
  if (--ch->open_handles == 0 && ch->released) {
    void (*done)(void *arg) = ch->released_done;
    void *arg = ch->released_arg;
    channel_handoff_free(ch);
    buffer_free(&ch->in);
    buffer_free(&ch->out);
    free(ch->lent_block);
    free(ch->picked);
    channel_pool_free(&ch->pool);
    free(ch);
    if (done) done(arg);
  }
}

channel *channel_create(uv_loop_t *loop, uint32_t max_frame_size, const channel_events *events,
                        void *ctx) {
  channel *ch = calloc(1, sizeof(*ch));
  if (!ch) return NULL;
  ch->loop = loop;
  ch->fd = -1;
  channel_pool_init(&ch->pool);
  ch->ref = 1;
  ch->max_frame_size = max_frame_size;
  ch->ring_wait_ms = CHANNEL_RING_WAIT_MS;
  ch->events = *events;
  ch->ctx = ctx;
  buffer_init(&ch->in);
  buffer_init(&ch->out);
  fdpass_init(&ch->fds_in);
  fdpass_init(&ch->fds_out);
  /* The hello goes first, ahead of anything queued before the socket. */
  uint8_t hello[FRAME_HELLO_PAYLOAD_SIZE];
  frame_hello_write(hello, max_frame_size);
  uint32_t size = frame_size(0, 0, sizeof(hello));
  uint8_t *at = buffer_reserve(&ch->out, size);
  if (!at || uv_prepare_init(loop, &ch->prepare) != 0) {
    buffer_free(&ch->out);
    free(ch);
    return NULL;
  }
  if (uv_idle_init(loop, &ch->idle) != 0) {
    /* The prepare handle is initialized: it must be closed, not freed. */
    ch->prepare.data = ch;
    ch->released = 1;
    ch->open_handles = 1;
    uv_close((uv_handle_t *)&ch->prepare, channel_on_handle_closed);
    return NULL;
  }
  frame_encode(at, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  buffer_commit(&ch->out, size);
  ch->prepare.data = ch;
  ch->idle.data = ch;
  ch->open_handles = 2;
  uv_prepare_start(&ch->prepare, channel_on_prepare);
  uv_unref((uv_handle_t *)&ch->prepare);
  return ch;
}

int channel_attach(channel *ch, int fd, const char **why) {
  if (ch->closed || ch->fd >= 0) {
    close(fd);
    *why = ch->closed ? ch->reason : "the channel is already attached";
    return -1;
  }
  if (uv_poll_init(ch->loop, &ch->poll, fd) != 0) {
    close(fd);
    *why = "could not watch the channel's socket";
    return -1;
  }
  ch->fd = fd;
  ch->poll.data = ch;
  ch->open_handles++;
  if (uv_poll_start(&ch->poll, UV_READABLE | UV_DISCONNECT, channel_on_poll) != 0) {
    channel_fail(ch, "could not watch the channel's socket");
    *why = ch->reason;
    return -1;
  }
  ch->poll_started = 1;
  ch->poll_events = UV_READABLE | UV_DISCONNECT;
  if (!ch->ref) uv_unref((uv_handle_t *)&ch->poll);
  if (channel_write(ch) != 0) {
    *why = ch->reason;
    return -1;
  }
  return 0;
}

uint32_t channel_max_frame_size(const channel *ch) {
  return ch->max_frame_size;
}

uint8_t *channel_reserve(channel *ch, uint32_t size) {
  if (ch->closed) {
    errno = EPIPE;
    return NULL;
  }
  if (size == 0 || size > ch->max_frame_size) {
    errno = E2BIG;
    return NULL;
  }
  /* One spare byte: string encoders write a terminating NUL after a field. */
  uint8_t *at = buffer_reserve(&ch->out, (size_t)size + 1);
  if (!at) errno = ENOMEM;
  return at;
}

void channel_commit(channel *ch, uint32_t size, int flush_now) {
  buffer_commit(&ch->out, size);
  channel_queued(ch, flush_now);
}

/* After output was added to the queue: write it now, or wait for room,
 * as the queue's length and flush_now say. */
static void channel_queued(channel *ch, int flush_now) {
  if (flush_now) {
    /* The caller must know the frame left before it goes on (a response
     * that lets a client come back through another worker follows): wait
     * for a full socket, briefly, rather than leave it queued. */
    const char *why = NULL;
    if (ch->fd >= 0 && !ch->closed) (void)channel_flush_sync(ch, CHANNEL_FLUSH_WAIT_MS, &why);
  } else if (buffer_length(&ch->out) >= CHANNEL_HIGH_WATER) {
    const char *why = NULL;
    if (ch->fd >= 0 && !ch->closed) (void)channel_flush_sync(ch, CHANNEL_HIGH_WATER_WAIT_MS, &why);
  } else if (buffer_length(&ch->out) >= CHANNEL_WRITE_EARLY && !(ch->poll_events & UV_WRITABLE)) {
    channel_write(ch);
  }
}

/* A PUBLISH whose payload fits in the ring goes through the pool: the
 * payload is written there, and only the header, the names and a
 * descriptor go through the socket. 1 when sent so, 0 when it must take
 * the socket (no pool, no room in the ring now, not a publish, or the
 * region is no longer this process's to write: the socket then fails). */
static int channel_send_shared(channel *ch, const uint8_t *head, size_t head_len,
                               const uint8_t *payload, size_t payload_len, int flush_now) {
  if (ch->closed ||
      !channel_pool_publish_fits(&ch->pool, head, head_len, payload_len, ch->max_frame_size))
    return 0;
  uint32_t size = (uint32_t)(head_len + FRAME_PUBLISH_DESC_SIZE);
  uint32_t slot, offset;
  uint8_t *to = channel_pool_publish_reserve(&ch->pool, (uint32_t)payload_len, &slot, &offset);
  if (!to && channel_pool_may_wait(&ch->pool, ch->lent > 0 && ch->lent_shared > 0))
    to = channel_wait_ring(ch, (uint32_t)payload_len, &slot, &offset);
  if (!to) return 0;
  uint8_t *at = channel_reserve(ch, size);
  if (!at) return 0;
  channel_pool_publish_commit(&ch->pool, at, head, head_len, to, payload, payload_len, slot,
                              offset);
  channel_commit(ch, size, flush_now);
  return 1;
}

int channel_send_parts(channel *ch, const uint8_t *head, size_t head_len, const uint8_t *payload,
                       size_t payload_len, int flush_now) {
  if (ch->closed) {
    errno = EPIPE;
    return -1;
  }
  size_t size = head_len + payload_len;
  if (size > ch->max_frame_size) {
    errno = E2BIG;
    return -1;
  }
  if (payload_len >= BUFFER_PARTS_MIN &&
      channel_send_shared(ch, head, head_len, payload, payload_len, flush_now))
    return 0;
  ssize_t sent = 0;
  if (ch->fd >= 0 && payload_len >= BUFFER_PARTS_MIN && buffer_length(&ch->out) == 0) {
    sent = buffer_send_parts(ch->fd, head, head_len, payload, payload_len);
    if (sent < 0) {
      /* As for a queued frame whose write fails: the owner hears of it
       * from the loop. */
      channel_fail_broken(ch);
      return 0;
    }
    if ((size_t)sent == size) return 0;
  }
  if (buffer_append_parts(&ch->out, head, head_len, payload, payload_len, (size_t)sent) != 0) {
    if (sent == 0) {
      errno = ENOMEM;
      return -1;
    }
    /* Half a frame went out and the rest has nowhere to go: the stream
     * cannot go on. */
    channel_fail(ch, "out of memory writing to the master");
    return 0;
  }
  channel_queued(ch, flush_now);
  return 0;
}

shm_map *channel_pool(const channel *ch) {
  return ch->pool.map;
}

int channel_pool_ready(channel *ch) {
  if (!ch->pool.map || ch->pool.reading) return 0;
  uint8_t pid[FRAME_SHARED_READY_SIZE];
  frame_shared_ready_write(pid, (uint32_t)getpid());
  uint32_t size = frame_size(0, 0, sizeof(pid));
  uint8_t *at = channel_reserve(ch, size);
  if (!at) return -1;
  frame_encode(at, FRAME_SHARED, 0, 0, 0, NULL, 0, NULL, 0, pid, sizeof(pid));
  ch->pool.reading = 1;
  channel_commit(ch, size, 0);
  return 0;
}

void channel_set_ref(channel *ch, int ref) {
  ch->ref = ref;
  /* Frames waiting to be handed over keep the loop alive as the socket
   * would. */
  if (ref)
    uv_ref((uv_handle_t *)&ch->idle);
  else
    uv_unref((uv_handle_t *)&ch->idle);
  if (ch->fd < 0 || ch->closed) return;
  if (ref)
    uv_ref((uv_handle_t *)&ch->poll);
  else
    uv_unref((uv_handle_t *)&ch->poll);
}

int channel_is_closed(const channel *ch) {
  return ch->closed;
}
const char *channel_close_reason(const channel *ch) {
  return ch->reason;
}

static void channel_shut(channel *ch, const char *reason) {
  if (ch->closed) return;
  ch->closed = 1;
  /* Until the owner has heard of it, the pending report keeps the loop
   * alive: with the socket gone, nothing else may. */
  if (!ch->reported) uv_ref((uv_handle_t *)&ch->prepare);
  if (ch->reason[0] == '\0') snprintf(ch->reason, sizeof(ch->reason), "%s", reason);
  uv_idle_stop(&ch->idle);
  if (ch->fd >= 0) {
    uv_poll_stop(&ch->poll);
    uv_close((uv_handle_t *)&ch->poll, channel_on_handle_closed);
    close(ch->fd);
  }
  buffer_free(&ch->out);
  fdpass_free(&ch->fds_out);
}

void channel_fail(channel *ch, const char *reason) {
  channel_shut(ch, reason);
}

void channel_close(channel *ch, const char *reason) {
  if (!ch->closed) ch->reported = 1; /* the owner asked for it: no callback */
  channel_shut(ch, reason);
}

void channel_release(channel *ch, void (*done)(void *arg), void *arg) {
  channel_close(ch, "released");
  ch->released = 1;
  ch->released_done = done;
  ch->released_arg = arg;
  uv_close((uv_handle_t *)&ch->prepare, channel_on_handle_closed);
  uv_close((uv_handle_t *)&ch->idle, channel_on_handle_closed);
}
