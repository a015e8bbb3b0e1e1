/* broker: the cluster's shared state, served on a thread of its own.
 *
 * One broker runs in the master (or in a lone process). Every process that
 * uses the store holds one end of a private AF_UNIX socketpair whose other
 * end the broker owns; over it flow the frames of frame.h. The broker routes
 * PUBLISH frames to the subscribers of the topic (never back to the
 * publishing endpoint), keeps the key/value namespaces of kv.h with their
 * expiry, and answers requests in the order they arrive on a connection.
 * A publish may ask to be retained: it is kept, bounded, in its topic's
 * log (retain.h) under an offset, for a process that missed it to read
 * later; a namespace may be bound to a connection, so it outlives the
 * process only by a given time (frame.h says how).
 *
 * It runs its own libuv loop, so routing goes on while the master's
 * JavaScript is busy. Output to each connection is queued and written in
 * large batches (large payloads go to an idle subscriber's socket at once).
 * Order is kept per publisher, not across publishers: a message from a
 * publisher with nothing queued for a reader overtakes the others' queued
 * messages (up to 64 KiB of such), so a quiet publisher's message does not
 * wait behind a busy one's; nothing overtakes a reply.
 * Flow control: a connection with more than 2 MiB waiting (or half the
 * queue limit, if less: it reads slower than others publish) is congested.
 * A publish that would add to a congested reader's queue (one that cannot
 * overtake it) waits, and with it
 * everything its connection sent after it (frames are handled in order), so
 * the publishers that feed a slow reader slow down to its pace instead of
 * overrunning it; everyone else is read and answered as usual (requests,
 * barriers, publishes to readers that keep up). A barrier still takes in
 * everything already sent, waiting publishes included. A congested
 * connection that takes nothing for stall_ms (it stopped reading), or whose
 * queue reaches the limit, is cut off, so the broker's memory stays bounded
 * and the others go on.
 *
 * Each process's hello states the largest frame it takes (at least
 * FRAME_MIN_MAX_SIZE); the broker sends it nothing larger: a message over
 * it is not delivered to that process, an answer over it becomes an error.
 *
 * Words (one thing each): a *topic* is a pub/sub name and its subscribers;
 * a process's *channel* is its socket to the broker, whose other end is the
 * broker's *connection*; a connection is *congested* when more than the high
 * water mark waits in its output, and *held* when its next frame is a publish
 * that waits for a congested reader; to *flush* is to write queued output;
 * the *uplink* (uplink.h, with broker_options.uplink) joins this broker to
 * other machines' through Redis.
 *
 * broker_start, broker_attach, broker_get_stats and broker_stop may be
 * called from any one thread (node's main thread, in practice). */
#ifndef CLUSTER_STORE_BROKER_H
#define CLUSTER_STORE_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct broker broker;

typedef struct broker_options {
  uint32_t max_frame_size;  /* largest frame accepted or sent */
  uint64_t queue_limit;     /* output bytes queued for one connection before it is cut off */
  uint32_t stall_ms;        /* how long a congested connection may make no progress */
  int shared;               /* large payloads through the shared pool (shm.h), when available */
  uint64_t retain_messages; /* retained messages held at most, all topics (retain.h) */
  uint64_t retain_bytes;    /* bytes of retained messages held at most */
  uint64_t retain_ms;       /* a retained message is dropped once this old */
  const struct uplink_options *uplink; /* join other machines through Redis (uplink.h); NULL: not */
} broker_options;

/* The defaults JavaScript also takes (frame.h's FRAME_DEFAULT_LIST). */
#define BROKER_DEFAULT_MAX_FRAME_SIZE FRAME_DEFAULT_MAX_SIZE
#define BROKER_DEFAULT_QUEUE_LIMIT FRAME_DEFAULT_QUEUE_LIMIT
#define BROKER_DEFAULT_STALL_MS 2000u
#define BROKER_DEFAULT_RETAIN_MESSAGES FRAME_DEFAULT_RETAIN_MESSAGES
#define BROKER_DEFAULT_RETAIN_BYTES FRAME_DEFAULT_RETAIN_BYTES
#define BROKER_DEFAULT_RETAIN_MS FRAME_DEFAULT_RETAIN_MS

void broker_options_default(broker_options *options);

/* Starts the broker thread. Returns 0, or -1 with a message in err. */
int broker_start(broker **out, const broker_options *options, char *err, size_t err_len);

/* For tests and fuzzing: a broker with no thread of its own, driven by the
 * caller with broker_run_once (one non-blocking turn of its loop). Stopped
 * and freed with broker_stop like any other. */
int broker_create(broker **out, const broker_options *options, char *err, size_t err_len);
void broker_run_once(broker *b);

/* Hands one end of a connected AF_UNIX stream socket to the broker, which
 * owns it from then on (even on failure). Returns 0 or -1 with errno set. */
int broker_attach(broker *b, int fd);

/* Makes a socketpair, attaches one end, and stores the other (close-on-exec,
 * blocking) in *peer_fd. Returns 0 or -1 with errno set. */
int broker_connect_pair(broker *b, int *peer_fd);

/* A snapshot of the counters listed in frame.h (FRAME_STAT_*). */
void broker_get_stats(broker *b, uint64_t out[FRAME_STATS_COUNT]);

/* The uplink's last fault as text ("" when there is none, or no uplink). */
void broker_uplink_fault(broker *b, char *out, size_t out_len);

/* Stops the thread, closes every connection and frees the broker. */
void broker_stop(broker *b);

#endif
