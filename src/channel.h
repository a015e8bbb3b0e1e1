/* channel: a process's end of its private connection to the broker.
 *
 * Lives on node's own libuv loop. Frames the process sends are encoded
 * straight into an output buffer and written in one go right before the
 * loop next waits (or at once when asked, or when much is queued). Frames
 * that arrive are read in large chunks; the owner is told that input is
 * ready and takes every complete frame at once (or borrows them in place,
 * channel_lend), so one call into JavaScript delivers a whole batch.
 *
 * A channel can take frames before it has a socket: they wait, behind the
 * hello, until channel_attach gives it the descriptor received from the
 * master. Three waits block, for the rare moments when the process must
 * know something before it returns to its loop: channel_flush_sync (its
 * output left), channel_wait_reply (the broker's answer), and, inside a
 * send, a full publish ring (a slot freed, for at most a few ms). Each
 * keeps reading meanwhile.
 *
 * Once the broker has offered the shared pool (shm.h), a PUBLISH whose
 * payload fits goes through the process's region of it, and shared
 * messages arrive as descriptors into it (channel_pool.h). */
#ifndef CLUSTER_STORE_CHANNEL_H
#define CLUSTER_STORE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "frame.h"

typedef struct channel channel;

typedef struct channel_events {
  /* Complete frames are waiting: take them with channel_frames. */
  void (*on_input)(channel *ch, void *ctx);
  /* The channel closed (end of file, error, protocol error): reason says
   * why. Called once, from the loop (also when a blocking call returned the
   * failure first), unless the owner closed it (channel_close,
   * channel_release). */
  void (*on_close)(channel *ch, const char *reason, void *ctx);
} channel_events;

/* NULL when out of memory. max_frame_size bounds frames both ways (the
 * broker's own limit, learnt from its hello, bounds them further). */
channel *channel_create(uv_loop_t *loop, uint32_t max_frame_size, const channel_events *events,
                        void *ctx);

/* Starts talking over fd (a connected AF_UNIX stream socket, owned by the
 * channel from then on). Returns 0, or -1 with a reason in *why. */
int channel_attach(channel *ch, int fd, const char **why);

/* Room for one frame of size bytes, or NULL: the frame is over the maximum
 * (errno E2BIG), out of memory (ENOMEM), or the channel is closed (EPIPE). */
uint8_t *channel_reserve(channel *ch, uint32_t size);

/* Marks the reserved frame as ready. With flush_now it is written before
 * this returns, waiting up to a second for a full socket (what is left
 * goes with the next batch). Output queued past a high-water mark waits
 * likewise for the broker to take some: a publisher that outruns the
 * cluster is slowed down. */
void channel_commit(channel *ch, uint32_t size, int flush_now);

/* Writes all queued output, waiting up to timeout_ms for the socket to take
 * it. 0, or -1 with a reason in *why. */
int channel_flush_sync(channel *ch, int timeout_ms, const char **why);

/* Waits up to timeout_ms for the reply to request_id, reading (and keeping
 * for later) whatever else arrives first. On success returns 0, stores the
 * status and a malloc'd copy of the payload (caller frees; NULL when empty).
 * -1 with a reason in *why on timeout or failure. */
int channel_wait_reply(channel *ch, uint32_t request_id, int timeout_ms, uint8_t *status,
                       uint8_t **payload, uint32_t *payload_len, const char **why);

/* The complete frames at the head of the input: their bytes start at *data
 * and span *len; returns how many. channel_consume(len) drops them after
 * the caller has copied them (and counts the shared messages among them as
 * read). Frames meant for the channel itself (the broker's hello, its offer
 * of the pool, the reason it gives before hanging up) are handled on the
 * way and never returned. Returns -1 after a protocol error (the channel
 * is then closed and the reason reported). */
int channel_frames(channel *ch, const uint8_t **data, size_t *len);
void channel_consume(channel *ch, size_t len);

/* Sends a frame given in two parts, header and names in head, payload
 * apart. A large PUBLISH payload that fits the shared pool is written into
 * this process's region, and only head and a descriptor are queued
 * (waiting briefly for a slot when the ring is full). Else the frame goes
 * straight to the socket when nothing is queued and the payload is large
 * (no copy of it), and whatever the socket does not take, or all of it
 * otherwise, is queued as channel_commit does. 0, or -1 with errno as for
 * channel_reserve when the frame cannot be sent at all. */
