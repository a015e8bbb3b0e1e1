/* channel_input: the complete frames at the head of a channel's input,
 * taken (channel_frames, channel_consume) or lent in place
 * (channel_lend, channel_unlend) (see channel.h).
 *
 * Taking the frames is also where the channel handles what is meant for it
 * and not for its owner: the broker's hello (its version and its largest
 * frame), the offer of the shared pool, the reason the broker gives before
 * it hangs up; and where shared messages are checked and counted, so the
 * pool's side can say how many were read once the owner's call returns. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_internal.h"

int channel_unshare(channel *ch) {
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
    int rc = frame_decode(channel_input_from(ch, offset), buffer_length(&ch->in) - offset,
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
  *data = channel_input_from(ch, 0);
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
