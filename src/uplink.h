/* uplink: one machine's broker joined to the others' through Redis.
 *
 * The uplink lives on the broker's thread and loop, and holds the
 * machine's two connections to Redis: the command link (publishes, the
 * per-client data, interest notices, pings) and the subscriber link
 * (SUBSCRIBE, and the messages Redis pushes). No worker talks to Redis.
 *
 * Topics by interest. For each topic some local process subscribes to,
 * the subscriber link subscribes to PREFIX:t:TOPIC, and the machine says
 * so to the others on the control channel PREFIX:c; each machine keeps
 * the set of topics the others want (their interest), and a local publish
 * goes to Redis only for a topic another machine wants. A message carries
 * the origin machine's id, so no machine delivers its own twice. A
 * machine that joins (or comes back) says hello: the others forget what
 * they knew of it and tell it what they want, all on the one control
 * channel, whose order Redis keeps. Order per publisher holds everywhere:
 * a broker sends its publishes on one connection, in the order it routes
 * them.
 *
 * Per-client data: each client's data lives on one machine, its owner
 * (the first to write it), in its broker's own store; Redis holds only
 * who owns each client (PREFIX:o:CLIENT). Other machines send their
 * requests for it to the owner through Redis, one at a time per client,
 * and the owner's order is the one order (uplink_owner.c). While Redis is
 * away the broker's own store answers (this machine's view).
 *
 * Barriers. A SYNC with FRAME_FLAG_SETTLE is answered once everything the
 * broker sent Redis before it has been answered (a PING on the command
 * link), so a worker that must not answer its client before other machines
 * can see what it published waits for that. A SYNC with
 * FRAME_FLAG_BARRIER, after the local barrier, sends a PING on the
 * subscriber link and is answered when the PONG comes back, after every
 * message Redis had pushed to this machine before. A barrier is answered
 * OK only when its PONG came: however slow Redis is, never earlier. If
 * the link breaks, or Redis sends nothing for UPLINK_STALL_MS and is
 * given up on, the barriers waiting are answered with an error (the
 * barrier did not hold) and counted with the lost requests; so no barrier
 * waits longer than UPLINK_BARRIER_MS. While the uplink is not up, a SYNC
 * is the local barrier alone: each machine is on its own then.
 *
 * Faults: a link that fails (refused, reset, not Redis, wrong password,
 * Redis stops answering) closes both; the broker goes on alone, and the
 * uplink tries again with backoff, restoring its subscriptions and
 * interest. What is published meanwhile does not leave the machine, and
 * is counted (at-most-once, like Redis pub/sub). Output waiting for Redis
 * is bounded (UPLINK_QUEUE_LIMIT): past it publishes are dropped and
 * counted, and a Redis that answers nothing for UPLINK_STALL_MS is given
 * up on. */
#ifndef CLUSTER_STORE_UPLINK_H
#define CLUSTER_STORE_UPLINK_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct broker broker;
typedef struct broker_conn broker_conn;
typedef struct uplink uplink;

/* Topics named with this prefix stay on their machine: never subscribed
 * to, published or told of across machines (the socket.io 4 hand-off's,
 * whose names are pids, unique on one machine only). */
#define UPLINK_LOCAL_PREFIX "socket.io-cluster-store:local:"
/* Whether a topic stays on its machine. */
int uplink_topic_is_local(const uint8_t *topic, size_t len);

#define UPLINK_QUEUE_LIMIT (16u * 1024u * 1024u) /* bytes waiting for Redis, per link */
#define UPLINK_STALL_MS 5000u /* a Redis that sends nothing this long is given up on */
#define UPLINK_TICK_MS 100u   /* how often the uplink looks at the time (retries, stalls) */
/* The longest a SYNC may wait for Redis before it is answered (then with
 * an error when Redis did not answer it); a worker waits that long on top
 * of its own syncTimeout. */
#define UPLINK_BARRIER_MS (UPLINK_STALL_MS + 2u * UPLINK_TICK_MS)
#define UPLINK_PRESENCE_MS 10000u /* how often a machine says it is there */
#define UPLINK_BACKOFF_MIN_MS 100u
#define UPLINK_BACKOFF_MAX_MS 5000u

