/* channel_handoff: the process's side of FRAME_HANDOFF (frame.h): sending
 * a frame with a descriptor alongside, pairing each one that arrives with
 * its descriptor, and closing what nobody took.
 *
 * A descriptor received is put in its frame (the request id, plus one) the
 * first time the input is walked, so the pairing survives input that is
 * lent and handed back unread: a frame that already names one is not
 * paired again. From the moment a frame is taken (channel_consume, or an
 * unlend as consumed), its descriptor is the taker's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "channel_internal.h"

/* Descriptors a process may have waiting to be sent at once: past this (the
 * broker is not reading this process), a hand-off is refused. */
#define CHANNEL_HANDOFF_MAX 256u

int channel_send_handoff(channel *ch, uint32_t endpoint, uint32_t request_id, const void *topic,
                         size_t topic_len, const void *payload, size_t payload_len, int fd) {
  if (ch->closed) {
    errno = EPIPE;
    return -1;
  }
  uint32_t size = frame_size(topic_len, 0, payload_len);
  if (size == 0 || size > ch->max_frame_size) {
    errno = E2BIG;
    return -1;
  }
  if (fdpass_count(&ch->fds_out) >= CHANNEL_HANDOFF_MAX) {
    errno = ENOBUFS;
    return -1;
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return -1;
  /* The descriptor first: it must travel no later than its frame's first
   * byte (fdpass.h). */
  if (fdpass_push(&ch->fds_out, copy) != 0) {
    errno = ENOMEM;
    return -1;
  }
  uint8_t *at = channel_reserve(ch, size);
  if (!at) {
    int saved = errno;
    /* Nothing was sent since the push: the last one is ours. */
    close(fdpass_unpush(&ch->fds_out));
    errno = saved;
    return -1;
  }
  frame_encode(at, FRAME_HANDOFF, 0, endpoint, request_id, topic, topic_len, NULL, 0, payload,
               payload_len);
  channel_commit(ch, size, 1);
  return 0;
}

int channel_handoff_claim(channel *ch, uint8_t *at, const frame *f) {
  if (f->request_id != 0) return 0; /* paired on an earlier walk */
  int fd = fdpass_pop(&ch->fds_in);
  if (fd < 0) {
    channel_fail(ch, "the master sent a hand-off without its descriptor");
    return -1;
  }
  frame_set_request_id(at, (uint32_t)fd + 1u);
  return 0;
}

void channel_handoff_free(channel *ch) {
  fdpass_free(&ch->fds_in);
  fdpass_free(&ch->fds_out);
  size_t offset = 0;
  size_t len = buffer_length(&ch->in);
  while (ch->in.data && offset < len) {
    frame f;
    if (frame_decode(buffer_begin(&ch->in) + offset, len - offset, UINT32_MAX, &f) != FRAME_OK)
      break;
    if (f.type == FRAME_HANDOFF && f.request_id != 0) close((int)(f.request_id - 1));
    offset += f.size;
  }
}
