/* uplink_internal: what the uplink's files share; uplink.h is the
 * contract.
 *
 *   uplink.c          uplink_*        lifecycle, connecting (name lookup,
 *                                     handshake), faults, backoff, the
 *                                     timer, stats, and what each reply means
 *   uplink_link.c     uplink_link_*   one connection to Redis: its socket,
 *                                     output queue and the replies it awaits
 *   uplink_topic.c    uplink_topic_*  topics, interest, messages both ways
 *   uplink_member.c   uplink_member_* the members of topics on the others
 *   uplink_owner.c    uplink_owner_*  per-client data: each client's owner,
 *                                     requests served, sent and answered
 *   uplink_request.c  uplink_sync     the barriers
 *
 * Everything runs on the broker's thread. */
#ifndef CLUSTER_STORE_UPLINK_INTERNAL_H
#define CLUSTER_STORE_UPLINK_INTERNAL_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "broker_internal.h"
#include "expiry.h"
#include "resp.h"
#include "uplink.h"
#include "uplink_wire.h"

#define UPLINK_ORIGIN_SIZE UPLINK_WIRE_ORIGIN /* a machine's id, at the front of every message */
#define UPLINK_ENTRIES_MAX (1u << 20)         /* replies one link may await */
#define UPLINK_BATCH_MAX (64u * 1024u)        /* messages of one topic gathered into one PUBLISH */
#define UPLINK_BULK_MIN                                                                            \
  (512u * 1024u * 1024u) /* the largest reply read: Redis's own bulk limit                         \
                          */

/* What a reply that comes is for. */
enum uplink_entry_kind {
  UPLINK_E_HANDSHAKE,  /* AUTH, SELECT, PING, SUBSCRIBE at connect: must succeed */
  UPLINK_E_IGNORE,     /* a control message's or a note's PUBLISH */
  UPLINK_E_MESSAGES,   /* a topic's PUBLISH of request_id messages */
  UPLINK_E_CLAIM,      /* who owns a client (name); op 1: taking over a machine gone */
  UPLINK_E_RELEASE,    /* a client's ownership record deleted (name) */
  UPLINK_E_ANSWER,     /* a PING (settle, barrier): conn gets OK */
  UPLINK_E_SUBSCRIBE,  /* a topic's SUBSCRIBE (name): then its interest goes out */
  UPLINK_E_INTEREST,   /* the PUBLISH of a topic's interest (name): its waiters are answered */
  UPLINK_E_UNSUBSCRIBE /* a topic's UNSUBSCRIBE */
};

typedef struct uplink_entry {
  uint8_t kind;
  uint8_t op; /* UPLINK_E_CLAIM: a take-over */
  uint32_t request_id;
  broker_conn *conn; /* NULL: its process went away */
  uint8_t *name;     /* a topic's name (heap), or NULL */
  size_t name_len;
  uint32_t wanted; /* UPLINK_E_MESSAGES: how many subscribers should have had them */
} uplink_entry;

enum uplink_link_state {
  UPLINK_LINK_CLOSED,
  UPLINK_LINK_CONNECTING,
  UPLINK_LINK_HANDSHAKE,
  UPLINK_LINK_READY
};

typedef struct uplink_socket uplink_socket; /* a socket and its poll handle */

typedef struct uplink_link {
  struct uplink *owner;
  const char *name; /* "command" or "subscriber", for messages */
  int state;
  uplink_socket *sock;
  int blocked; /* the socket is full: waiting for writable */
  buffer in;
  buffer out;
  resp_scanner scanner;
  size_t handshake_left; /* handshake replies still awaited */
  uplink_entry *entries; /* the replies awaited, a ring */
  size_t head;
  size_t count;
  size_t capacity;
  uint64_t waiting_since; /* a reply awaited: loop time Redis last sent something (0: none) */
} uplink_link;

/* A topic some local process subscribes to. */
typedef struct uplink_topic {
  int live;         /* its SUBSCRIBE and interest were answered on the current connection */
  int subscribed;   /* Redis confirmed its SUBSCRIBE on the current connection */
  int in_handshake; /* its SUBSCRIBE is one of the subscriber link's handshake commands */
  size_t waiting;
  size_t capacity;
  struct {
    broker_conn *conn;
    uint32_t request_id;
  } * waiters;
} uplink_topic;

