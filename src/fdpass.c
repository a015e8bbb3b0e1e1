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

ssize_t fdpass_send(int sock, const uint8_t *p, size_t n, fdpass_queue *out) {
  if (out->count == 0) {
    /* Nothing to pass: a plain send. */
    for (;;) {
      ssize_t sent = send(sock, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent >= 0) return sent;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
  }
  struct iovec iov = {(void *)p, n};
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(FDPASS_PER_SEND * sizeof(int))];
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  size_t count = out->count < FDPASS_PER_SEND ? out->count : FDPASS_PER_SEND;
  /* More wait than one send takes: this one carries a single byte, so the
   * rest go with the next sends, still ahead of their frames (each frame
   * is longer than a byte). */
  if (out->count > FDPASS_PER_SEND && n > 1) iov.iov_len = 1;
  if (count > 0) {
    memset(&control, 0, sizeof(control));
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(count * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(count * sizeof(int));
    for (size_t i = 0; i < count; i++) {
      int fd = out->fds[(out->head + i) % out->capacity];
      memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
    }
  }
  for (;;) {
    ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      for (size_t i = 0; i < count; i++)
        close(fdpass_pop(out));
      return sent;
    }
    if (sent == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

ssize_t fdpass_recv(int sock, uint8_t *p, size_t n, fdpass_queue *in, int *got_fds,
                    int *truncated) {
  struct iovec iov = {p, n};
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(FDPASS_PER_SEND * sizeof(int))];
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof(control.bytes);
  *got_fds = 0;
  *truncated = 0;
  ssize_t got;
  do {
    got = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return got;
  if (msg.msg_flags & MSG_CTRUNC) *truncated = 1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int received;
      memcpy(&received, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      *got_fds = 1;
      if (fdpass_push(in, received) != 0) *truncated = 1; /* closed by the push */
    }
  }
  return got;
}
