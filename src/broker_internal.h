/* broker_internal: what the broker's files share; not a contract for
 * anyone else (broker.h is the public one).
 *
 * The broker is split by concern, one prefix a file:
 *   broker.c        broker_*       the thread, the loop and its phases, the
 *                                  lifecycle, and request dispatch (what
 *                                  each frame type does), stats
 *   broker_conn.c   broker_conn_*  a connection: reading, the frame loop,
 *                                  writing, the output queues and the
 *                                  urgent lane, flow control (congested,
 *                                  held), stall checks, cutting off, reaping
 *   broker_pace.c   broker_pace_*  pacing by delay: how long a reader's
 *                                  queue stood, late shared readers, and
 *                                  the penalty of the publishers that fed them
 *   broker_topic.c  broker_topic_* subscriptions per topic, and routing a
 *                                  publish to the subscribers
 *   broker_pool.c   broker_pool_*  the shared pool's books (broker_pool.h)
 *   broker_presence.c broker_presence_* a topic's members: their tags,
 *                                  the list a new member gets, and the
 *                                  JOINED / LEFT the others get
 *   broker_retain.c broker_retain_* retained publishes and reads of the
 *                                  topics' logs (retain.h), the offsets
 *   broker_bind.c   broker_bind_*  namespaces bound to a connection's life,
 *                                  and taking a namespace (KV_TAKE)
 *   broker_handoff.c broker_handoff_* passing a descriptor on to one
 *                                  subscriber of a topic (FRAME_HANDOFF)
 *
 * The uplink (uplink.h) hooks in with a line each: a publish routed from a
 * process also goes to it, a machine's first subscriber of a topic and its
 * last one leaving tell it, per-client data requests and SYNCs may be
 * answered by it, a connection being freed is forgotten by it.
 *
 * Everything runs on the broker's thread (or the caller of
 * broker_run_once), except what broker.h says may be called from another
 * thread. A connection is never freed while a function here holds it: one
 * that fails is only marked dead, and reaped in the prepare phase. */
#ifndef CLUSTER_STORE_BROKER_INTERNAL_H
#define CLUSTER_STORE_BROKER_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"
#include "broker_pool.h"
#include "buffer.h"
#include "fdpass.h"
#include "frame.h"
#include "kv.h"
#include "retain.h"
#include "table.h"

/* Kernel buffers of a channel's sockets: what each end may receive, and
 * what the broker's end may send (or less: BROKER_SEND_BUFFER in
 * broker_conn.c); the process's end sends with BROKER_PROCESS_SEND_BUFFER. */
#define BROKER_SOCKET_BUFFER (1024 * 1024)
/* What a process's end may have in its socket, not yet read by the broker
 * (the kernel allows about twice this). Small for the reason the
 * process's own queue is (CHANNEL_HIGH_WATER in channel_internal.h): while
 * the broker holds a publisher back it does not read this socket, and a
 * reply the publisher sends waits behind all of it. */
#define BROKER_PROCESS_SEND_BUFFER (32 * 1024)
/* Publishers remembered per reader, so that each one's messages keep their
 * order while others' overtake them (the urgent lane): where in the
 * reader's queue each one's last message ends. */
#define BROKER_MARKS 8

typedef struct broker_conn broker_conn;

/* Where a publisher's last message in a reader's queue ends, counted in
 * bytes ever queued there; while the reader has not sent that far, the
 * publisher's next message must queue behind it. urgent_end: likewise in
 * the urgent lane, where urgent_bytes of the publisher's wait: past
 * BROKER_URGENT_SHARE its next message does not take the lane (a busy
 * publisher whose queue drained cannot fill the lane and shut the quiet
 * ones out of it). */
#define BROKER_URGENT_SHARE (8u * 1024u)
typedef struct broker_mark {
  const broker_conn *from;
  uint64_t end;
  uint64_t urgent_end;
  uint64_t urgent_bytes;
} broker_mark;