/* The machines that want a topic (other than this one). */
typedef struct uplink_interest {
  size_t count;
  size_t capacity;
  uint8_t (*origins)[UPLINK_ORIGIN_SIZE];
} uplink_interest;

struct uplink {
  broker *broker;
  uplink_options options;
  uint8_t origin[UPLINK_ORIGIN_SIZE];
  char control[160];      /* PREFIX:c */
  char topic_prefix[160]; /* PREFIX:t: */
  char owner_prefix[160]; /* PREFIX:o: (ownership records) */
  char note_prefix[160];  /* PREFIX:q: (each machine's channel: ORIGIN in hex follows) */
  char notes[192];        /* this machine's channel */
  size_t control_len, topic_prefix_len, owner_prefix_len, note_prefix_len, notes_len;
  int state; /* enum uplink_state */
  int stopping;
  int draining; /* reading what is left after the connection broke (uplink_fail) */
  uplink_link command;
  uplink_link subscriber;
  uv_timer_t timer; /* retries, and the stall checks */
  uv_getaddrinfo_t resolver;
  int resolving;
  struct sockaddr_storage address;
  socklen_t address_len;
  uint64_t backoff_ms;
  uint64_t retry_at; /* loop time of the next try when down */
  uint64_t connect_started;
  buffer batch;         /* messages for one topic, not yet sent (uplink_topic_send_batch) */
  uint8_t *batch_topic; /* its topic (heap), or NULL when no batch is open */
  size_t batch_topic_len;
  uint64_t batch_count;
  int sending_batch;
  table *topics;   /* uplink_topic by name: what this machine wants */
  table *interest; /* uplink_interest by topic name: what the others want */
  table *machines; /* the others, by origin: loop time last heard of (uint64_t, heap) */
  table *members;  /* uplink_members by topic name: the others' members */
  size_t member_count;
  uint64_t presence_sent;
  uv_mutex_t fault_lock;
  int fault; /* enum uplink_fault */
  char fault_text[512];
  uint64_t connects, published, received, dropped, lost_replies;
  struct uplink_owners *owners; /* per-client data (uplink_owner.c) */
};

typedef struct uplink_owners uplink_owners;

/* ---- uplink.c -------------------------------------------------------------- */

/* Records a fault, closes both links and schedules the next try. */
void uplink_fail(uplink *u, int fault, const char *text);
/* A complete reply on link (its bytes: reply, len). */
void uplink_on_reply(uplink *u, uplink_link *link, const uint8_t *reply, size_t len);
/* Sends the command of argc args on link, awaiting a reply for entry
 * (copied; its name, if any, is then the link's). 0, or -1 when the link
 * cannot take it (not connected, over the queue limit, out of memory: the
 * entry's name is freed). */
int uplink_send(uplink *u, uplink_link *link, const resp_arg *args, size_t argc,
                const uplink_entry *entry);

/* ---- uplink_link.c ----------------------------------------------------------- */

void uplink_link_init(uplink_link *link, uplink *owner, const char *name);
/* Starts connecting to the resolved address: 0, or -1 (with text). */
int uplink_link_open(uplink_link *link, const struct sockaddr *addr, socklen_t len, char *text,
                     size_t text_len);
/* Appends bytes of a command for entry (see uplink_send); -1 when full. */
int uplink_link_queue(uplink_link *link, const resp_arg *args, size_t argc,
                      const uplink_entry *entry);
/* Takes the entry the next reply answers; 0, or -1 when none is awaited. */
int uplink_link_pop(uplink_link *link, uplink_entry *out);
/* Writes what the socket takes. */
void uplink_link_flush(uplink_link *link);
/* Reads and handles what the socket holds now (without waiting). */
void uplink_link_read_waiting(uplink_link *link);
/* Reads what is left in a link's socket, once its connection broke. */
void uplink_link_drain(uplink_link *link);
/* Closes the socket; every awaited entry goes to uplink_entry_failed. */
void uplink_link_close(uplink_link *link);
void uplink_link_free(uplink_link *link);
size_t uplink_link_queued(const uplink_link *link);

/* ---- uplink_topic.c ---------------------------------------------------------- */

