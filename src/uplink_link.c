/* uplink_link: one connection to Redis (see uplink_internal.h).
 *
 * A non-blocking TCP socket watched by a poll handle on the broker's loop,
 * like a channel's connection: commands are encoded straight into the
 * output queue and written once a loop turn (uplink_link_flush), or as
 * soon as the socket has room again; replies are read in large chunks and
 * scanned (resp.h) as they arrive, each complete one handed to
 * uplink_on_reply. Redis answers a connection's commands in order, so the
 * replies awaited are a ring of entries, one a command. The socket and its
 * handle are allocated per connection and freed by the handle's close
 * callback, so a link can connect again at once after closing. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uplink_internal.h"

#define UPLINK_READ_CHUNK (64u * 1024u)
#define UPLINK_KEEP_BUFFER (1024u * 1024u)

struct uplink_socket {
  uv_poll_t poll;
  int fd;
  uplink_link *link; /* NULL once closed */
};

static void uplink_link_on_poll(uv_poll_t *handle, int status, int events);

void uplink_link_init(uplink_link *link, uplink *owner, const char *name) {
  memset(link, 0, sizeof(*link));
  link->owner = owner;
  link->name = name;
  buffer_init(&link->in);
  buffer_init(&link->out);
}

size_t uplink_link_queued(const uplink_link *link) {
  return buffer_length(&link->out);
}

static void uplink_link_watch(uplink_link *link) {
  uplink_socket *s = link->sock;
  if (!s) return;
  int events = UV_READABLE | UV_DISCONNECT;
  if (link->state == UPLINK_LINK_CONNECTING || link->blocked) events |= UV_WRITABLE;
  if (uv_poll_start(&s->poll, events, uplink_link_on_poll) != 0)
    uplink_fail(link->owner, UPLINK_FAULT_LOST, "the broker could not watch its Redis socket");
}

int uplink_link_open(uplink_link *link, const struct sockaddr *addr, socklen_t len, char *text,
                     size_t text_len) {
  uplink *u = link->owner;
  /* Another machine may take larger frames than this one (its messages
   * over this one's limit are dropped one by one, uplink_topic.c): the
   * bulk limit is a bound on memory, not this machine's frame size. */
  size_t bulk = (size_t)u->broker->options.max_frame_size + UPLINK_BATCH_MAX + 64u;
  resp_limits limits = {bulk > UPLINK_BULK_MIN ? bulk : UPLINK_BULK_MIN, 2, 64};
  resp_scanner_init(&link->scanner, &limits);
  uplink_socket *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(text, text_len, "out of memory");
    return -1;
  }
  s->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    snprintf(text, text_len, "socket: %s", strerror(errno));
    free(s);
    return -1;
  }
  int rc;
  do
    rc = connect(s->fd, addr, len);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) {
    snprintf(text, text_len, "%s", strerror(errno));
    close(s->fd);
    free(s);
    return -1;
  }
  if (uv_poll_init(&u->broker->loop, &s->poll, s->fd) != 0) {
    snprintf(text, text_len, "could not watch the socket");
    close(s->fd);
    free(s);
    return -1;
  }
  s->poll.data = s;
  s->link = link;
  link->sock = s;
  link->state = UPLINK_LINK_CONNECTING;
  link->blocked = 0;
  uplink_link_watch(link);
  return 0;
}

static void uplink_socket_closed(uv_handle_t *handle) {
  uplink_socket *s = handle->data;
  close(s->fd);
  free(s);
}

void uplink_link_close(uplink_link *link) {
  uplink_socket *s = link->sock;
  if (s) {
    s->link = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, uplink_socket_closed);
    link->sock = NULL;
  }
  link->state = UPLINK_LINK_CLOSED;
  link->blocked = 0;
  link->handshake_left = 0;
  link->waiting_since = 0;
  buffer_consume(&link->in, buffer_length(&link->in));
  buffer_consume(&link->out, buffer_length(&link->out));
  uplink_entry e;
  while (uplink_link_pop(link, &e) == 0)
    uplink_entry_failed(link->owner, &e);
  link->waiting_since = 0;
}

void uplink_link_free(uplink_link *link) {
  uplink_link_close(link);
  buffer_free(&link->in);
  buffer_free(&link->out);
  free(link->entries);
  link->entries = NULL;
}

/* ---- the replies awaited ---------------------------------------------------- */

static int uplink_link_push(uplink_link *link, const uplink_entry *entry) {
  if (link->count == link->capacity) {
    if (link->capacity >= UPLINK_ENTRIES_MAX) return -1;
    size_t capacity = link->capacity ? link->capacity * 2 : 64;
    uplink_entry *grown = malloc(capacity * sizeof(*grown));
    if (!grown) return -1;
    for (size_t i = 0; i < link->count; i++)
      grown[i] = link->entries[(link->head + i) % link->capacity];
    free(link->entries);
    link->entries = grown;
    link->capacity = capacity;
    link->head = 0;
  }
  link->entries[(link->head + link->count) % link->capacity] = *entry;
  if (link->count++ == 0) {
    uv_update_time(&link->owner->broker->loop);
    link->waiting_since = uv_now(&link->owner->broker->loop);
  }
  return 0;
}

int uplink_link_pop(uplink_link *link, uplink_entry *out) {
  if (link->count == 0) return -1;
  *out = link->entries[link->head];
  link->head = (link->head + 1) % link->capacity;
  link->count--;
  if (link->count == 0) link->waiting_since = 0;
  return 0;
}

