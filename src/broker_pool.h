/* broker_pool: the broker's books on the shared pool (shm.h).
 *
 * The broker gives each connection that can have one a region of the pool.
 * A publisher writes a large payload into a slot of its region and publishes
 * a descriptor; the broker hands a descriptor to each subscriber that reads
 * the pool. These books say, per slot, how many of those deliveries are
 * unread (the slot goes back to its publisher at zero) and, per region, the
 * deliveries its process was handed and has not read, oldest first. A
 * process reads its deliveries in order and says how many it has read all
 * told, so taking that many off the front of its list says which slots are
 * free again.
 *
 * A region outlives its connection: it is free again only once what it
 * published is read and its process is done with it (said so in its
 * header, or exited). No timer takes anything back: a process cut off but
 * alive may still read what it was handed, and write into its region,
 * however long it was stuck.
 *
 * Region numbers r are 0..SHM_REGIONS-1; a pool-wide slot id is
 * r * SHM_SLOTS + slot. No socket and no loop here: the broker calls in. */
#ifndef CLUSTER_STORE_BROKER_POOL_H
#define CLUSTER_STORE_BROKER_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "shm.h"

/* Shared deliveries one process may have unread before it gets copies
 * instead: bounds the books for a reader that never says it read (4 bytes
 * each). */
#define BROKER_HANDED_MAX 65536u

/* One region of the pool and the books on it. As a publisher's region:
 * which slots are in flight and how many deliveries of each are unread. As
 * a subscriber's: the shared deliveries handed to its process and not yet
 * read, oldest first (pool-wide slot ids). */
typedef struct broker_region {
  int taken;       /* given to a connection and not free again yet */
  int attached;    /* ... and that connection is still open */
  uint64_t busy;   /* its slots in flight */
  uint32_t unread; /* deliveries of its payloads not yet read, all slots */
  uint32_t slot_unread[SHM_SLOTS];
  uint32_t *handed; /* ring of the deliveries its process has not read */
  size_t handed_head;
  size_t handed_count;
  size_t handed_capacity;
  uint64_t consumed;   /* the process's count, as last read */
  uint32_t generation; /* which use of the region this is (in the offer and the header) */
  uint32_t pid;        /* its process, once its connection is gone (0: unknown) */
  int pidfd;           /* ... as a pidfd, when the system has them (-1: none) */
  int done;            /* ... and that process is done with the region (closed or exited) */
} broker_region;

typedef struct broker_pool {
  shm_map *map; /* NULL: no shared memory, every payload takes the sockets */
  size_t regions_taken;
  int no_pidfd; /* pidfd_open is missing here (or under valgrind): kill() checks pids */
  broker_region regions[SHM_REGIONS];
} broker_pool;

/* Empty books; with shared, on a new pool when the system has shared
 * memory (else map stays NULL and broker_pool_take gives nothing). */
void broker_pool_init(broker_pool *p, int shared);
/* Frees the books, closes the pidfds and lets go of the pool. */
void broker_pool_destroy(broker_pool *p);

/* A free region for a new connection (attached, its generation bumped and
 * written in its header before the offer goes), or -1: no pool, or all
 * taken. */
int broker_pool_take(broker_pool *p);
/* The offer of r never reached its process: r is free again at once. */
void broker_pool_withdraw(broker_pool *p, uint32_t r);
/* r's connection is gone. Its process is pid (0: the pid in r's header),
 * held as a pidfd from here on, so that a later process given the same pid
 * is not taken for it. r stays until what it published is read and its
 * process is done with it; what it was handed comes back as it reads it
 * (broker_pool_collect_gone), and all of it once it is done. */
void broker_pool_release(broker_pool *p, uint32_t r, uint32_t pid);
/* Says in r's header why its connection is cut off (SHM_CUT_*). */
void broker_pool_say_cut(broker_pool *p, uint32_t r, uint32_t why);

/* A shared publish from region r's slot: whether the slot is in flight
 * already (the publisher may not reuse it yet); marks it in flight while
 * it is routed; and after routing, gives it back at once if nothing was
 * handed out of it. */
int broker_pool_slot_busy(const broker_pool *p, uint32_t r, uint32_t slot);
void broker_pool_slot_take(broker_pool *p, uint32_t r, uint32_t slot);
void broker_pool_slot_settle(broker_pool *p, uint32_t r, uint32_t slot);

/* Room to hand region r's process one more delivery: 0, or -1 when it has
 * BROKER_HANDED_MAX unread or memory runs out (it then gets a copy). */
int broker_pool_hand_room(broker_pool *p, uint32_t r);
/* Hands the payload in pool-wide slot id to region r's process (after
 * broker_pool_hand_room said yes): one more unread delivery of it. */
void broker_pool_hand(broker_pool *p, uint32_t r, uint32_t id);

/* Region r's process has read consumed deliveries all told: takes that many
 * off the front of its list (every one, with everything), freeing the slots
 * and regions nothing refers to any more. -1 when it counted more than it
 * was handed: the process is broken, and everything is taken back. */
int broker_pool_collect(broker_pool *p, uint32_t r, uint64_t consumed, int everything);
/* Once a loop turn, for the regions whose connection is gone: what their
 * processes still read, as each header counts it, and everything once the
 * process is done with its region (said so, or exited). */
void broker_pool_collect_gone(broker_pool *p);
/* Whether a gone connection's region waits for its process to exit or say
 * it is done (an exit brings no event: the broker must look now and then). */
int broker_pool_waiting(const broker_pool *p);

#endif