/* The broker's end of one process's channel. */
struct broker_conn {
  broker *broker;
  uv_poll_t poll;
  int fd;
  int poll_events;      /* what poll watches now (broker_conn_watch) */
  int greeted;          /* its hello came, and the broker's went */
  int dead;             /* failed, closed or cut off: reaped in the prepare phase */
  int queued_for_write; /* on the broker's write_list */
  size_t read_chunk;    /* grows while reads fill it, so busy peers get large reads */
  uint64_t skip;        /* bytes of a refused (oversized) frame still to discard */
  int blocked;          /* the socket is full: waiting for its writable event */
  int congested;        /* over the high water mark: publishes to it wait */
  int held;             /* its next frame is a publish to a congested reader: not read */
  uint32_t peer_max;    /* the largest frame its process takes, as its hello said */
  uint64_t progress;    /* loop time of the last write that took bytes */
  /* Pacing by delay (broker_pace.c); times are uv_hrtime()'s. */
  uint64_t standing_since;   /* when its queue was last empty (0: it is empty now) */
  int late;                  /* its feeders were held for how long its queue stood */
  int fed;                   /* feeder is set: a message reached it */
  const broker_conn *feeder; /* the publisher of its last message (compared, never followed) */
  uint64_t shared_at;        /* when a message from another publisher than the last one came */
  uint64_t paced_since;      /* as a publisher: held for a late reader since then (0: not) */
  uint64_t paying_until;     /* ... and held after it until then, its penalty (0: not) */
  buffer in;
  buffer out;
  buffer urgent;         /* messages that overtake out (BROKER_URGENT_MAX) */
  size_t out_front_left; /* bytes of the frame at out's front still to send (0: whole) */
  uint64_t urgent_sent;  /* bytes ever sent from urgent */
  uint64_t out_sent;     /* bytes ever sent from out */
  uint64_t control_end;  /* where out's last frame that is not a message ends */
  uint64_t unmarked_end; /* ... its last message whose publisher has no mark */
  broker_mark marks[BROKER_MARKS];
  broker_conn *prev;
  broker_conn *next;
  broker_conn *write_next;
  int region;           /* its region of the shared pool, or -1 */
  int shared_ready;     /* its process reads shared messages */
  uint32_t pid;         /* its process, as it said (0: not said) */
  uint32_t number;      /* says who published a MESSAGE (frame.h); never 0 */
  fdpass_queue fds_in;  /* descriptors received, for its HANDOFF frames (fdpass.h) */
  fdpass_queue fds_out; /* descriptors to go with its next write */
};

struct broker {
  broker_options options;
  uv_loop_t loop;
  uv_async_t wake;
  uv_prepare_t prepare; /* flushes output, reaps, collects, once a turn */
  uv_timer_t expiry_timer;
  uv_timer_t stall_timer;
  uint64_t stall_tick;     /* loop time of the stall timer's last tick */
  uv_timer_t region_timer; /* looks for the exit of gone connections' processes */
  uv_thread_t thread;
  int threaded;
  uv_mutex_t lock; /* guards pending_fds and stopping */
  int *pending_fds;
  size_t pending_count;
  size_t pending_capacity;
  int stopping;

  broker_conn *conns;      /* every connection, dead ones until reaped */
  broker_conn *write_list; /* connections with output to flush this turn */
  size_t dead_count;
  table *topics; /* broker_topic by name */
  kv *store;
  int draining;           /* a barrier takes in everything sent before it: nothing is held */
  int expiry_changed;     /* the expiry timer must be armed again */
  size_t congested_count; /* connections over the high water mark */
  int eased;              /* one stopped being congested or late: held input may go on */
  uint64_t clock;         /* uv_hrtime() lately: at the frame being handled, give or take */
  size_t standing_count;  /* connections whose queue is not empty */
  uint64_t shared_at;     /* the last time a reader was shared (broker_pace.c) */
  uv_timer_t pace_timer;  /* looks at the paced publishers again */
  uint32_t last_number;   /* the last connection's number (broker_conn.number) */

  uint64_t counters[FRAME_STATS_COUNT];
  _Atomic uint64_t snapshot[FRAME_STATS_COUNT];

  broker_pool pool;

  retain *retained;       /* the topics' logs (broker_retain.c) */
  uint64_t epoch;         /* this broker's, in every offset it gives */
  table *bindings;        /* broker_binding by namespace (broker_bind.c) */
  struct uplink *uplink;  /* the machine's link to the others (uplink.h), or NULL */
  uint32_t uplink_number; /* what its messages say their publisher is (broker_conn.number) */
};

