/* channel: the process side of the connection to the broker (see channel.h).
 *
 * Failures found while JavaScript is calling in (a write error during a
 * send, end of file during a blocking wait) only mark the channel closed;
 * the owner hears of it from the loop, in the prepare phase, so no callback
 * ever runs inside another call. */
#define _GNU_SOURCE
#include "channel.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buffer.h"
#include "channel_pool.h"

#define CHANNEL_READ_CHUNK (256u * 1024u)
#define CHANNEL_READ_BUDGET (4u * 1024u * 1024u)
#define CHANNEL_WRITE_EARLY (256u * 1024u)
#define CHANNEL_KEEP_BUFFER (4u * 1024u * 1024u)
#define CHANNEL_FLUSH_WAIT_MS 1000
/* Output a process may queue before a send waits for the broker to take
 * some: a publisher that outruns the cluster is slowed down, not allowed to
 * grow without bound. */
#define CHANNEL_HIGH_WATER (2u * 1024u * 1024u)
#define CHANNEL_HIGH_WATER_WAIT_MS 10000
#define CHANNEL_RING_WAIT_MS 20

struct channel {
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_prepare_t prepare;
  int fd;
  int poll_started;
  int poll_events;
  int open_handles;
  int ref;
  int greeted;
  int closed;
  int reported;
  int released;
  int input_waiting;   /* input read by a blocking call, not yet handed over */
  size_t lent;         /* bytes at the start of in lent out (channel_lend) */
  uint8_t *lent_block; /* the lent bytes' memory, once in has moved on */
  uint32_t max_frame_size;
  buffer in;
  buffer out;
  channel_events events;
  void *ctx;
  void (*released_done)(void *arg);
  void *released_arg;
  char reason[256];
  int frames_shared;      /* shared messages among the frames channel_frames found */
  int lent_shared;        /* ... among the frames lent out */
  channel_pool_side pool; /* the shared pool, once offered (channel_pool.h) */
};

static void channel_fail(channel *ch, const char *reason);
static void channel_queued(channel *ch, int flush_now);
int channel_flush_sync(channel *ch, int timeout_ms, const char **why);

/* Called before anything touches ch->in while bytes are lent: the unlent
 * rest moves to a buffer of its own, and the lent bytes' memory waits for
 * channel_unlend. Returns -1 when out of memory (nothing moved). */