typedef struct uplink_options {
  char host[256];
  uint32_t port;
  char user[256];     /* "" : no ACL user (AUTH password) */
  char password[512]; /* "" : no AUTH */
  uint32_t db;
  char prefix[128];
  uint32_t presence_ms; /* how often a machine says it is there; 0: UPLINK_PRESENCE_MS */
} uplink_options;

/* The state stats() says (uplinkState). */
#define UPLINK_STATE_LIST(X)                                                                       \
  X(OFF, 0)        /* no uplink configured */                                                      \
  X(CONNECTING, 1) /* connecting, or saying hello */                                               \
  X(UP, 2)                                                                                         \
  X(DOWN, 3) /* failed: waiting to try again */

#define UPLINK_STATE_ENUM_(name, value) UPLINK_##name = value,
enum uplink_state { UPLINK_STATE_LIST(UPLINK_STATE_ENUM_) };

/* The last fault (uplinkFault), also while up again. */
#define UPLINK_FAULT_LIST(X)                                                                       \
  X(NONE, 0)                                                                                       \
  X(UNREACHABLE, 1) /* name not found, connection refused or timed out */                          \
  X(AUTH, 2)        /* wrong password or user, or a password is needed */                          \
  X(NOT_REDIS, 3)   /* what answers on the port does not speak RESP */                             \
  X(REFUSED, 4)     /* Redis refused a command of the handshake (SELECT, ...) */                   \
  X(LOST, 5)        /* the connection closed or broke */                                           \
  X(STALLED, 6)     /* Redis stopped answering */

#define UPLINK_FAULT_ENUM_(name, value) UPLINK_FAULT_##name = value,
enum uplink_fault { UPLINK_FAULT_LIST(UPLINK_FAULT_ENUM_) };

/* An uplink on b's loop (created before the loop runs); it starts
 * connecting when the loop does. 0, or -1 with a message in err. */
int uplink_create(uplink **out, broker *b, const uplink_options *options, char *err,
                  size_t err_len);
/* Closes its handles (the loop then runs their close callbacks). */
void uplink_stop(uplink *u);
/* Frees it, once the loop has closed its handles. */
void uplink_free(uplink *u);

/* What the last fault was, as text (empty: none); any thread. */
void uplink_fault_text(uplink *u, char *out, size_t out_len);

/* ---- hooks for the broker (its thread) ------------------------------------ */

/* Writes what waits for Redis (once a loop turn). */
void uplink_flush(uplink *u);
/* A local publish was routed: to Redis when another machine wants it. */
void uplink_publish(uplink *u, const frame *f);
/* c's endpoint subscribed to topic: 1 when the uplink answers request_id
 * itself (once the subscription is live across machines), 0 when the
 * broker answers now. */
int uplink_subscribed(uplink *u, const uint8_t *topic, size_t len, broker_conn *c,
                      uint32_t request_id);
/* The machine's last subscriber of topic left. */
void uplink_topic_gone(uplink *u, const uint8_t *topic, size_t len);
/* A local member (broker_presence.c) joined topic (joined 1) or left it:
 * the other machines are told (uplink_member.c). */
void uplink_member_local(uplink *u, const uint8_t *topic, size_t len, const uint8_t *tag,
                         size_t tag_len, int joined);

/* The members of a topic on the other machines. */
typedef struct uplink_member {
  uint8_t origin[8]; /* the machine's */
  uint32_t tag_len;
  uint8_t *tag;
} uplink_member;

typedef struct uplink_members {
  size_t count, capacity;
  uplink_member *list;
} uplink_members;

/* Topic's members on the other machines, or NULL when none is known. */
const uplink_members *uplink_members_find(uplink *u, const uint8_t *topic, size_t len);
/* A per-client data request (KV_GET to KV_PERSIST): 1 when the uplink
 * answers it (now or later), 0 when the broker's own store answers. */
int uplink_kv(uplink *u, broker_conn *c, const frame *f);
/* A SYNC: 1 when the uplink answers it later (see the barriers above). */
int uplink_sync(uplink *u, broker_conn *c, const frame *f);
/* c is being freed: nothing may be answered to it any more. */
void uplink_conn_gone(uplink *u, broker_conn *c);
/* Adds its counters (FRAME_STAT_UPLINK_*). */
void uplink_fill_stats(uplink *u, uint64_t *counters);

#endif
