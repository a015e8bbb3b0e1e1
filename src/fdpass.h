/* fdpass: descriptors that travel with a channel's bytes (SCM_RIGHTS).
 *
 * A frame that carries a descriptor (a HANDOFF, frame.h) has it passed
 * alongside its bytes on the AF_UNIX stream. The rule both sides keep: a
 * sender pushes the descriptor on its outgoing queue before the frame's
 * first byte is queued, and every send attaches what that queue holds (up
 * to FDPASS_PER_SEND); so a descriptor always travels with bytes that come
 * no later than its frame's first byte, in the order the frames were
 * queued. A reader that receives with fdpass_recv therefore holds, in its
 * incoming queue and in order, the descriptor of every carrying frame it
 * has begun to read: taking one from the queue's front as each such frame
 * is handled pairs them.
 *
 * The kernel hands descriptors over with the read that takes the first
 * byte of the message they came with, and ends that read there; a read
 * never carries more than one sender's message's worth (FDPASS_PER_SEND).
 *
 * A queue owns its descriptors: whatever is in it when it is freed is
 * closed, so none leaks. Pure of any loop; no global state. */
#ifndef CLUSTER_STORE_FDPASS_H
#define CLUSTER_STORE_FDPASS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Descriptors attached to one send at most (and taken by one receive). */
#define FDPASS_PER_SEND 16u

typedef struct fdpass_queue {
  int *fds;
  size_t head;
  size_t count;
  size_t capacity;
} fdpass_queue;

void fdpass_init(fdpass_queue *q);
/* Closes every descriptor still queued and frees the queue's memory. */
void fdpass_free(fdpass_queue *q);
static inline size_t fdpass_count(const fdpass_queue *q) {
  return q->count;
}
/* Appends fd, which the queue then owns. 0, or -1 when out of memory (fd
 * is then closed). */
int fdpass_push(fdpass_queue *q, int fd);
/* The front descriptor, handed to the caller; -1 when empty. */
int fdpass_pop(fdpass_queue *q);
/* The back descriptor (the last pushed), handed to the caller; -1 when
 * empty. */
int fdpass_unpush(fdpass_queue *q);

/* Sends n bytes from p on sock (non-blocking), with the front of out (up
 * to FDPASS_PER_SEND descriptors) attached when out holds any; those are
 * closed here once sent (the receiver holds its own copies). When out
 * holds more than one send takes, only one byte goes, so the callers'
 * loops (send until all is sent) give each batch its own send. Returns
 * the bytes sent, 0 when the socket is full (nothing sent, nothing
 * popped), or -1 with errno set. */
ssize_t fdpass_send(int sock, const uint8_t *p, size_t n, fdpass_queue *out);

/* Sends n bytes from p on sock (non-blocking) with a copy of fd attached
 * (SCM_RIGHTS); fd stays the caller's. For a descriptor given to many
 * receivers, outside any queue's pairing (the shared pool's, shm.h).
 * Returns as fdpass_send does; the copy went with the bytes when > 0. */
ssize_t fdpass_send_copy(int sock, const uint8_t *p, size_t n, int fd);

/* Receives up to n bytes into p from sock (non-blocking); descriptors that
 * came with them go to the back of in, close-on-exec. Returns as read(2)
 * would. *got_fds says whether any came; *truncated whether some were
 * dropped by the kernel (a sender over FDPASS_PER_SEND) or could not be
 * queued (out of memory): the pairing is then lost, and the caller must
 * treat the stream as broken. */
ssize_t fdpass_recv(int sock, uint8_t *p, size_t n, fdpass_queue *in, int *got_fds, int *truncated);

/* Receives as fdpass_recv does, for a reader that wants one descriptor
 * and no queue: the first that comes is stored in *fd when *fd is -1;
 * any other is closed, so none leaks. */
ssize_t fdpass_recv_one(int sock, uint8_t *p, size_t n, int *fd);

#endif
