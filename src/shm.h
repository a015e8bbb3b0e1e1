/* shm: the shared pool that large payloads travel through.
 *
 * A payload of BUFFER_PARTS_MIN bytes or more costs mostly copies when it
 * goes through sockets: into the kernel from the publisher, out of it in
 * the broker, into it again once per subscriber, and out of it in every
 * subscriber. With the pool it is written once, by the publisher, into
 * memory every process of the cluster has mapped, and only a small
 * descriptor goes through the sockets; each subscriber reads the payload
 * where it lies.
 *
 * The broker creates the pool (a memfd) and hands it to each process right
 * after its hello, with the descriptor passed over the socket
 * (fdpass_send_copy, fdpass.h). The pool is
 * cut into regions of SHM_REGION_SIZE bytes, one per connection:
 *
 *   - the region's process writes payloads into its region's data area,
 *     which it allocates as a ring (shm_writer below), and counts in the
 *     region's header how many shared deliveries it has finished reading;
 *   - the broker alone decides when a payload's memory may be reused: it
 *     counts the deliveries it handed out per slot (in its own memory, not
 *     in the pool) and, once every subscriber has read it, clears the
 *     slot's busy word in the publisher's header.
 *
 * Every other process maps the pool read-only, and its own region writable,
 * so a stray write in a process cannot spoil other processes' payloads. That
 * guards against mistakes, not malice: a process holds the pool's
 * descriptor, and runs as the same user as the master anyway. The pool is
 * sealed against shrinking and growing, so no process can make the others'
 * mappings fault, and the broker trusts nothing it reads from the pool
 * beyond the consumed count, which it checks against what it handed out.
 *
 * The pool is an optimisation only: without it (no memfd, a region shortage,
 * a ring that is full) payloads go through the sockets as before. */
#ifndef CLUSTER_STORE_SHM_H
#define CLUSTER_STORE_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHM_REGIONS 64u                      /* connections that can have a region */
#define SHM_REGION_SIZE (4u * 1024u * 1024u) /* bytes a region spans, header included */
#define SHM_HEADER_SIZE 4096u                /* the region's header, then its data area */
#define SHM_DATA_SIZE (SHM_REGION_SIZE - SHM_HEADER_SIZE)
#define SHM_SLOTS 64u                   /* payloads of one publisher in flight */
#define SHM_PAYLOAD_MAX (1024u * 1024u) /* larger payloads take the sockets */
#define SHM_ALIGN 64u                   /* payloads start on a cache line */
#define SHM_POOL_SIZE ((uint64_t)SHM_REGIONS * SHM_REGION_SIZE)

/* The descriptors and the offer that travel in frames are frame.h's
 * (frame_publish_desc, frame_message_desc, frame_offer). */

/* Why the broker cut a connection off, in its region's header: the process
 * finds its channel closed and can say why. */
enum shm_cut { SHM_CUT_NONE = 0, SHM_CUT_STALLED = 1, SHM_CUT_QUEUE_LIMIT = 2 };

/* A region's consumed count carries the region's generation (which use of
 * the region it is, from the offer) in its top bits, so the broker reads a
 * count only as the use of the region it was written for. The broker gives
 * a region again only once its process is done with it (shm_header below),
 * so this is the second line. A count of SHM_COUNT_ALL means: this process
 * will read nothing more. */
#define SHM_COUNT_BITS 40u
#define SHM_COUNT_ALL ((UINT64_C(1) << SHM_COUNT_BITS) - 1)
#define SHM_GENERATION_MASK ((UINT64_C(1) << (64u - SHM_COUNT_BITS)) - 1)
static inline uint64_t shm_consumed_pack(uint32_t generation, uint64_t count) {
  return ((uint64_t)(generation & SHM_GENERATION_MASK) << SHM_COUNT_BITS) |
         (count < SHM_COUNT_ALL ? count : SHM_COUNT_ALL);
}

/* A region's header. The consumed count (shm_consumed_pack) sits on a
 * line of its own: the process writes it (and tells the broker the same in
 * a FRAME_SHARED_READ; the broker reads it here only once the connection is
 * gone). The busy words are written by both (the process sets a slot's word, the broker
 * clears it), and so is the waiting word: the process sets it when its
 * ring is full and sleeps on it (a futex), the broker clears it and wakes
 * the process when it frees a slot.
 *
 * The broker gives a region to a new connection only once the last one's
 * process is provably done with it (it said so with SHM_COUNT_ALL, or it
 * exited: see broker_pool.h), so a process cut off but alive keeps its region.
 * As a second line, the process checks before each payload it writes that
 * the broker has not cut it off and that the region's generation is still
 * the one it was offered. */