int channel_send_parts(channel *ch, const uint8_t *head, size_t head_len, const uint8_t *payload,
                       size_t payload_len, int flush_now);

/* Sends a HANDOFF frame (frame.h) with a duplicate of fd alongside (the
 * caller keeps its own and may close it once this returns), written
 * before this returns as far as the socket takes it. A HANDOFF that
 * arrives names its descriptor plus one in its request id; whoever takes
 * the frame owns that descriptor. 0, or -1 with errno as channel_reserve,
 * ENOBUFS when too many descriptors wait to be sent already, or as dup. */
int channel_send_handoff(channel *ch, uint32_t endpoint, uint32_t request_id, const void *topic,
                         size_t topic_len, const void *payload, size_t payload_len, int fd);

/* Lending: the complete frames (as channel_frames finds them) stay where
 * they are, in the input buffer, for the caller to read in place until
 * channel_unlend; the ones handed over count as consumed from the start.
 * Anything that needs the input buffer meanwhile (a blocking call made by
 * the borrower) moves the rest of the input to a new buffer first, so the
 * lent bytes never move or change while lent. channel_lend hands over
 * every frame not handed over before, in arrival order. Same returns as
 * channel_frames. */
int channel_lend(channel *ch, const uint8_t **data, size_t *len);
/* The same loan, handing over at most max frames: *picked (count entries,
 * the return value) says where each starts in data, in arrival order. When
 * more wait, they are picked fairly: every publisher's frames in its order
 * (MESSAGE frames say who published them), interleaved so that each gets
 * an equal share of the slice, a publisher with few frames waiting getting
 * all of them ahead of a busy one's backlog; a frame that is not a plain
 * message (a reply, a shared message) goes only when nothing before it is
 * left, so nothing overtakes it and it overtakes nothing. Frames not handed
 * over stay for the next loan; the loop keeps
 * turning, without waiting, and calls on_input until none is left. */
/* Frames a call into the owner hands over when more wait: the loop turns
 * before the next call, so a message that arrives meanwhile from a quiet
 * publisher goes ahead of a busy one's backlog. */
#define CHANNEL_SLICE_FRAMES 1024u
int channel_lend_slice(channel *ch, size_t max, const uint8_t **data, size_t *len,
                       const uint32_t **picked);
enum channel_unlend_how {
  CHANNEL_UNLEND_CONSUMED, /* the frames were read: drop them */
  CHANNEL_UNLEND_UNREAD,   /* nobody read them: they stay for the next taker */
  CHANNEL_UNLEND_ABANDON   /* read, but the memory may still be in use: never reuse it */
};
void channel_unlend(channel *ch, enum channel_unlend_how how);

/* The shared pool (shm.h), once the broker offered it and it is mapped;
 * NULL before, and for good when there is none. */
struct shm_map;
struct shm_map *channel_pool(const channel *ch);
/* How long a publish waits for a free slot of a full ring before its
 * payload takes the socket (CHANNEL_RING_WAIT_MS, 20 ms, unless set). */
void channel_set_ring_wait(channel *ch, uint32_t ms);
/* Tells the broker that this process reads shared messages from now on
 * (the owner can give its callback a view of the pool). 0, or -1 with
 * errno as channel_reserve. */
int channel_pool_ready(channel *ch);
/* The broker's maximum frame size (from its hello), or ours until it spoke. */
uint32_t channel_max_frame_size(const channel *ch);

/* Whether the channel keeps the loop alive. */
void channel_set_ref(channel *ch, int ref);

int channel_is_closed(const channel *ch);
const char *channel_close_reason(const channel *ch);

/* Closes the socket now (no callback); later sends fail. */
void channel_close(channel *ch, const char *reason);

/* Closes if needed and frees the channel once its handles are closed, then
 * calls done(arg) when done is not NULL. Not to be used afterwards. */
void channel_release(channel *ch, void (*done)(void *arg), void *arg);

#endif