/* One subscriber of a topic: a connection's endpoint. A member (frame.h)
 * also has a tag; a plain subscriber's is NULL. */
typedef struct broker_subscriber {
  broker_conn *conn;
  uint32_t endpoint;
  uint32_t tag_len;
  uint8_t *tag; /* owned; NULL: not a member */
} broker_subscriber;

/* A topic: its subscribers, in the order they subscribed. */
typedef struct broker_topic {
  size_t count;
  size_t capacity;
  broker_subscriber *subscribers;
} broker_topic;

/* ---- broker.c ----------------------------------------------------------- */

/* Does what frame f, from c (greeted), asks: routes a publish, answers a
 * request, keeps the books of the pool. */
void broker_handle(broker *b, broker_conn *c, const frame *f);

/* What a per-client data request (FRAME_KV_GET to FRAME_KV_PERSIST) gets:
 * its status, and the value of a GET (valid until the store changes) or a
 * text saying why it failed. */
typedef struct broker_kv_answer {
  uint8_t status;
  const void *value;
  size_t len;
} broker_kv_answer;

/* Applies such a request to the broker's own store. slot: where the caller
 * keeps the client's namespace (kv_slot_*), or NULL. */
void broker_kv_apply(broker *b, const frame *f, kv_namespace **slot, broker_kv_answer *out);
/* Answers c's hello: the broker's hello, and the offer of a region of the
 * shared pool when there is one to give. */
void broker_greet(broker_conn *c);
/* Starts the region timer when a gone connection's region waits for its
 * process (broker_pool_waiting). */
void broker_watch_regions(broker *b);

/* ---- broker_conn.c: a connection ------------------------------------------ */

/* A new connection on fd, which it owns from then on (closed on failure). */
void broker_conn_add(broker *b, int fd);
/* Marks c dead (reaped later, in the prepare phase); idempotent. */
void broker_conn_kill(broker_conn *c);
/* Queues a reply frame that says why, writes what the socket takes, and
 * kills c: the process can then tell the user what was wrong. */
void broker_conn_protocol_error(broker_conn *c, const char *why);
/* Reads what c's socket holds (up to budget bytes; a held connection only
 * while draining) and handles the complete frames (broker_conn_process). */
void broker_conn_read(broker_conn *c, size_t budget);
/* Handles c's complete input frames in order, until one must wait (held:
 * a publish to a congested reader) or the input runs out. */
void broker_conn_process(broker_conn *c);
/* Writes the output queued on every connection with some (one write each:
 * to flush is only this). */
void broker_conn_flush(broker *b);
/* Drops the subscriptions of the dead connections, releases their regions,
 * closes and frees them. */
void broker_conn_reap(broker *b);
/* The close callback of a connection's poll handle: frees it. */
void broker_conn_closed(uv_handle_t *handle);

/* Output. Bytes waiting in c's queues (out and urgent). */
size_t broker_conn_queued_bytes(const broker_conn *c);
/* Room for one frame of size bytes on lane (c's out or urgent), or NULL
 * when c cannot take it (dead, out of memory, or cut off for passing the
 * queue limit). broker_conn_reserve: on out. */
uint8_t *broker_conn_reserve_on(broker_conn *c, buffer *lane, uint32_t size);
uint8_t *broker_conn_reserve(broker_conn *c, uint32_t size);
/* After output was added to c's queues: congestion, early writes, and c
 * on the broker's list of connections to flush. broker_conn_committed:
 * commits size reserved bytes on out first. */
void broker_conn_queued(broker_conn *c);
void broker_conn_committed(broker_conn *c, uint32_t size);
/* A frame that is not a message was queued on out: no message may overtake
 * it (a reply says what happened before it, a hello comes first). */
void broker_conn_control_queued(broker_conn *c);
/* A message from `from` was queued on to's out: from's next one to `to`
 * must not overtake it. */
void broker_conn_mark(broker_conn *to, const broker_conn *from);
/* ... on to's urgent lane (size bytes): counted in from's share of it. */
void broker_conn_mark_urgent(broker_conn *to, const broker_conn *from, uint32_t size);
/* Whether messages from `from` wait in to's ordinary queue, out (as far
 * as its marks tell: one with no mark left counts as having none). Some in
 * the urgent lane only do not count: that is a quiet publisher's place. */
