/* fdpass: descriptors that travel with a channel's bytes (see fdpass.h). */
#define _GNU_SOURCE
#include "fdpass.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void fdpass_init(fdpass_queue *q) {
  memset(q, 0, sizeof(*q));
}

void fdpass_free(fdpass_queue *q) {
  int fd;
  while ((fd = fdpass_pop(q)) >= 0)
    close(fd);
  free(q->fds);
  fdpass_init(q);
}

int fdpass_push(fdpass_queue *q, int fd) {
  if (q->count == q->capacity) {
    size_t capacity = q->capacity ? q->capacity * 2 : 8;
    int *grown = malloc(capacity * sizeof(*grown));
    if (!grown) {
      close(fd);
      return -1;
    }
    for (size_t i = 0; i < q->count; i++)
      grown[i] = q->fds[(q->head + i) % q->capacity];
    free(q->fds);
    q->fds = grown;
    q->capacity = capacity;
    q->head = 0;
  }
  q->fds[(q->head + q->count) % q->capacity] = fd;
  q->count++;
  return 0;
}

int fdpass_pop(fdpass_queue *q) {
  if (q->count == 0) return -1;
  int fd = q->fds[q->head];
  q->head = (q->head + 1) % q->capacity;
  q->count--;
  return fd;
}

int fdpass_unpush(fdpass_queue *q) {
  if (q->count == 0) return -1;
  q->count--;
  return q->fds[(q->head + q->count) % q->capacity];
}

/* A message of one buffer, with room for FDPASS_PER_SEND descriptors. */
typedef struct fdpass_message {
  struct iovec iov;
  _Alignas(struct cmsghdr) char control[CMSG_SPACE(FDPASS_PER_SEND * sizeof(int))];
  struct msghdr msg;
} fdpass_message;

static void fdpass_message_init(fdpass_message *m, void *p, size_t n) {
  memset(m, 0, sizeof(*m));
  m->iov.iov_base = p;
  m->iov.iov_len = n;
  m->msg.msg_iov = &m->iov;
  m->msg.msg_iovlen = 1;
  m->msg.msg_control = m->control;
  m->msg.msg_controllen = sizeof(m->control);
}

/* One sendmsg of n bytes from p with count descriptors (at most
 * FDPASS_PER_SEND, none when 0) attached, retried on EINTR; the descriptors
 * stay the caller's. Returns as fdpass_send does. */
static ssize_t fdpass_sendmsg(int sock, const uint8_t *p, size_t n, const int *fds, size_t count) {
  fdpass_message m;
  fdpass_message_init(&m, (void *)p, n);
  struct msghdr *msg = &m.msg;
  if (count == 0) {
    msg->msg_control = NULL;
    msg->msg_controllen = 0;
  } else {
    msg->msg_controllen = CMSG_SPACE(count * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, count * sizeof(int));
  }
  for (;;) {
    ssize_t sent = sendmsg(sock, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) return sent;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

ssize_t fdpass_send(int sock, const uint8_t *p, size_t n, fdpass_queue *out) {
  /* Nothing to pass: a plain send. */
  if (out->count == 0) return fdpass_sendmsg(sock, p, n, NULL, 0);
  size_t count = out->count < FDPASS_PER_SEND ? out->count : FDPASS_PER_SEND;
  int fds[FDPASS_PER_SEND];
  for (size_t i = 0; i < count; i++)
    fds[i] = out->fds[(out->head + i) % out->capacity];
  /* More wait than one send takes: this one carries a single byte, so the
   * rest go with the next sends, still ahead of their frames (each frame
   * is longer than a byte). */
  if (out->count > FDPASS_PER_SEND && n > 1) n = 1;
  ssize_t sent = fdpass_sendmsg(sock, p, n, fds, count);
  if (sent > 0) {
    for (size_t i = 0; i < count; i++)
      close(fdpass_pop(out));
  }
  return sent;
}

ssize_t fdpass_send_copy(int sock, const uint8_t *p, size_t n, int fd) {
  return fdpass_sendmsg(sock, p, n, &fd, 1);
}

/* One recvmsg of up to n bytes into p, retried on EINTR; the descriptors
 * that came (close-on-exec) go to fds, which has room for FDPASS_PER_SEND,
 * their number to *count. *truncated says whether the kernel dropped some
 * (a sender over FDPASS_PER_SEND). Returns as read(2) would. */
static ssize_t fdpass_recvmsg(int sock, uint8_t *p, size_t n, int *fds, size_t *count,
                              int *truncated) {
  fdpass_message m;
  fdpass_message_init(&m, p, n);
  struct msghdr *msg = &m.msg;
  *count = 0;
  *truncated = 0;
  ssize_t got;
  do {
    got = recvmsg(sock, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return got;
  if (msg->msg_flags & MSG_CTRUNC) *truncated = 1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t in_header = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < in_header; i++) {
      int received;
      memcpy(&received, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      if (*count < FDPASS_PER_SEND) {
        fds[(*count)++] = received;
      } else {
        /* More than the control buffer holds cannot come; if it did, none
         * leaks and the pairing is reported lost. */
        close(received);
        *truncated = 1;
      }
    }
  }
  return got;
}

ssize_t fdpass_recv(int sock, uint8_t *p, size_t n, fdpass_queue *in, int *got_fds,
                    int *truncated) {
  int fds[FDPASS_PER_SEND];
  size_t count;
  ssize_t got = fdpass_recvmsg(sock, p, n, fds, &count, truncated);
  *got_fds = count > 0;
  for (size_t i = 0; i < count; i++) {
    if (fdpass_push(in, fds[i]) != 0) *truncated = 1; /* closed by the push */
  }
  return got;
}

ssize_t fdpass_recv_one(int sock, uint8_t *p, size_t n, int *fd) {
  int fds[FDPASS_PER_SEND];
  size_t count;
  int truncated;
  ssize_t got = fdpass_recvmsg(sock, p, n, fds, &count, &truncated);
  for (size_t i = 0; i < count; i++) {
    if (*fd < 0)
      *fd = fds[i];
    else
      close(fds[i]);
  }
  return got;
}
