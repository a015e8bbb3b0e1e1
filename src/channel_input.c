/* channel_input: the complete frames at the head of a channel's input,
 * taken (channel_frames, channel_consume) or lent in place
 * (channel_lend, channel_lend_slice, channel_unlend) (see channel.h).
 *
 * A slice hands over part of the input, publishers interleaved: the
 * frames handed over are marked (FRAME_LOCAL_DELIVERED) where they lie and
 * skipped from then on; the input is dropped from the front as far as
 * every frame was handed over. Replies and shared messages keep their
 * place (the pool's reads are counted in arrival order, so they are only
 * ever said read from the front).
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
#include <unistd.h>

#include "channel_internal.h"

/* Walks the complete, well-formed frames at the start of the input (what
 * channel_frames left there): calls visit with each one's offset and
 * decoded header until it returns nonzero or len is reached. */
static size_t channel_walk(channel *ch, size_t len,
                           int (*visit)(void *ctx, size_t offset, const frame *f), void *ctx) {
  size_t offset = 0;
  frame f;
  while (offset < len &&
         frame_decode(channel_input_from(ch, offset), len - offset, UINT32_MAX, &f) == FRAME_OK) {
    if (visit(ctx, offset, &f)) break;
    offset += f.size;
  }
  return offset;
}

/* The lent frames not handed over (neither before nor in this loan):
 * their size summed (to NULL), or copied to `to`. */
typedef struct channel_copy {
  channel *ch;
  uint8_t *to;
  size_t size;
  size_t next_picked; /* picked is in arrival order: one pass */
} channel_copy;

static int channel_copy_unread(void *ctx, size_t offset, const frame *f) {
  channel_copy *c = ctx;
  channel *ch = c->ch;
  if (c->next_picked < ch->picked_count && ch->picked[c->next_picked] == offset) {
    c->next_picked++;
    return 0;
  }
  if (f->flags & FRAME_LOCAL_DELIVERED) return 0;
  if (c->to) memcpy(c->to + c->size, channel_input_from(ch, offset), f->size);
  c->size += f->size;
  return 0;
}

int channel_unshare(channel *ch) {
  if (ch->lent == 0 || ch->lent_block) return 0;
  buffer moved;
  buffer_init(&moved);
  /* The lent frames not handed over move too, ahead of the rest: they
   * were not read, and come before it. */
  channel_copy sum = {ch, NULL, 0, 0};
  channel_walk(ch, ch->lent, channel_copy_unread, &sum);
  size_t keep = sum.size;
  size_t rest = buffer_length(&ch->in) - ch->lent;
  if (keep + rest > 0) {
    uint8_t *at = buffer_reserve(&moved, keep + rest);
    if (!at) return -1;
    channel_copy c = {ch, at, 0, 0};
    channel_walk(ch, ch->lent, channel_copy_unread, &c);
    if (rest > 0) memcpy(at + keep, buffer_begin(&ch->in) + ch->lent, rest);
    buffer_commit(&moved, keep + rest);
  }
  ch->lent_block = ch->in.data;
  ch->in = moved;
  return 0;
}

/* channel_frames, calling visit (when not NULL) with each frame not handed
 * over before, until it returns nonzero: the slice's count is taken on the
 * same walk. */
static int channel_frames_visit(channel *ch, const uint8_t **data, size_t *len,
                                int (*visit)(void *ctx, size_t offset, const frame *f), void *ctx) {
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
      /* Its descriptor came with it: the pool's (taken in any case, so
       * the next one pairs with the next frame that carries one). */
      int pool_fd = fdpass_pop(&ch->fds_in);
      if (ch->pool.fd < 0)
        ch->pool.fd = pool_fd;
      else if (pool_fd >= 0)
        close(pool_fd);
      channel_pool_take_offer(&ch->pool, &f);
      buffer_remove(&ch->in, offset, f.size);
      continue;
    }
    if (f.flags & FRAME_LOCAL_DELIVERED) {
      offset += f.size; /* handed over already (channel_lend_slice) */
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
    if (f.type == FRAME_HANDOFF &&
        channel_handoff_claim(ch, buffer_begin(&ch->in) + offset, &f) != 0)
      return -1;
    if (visit && visit(ctx, offset, &f)) visit = NULL;
    offset += f.size;
    count++;
  }
  *data = channel_input_from(ch, 0);
  *len = offset;
  return count;
}