int broker_conn_queued_from(const broker_conn *to, const broker_conn *from);
/* Whether a message of size bytes from `from` may go to to's urgent lane,
 * ahead of what out holds. */
int broker_conn_may_overtake(const broker_conn *to, const broker_conn *from, uint32_t size);
/* Queues a reply to request_id (none when it is 0); one over the process's
 * frame limit becomes an error saying so. */
void broker_conn_reply(broker_conn *c, uint32_t request_id, uint8_t status, const void *payload,
                       size_t payload_len);
void broker_conn_reply_text(broker_conn *c, uint32_t request_id, uint8_t status, const char *text);

/* ---- broker_pace.c: pacing by delay --------------------------------------- */

/* c's queue is not empty (called when output is queued) / is empty (all
 * written, or c died). */
void broker_pace_standing(broker_conn *c);
void broker_pace_emptied(broker_conn *c);
/* A message from `from` is being delivered to `to`: a second publisher
 * makes it shared. */
static inline void broker_pace_fed(broker_conn *to, const broker_conn *from) {
  if (to->feeder == from && to->fed) return;
  if (to->fed) to->shared_at = to->broker->shared_at = to->broker->clock;
  to->feeder = from;
  to->fed = 1;
}
/* Whether some reader may be late now (cheap: before looking at a topic). */
int broker_pace_may_be_late(const broker *b);
/* Whether to is late: shared, reading, and its queue stood too long. */
int broker_pace_late(broker_conn *to);
/* c's next publish waits for a late reader. */
void broker_pace_held(broker_conn *c);
/* Whether c pays its penalty still: none of its input is handled. */
int broker_pace_paying(broker_conn *c);
/* c's next publish may go: if it waited for a late reader, its penalty
 * starts, and 1 says it waits that long more. */
int broker_pace_released(broker_conn *c);

/* ---- broker_handoff.c: descriptors passed on ------------------------------ */

/* Descriptors a connection may have received ahead of their frames, and
 * have waiting for its process, before it is cut off (for the first) or
 * refused more (for the second). */
#define BROKER_HANDOFF_IN_MAX (4u * FDPASS_PER_SEND)
#define BROKER_HANDOFF_OUT_MAX 1024u

/* A HANDOFF from c: takes its descriptor from c's queue and passes both on
 * to the topic's first live subscriber that is not the sender, or closes
 * the descriptor and says why. */
void broker_handoff(broker *b, broker_conn *c, const frame *f);
/* A frame of c's that is skipped unhandled (over the size limit): its
 * descriptor, when it carries one, is taken and closed. */
void broker_handoff_skip(broker_conn *c, uint8_t type);

/* ---- broker_topic.c: topics and routing ----------------------------------- */

/* The first subscriber of topic name that is live and not (from,
 * endpoint): its connection, with its endpoint in *out_endpoint; NULL
 * when there is none. */
broker_conn *broker_topic_first(broker *b, const uint8_t *name, size_t name_len,
                                const broker_conn *from, uint32_t endpoint, uint32_t *out_endpoint);

/* Frees a topic (a table value; ctx unused). */
void broker_topic_free(void *value, void *ctx);
/* Subscribes c's endpoint f->endpoint to the topic f->a (once: again is a
 * no-op), as a member when f's payload is a tag (the other members are
 * told). 0, -1 when out of memory (nothing changed), -2 when the payload
 * is not a tag (over FRAME_TAG_MAX). */
int broker_topic_subscribe(broker *b, const frame *f, broker_conn *c);
/* Unsubscribes c's endpoint f->endpoint from the topic f->a, if it was. */
void broker_topic_unsubscribe(broker *b, const frame *f, broker_conn *c);
/* Drops c's endpoint from every topic (it closed: FRAME_CLOSE). */
void broker_topic_drop_endpoint(broker *b, broker_conn *c, uint32_t endpoint);
/* Drops the subscriptions of every dead connection, in one sweep. */
void broker_topic_drop_dead(broker *b);
/* Routes f, whose payload is in hand, to the subscribers of its topic,
 * never back to the publishing endpoint (with FRAME_FLAG_REMOTE, to none of
 * the publishing connection's endpoints). shared_id: the pool-wide slot the
 * payload lies in (its descriptor goes to the subscribers that read the
 * pool), or UINT32_MAX when it is not in the pool. */