void uplink_topic_free(void *value, void *ctx);
void uplink_interest_free(void *value, void *ctx);
/* The link is up: subscribe to every local topic (on the handshake). */
int uplink_topic_subscribe_all(uplink *u);
/* Both links are up: hello, and what this machine wants. */
void uplink_topic_announce(uplink *u);
/* A topic's SUBSCRIBE was answered: its interest goes out. */
void uplink_topic_confirmed(uplink *u, const uint8_t *name, size_t len);
/* A topic's interest was published: its waiters are answered. */
void uplink_topic_interest_sent(uplink *u, const uint8_t *name, size_t len);
/* The links closed: waiters answered, topics no longer live, the others'
 * interest forgotten (it is learned again on the next hello). */
void uplink_topic_reset(uplink *u);
/* Sends the open batch of messages, if any (before anything else goes on
 * the command link, so nothing overtakes them). drop: count it as dropped
 * instead (the links closed). */
void uplink_topic_send_batch(uplink *u, int drop);
/* Once a tick while up: says this machine is there (every presence_ms,
 * uplink_options), and forgets what machines not heard of for three
 * times that wanted (they died without a goodbye). */
void uplink_topic_presence(uplink *u, uint64_t now);
/* The uplink came up: the others' silence while it was down is not theirs. */
void uplink_topic_machines_seen_now(uplink *u, uint64_t now);
void uplink_machine_free(void *value, void *ctx);
/* A message Redis pushed on channel (a topic's or the control channel). */
void uplink_topic_message(uplink *u, const uint8_t *channel, size_t channel_len,
                          const uint8_t *payload, size_t len);

/* Publishes a control message: op and list (records), awaiting a reply
 * for an entry of kind with name (copied). 0, or -1 (see uplink_send). */
int uplink_control(uplink *u, uint8_t op, const uint8_t *list, size_t list_len, int kind,
                   const uint8_t *name, size_t name_len);

/* ---- uplink_member.c --------------------------------------------------------- */

void uplink_members_free(void *value, void *ctx);
/* Topic's interest was published: the others are told of its members. */
void uplink_member_tell_topic(uplink *u, const uint8_t *name, size_t len);
/* Tells the others of every member of the topics live across machines. */
void uplink_member_tell_all(uplink *u);
/* A 'j' or 'l' control message from origin, its records from at. */
void uplink_member_control(uplink *u, const uint8_t *origin, uint8_t op, const uint8_t *p,
                           size_t len, size_t at);
/* Origin's members leave (NULL: every other machine's). */
void uplink_member_forget(uplink *u, const uint8_t *origin);

/* ---- uplink_request.c -------------------------------------------------------- */

/* An awaited entry will have no reply (the link closed): its process is
 * told, its name freed. */
void uplink_entry_failed(uplink *u, uplink_entry *e);

/* ---- per-client data: uplink_owner.c, uplink_claim.c, uplink_note.c ---------- */

enum uplink_owner_state {
  UPLINK_OWNER_UNKNOWN,  /* no one asked Redis yet, and nothing is here */
  UPLINK_OWNER_MINE,     /* its data is here (owned as of epoch) */
  UPLINK_OWNER_REMOTE,   /* origin has it */
  UPLINK_OWNER_CLAIMING, /* a claim is on its way */
  UPLINK_OWNER_RELEASING /* its record is being deleted */
};

/* A request that waits for its client's owner. */
typedef struct uplink_waiting {
  struct uplink_waiting *next;
  broker_conn *conn; /* a local request's process (NULL: gone, or remote) */
  int remote;        /* from another machine: asker, and id is the asker's */
  uint8_t asker[UPLINK_ORIGIN_SIZE];
  uint32_t id;
  uint8_t type;
  uint32_t key_len, payload_len;
  uint8_t bytes[]; /* the key, then the payload */
} uplink_waiting;

typedef struct uplink_owner {
  int state;
  uint64_t epoch; /* MINE: the claim epoch it was owned in */
  uint8_t origin[UPLINK_ORIGIN_SIZE];
  uint8_t *name; /* the client's id */
  size_t name_len;
  kv_namespace *ns;          /* its data in the broker's store, once found (kv_slot_*) */
  expiry_node deadline;      /* MINE: when its data goes (destroy(seconds)) */
  expiry_node route_timeout; /* REMOTE: the request on its way given up on */
  uint32_t routed;           /* REMOTE: that request's id; 0: none */
  int release_wanted;        /* its data is gone: the record goes when nothing waits */
  int local_data;            /* data may be here without a claim of this epoch */
  uplink_waiting *head, *tail;
} uplink_owner;