int channel_frames(channel *ch, const uint8_t **data, size_t *len) {
  return channel_frames_visit(ch, data, len, NULL, NULL);
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

static int channel_pick(channel *ch, size_t offset) {
  if (ch->picked_count == ch->picked_capacity) {
    size_t n = ch->picked_capacity ? ch->picked_capacity * 2 : CHANNEL_SLICE_FRAMES;
    uint32_t *grown = realloc(ch->picked, n * sizeof(*grown));
    if (!grown) return -1;
    ch->picked = grown;
    ch->picked_capacity = n;
  }
  ch->picked[ch->picked_count++] = (uint32_t)offset;
  return 0;
}

/* The fair pick: the window is the frames not handed over yet, up to the
 * first frame that may overtake nothing (unless it is the first) or of a
 * publisher past CHANNEL_SLICE_PUBLISHERS; each publisher gets `share`
 * frames of it, the first `extra` publishers to need one more get it. */
typedef struct channel_slice {
  size_t max;
  size_t seen;   /* frames in the window */
  size_t shared; /* shared messages picked */
  size_t publishers;
  uint32_t id[CHANNEL_SLICE_PUBLISHERS];
  size_t count[CHANNEL_SLICE_PUBLISHERS];
  size_t taken[CHANNEL_SLICE_PUBLISHERS];
  int closed[CHANNEL_SLICE_PUBLISHERS]; /* one of its frames was left: none after it goes */
  size_t end;                           /* where the window ends */
  size_t share;                         /* frames each publisher may have */
  size_t extra;                         /* publishers that may have one more */
  channel *ch;
  int failed;
} channel_slice;

/* Replies and shared messages (whose reads are counted in arrival order)
 * keep their place. */
static int channel_slice_barrier(const frame *f) {
  return f->type != FRAME_MESSAGE || (f->flags & FRAME_FLAG_SHARED);
}

static uint32_t channel_slice_publisher(const frame *f) {
  return f->type == FRAME_MESSAGE ? f->request_id : UINT32_MAX;
}

static size_t channel_slice_find(const channel_slice *s, uint32_t id) {
  for (size_t i = 0; i < s->publishers; i++)
    if (s->id[i] == id) return i;
  return CHANNEL_SLICE_PUBLISHERS;
}

static int channel_slice_count(void *ctx, size_t offset, const frame *f) {
  channel_slice *s = ctx;
  if (f->flags & FRAME_LOCAL_DELIVERED) return 0;
  if (channel_slice_barrier(f) && s->seen > 0) return 1;
  uint32_t id = channel_slice_publisher(f);
  size_t i = channel_slice_find(s, id);
  if (i == CHANNEL_SLICE_PUBLISHERS) {
    if (s->publishers == CHANNEL_SLICE_PUBLISHERS) return 1;
    i = s->publishers++;
    s->id[i] = id;
  }
  s->count[i]++;
  s->seen++;
  s->end = offset + f->size;
  return 0;
}

static int channel_slice_take(void *ctx, size_t offset, const frame *f) {
  channel_slice *s = ctx;
  if (offset >= s->end || s->ch->picked_count >= s->max) return 1;
  if (f->flags & FRAME_LOCAL_DELIVERED) return 0;
  size_t i = CHANNEL_SLICE_PUBLISHERS; /* all fit: no shares */
  if (s->share != SIZE_MAX) {
    i = channel_slice_find(s, channel_slice_publisher(f));
    if (s->closed[i]) return 0;
    if (s->taken[i] == s->share && s->extra > 0) {
      s->extra--;
    } else if (s->taken[i] >= s->share) {
      s->closed[i] = 1;
      return 0;
    }
  }
  if (channel_pick(s->ch, offset) != 0) {
    s->failed = 1;
    return 1;
  }
  if (i < CHANNEL_SLICE_PUBLISHERS) s->taken[i]++;
  if (f->type == FRAME_MESSAGE && (f->flags & FRAME_FLAG_SHARED)) s->shared++;
  return 0;
}

int channel_lend_slice(channel *ch, size_t max, const uint8_t **data, size_t *len,
                       const uint32_t **picked) {
  if (ch->lent > 0) return 0; /* one loan at a time: a nested borrower waits */
  channel_slice s;
  memset(&s, 0, sizeof(s));
  s.ch = ch;
  s.max = max;
  int count = channel_frames_visit(ch, data, len, channel_slice_count, &s);
  ch->picked_count = 0;
  ch->more = 0;
  if (count <= 0) return count;
  if ((size_t)count <= max) {
    /* Everything fits: all of it, in arrival order. */
    s.end = *len;
    s.share = SIZE_MAX;
  } else {
    /* The largest equal share the slice holds, then one more each for
     * as many publishers as the rest allows. */
    size_t lo = 0, hi = max;
    while (lo < hi) {
      size_t mid = lo + (hi - lo + 1) / 2, sum = 0;
      for (size_t i = 0; i < s.publishers; i++)
        sum += s.count[i] < mid ? s.count[i] : mid;
      if (sum <= max)
        lo = mid;
      else
        hi = mid - 1;
    }
    s.share = lo;
    size_t sum = 0;
    for (size_t i = 0; i < s.publishers; i++)
      sum += s.count[i] < lo ? s.count[i] : lo;
    s.extra = max - sum;
  }
  channel_walk(ch, *len, channel_slice_take, &s);
  if (s.failed) {
    ch->picked_count = 0;
    channel_fail(ch, "out of memory reading from the master");
    return -1;
  }
  ch->lent = *len;
  ch->lent_shared = (int)s.shared;
  ch->more = ch->picked_count < (size_t)count;
  *picked = ch->picked;
  return (int)ch->picked_count;
}

int channel_lend(channel *ch, const uint8_t **data, size_t *len) {
  const uint32_t *picked = NULL;
  return channel_lend_slice(ch, SIZE_MAX, data, len, &picked);
}

static int channel_take_delivered(void *ctx, size_t offset, const frame *f) {
  (void)ctx;
  (void)offset;
  return !(f->flags & FRAME_LOCAL_DELIVERED);
}

void channel_unlend(channel *ch, enum channel_unlend_how how) {
  if (ch->lent == 0) return;
  if (how == CHANNEL_UNLEND_UNREAD && !ch->lent_block) {
    ch->picked_count = 0;
    ch->lent = 0;
    ch->more = 0; /* the next readable event tries again */
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
    ch->picked_count = 0;
    return;
  }
  if (ch->lent_block) {
    free(ch->lent_block); /* in moved on: the lent bytes are not in it */
    ch->lent_block = NULL;
    ch->lent = 0;
    ch->picked_count = 0;
    ch->more = buffer_length(&ch->in) > 0;
    return;
  }
  for (size_t i = 0; i < ch->picked_count; i++)
    frame_mark_local((uint8_t *)channel_input_from(ch, ch->picked[i]), FRAME_LOCAL_DELIVERED, 0);
  ch->picked_count = 0;
  /* What was handed over from the start on is dropped; frames handed over
   * past one still waiting stay, marked, until it goes. */
  size_t done = channel_walk(ch, ch->lent, channel_take_delivered, NULL);
  ch->lent = 0;
  buffer_consume(&ch->in, done);
  buffer_trim(&ch->in, CHANNEL_KEEP_BUFFER);
}