typedef struct shm_header {
  _Atomic uint64_t consumed; /* shared deliveries this process has finished reading */
  uint8_t pad[56];
  _Atomic uint32_t waiting;
  _Atomic uint32_t cut; /* why the broker cut this process off (SHM_CUT_*), before it hangs up */
  _Atomic uint32_t generation; /* which use of the region (the broker's, as in the offer) */
  _Atomic uint32_t pid;        /* its process (the process's, once it mapped the pool) */
  uint8_t pad2[48];
  _Atomic uint32_t busy[SHM_SLOTS]; /* 1 from the process's write until the broker frees it */
} shm_header;

/* The whole pool as one process maps it. */
typedef struct shm_map {
  int fd;
  uint8_t *base;   /* the whole pool: read-only in a process, writable in the broker */
  uint8_t *region; /* this process's region, writable (NULL in the broker) */
  uint32_t region_index;
  _Atomic int refs; /* the channel and each of JavaScript's views hold one */
} shm_map;

/* Broker side: creates the pool's memory and maps it writable. Returns NULL
 * (with errno) when shared memory is not available here; the cluster then
 * works without it. */
shm_map *shm_pool_create(void);

/* Process side: maps the pool received as fd (owned from then on, even on
 * failure) read-only, and region index writable. NULL with errno. */
shm_map *shm_pool_map(int fd, uint32_t region_index);

/* Reference counting; the last release unmaps and closes. */
void shm_map_retain(shm_map *m);
void shm_map_release(shm_map *m);

static inline shm_header *shm_header_at(uint8_t *base, uint32_t region) {
  return (shm_header *)(void *)(base + (size_t)region * SHM_REGION_SIZE);
}
static inline uint64_t shm_data_offset(uint32_t region) {
  return (uint64_t)region * SHM_REGION_SIZE + SHM_HEADER_SIZE;
}

/* Resets a region's header for a new owner and gives the memory of its data
 * area back to the system (broker side). */
void shm_region_reset(shm_map *m, uint32_t region);

/* ---- the process's ring of payloads in its region ---------------------- */

/* Payloads are placed one after the other in the data area and reclaimed
 * in the order they were written, each once the broker has freed its slot;
 * one freed early waits for the older ones. */
typedef struct shm_writer {
  shm_map *map;
  shm_header *header;
  uint8_t *data;
  uint32_t count;            /* payloads in flight, oldest first in order[] */
  uint32_t first;            /* index in order[] of the oldest */
  uint32_t tail;             /* where the next payload goes, unless it wraps */
  uint64_t used;             /* slots in flight, one bit each */
  uint32_t order[SHM_SLOTS]; /* slot of each payload in flight, in write order */
  uint32_t start[SHM_SLOTS]; /* where each slot's payload starts in the data area */
} shm_writer;

void shm_writer_init(shm_writer *w, shm_map *map);

/* Room for a payload of len bytes: returns where to write it and stores the
 * slot and the offset in the data area, or returns NULL when the ring has
 * no room (or no slot) now. shm_writer_commit marks it sent; a reservation
 * that is not committed is simply forgotten. */
uint8_t *shm_writer_reserve(shm_writer *w, uint32_t len, uint32_t *slot, uint32_t *offset);
void shm_writer_commit(shm_writer *w, uint32_t slot, uint32_t offset, uint32_t len);

/* Payloads the broker has not freed yet. */
uint32_t shm_writer_in_flight(shm_writer *w);

/* The ring is full: sleeps until the broker frees a slot or timeout_ns
 * passes (the caller checks again either way). Set waiting before looking
 * at the ring one last time, so a slot freed in between is not missed. */
void shm_writer_wait(shm_writer *w, uint64_t timeout_ns);
static inline void shm_writer_want(shm_writer *w) {
  atomic_store(&w->header->waiting, 1);
  /* The store above before the loads of the busy words that follow (a
   * store then a load: only a full fence orders them everywhere). */
  atomic_thread_fence(memory_order_seq_cst);
}

/* Broker side, after freeing a slot of region: wakes its process if it
 * waits for one. */
void shm_wake(shm_map *m, uint32_t region);

#endif