int uplink_link_queue(uplink_link *link, const resp_arg *args, size_t argc,
                      const uplink_entry *entry) {
  if (link->state == UPLINK_LINK_CLOSED) return -1;
  size_t size = resp_command_size(args, argc);
  if (buffer_length(&link->out) + size > UPLINK_QUEUE_LIMIT) return -1;
  uint8_t *at = buffer_reserve(&link->out, size);
  if (!at) return -1;
  if (uplink_link_push(link, entry) != 0) return -1;
  buffer_commit(&link->out, resp_command_write(at, args, argc));
  return 0;
}

/* ---- writing and reading ------------------------------------------------------ */

void uplink_link_flush(uplink_link *link) {
  uplink_socket *s = link->sock;
  if (!s || link->state == UPLINK_LINK_CONNECTING || link->blocked) return;
  while (buffer_length(&link->out) > 0) {
    ssize_t n = send(s->fd, buffer_begin(&link->out), buffer_length(&link->out), MSG_NOSIGNAL);
    if (n > 0) {
      buffer_consume(&link->out, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      link->blocked = 1;
      uplink_link_watch(link);
      return;
    }
    char text[200];
    snprintf(text, sizeof(text), "writing to Redis failed: %s",
             n < 0 ? strerror(errno) : "nothing written");
    uplink_fail(link->owner, UPLINK_FAULT_LOST, text);
    return;
  }
  buffer_trim(&link->out, UPLINK_KEEP_BUFFER);
}

/* The connect finished: its outcome. */
static void uplink_link_connected(uplink_link *link) {
  uplink_socket *s = link->sock;
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  if (error != 0) {
    char text[200];
    snprintf(text, sizeof(text), "cannot connect: %s", strerror(error));
    uplink_fail(link->owner, UPLINK_FAULT_UNREACHABLE, text);
    return;
  }
  int one = 1;
  (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  link->state = UPLINK_LINK_HANDSHAKE;
  uplink_link_watch(link);
  uplink_link_flush(link);
}

/* Scans what arrived, handing each complete reply on. */
static void uplink_link_scan(uplink_link *link, uplink_socket *s) {
  size_t done = 0;
  while (link->sock == s) {
    size_t n = 0;
    int rc = resp_scan(&link->scanner, buffer_begin(&link->in) + done,
                       buffer_length(&link->in) - done, &n);
    if (rc == RESP_INCOMPLETE) break;
    if (rc != RESP_OK) {
      char text[200];
      snprintf(text, sizeof(text), "what answers is not Redis (RESP2): %s", resp_strerror(rc));
      uplink_fail(link->owner, UPLINK_FAULT_NOT_REDIS, text);
      return;
    }
    uplink_on_reply(link->owner, link, buffer_begin(&link->in) + done, n);
    done += n;
  }
  if (link->sock != s) return; /* closed meanwhile: its input is gone */
  buffer_consume(&link->in, done);
  buffer_trim(&link->in, UPLINK_KEEP_BUFFER);
}

/* Reads what Redis sent, handing each reply on. quiet: the connection is
 * known to be broken already; its end or error is not reported again. */
static void uplink_link_read(uplink_link *link, int quiet) {
  uplink_socket *s = link->sock;
  for (;;) {
    uint8_t *at = buffer_reserve(&link->in, UPLINK_READ_CHUNK);
    if (!at) {
      uplink_fail(link->owner, UPLINK_FAULT_LOST, "out of memory reading from Redis");
      return;
    }
    ssize_t n = read(s->fd, at, buffer_spare(&link->in));
    if (n > 0) {
      /* Redis is there (a reply, part of one, or a push ahead of one). */
      if (link->count) link->waiting_since = uv_now(&link->owner->broker->loop);
      buffer_commit(&link->in, (size_t)n);
      uplink_link_scan(link, s);
      if (link->sock != s) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (quiet) return;
    char text[200];
    if (n == 0 && link->state != UPLINK_LINK_READY)
      snprintf(text, sizeof(text),
               "the server closed the connection before answering "
               "(is it Redis, and does it accept this client?)");
    else
      snprintf(text, sizeof(text), "the connection to Redis %s",
               n == 0 ? "was closed" : strerror(errno));
    uplink_fail(link->owner,
                n == 0 && link->state != UPLINK_LINK_READY ? UPLINK_FAULT_NOT_REDIS
                                                           : UPLINK_FAULT_LOST,
                text);
    return;
  }
}

void uplink_link_read_waiting(uplink_link *link) {
  if (link->sock && link->state != UPLINK_LINK_CONNECTING) uplink_link_read(link, 0);
}

void uplink_link_drain(uplink_link *link) {
  if (link->sock && link->state != UPLINK_LINK_CONNECTING) uplink_link_read(link, 1);
}

static void uplink_link_on_poll(uv_poll_t *handle, int status, int events) {
  uplink_socket *s = handle->data;
  uplink_link *link = s->link;
  if (!link) return;
  if (status < 0 && link->state == UPLINK_LINK_CONNECTING) {
    uplink_link_connected(link); /* SO_ERROR says why */
    return;
  }
  if (status < 0) {
    uplink_fail(link->owner, UPLINK_FAULT_LOST, "the connection to Redis broke");
    return;
  }
  if (link->state == UPLINK_LINK_CONNECTING) {
    if (events & (UV_WRITABLE | UV_DISCONNECT | UV_READABLE)) uplink_link_connected(link);
    return;
  }
  if (events & UV_WRITABLE) {
    link->blocked = 0;
    uplink_link_watch(link);
    uplink_link_flush(link);
    if (link->sock != s) return;
  }
  if (events & (UV_READABLE | UV_DISCONNECT)) uplink_link_read(link, 0);
}
