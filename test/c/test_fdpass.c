/* test_fdpass: descriptors passed along a socketpair with fdpass.h keep
 * their order, pair with the bytes they were sent with, are never leaked
 * (every queued one is closed), and a sender over the per-send limit is
 * reported as truncated rather than silently losing the pairing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fdpass.h"

static int open_fds(void) {
  int count = 0;
  for (int fd = 0; fd < 1024; fd++)
    if (fcntl(fd, F_GETFD) != -1) count++;
  return count;
}

/* A pipe's read end whose inode identifies it after passing. */
static int make_marker(ino_t *ino) {
  int p[2];
  if (pipe(p) != 0) return -1;
  close(p[1]);
  struct stat st;
  fstat(p[0], &st);
  *ino = st.st_ino;
  return p[0];
}

static ino_t inode_of(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return 0;
  return st.st_ino;
}

static void test_queue(void) {
  fdpass_queue q;
  fdpass_init(&q);
  int before = open_fds();
  ino_t inos[40];
  for (int i = 0; i < 40; i++)
    CHECK(fdpass_push(&q, make_marker(&inos[i])) == 0);
  CHECK(fdpass_count(&q) == 40);
  int order_bad = 0;
  for (int i = 0; i < 20; i++) {
    int fd = fdpass_pop(&q);
    if (inode_of(fd) != inos[i]) order_bad++;
    close(fd);
  }
  int last = fdpass_unpush(&q);
  CHECK(inode_of(last) == inos[39]);
  close(last);
  CHECK(order_bad == 0);
  fdpass_free(&q); /* closes the 19 left */
  CHECK(open_fds() == before);
  CHECK(fdpass_pop(&q) == -1);
}

static void test_send_receive(void) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  int before = open_fds();
  fdpass_queue out, in;
  fdpass_init(&out);
  fdpass_init(&in);
  ino_t inos[20];
  for (int i = 0; i < 20; i++)
    fdpass_push(&out, make_marker(&inos[i]));
  /* A send without descriptors first, then sends that carry them. */
  fdpass_queue none;
  fdpass_init(&none);
  CHECK(fdpass_send(sv[0], (const uint8_t *)"plain", 5, &none) == 5);
  /* More than a send takes: one byte goes with the first batch. */
  CHECK(fdpass_send(sv[0], (const uint8_t *)"first", 5, &out) == 1);
  CHECK(fdpass_send(sv[0], (const uint8_t *)"irst", 4, &out) == 4);
  CHECK(fdpass_count(&out) == 0); /* the sent ones are closed here */
  uint8_t buf[64];
  int got = 0, truncated = 0;
  /* The first read ends with the message that brought descriptors. */
  ssize_t n = fdpass_recv(sv[1], buf, sizeof(buf), &in, &got, &truncated);
  CHECK(n == 6 && memcmp(buf, "plainf", 6) == 0);
  CHECK(got == 1 && truncated == 0 && fdpass_count(&in) == FDPASS_PER_SEND);
  n = fdpass_recv(sv[1], buf, sizeof(buf), &in, &got, &truncated);
  CHECK(n == 4 && got == 1 && fdpass_count(&in) == 20);
  int order_bad = 0;
  for (int i = 0; i < 20; i++) {
    int fd = fdpass_pop(&in);
    if (inode_of(fd) != inos[i] || !(fcntl(fd, F_GETFD) & FD_CLOEXEC)) order_bad++;
    close(fd);
  }
  CHECK(order_bad == 0);
  n = fdpass_recv(sv[1], buf, sizeof(buf), &in, &got, &truncated);
  CHECK(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) && got == 0);
  CHECK(open_fds() == before);
  fdpass_free(&out);
  fdpass_free(&in);
  close(sv[0]);
  close(sv[1]);
}

/* A sender that attaches more than a receive takes: reported. */
static void test_truncated(void) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  int before = open_fds();
  int fds[FDPASS_PER_SEND + 4];
  ino_t ino;
  for (size_t i = 0; i < FDPASS_PER_SEND + 4; i++)
    fds[i] = make_marker(&ino);
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(fds))];
  } control;
  memset(&control, 0, sizeof(control));
  struct iovec iov = {"x", 1};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof(control.bytes);
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(fds));
  memcpy(CMSG_DATA(cm), fds, sizeof(fds));
  CHECK(sendmsg(sv[0], &msg, 0) == 1);
  for (size_t i = 0; i < FDPASS_PER_SEND + 4; i++)
    close(fds[i]);
  fdpass_queue in;
  fdpass_init(&in);
  uint8_t buf[8];
  int got = 0, truncated = 0;
  CHECK(fdpass_recv(sv[1], buf, sizeof(buf), &in, &got, &truncated) == 1);
  CHECK(truncated == 1);
  fdpass_free(&in);
  CHECK(open_fds() == before); /* the kernel closed what did not fit */
  close(sv[0]);
  close(sv[1]);
}

int main(void) {
  test_queue();
  test_send_receive();
  test_truncated();
  return check_report("fdpass");
}