struct uplink_owners {
  table *by_name;
  expiry_heap deadlines;
  expiry_heap routes;
  uint64_t epoch;
  uint64_t up_since;
  uint32_t next_id;
  size_t remote; /* entries in state REMOTE */
  int sweeping;  /* in uplink_owner_up's sweep: the links' closing waits for its end */
  int down_pending;
  /* The note being gathered (one destination and op at a time). */
  buffer note;
  uint8_t note_to[UPLINK_ORIGIN_SIZE];
  uint8_t note_op;
  int note_open;
  int sending_note;
};

/* uplink_owner.c */
int uplink_owner_init(uplink *u);
void uplink_owner_free(uplink *u);
uint64_t uplink_owner_now(uplink *u);
void uplink_owner_set_state(uplink *u, uplink_owner *o, int state);
/* Takes o out of the table and frees it (and whatever waits in it). */
void uplink_owner_drop(uplink *u, uplink_owner *o);
uplink_waiting *uplink_owner_pop(uplink_owner *o);
/* Whether a request of this frame type writes (makes a client's data). */
int uplink_owner_writes(uint8_t type);
/* Answers w, a local request or another machine's. */
void uplink_owner_answer(uplink *u, const uplink_owner *o, const uplink_waiting *w, uint8_t status,
                         const void *value, size_t len);
void uplink_owner_fail(uplink *u, const uplink_owner *o, const uplink_waiting *w, const char *text);
/* Drops o's data from this machine's store. */
void uplink_owner_clear_here(uplink *u, uplink_owner *o);
/* Does what o's waiting requests need next. */
void uplink_owner_progress(uplink *u, uplink_owner *o);
/* A request for client (name) from c, or from another machine (asker). */
void uplink_owner_request(uplink *u, const uint8_t *name, size_t name_len, broker_conn *c,
                          const uint8_t *asker, uint32_t id, uint8_t type, const uint8_t *key,
                          uint32_t key_len, const uint8_t *payload, uint32_t payload_len);
/* Once a tick, up or not: data deadlines, requests other machines did not
 * answer. */
void uplink_owner_tick(uplink *u, uint64_t now);
/* The links closed (after their entries were let go) / the uplink is up. */
void uplink_owner_down(uplink *u);
void uplink_owner_up(uplink *u);
void uplink_owner_conn_gone(uplink *u, broker_conn *c);

/* uplink_claim.c */
/* Asks Redis who owns o (see the file); gone: a machine gone whose
 * clients are taken over. */
void uplink_claim_ask(uplink *u, uplink_owner *o, const uint8_t *gone);
void uplink_claim_reply(uplink *u, const uplink_entry *e, const resp_item *item);
/* Deletes o's record if its data is gone and nothing waits (once Redis is
 * there). */
void uplink_claim_release(uplink *u, uplink_owner *o);
void uplink_claim_release_reply(uplink *u, const uplink_entry *e);
/* Whether origin is a machine gone. */
int uplink_claim_gone(uplink *u, const uint8_t *origin);

/* uplink_note.c */
/* The channel of the machine origin (PREFIX:q:HEX) in out (note_prefix
 * and 16 more bytes), its length in *out_len. */
void uplink_note_channel(const uplink *u, const uint8_t *origin, char *out, size_t *out_len);
/* Adds an item to the note for `to`. */
void uplink_note_add(uplink *u, const uint8_t *to, uint8_t op, const uplink_wire_item *item);
/* Sends the note being gathered, if any (drop: throw it away). */
void uplink_note_send(uplink *u, int drop);
/* Whether a note is being gathered and not being sent now. */
int uplink_note_gathering(const uplink *u);
/* Answers another machine's request w. */
void uplink_note_answer(uplink *u, const uplink_owner *o, const uplink_waiting *w, uint8_t status,
                        const void *value, size_t len);
/* Sends o's first waiting request (w) to its owner. */
void uplink_note_route(uplink *u, uplink_owner *o, const uplink_waiting *w);
/* A note on this machine's channel (its payload). */
void uplink_note_came(uplink *u, const uint8_t *p, size_t len);
void uplink_note_timeouts(uplink *u, uint64_t now);

#endif
