/* channel_pool: a process's side of the shared pool (see channel_pool.h).
 *
 * Everything here runs on the process's loop thread, as the channel does;
 * what it shares with the broker (the consumed count, the busy and waiting
 * words, the cut reason and the generation) is in the region's header, read
 * and written with atomics (shm.h says who writes which). */
#define _GNU_SOURCE
#include "channel_pool.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

void channel_pool_init(channel_pool_side *p) {
  memset(p, 0, sizeof(*p));
  p->fd = -1;
}

void channel_pool_free(channel_pool_side *p) {
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  channel_pool_abandon(p);
  shm_map_release(p->map);
  p->map = NULL;
}

void channel_pool_take_offer(channel_pool_side *p, const frame *f) {
  int fd = p->fd;
  p->fd = -1;
  frame_offer offer;
  if (p->map || fd < 0 || frame_offer_parse(f->payload, f->payload_len, &offer) != 0) {
    if (fd >= 0) close(fd);
    return;
  }
  p->map = shm_pool_map(fd, offer.region);
  if (!p->map) return;
  shm_writer_init(&p->writer, p->map);
  p->generation = offer.generation;
  /* The broker holds the region for this process until it exits, should
   * the channel go before the process is done with it. */
  atomic_store_explicit(&p->writer.header->pid, (uint32_t)getpid(), memory_order_release);
}

int channel_pool_message_valid(const channel_pool_side *p, const frame *f) {
  frame_message_desc d;
  return p->reading && frame_message_desc_parse(f->payload, f->payload_len, &d) == 0;
}

const char *channel_pool_cut_reason(const channel_pool_side *p) {
  uint32_t cut = SHM_CUT_NONE;
  if (p->map) cut = atomic_load_explicit(&p->writer.header->cut, memory_order_acquire);
  if (cut == SHM_CUT_STALLED)
    return "the master cut this process off: it stopped reading its channel while messages "
           "waited for it (a blocked event loop?); the stores reconnect by themselves, and "
           "messages published meanwhile are lost to this process";
  if (cut == SHM_CUT_QUEUE_LIMIT)
    return "the master cut this process off: more than queueLimit bytes waited for it (it reads "
           "slower than others publish: raise queueLimit or publish less); the stores reconnect "
           "by themselves, and messages published meanwhile are lost to this process";
  return NULL;
}

/* The broker gives no region away while its process lives (shm.h): this
 * is the second line. */
int channel_pool_region_ours(const channel_pool_side *p) {
  if (!p->map) return 0;
  const shm_header *h = p->writer.header;
  return atomic_load_explicit(&h->cut, memory_order_acquire) == SHM_CUT_NONE &&
         atomic_load_explicit(&h->generation, memory_order_acquire) == p->generation;
}

/* ---- the read count -------------------------------------------------------- */

void channel_pool_abandon(channel_pool_side *p) {
  if (!p->map || p->abandoned) return;
  atomic_store_explicit(&p->writer.header->consumed,
                        shm_consumed_pack(p->generation, SHM_COUNT_ALL), memory_order_release);
  p->abandoned = 1;
}

void channel_pool_tell_read(channel_pool_side *p, int closed, int lent, buffer *out) {
  if (!p->map || p->abandoned) return;
  if (closed && !lent) {
    /* Closed, and no call is reading: whatever was sent here and not read
     * never will be (the loop hands nothing over after the close). */
    channel_pool_abandon(p);
    return;
  }
  if (p->read == p->read_told) return;
  atomic_store_explicit(&p->writer.header->consumed, shm_consumed_pack(p->generation, p->read),
                        memory_order_release);
  p->read_told = p->read;
  if (closed) return;
  uint8_t count[FRAME_READ_COUNT_SIZE];
  frame_read_count_write(count, p->read);
  uint32_t size = frame_size(0, 0, sizeof(count));
  uint8_t *at = buffer_reserve(out, size);
  if (!at) return; /* the next count says it, or the header does */
  frame_encode(at, FRAME_SHARED_READ, 0, 0, 0, NULL, 0, NULL, 0, count, sizeof(count));
  buffer_commit(out, size);
}

/* ---- the publish ring ------------------------------------------------------ */

int channel_pool_publish_fits(const channel_pool_side *p, const uint8_t *head, size_t head_len,
                              size_t payload_len, uint32_t max_frame_size) {
  frame_header h;
  if (!p->map || head_len < FRAME_HEADER_SIZE) return 0;
  frame_header_read(head, &h);
  /* A publish's header and its names, nothing else: what
   * frame_encode_publish_shared takes. */
  return h.type == FRAME_PUBLISH && (uint64_t)h.a_len + h.b_len == head_len - FRAME_HEADER_SIZE &&
         payload_len <= SHM_PAYLOAD_MAX && head_len + FRAME_PUBLISH_DESC_SIZE <= max_frame_size &&
         channel_pool_region_ours(p);
}

uint8_t *channel_pool_publish_reserve(channel_pool_side *p, uint32_t len, uint32_t *slot,
                                      uint32_t *offset) {
  uint8_t *to = shm_writer_reserve(&p->writer, len, slot, offset);
  if (to) p->ring_stalled = 0;
  return to;
}

int channel_pool_may_wait(const channel_pool_side *p, int holding) {
  return !p->ring_stalled && !holding && p->read == p->read_told;
}

uint8_t *channel_pool_reserve_again(channel_pool_side *p, uint32_t len, uint32_t *slot,
                                    uint32_t *offset) {
  shm_writer_want(&p->writer);
  return channel_pool_publish_reserve(p, len, slot, offset);
}

void channel_pool_sleep(channel_pool_side *p, uint64_t timeout_ns) {
  shm_writer_wait(&p->writer, timeout_ns);
}

void channel_pool_stalled(channel_pool_side *p) {
  p->ring_stalled = 1;
}

void channel_pool_publish_commit(channel_pool_side *p, uint8_t *at, const uint8_t *head,
                                 size_t head_len, uint8_t *to, const uint8_t *payload,
                                 size_t payload_len, uint32_t slot, uint32_t offset) {
  memcpy(to, payload, payload_len);
  frame_publish_desc d = {slot, offset, (uint32_t)payload_len};
  /* Cannot fail: channel_pool_publish_fits checked the head. */
  (void)frame_encode_publish_shared(at, head, head_len, &d);
  shm_writer_commit(&p->writer, slot, offset, (uint32_t)payload_len);
}