void broker_topic_route(broker *b, const frame *f, broker_conn *from, uint32_t shared_id);
/* Routes a shared PUBLISH (its payload waits in from's region); a
 * malformed one cuts from off. */
void broker_topic_route_shared(broker *b, const frame *f, broker_conn *from);
/* The payload of a shared PUBLISH f from `from`, taken from its region
 * (the slot stays busy until broker_topic_shared_settle): 0 with *out a
 * copy of f whose payload is the pool's bytes and *id the pool-wide slot,
 * or -1 when f is malformed (from is then cut off). */
int broker_topic_shared_take(broker *b, const frame *f, broker_conn *from, frame *out,
                             uint32_t *id);
void broker_topic_shared_settle(broker *b, uint32_t id);
/* Flow control: whether publish f from c must wait, for going to a
 * congested or late reader it may not overtake (BROKER_WAIT_*, 0: it may
 * go). */
enum broker_wait { BROKER_GO = 0, BROKER_WAIT_CONGESTED, BROKER_WAIT_LATE };
int broker_topic_publish_waits(broker *b, const broker_conn *c, const frame *f);

/* ---- broker_presence.c: a topic's members -------------------------------- */

/* Makes s a member with f's payload as its tag (a copy). 0, or -1 when out
 * of memory (s unchanged). */
int broker_presence_join(broker_subscriber *s, const frame *f);
/* Frees s's tag, if any. */
void broker_presence_forget(broker_subscriber *s);
/* Queues for member `to` a JOINED or LEFT (type) saying that `who` (a
 * member) joined or left the topic named name. */
void broker_presence_send(const broker_subscriber *to, const uint8_t *name, size_t name_len,
                          const broker_subscriber *who, uint8_t type);
/* Tells every member of topic (named name) but `who` that who joined or
 * left (type FRAME_JOINED or FRAME_LEFT); nothing when who is no member. */
void broker_presence_tell(const broker_topic *topic, const uint8_t *name, size_t name_len,
                          const broker_subscriber *who, uint8_t type);
/* Replies to request_id with the tags of topic's (named name) members
 * other than c's endpoint, and those on other machines (uplink_member.c):
 * frame_member_write, one after another. */
void broker_presence_reply(broker_conn *c, uint32_t request_id, const broker_topic *topic,
                           const uint8_t *name, size_t name_len, uint32_t endpoint);
/* Tells topic's (named name) members that a member on another machine,
 * tag, joined or left (type FRAME_JOINED or FRAME_LEFT). */
void broker_presence_remote(broker *b, const uint8_t *name, size_t name_len, const uint8_t *tag,
                            uint32_t tag_len, uint8_t type);
/* The topic named f->a, or NULL. */
broker_topic *broker_topic_find(broker *b, const frame *f);

/* ---- broker_retain.c: retained messages ----------------------------------- */

/* Makes the logs and draws the epoch: 0, or -1 when out of memory. */
int broker_retain_init(broker *b);
void broker_retain_free(broker *b);
/* A PUBLISH with FRAME_FLAG_RETAIN from c: retained, routed with its
 * offset, and the offset in the reply. */
void broker_retain_publish(broker *b, broker_conn *c, const frame *f);
/* A RETAINED_READ from c: the messages after an offset, or MISSING. */
void broker_retain_read(broker *b, broker_conn *c, const frame *f);
/* Drops what has aged out and fills the retention counters. */
void broker_retain_stats(broker *b, uint64_t *counters);

/* ---- broker_bind.c: namespaces bound to a connection ----------------------- */

int broker_bind_init(broker *b); /* 0, or -1 when out of memory */
void broker_bind_free(broker *b);
/* A KV_BIND from c. */
void broker_bind_handle(broker *b, broker_conn *c, const frame *f);
/* A KV_TAKE from c: the value, and the namespace gone. */
void broker_bind_take(broker *b, broker_conn *c, const frame *f);
/* The namespace is no longer bound (it was expired, persisted, cleared or
 * taken); harmless when it was not. */
void broker_bind_release(broker *b, const void *ns, size_t ns_len);
/* Gives the namespaces bound to dead connections their deadline. */
void broker_bind_drop_dead(broker *b);

#endif
