/* channel_wait: the channel's three blocking waits (see channel.h), for the
 * rare moments when the process must know something before it returns to
 * its loop: that its output left (channel_flush_sync), the broker's reply
 * to a request (channel_wait_reply), or a free slot in its publish ring
 * (channel_wait_ring, channel_internal.h).
 *
 * Each keeps reading while it waits, so the broker never finds this
 * process not reading because it is busy waiting; what it reads is kept
 * for the owner, who hears of it from the loop (input_waiting). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "channel_internal.h"

/* The ring is full: the publisher outruns its subscribers, and waits for
 * the broker to free a slot (writing what it queued, so the broker has it,
 * and reading meanwhile), as it would wait for a full socket. After
 * ch->ring_wait_ms without a slot (a subscriber that stopped reading
 * holds them) it gives up, and payloads take the socket, with its flow
 * control, until a slot is free again. */
uint8_t *channel_wait_ring(channel *ch, uint32_t len, uint32_t *slot, uint32_t *offset) {
  uint64_t deadline = uv_hrtime() + (uint64_t)ch->ring_wait_ms * 1000000u;
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
    while ((rc = frame_decode(channel_input_from(ch, offset), buffer_length(&ch->in) - offset,
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

void channel_set_ring_wait(channel *ch, uint32_t ms) {
  ch->ring_wait_ms = ms;
}
