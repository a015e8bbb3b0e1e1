/* channel_internal: what the channel's files (channel.c, channel_wait.c,
 * channel_input.c) share, and nothing else includes: the channel's state
 * and the few steps one file takes for another. channel.h is the contract;
 * this is the inside of it.
 *
 * One rule holds across the files: a failure found while JavaScript is
 * calling in (a write error during a send, end of file during a blocking
 * wait) only marks the channel closed (channel_fail); the owner hears of it
 * from the loop, in the prepare phase, so no callback ever runs inside
 * another call. */
#ifndef CLUSTER_STORE_CHANNEL_INTERNAL_H
#define CLUSTER_STORE_CHANNEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buffer.h"
#include "channel.h"
#include "channel_pool.h"
#include "fdpass.h"

#define CHANNEL_READ_CHUNK (256u * 1024u)
#define CHANNEL_READ_BUDGET (4u * 1024u * 1024u)
#define CHANNEL_WRITE_EARLY (32u * 1024u)
#define CHANNEL_KEEP_BUFFER (4u * 1024u * 1024u)
#define CHANNEL_FLUSH_WAIT_MS 1000
/* Output a process may queue before a send waits for the broker to take
 * some: a publisher that outruns the cluster is slowed down, not allowed to
 * grow without bound. Small, like the socket's own buffer
 * (BROKER_PROCESS_SEND_BUFFER): when the broker holds a publisher back,
 * everything it sends next, a reply too, waits behind what it has queued
 * here and in the socket, at the speed of its slowest readers, and a
 * larger queue there only makes that wait longer (it cannot make the
 * readers faster). */
#define CHANNEL_HIGH_WATER (64u * 1024u)
#define CHANNEL_HIGH_WATER_WAIT_MS 10000
#define CHANNEL_RING_WAIT_MS 20
/* Publishers told apart in one slice's window: the window ends at the
 * first frame of one more. */
#define CHANNEL_SLICE_PUBLISHERS 16
/* Input is read only while less than this is held (unless a larger frame
 * is still coming in): the rest waits in the socket, where the broker's
 * flow control sees it and a quiet publisher's message can overtake it. */
#define CHANNEL_SLICE_INPUT (64u * 1024u)

struct channel {
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_prepare_t prepare;
  uv_idle_t idle; /* turns the loop without waiting while frames wait to be handed over */
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
  uint32_t ring_wait_ms; /* channel_set_ring_wait */
  buffer in;
  buffer out;
  channel_events events;
  void *ctx;
  void (*released_done)(void *arg);
  void *released_arg;
  char reason[256];
  int frames_shared; /* shared messages among the frames channel_frames found */
  int lent_shared;   /* ... among the frames handed over in the loan */
  uint32_t *picked;  /* the loan's frames handed over: offsets in in, in arrival order */
  size_t picked_count;
  size_t picked_capacity;
  int more;               /* after the last loan, complete frames may wait to be handed over */
  channel_pool_side pool; /* the shared pool, once offered (channel_pool.h) */
  fdpass_queue fds_in;    /* descriptors received, not yet paired with their frames */
  fdpass_queue fds_out;   /* descriptors to go with the next write (fdpass.h) */
};

/* The input from offset on, for frame_decode; NULL while the input buffer
 * has no memory (a new channel, or the rest just moved away from a loan),
 * where the sum would be NULL + 0, which C leaves undefined. */
static inline const uint8_t *channel_input_from(const channel *ch, size_t offset) {
  return ch->in.data ? buffer_begin(&ch->in) + offset : NULL;
}

/* Marks the channel closed with reason (unless one is recorded already); the
 * owner hears of it from the loop. */
void channel_fail(channel *ch, const char *reason);

/* Non-blocking write of everything queued; 0 when all went out or the rest
 * waits for the socket, -1 when the channel failed. */
int channel_write(channel *ch);

/* Reads what the socket holds, up to budget bytes. Returns 0, or -1 at end
 * of file or on error (the reason is in *why, the channel not yet closed,
 * so frames read before the end can still be taken). */
int channel_read(channel *ch, size_t budget, const char **why);

/* Called before anything touches ch->in while bytes are lent: the unlent
 * rest moves to a buffer of its own, and the lent bytes' memory waits for
 * channel_unlend. Returns -1 when out of memory (nothing moved). */
int channel_unshare(channel *ch);

/* Starts or stops the idle handle as ch->more says. */
void channel_keep_turning(channel *ch);
/* channel_handoff.c. A HANDOFF frame f at at, in the input: pairs it with
 * the next received descriptor unless it already was (frame.h). 0, or -1
 * when none came with it (the channel is then failed). */
int channel_handoff_claim(channel *ch, uint8_t *at, const frame *f);
/* Closes every descriptor the channel still holds: queued both ways, and
 * those of HANDOFF frames in the input that nobody took. */
void channel_handoff_free(channel *ch);

/* The ring is full: waits, briefly, for the broker to free a slot for a
 * payload of len bytes (channel_wait.c). Where to write it, or NULL. */
uint8_t *channel_wait_ring(channel *ch, uint32_t len, uint32_t *slot, uint32_t *offset);

#endif