static int channel_unshare(channel *ch) {
  if (ch->lent == 0 || ch->lent_block) return 0;
  buffer moved;
  buffer_init(&moved);
  size_t rest = buffer_length(&ch->in) - ch->lent;
  if (rest > 0) {
    uint8_t *at = buffer_reserve(&moved, rest);
    if (!at) return -1;
    memcpy(at, buffer_begin(&ch->in) + ch->lent, rest);
    buffer_commit(&moved, rest);
  }
  ch->lent_block = ch->in.data;
  ch->in = moved;
  return 0;
}

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
static int channel_write(channel *ch) {
  while (!ch->closed && ch->fd >= 0 && buffer_length(&ch->out) > 0) {
    ssize_t n = send(ch->fd, buffer_begin(&ch->out), buffer_length(&ch->out), MSG_NOSIGNAL);
    if (n > 0) {
      buffer_consume(&ch->out, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
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
static int channel_read(channel *ch, size_t budget, const char **why) {
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
    /* The pool's descriptor comes with the first bytes, after the hello. */
    ssize_t n = shm_recv(ch->fd, at, room, &ch->pool.fd);
    if (n > 0) {
      buffer_commit(&ch->in, (size_t)n);
      taken += (size_t)n;
      if ((size_t)n < room) return 0; /* drained: spare a read that would fail */
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

static void channel_on_poll(uv_poll_t *handle, int status, int events) {
  channel *ch = handle->data;
  if (status < 0) {
    channel_fail(ch, "error watching the channel to the master");
    return;
  }
  if (events & UV_WRITABLE) channel_write(ch);
  if (ch->closed || !(events & (UV_READABLE | UV_DISCONNECT))) return;
  const char *why = NULL;
  int rc = channel_read(ch, CHANNEL_READ_BUDGET, &why);
  if (buffer_length(&ch->in) > 0) ch->events.on_input(ch, ch->ctx);
  channel_tell_read(ch);
  if (rc != 0 && !ch->closed) channel_fail(ch, why);
}

static void channel_on_prepare(uv_prepare_t *prepare) {
  channel *ch = prepare->data;
  if (ch->input_waiting && !ch->closed) {
    /* Read while a blocking call waited: the socket may hold nothing more,
     * so no readable event would ever bring these frames in. */
    ch->input_waiting = 0;
    if (buffer_length(&ch->in) > 0) ch->events.on_input(ch, ch->ctx);
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
    buffer_free(&ch->in);
    buffer_free(&ch->out);
    free(ch->lent_block);
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
  ch->events = *events;
  ch->ctx = ctx;
  buffer_init(&ch->in);
  buffer_init(&ch->out);
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
  frame_encode(at, FRAME_HELLO, 0, 0, 0, NULL, 0, NULL, 0, hello, sizeof(hello));
  buffer_commit(&ch->out, size);
  ch->prepare.data = ch;
  ch->open_handles = 1;
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

/* The ring is full: the publisher outruns its subscribers, and waits for
 * the broker to free a slot (writing what it queued, so the broker has it,
 * and reading meanwhile), as it would wait for a full socket. After
 * CHANNEL_RING_WAIT_MS without a slot (a subscriber that stopped reading
 * holds them) it gives up, and payloads take the socket, with its flow
 * control, until a slot is free again. */
static uint8_t *channel_wait_ring(channel *ch, uint32_t len, uint32_t *slot, uint32_t *offset) {
  uint64_t deadline = uv_hrtime() + (uint64_t)CHANNEL_RING_WAIT_MS * 1000000u;
  for (;;) {
    if (ch->closed || ch->fd < 0 || channel_write(ch) != 0 || !channel_pool_region_ours(&ch->pool))
      return NULL;
    uint8_t *to = channel_pool_reserve_again(&ch->pool, len, slot, offset);
    if (to) return to;
    uint64_t now = uv_hrtime();
    if (now >= deadline) {
      channel_pool_stalled(&ch->pool);
      return NULL;
    }
    uint64_t left = deadline - now;
    channel_pool_sleep(&ch->pool, left < 1000000u ? left : 1000000u);
    const char *why = NULL;
    size_t before = buffer_length(&ch->in);
    if (channel_read(ch, CHANNEL_READ_BUDGET, &why) != 0) {
      channel_fail(ch, why);
      return NULL;
    }
    if (buffer_length(&ch->in) != before) ch->input_waiting = 1;
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
  uint32_t size = (uint32_t)(head_len + SHM_PUBLISH_DESC_SIZE);
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

/* Waits for fd to be ready for events until deadline (uv_hrtime units).
 * Returns the ready events, 0 on time out, -1 on error. */
static int channel_wait_fd(int fd, short events, uint64_t deadline) {
  for (;;) {
    uint64_t now = uv_hrtime();
    if (now >= deadline) return 0;
    uint64_t left_ms = (deadline - now + 999999) / 1000000;
    struct pollfd p = {fd, events, 0};
    int rc = poll(&p, 1, left_ms > 60000 ? 60000 : (int)left_ms);
    if (rc > 0) return p.revents ? p.revents : events;
    if (rc < 0 && errno != EINTR) return -1;
  }
}

int channel_flush_sync(channel *ch, int timeout_ms, const char **why) {
  uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  if (ch->fd < 0 && !ch->closed) {
    *why = "the channel to the master is not attached yet";
    return -1;
  }
  for (;;) {
    if (channel_write(ch) != 0 || ch->closed) {
      *why = ch->reason;
      return -1;
    }
    if (buffer_length(&ch->out) == 0) return 0;
    /* Keep reading while waiting: the broker must never find this process
     * not reading because it is busy writing. */
    int rc = channel_wait_fd(ch->fd, POLLOUT | POLLIN, deadline);
    if (rc == 0) {
      *why = "timed out writing to the master";
      return -1;
    }
    if (rc < 0) {
      channel_fail(ch, "error waiting on the channel to the master");
      *why = ch->reason;
      return -1;
    }
    if (rc & (POLLIN | POLLHUP | POLLERR)) {
      const char *read_why = NULL;
      int read_rc = channel_read(ch, CHANNEL_READ_BUDGET, &read_why);
      ch->input_waiting = 1;
      if (read_rc != 0) {
        channel_fail(ch, read_why);
        *why = ch->reason;
        return -1;
      }
    }
  }
}

int channel_wait_reply(channel *ch, uint32_t request_id, int timeout_ms, uint8_t *status,
                       uint8_t **payload, uint32_t *payload_len, const char **why) {
  uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  if (channel_flush_sync(ch, timeout_ms, why) != 0) return -1;
  if (channel_unshare(ch) != 0) {
    *why = "out of memory reading a reply from the master";
    return -1;
  }
  size_t offset = 0;
  for (;;) {
    frame f;
    int rc;
    while ((rc = frame_decode(buffer_begin(&ch->in) + offset, buffer_length(&ch->in) - offset,
                              ch->max_frame_size, &f)) == FRAME_OK) {
      if (f.type == FRAME_REPLY && f.request_id == request_id) {
        *status = f.status;
        *payload = NULL;
        *payload_len = f.payload_len;
        if (f.payload_len) {
          *payload = malloc(f.payload_len);
          if (!*payload) {
            *why = "out of memory reading a reply from the master";
            return -1;
          }
          memcpy(*payload, f.payload, f.payload_len);
        }
        buffer_remove(&ch->in, offset, f.size); /* the rest stays for channel_frames */
        return 0;
      }
      offset += f.size;
    }
    if (rc != FRAME_INCOMPLETE) {
      channel_fail(ch, "the master sent a malformed frame");
      *why = ch->reason;
      return -1;
    }
    int ready = channel_wait_fd(ch->fd, POLLIN, deadline);
    if (ready == 0) {
      *why = "timed out waiting for the master's answer (is its broker running?)";
      return -1;
    }
    const char *read_why = NULL;
    ch->input_waiting = 1;
    if (ready < 0 || channel_read(ch, SIZE_MAX, &read_why) != 0) {
      channel_fail(ch, read_why ? read_why : "error waiting on the channel to the master");
      *why = ch->reason;
      return -1;
    }
  }
}

int channel_frames(channel *ch, const uint8_t **data, size_t *len) {
  size_t offset = 0;
  int count = 0;
  ch->frames_shared = 0;
  if (channel_unshare(ch) != 0) {
    channel_fail(ch, "out of memory reading from the master");
    return -1;
  }
  for (;;) {
    frame f;
    int rc = frame_decode(buffer_begin(&ch->in) + offset, buffer_length(&ch->in) - offset,
                          ch->max_frame_size, &f);
    if (rc == FRAME_INCOMPLETE) break;
    if (rc != FRAME_OK) {
      channel_fail(ch, rc == FRAME_TOO_LARGE ? "the master sent a frame over the maximum size"
                                             : "the master sent a malformed frame");
      return -1;
    }
    if (!ch->greeted) {
      uint32_t version = 0;
      uint32_t broker_max = 0;
      if (offset != 0 || f.type != FRAME_HELLO ||
          frame_hello_parse(f.payload, f.payload_len, &version, &broker_max) != 0 ||
          version != FRAME_VERSION) {
        channel_fail(ch, "the master's broker speaks another protocol version (upgrade "
                         "socket.io-cluster-store so master and workers use the same one)");
        return -1;
      }
      ch->greeted = 1;
      if (broker_max >= FRAME_MIN_MAX_SIZE && broker_max < ch->max_frame_size)
        ch->max_frame_size = broker_max;
      buffer_consume(&ch->in, f.size);
      continue;
    }
    if (f.type == FRAME_SHARED) {
      channel_pool_take_offer(&ch->pool, &f);
      buffer_remove(&ch->in, offset, f.size);
      continue;
    }
    if (f.type == FRAME_MESSAGE && (f.flags & FRAME_FLAG_SHARED)) {
      if (!channel_pool_message_valid(&ch->pool, &f)) {
        channel_fail(ch, "the master sent a malformed shared message");
        return -1;
      }
      ch->frames_shared++;
    }
    if (f.type == FRAME_REPLY && f.request_id == 0) {
      /* The broker says why it is about to hang up. */
      snprintf(ch->reason, sizeof(ch->reason), "the master's broker closed the channel: %.*s",
               (int)(f.payload_len > 200 ? 200 : f.payload_len), (const char *)f.payload);
      buffer_remove(&ch->in, offset, f.size);
      continue;
    }
    offset += f.size;
    count++;
  }
  *data = buffer_begin(&ch->in);
  *len = offset;
  return count;
}

void channel_consume(channel *ch, size_t len) {
  if (channel_unshare(ch) != 0) {
    channel_fail(ch, "out of memory reading from the master");
    return;
  }
  buffer_consume(&ch->in, len);
  buffer_trim(&ch->in, CHANNEL_KEEP_BUFFER);
  channel_pool_mark_read(&ch->pool, (uint64_t)ch->frames_shared);
  ch->frames_shared = 0;
}

int channel_lend(channel *ch, const uint8_t **data, size_t *len) {
  if (ch->lent > 0) return 0; /* one loan at a time: a nested borrower waits */
  int count = channel_frames(ch, data, len);
  if (count > 0) {
    ch->lent = *len;
    ch->lent_shared = ch->frames_shared;
  }
  return count;
}

void channel_unlend(channel *ch, enum channel_unlend_how how) {
  if (ch->lent == 0) return;
  if (how == CHANNEL_UNLEND_UNREAD && !ch->lent_block) {
    ch->lent = 0;
    return;
  }
  channel_pool_mark_read(&ch->pool, (uint64_t)ch->lent_shared);
  ch->lent_shared = 0;
  if (how == CHANNEL_UNLEND_ABANDON) {
    /* Move the rest out and let the old memory go unreferenced: a leak,
     * for a case that should not happen, rather than a reuse. */
    if (channel_unshare(ch) != 0) {
      ch->in.data = NULL; /* cannot even move: give up the input with it */
      buffer_init(&ch->in);
      channel_fail(ch, "out of memory reading from the master");
    }
    ch->lent_block = NULL;
    ch->lent = 0;
    return;
  }
  if (ch->lent_block) {
    free(ch->lent_block); /* in moved on: the lent bytes are not in it */
    ch->lent_block = NULL;
    ch->lent = 0;
    return;
  }
  size_t n = ch->lent;
  ch->lent = 0;
  buffer_consume(&ch->in, n);
  buffer_trim(&ch->in, CHANNEL_KEEP_BUFFER);
}

shm_map *channel_pool(const channel *ch) {
  return ch->pool.map;
}

int channel_pool_ready(channel *ch) {
  if (!ch->pool.map || ch->pool.reading) return 0;
  uint8_t pid[4];
  frame_store_u32(pid, (uint32_t)getpid());
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
  if (ch->fd >= 0) {
    uv_poll_stop(&ch->poll);
    uv_close((uv_handle_t *)&ch->poll, channel_on_handle_closed);
    close(ch->fd);
  }
  buffer_free(&ch->out);
}

static void channel_fail(channel *ch, const char *reason) {
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
}
