/* channel_pool: a process's side of the shared pool (shm.h), as its channel
 * to the broker (channel.h) uses it.
 *
 * The broker offers the pool once, right after its hello, with the pool's
 * descriptor passed along with the offer's bytes. From then on this side
 * keeps:
 *
 *   - the mapping, and the generation of the region the offer gave (which
 *     use of the region this is);
 *   - the publish ring in the process's region: a PUBLISH whose payload
 *     fits goes there, and only its header, names and a descriptor take the
 *     socket;
 *   - what the process has read: shared messages handed to its owner whose
 *     call returned, counted, and said back to the broker (in a
 *     FRAME_SHARED_READ, and in the region's header for when the channel is
 *     gone), so their slots can be written over;
 *   - the region-still-ours check: before each payload it writes, that the
 *     broker has not cut the process off and the region's generation is
 *     still the offer's.
 *
 * It does no I/O and never blocks: the channel reads and writes, and waits
 * for the ring when it is full (it asks here first whether it may). Every
 * function is a no-op, or says no, while no pool is mapped, which is for
 * good when the broker offered none: payloads then take the socket. */
#ifndef CLUSTER_STORE_CHANNEL_POOL_H
#define CLUSTER_STORE_CHANNEL_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "frame.h"
#include "shm.h"

typedef struct channel_pool_side {
  int fd;              /* the pool's descriptor, received and not mapped yet; -1 */
  shm_map *map;        /* the pool, once mapped; NULL before, and without one */
  shm_writer writer;   /* this process's payloads in its region */
  uint32_t generation; /* the region's, from the offer (shm_consumed_pack) */
  int reading;         /* told the broker that shared messages may come */
  uint64_t read;       /* shared messages handed to the owner and so read */
  uint64_t read_told;  /* the count last written to the region's header */
  int abandoned;       /* told the broker that nothing more will be read here */
  int ring_stalled;    /* waited for a slot in vain: no waiting until one is free */
} channel_pool_side;

/* No pool, no descriptor. */
void channel_pool_init(channel_pool_side *p);

/* Closes a descriptor not mapped yet, says in the region's header that
 * nothing more will be read here, and lets go of the mapping (JavaScript's
 * views may keep it alive: shm_map_retain). */
void channel_pool_free(channel_pool_side *p);

/* The broker's offer (a FRAME_SHARED frame): maps the pool with the
 * descriptor that came with it (p->fd, taken either way). Without a
 * descriptor, with an offer this build does not understand, or a second
 * time, the process does without: nothing is mapped and the descriptor is
 * closed. */
void channel_pool_take_offer(channel_pool_side *p, const frame *f);

/* Whether a shared message's descriptor (a FRAME_MESSAGE with
 * FRAME_FLAG_SHARED) points inside one region's data area of the pool, and
 * the broker was told such messages may come (p->reading). */
int channel_pool_message_valid(const channel_pool_side *p, const frame *f);

/* The reason the broker wrote in the region's header before cutting this
 * process off, as a message for the user; NULL when it did not (or there
 * is no pool). */
const char *channel_pool_cut_reason(const channel_pool_side *p);

/* Whether this process may still write into its region: the broker has
 * not cut it off (it may not have read the hang-up yet), and the region is
 * still the use of it the offer gave. 0 without a pool. */
int channel_pool_region_ours(const channel_pool_side *p);

/* ---- the read count -------------------------------------------------------- */

/* n more shared messages were handed to the owner, and its call returned. */
static inline void channel_pool_mark_read(channel_pool_side *p, uint64_t n) {
  p->read += n;
}

/* Says the read count back when it grew: in the region's header, and, while
 * the channel is open, in a FRAME_SHARED_READ appended to out (none when out
 * of memory: the next count says it, or the header does). Once the channel
 * is closed and no call is reading a loan (lent is 0), says instead that
 * nothing more will be read (channel_pool_abandon). */
void channel_pool_tell_read(channel_pool_side *p, int closed, int lent, buffer *out);

/* Says in the region's header that this process will read nothing more, so
 * the broker may take back every slot it holds and, once gone, its region. */
void channel_pool_abandon(channel_pool_side *p);

/* ---- the publish ring ------------------------------------------------------ */

/* Whether a frame whose header and names are head[0..head_len) and whose
 * payload is payload_len bytes goes through the pool: a PUBLISH, with a
 * payload of at most SHM_PAYLOAD_MAX bytes, a frame with the descriptor in
 * place of the payload within max_frame_size, and a region still ours.
 * Else it takes the socket. */
int channel_pool_publish_fits(const channel_pool_side *p, const uint8_t *head, size_t head_len,
                              size_t payload_len, uint32_t max_frame_size);

/* Room in the ring for a payload of len bytes: where to write it, with its
 * slot and offset stored; NULL when there is none now. A reservation that
 * is not committed is simply forgotten. */
uint8_t *channel_pool_publish_reserve(channel_pool_side *p, uint32_t len, uint32_t *slot,
                                      uint32_t *offset);

/* Whether the channel may wait for a slot when the ring is full: not after
 * a wait in vain (until a slot comes free), and not while this process
 * holds shared messages it has not said it read (holding: inside the call
 * that was handed them; or a count not told yet), which hold slots, maybe
 * the very ones it would wait for. */
int channel_pool_may_wait(const channel_pool_side *p, int holding);

/* One more look at a full ring, after setting the waiting word so that a
 * slot freed in between is not missed (then channel_pool_sleep). Returns
 * as channel_pool_publish_reserve. */
uint8_t *channel_pool_reserve_again(channel_pool_side *p, uint32_t len, uint32_t *slot,
                                    uint32_t *offset);

/* Sleeps until the broker frees a slot or timeout_ns passes. */
void channel_pool_sleep(channel_pool_side *p, uint64_t timeout_ns);

/* The wait found no slot in time: no more waiting until one is free. */
void channel_pool_stalled(channel_pool_side *p);

/* Writes the payload at to (from a reservation above), and into
 * the frame at at (size head_len + FRAME_PUBLISH_DESC_SIZE, reserved on the
 * channel) the header and names with the new size and FRAME_FLAG_SHARED,
 * then the descriptor; marks the slot sent. */
void channel_pool_publish_commit(channel_pool_side *p, uint8_t *at, const uint8_t *head,
                                 size_t head_len, uint8_t *to, const uint8_t *payload,
                                 size_t payload_len, uint32_t slot, uint32_t offset);

#endif
