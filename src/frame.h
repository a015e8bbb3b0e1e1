/* frame: the wire format of the channel between a process and the broker.
 *
 * Every frame is a fixed 24-byte header followed by up to three byte fields:
 *
 *   offset size  field
 *   0      4     total length of the frame, header included (little-endian)
 *   4      1     type (FRAME_*)
 *   5      1     status: a reply's outcome (FRAME_STATUS_*), else 0
 *   6      2     flags (FRAME_FLAG_*)
 *   8      4     endpoint: which store instance on the connection it concerns
 *   12     4     request id: echoed in the reply; 0 when no reply is wanted.
 *                 On a MESSAGE: the number of the publisher's connection
 *                 (never 0; 0: not said), so a process can tell publishers
 *                 apart (order is kept per publisher, not across them)
 *   16     4     length of field a (a channel name or a namespace)
 *   20     4     length of field b (a key)
 *   24     a     field a bytes
 *   24+a   b     field b bytes
 *   24+a+b ...   payload: the rest of the frame (a message or a value)
 *
 * The header says the whole length, so a reader always knows how much to
 * wait for, and a length over the agreed maximum is refused before any
 * memory is spent on it. The application's payloads are opaque: the engine
 * never looks inside. The first frame each way is a HELLO carrying the magic
 * and the version.
 *
 * This module owns every byte layout of the channel: the header, flags
 * included, and the payloads the engine itself writes or reads (the hello,
 * the pool's offer, the shared descriptors, the counts), each with a write
 * and a parse function below; no other file pokes their bytes. It also holds
 * the lists JavaScript takes its constants from (native.constants).
 *
 * It is pure: it encodes into caller memory and decodes from it,
 * with no allocation and no I/O, so it can be unit-tested and fuzzed alone. */
#ifndef CLUSTER_STORE_FRAME_H
#define CLUSTER_STORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 24u
#define FRAME_VERSION 3u
#define FRAME_MAGIC "CSTO"
#define FRAME_HELLO_PAYLOAD_SIZE 12u     /* magic, version, max frame size */
#define FRAME_MIN_MAX_SIZE 4096u         /* smallest maximum frame size allowed */
#define FRAME_LIMIT_MAX_SIZE 0x7ffffff0u /* largest maximum frame size allowed */
/* The defaults of the options the broker and JavaScript share. */
#define FRAME_DEFAULT_MAX_SIZE (32u * 1024u * 1024u)       /* maxFrameSize */
#define FRAME_DEFAULT_QUEUE_LIMIT (64ull * 1024u * 1024u)  /* queueLimit */
#define FRAME_DEFAULT_RETAIN_MESSAGES 100000u              /* retainMessages */
#define FRAME_DEFAULT_RETAIN_BYTES (32ull * 1024u * 1024u) /* retainBytes */
#define FRAME_DEFAULT_RETAIN_MS (5u * 60u * 1000u)         /* retainMs */

/* ---- the contract with JavaScript ----------------------------------------
 *
 * Each list below is an X-macro: X(NAME, value) per entry. The enums are
 * made from them, and addon.c exports every list as native.constants, so
 * lib/ builds its tables from these and copies nothing. */

/* Frame types. FRAME_SHARED: broker to process, right after its hello and
 * with the pool's descriptor passed alongside (SCM_RIGHTS), the payload is
 * the pool's offer (frame_offer below); process to broker, once the pool is
 * mapped, the payload is the process id (frame_shared_ready), so the broker
 * can tell when the process is gone; from then on the broker may send this
 * process shared messages. FRAME_SHARED_READ: process to broker, the count
 * of shared messages this process has finished reading, all told
 * (frame_read_count); their slots may be freed.
 *
 * Retention (broker_retain.c): a PUBLISH with FRAME_FLAG_RETAIN is also
 * kept in the topic's log, under an offset (frame_offset below) the broker
 * gives it; the reply, when asked for, carries that offset, and so does
 * field b of every MESSAGE the publish becomes. RETAINED_READ asks for a
 * log's messages after an offset, in order: the reply lists them
 * (frame_retained_*), or says MISSING when the offset is not one of this
 * broker's or messages after it were dropped (the caller cannot have all
 * it missed). KV_BIND ties a namespace's life to the connection that binds
 * it: no deadline while the connection lives, one ms after it goes (another
 * KV_BIND, KV_EXPIRE, KV_PERSIST, KV_CLEAR or KV_TAKE undoes the binding).
 * KV_TAKE answers with the value of key b and removes the whole namespace
 * in the same step, so of two askers only one gets it.
 *
 * FRAME_HANDOFF carries one descriptor, passed alongside its bytes (see
 * fdpass.h for how the two are paired). Process to broker: hand the
 * descriptor and the payload to one subscriber of topic a (its first live
 * one that is not the sender's endpoint); the reply is OK once it is
 * queued for that subscriber, MISSING when the topic has none (the broker
 * closes the descriptor either way it cannot pass it on). Broker to
 * process: endpoint = that subscriber, a = the topic; the request id is 0
 * on the wire, and the receiving channel writes the descriptor plus one
 * into it once it holds the descriptor (frame_set_request_id), so the
 * frame names its own descriptor from then on. */
#define FRAME_TYPE_LIST(X)                                                                         \
  X(HELLO, 1)        /* both ways, first frame: payload magic, version, max size */                \
  X(SUBSCRIBE, 2)    /* a = channel; replied once the subscription is live */                      \
  X(UNSUBSCRIBE, 3)  /* a = channel; replied once it is gone */                                    \
  X(PUBLISH, 4)      /* a = channel, payload = message; no reply */                                \
  X(MESSAGE, 5)      /* broker to process: endpoint = subscriber, a = channel */                   \
  X(KV_GET, 6)       /* a = namespace, b = key; reply payload = value */                           \
  X(KV_SET, 7)       /* a = namespace, b = key, payload = value */                                 \
  X(KV_HAS, 8)       /* a = namespace, b = key */                                                  \
  X(KV_DEL, 9)       /* a = namespace, b = key */                                                  \
  X(KV_CLEAR, 10)    /* a = namespace: remove it now */                                            \
  X(KV_EXPIRE, 11)   /* a = namespace, payload = milliseconds (frame_expire) */                    \
  X(KV_PERSIST, 12)  /* a = namespace: cancel its expiry */                                        \
  X(CLOSE, 13)       /* the endpoint is gone: drop its subscriptions */                            \
  X(STATS, 14)       /* reply payload = the counters (frame_stats) */                              \
  X(SYNC, 15)        /* replied after the broker took in all input already sent to it */           \
  X(REPLY, 16)       /* broker to process: request id, status, payload */                          \
  X(SHARED, 17)      /* the shared pool (shm.h): see above */                                      \
  X(SHARED_READ, 18) /* process to broker: shared messages read (see above) */                     \
  X(JOINED, 19)      /* broker to process: endpoint = member, a = topic, payload = new member */   \
  X(LEFT, 20)        /* broker to process: endpoint = member, a = topic, payload = gone member */  \
  X(RETAINED_READ, 21) /* a = topic, b = offset; reply payload = messages (see above) */           \
  X(KV_BIND, 22)       /* a = namespace, payload = milliseconds (frame_expire) */                  \
  X(KV_TAKE, 23)       /* a = namespace, b = key; reply payload = value */                         \
  X(HANDOFF, 24)       /* a = topic, payload = bytes, one descriptor alongside (see above) */

/* Members (broker_presence.c): a SUBSCRIBE whose payload is not empty
 * makes the endpoint a *member* of the topic, the payload its tag (opaque,
 * 1 to FRAME_TAG_MAX bytes, e.g. a server id). Its reply lists the tags of
 * the topic's other members (frame_member_write, one after another); the
 * other members get a JOINED with the new tag, and a LEFT with it once the
 * member unsubscribes, closes, or its connection goes away. A subscriber
 * without a tag gets neither and is in no list. */

/* Header flags. BARRIER: before handling this request, the broker takes in
 * everything the other connections have already sent, so the reply
 * reflects every write that happened before the request. REMOTE: on
 * PUBLISH, the broker delivers it to the subscribers of other connections
 * only, none of the publisher's own (its process delivered it to its own
 * subscribers itself). SHARED: on
 * PUBLISH (process to broker) and MESSAGE (broker to process), the payload
 * is not here but in the shared pool, and the frame's payload is a
 * descriptor (frame_publish_desc, frame_message_desc); only the engine
 * sets it (addon.c drops it from what JavaScript asks). RETAIN: see the
 * frame types; UNROUTED: a retained publish that only goes to the log (its
 * publisher knows no other process wants it now, yet a reader of the log
 * may later). On a SYNC to a
 * broker joined to other machines (uplink.h), BARRIER also waits for
 * everything Redis had pushed to this machine before, and SETTLE waits
 * until Redis has answered everything the broker sent it before (so what
 * this process published can be seen from other machines); without an
 * uplink SETTLE is a plain SYNC. */
#define FRAME_FLAG_LIST(X)                                                                         \
  X(BARRIER, 1)                                                                                    \
  X(SHARED, 2)                                                                                     \
  X(REMOTE, 4)                                                                                     \
  X(RETAIN, 8)    /* on PUBLISH: keep it in the topic's log (see above) */                         \
  X(UNROUTED, 16) /* with RETAIN: only kept, routed to no subscriber */                            \
  X(SETTLE, 32)   /* on SYNC, with an uplink: see above */

/* A reply's outcome. */
#define FRAME_STATUS_LIST(X)                                                                       \
  X(OK, 0)                                                                                         \
  X(MISSING, 1)     /* key or namespace not found */                                               \
  X(NO_MEMORY, 2)   /* the broker could not allocate */                                            \
  X(BAD_REQUEST, 3) /* malformed request (payload says why) */

/* The counters of a FRAME_STATS reply, in their order: X(NAME, jsName).
 * The second column is the name stats() gives each in JavaScript (API:
 * 'channels' counts topics, as the C side still calls them). */
#define FRAME_STAT_LIST(X)                                                                         \
  X(CONNECTIONS, workers)           /* processes attached now */                                   \
  X(CONNECTIONS_CUT, workersCutOff) /* cut off for not reading */                                  \
  X(FRAMES_IN, framesIn)                                                                           \
  X(BYTES_IN, bytesIn)                                                                             \
  X(MESSAGES_PUBLISHED, messagesPublished)                                                         \
  X(MESSAGES_DELIVERED, messagesDelivered)                                                         \
  X(BYTES_DELIVERED, bytesDelivered)                                                               \
  X(CHANNELS, channels)                                                                            \
  X(SUBSCRIPTIONS, subscriptions)                                                                  \
  X(NAMESPACES, clients)                                                                           \
  X(KEYS, keys)                                                                                    \
  X(KV_BYTES, dataBytes)                                                                           \
  X(QUEUED_BYTES, queuedBytes)        /* output waiting to be written, all connections */          \
  X(MAX_QUEUED_BYTES, maxQueuedBytes) /* the largest one connection's queue has been */            \
  X(QUEUE_LIMIT, queueLimit)                                                                       \
  X(MAX_FRAME_SIZE, maxFrameSize)                                                                  \
  X(SHARED_DELIVERED, sharedDeliveries)     /* deliveries whose payload was read from the pool */  \
  X(RETAINED_MESSAGES, retainedMessages)    /* messages held in the topics' logs now */            \
  X(RETAINED_BYTES, retainedBytes)          /* memory the logs hold now */                         \
  X(RETAINED_DROPPED, retainedDropped)      /* messages dropped for a limit, all told */           \
  X(RETAINED_REFUSED, retainedReadsRefused) /* reads answered MISSING, all told */                 \
  X(NAMESPACES_BOUND, boundClients)         /* namespaces bound to a connection now */             \
  X(HANDOFFS, handoffs)                     /* descriptors passed on (FRAME_HANDOFF) */            \
  X(HANDOFFS_REFUSED, handoffsRefused)      /* ... closed instead: no subscriber, or it lagged */  \
  X(PUBLISHERS_PACED, publishersPaced) /* times a publisher waited for a late shared reader */     \
  X(UPLINK_STATE, uplinkState)         /* uplink.h's enum uplink_state (0: no uplink) */           \
  X(UPLINK_FAULT, uplinkFault)         /* its last fault (UPLINK_FAULT_LIST; 0: none) */           \
  X(UPLINK_CONNECTS, uplinkConnects)   /* times it came up */                                      \
  X(UPLINK_PUBLISHED, uplinkPublished) /* messages sent to other machines */                       \
  X(UPLINK_RECEIVED, uplinkReceived)   /* messages received from other machines */                 \
  X(UPLINK_DROPPED, uplinkDropped)     /* messages others wanted, not sent: Redis away or slow */  \
  X(UPLINK_FAILED_REQUESTS, uplinkFailedRequests) /* requests, barriers Redis never answered */    \
  X(UPLINK_QUEUED_BYTES, uplinkQueuedBytes)       /* output waiting for Redis */                   \
  X(UPLINK_REMOTE_TOPICS, uplinkRemoteTopics)     /* topics other machines want */

/* The options' defaults, X(jsName, value): lib/options.js's DEFAULTS. */
#define FRAME_DEFAULT_LIST(X)                                                                      \
  X(maxFrameSize, FRAME_DEFAULT_MAX_SIZE)                                                          \
  X(queueLimit, FRAME_DEFAULT_QUEUE_LIMIT)                                                         \
  X(retainMessages, FRAME_DEFAULT_RETAIN_MESSAGES)                                                 \
  X(retainBytes, FRAME_DEFAULT_RETAIN_BYTES)                                                       \
  X(retainMs, FRAME_DEFAULT_RETAIN_MS)

/* Other numbers JavaScript checks against, X(NAME, value). */
#define FRAME_NUMBER_LIST(X)                                                                       \
  X(MIN_FRAME_SIZE, FRAME_MIN_MAX_SIZE)                                                            \
  X(MAX_FRAME_SIZE, FRAME_LIMIT_MAX_SIZE)                                                          \
  X(OFFSET_SIZE, FRAME_OFFSET_SIZE)

#define FRAME_ENUM_ENTRY_(name, value) FRAME_##name = value,
#define FRAME_ENUM_FLAG_(name, value) FRAME_FLAG_##name = value,
#define FRAME_ENUM_STATUS_(name, value) FRAME_STATUS_##name = value,
#define FRAME_ENUM_STAT_(name, js_name) FRAME_STAT_##name,
#define FRAME_ENUM_COUNT_(name, value) +1

enum frame_type {
  FRAME_TYPE_LIST(FRAME_ENUM_ENTRY_)
  /* Types run from 1 with no gap. */
  FRAME_TYPE_MAX = 0 FRAME_TYPE_LIST(FRAME_ENUM_COUNT_)
};

enum frame_flag { FRAME_FLAG_LIST(FRAME_ENUM_FLAG_) };

enum frame_status {
  FRAME_STATUS_LIST(FRAME_ENUM_STATUS_)
  /* Statuses run from 0 with no gap. */
  FRAME_STATUS_MAX = -1 FRAME_STATUS_LIST(FRAME_ENUM_COUNT_)
};

enum frame_stat { FRAME_STAT_LIST(FRAME_ENUM_STAT_) FRAME_STATS_COUNT };

typedef struct frame {
  uint32_t size; /* whole frame, header included */
  uint8_t type;
  uint8_t status;
  uint16_t flags;
  uint32_t endpoint;
  uint32_t request_id;
  const uint8_t *a;
  uint32_t a_len;
  const uint8_t *b;
  uint32_t b_len;
  const uint8_t *payload;
  uint32_t payload_len;
} frame;

enum frame_result {
  FRAME_OK = 0,          /* one frame decoded */
  FRAME_INCOMPLETE = -1, /* need more bytes */
  FRAME_TOO_LARGE = -2,  /* length over the maximum */
  FRAME_MALFORMED = -3   /* length shorter than the header, fields past the end, unknown type */
};

/* Decodes the frame at the start of buf. On FRAME_OK fills *out (its pointers
 * point into buf) and the frame occupies out->size bytes. max_size bounds the
 * total length. Never reads past buf + len. */
int frame_decode(const uint8_t *buf, size_t len, uint32_t max_size, frame *out);

/* A header as it lies in the first FRAME_HEADER_SIZE bytes of a frame. */
typedef struct frame_header {
  uint32_t size;
  uint8_t type;
  uint8_t status;
  uint16_t flags;
  uint32_t endpoint;
  uint32_t request_id;
  uint32_t a_len;
  uint32_t b_len;
} frame_header;

/* Reads the header at buf (FRAME_HEADER_SIZE bytes), unchecked: for a frame
 * frame_decode refused as too large (whose request still gets an answer),
 * or one this process encoded itself. */
void frame_header_read(const uint8_t *buf, frame_header *out);

/* The total length a frame's header states (buf holds at least 4 bytes). */
uint32_t frame_header_size(const uint8_t *buf);

/* Size of a frame with these field lengths; 0 if it would exceed UINT32_MAX. */
uint32_t frame_size(size_t a_len, size_t b_len, size_t payload_len);

/* Writes a header for a frame of the given field lengths at dst (which must
 * hold FRAME_HEADER_SIZE bytes); the caller writes the fields after it.
 * Returns the total frame size (as frame_size). */
uint32_t frame_write_header(uint8_t *dst, uint8_t type, uint8_t status, uint16_t flags,
                            uint32_t endpoint, uint32_t request_id, size_t a_len, size_t b_len,
                            size_t payload_len);

/* Encodes a whole frame without flags into dst, which must hold
 * frame_size(...) bytes. Returns the size written. Any field pointer may be
 * NULL when its length is 0. */
uint32_t frame_encode(uint8_t *dst, uint8_t type, uint8_t status, uint32_t endpoint,
                      uint32_t request_id, const void *a, size_t a_len, const void *b, size_t b_len,
                      const void *payload, size_t payload_len);

/* ---- payloads -------------------------------------------------------------
 *
 * Each payload the engine reads has a write function and a parse function.
 * A parse function takes the payload as it came (pointer and length) and
 * returns 0 with *out filled, or -1 when the payload is malformed (*out is
 * then unspecified); it never reads past payload + len. All numbers are
 * little-endian. */

/* HELLO: the magic, the version, and the largest frame the sender takes.
 * frame_hello_parse checks the magic only (the version is the caller's to
 * judge) and allows bytes after the hello. */
void frame_hello_write(uint8_t dst[FRAME_HELLO_PAYLOAD_SIZE], uint32_t max_size);
int frame_hello_parse(const uint8_t *payload, size_t len, uint32_t *version, uint32_t *max_size);

/* SHARED, broker to process: the offer of a region of the shared pool.
 * The parse refuses an offer whose geometry is not this build's (shm.h): the
 * process then does without the pool. */
#define FRAME_OFFER_SIZE 20u
typedef struct frame_offer {
  uint32_t region;      /* the region given to this process */
  uint32_t region_size; /* SHM_REGION_SIZE */
  uint32_t slots;       /* SHM_SLOTS */
  uint32_t payload_max; /* SHM_PAYLOAD_MAX: the largest shared payload */
  uint32_t generation;  /* which use of the region (shm.h's consumed count) */
} frame_offer;
void frame_offer_write(uint8_t dst[FRAME_OFFER_SIZE], const frame_offer *offer);
int frame_offer_parse(const uint8_t *payload, size_t len, frame_offer *out);

/* SHARED, process to broker: the pool is mapped; its process id. */
#define FRAME_SHARED_READY_SIZE 4u
void frame_shared_ready_write(uint8_t dst[FRAME_SHARED_READY_SIZE], uint32_t pid);
int frame_shared_ready_parse(const uint8_t *payload, size_t len, uint32_t *pid);

/* SHARED_READ: the shared messages this process has finished reading, all
 * told. */
#define FRAME_READ_COUNT_SIZE 8u
void frame_read_count_write(uint8_t dst[FRAME_READ_COUNT_SIZE], uint64_t count);
int frame_read_count_parse(const uint8_t *payload, size_t len, uint64_t *count);

/* PUBLISH with FRAME_FLAG_SHARED: where the payload lies in the publisher's
 * region. The parse checks that it lies inside the region's data area. */
#define FRAME_PUBLISH_DESC_SIZE 12u
typedef struct frame_publish_desc {
  uint32_t slot;   /* under SHM_SLOTS */
  uint32_t offset; /* in the region's data area */
  uint32_t length; /* 1 to SHM_PAYLOAD_MAX */
} frame_publish_desc;
void frame_publish_desc_write(uint8_t dst[FRAME_PUBLISH_DESC_SIZE], const frame_publish_desc *d);
int frame_publish_desc_parse(const uint8_t *payload, size_t len, frame_publish_desc *out);

/* MESSAGE with FRAME_FLAG_SHARED: where the payload lies in the pool. The
 * parse checks that it lies inside one region's data area. */
#define FRAME_MESSAGE_DESC_SIZE 8u
typedef struct frame_message_desc {
  uint32_t offset; /* from the start of the pool */
  uint32_t length; /* 1 to SHM_PAYLOAD_MAX */
} frame_message_desc;
void frame_message_desc_write(uint8_t dst[FRAME_MESSAGE_DESC_SIZE], const frame_message_desc *d);
int frame_message_desc_parse(const uint8_t *payload, size_t len, frame_message_desc *out);

/* A list of members' tags (the reply to a member's SUBSCRIBE): each tag as
 * a 4-byte length and its bytes, one after another. frame_member_write
 * writes one at dst (FRAME_MEMBER_HEAD + len bytes) and returns the size
 * written. frame_member_next reads the one at *offset: 1 with *tag and
 * *tag_len set and *offset moved past it, 0 at the end of the list, -1
 * when what is there is not a tag (empty, over FRAME_TAG_MAX, or past the
 * end). */
#define FRAME_TAG_MAX 1024u
#define FRAME_MEMBER_HEAD 4u
size_t frame_member_write(uint8_t *dst, const uint8_t *tag, uint32_t len);
int frame_member_next(const uint8_t *payload, size_t len, size_t *offset, const uint8_t **tag,
                      uint32_t *tag_len);

/* KV_EXPIRE: milliseconds from now. */
#define FRAME_EXPIRE_SIZE 4u
void frame_expire_write(uint8_t dst[FRAME_EXPIRE_SIZE], uint32_t ms);
int frame_expire_parse(const uint8_t *payload, size_t len, uint32_t *ms);

/* A STATS reply: FRAME_STATS_COUNT 8-byte counters, in FRAME_STAT_LIST's
 * order. */
#define FRAME_STATS_SIZE (FRAME_STATS_COUNT * 8u)
void frame_stats_write(uint8_t dst[FRAME_STATS_SIZE], const uint64_t values[FRAME_STATS_COUNT]);
int frame_stats_parse(const uint8_t *payload, size_t len, uint64_t values[FRAME_STATS_COUNT]);

/* An offset: where a retained message lies in its log, as text, so that
 * it can travel as a string (socket.io appends it to a packet): the
 * broker's epoch (chosen at random when it starts, so an offset from an
 * earlier broker is never taken for one of this one's) and the message's
 * sequence number, each as 16 lowercase hex digits, joined by '-'. Fixed
 * width: offsets of one broker compare as strings as their numbers do.
 * The parse takes exactly that form and nothing else. */
#define FRAME_OFFSET_SIZE 33u
void frame_offset_write(uint8_t dst[FRAME_OFFSET_SIZE], uint64_t epoch, uint64_t seq);
int frame_offset_parse(const uint8_t *text, size_t len, uint64_t *epoch, uint64_t *seq);

/* A RETAINED_READ reply: a u32 count of the log's messages after the last
 * one listed that did not fit in this reply (0: the list is complete; the
 * asker reads on from the last offset listed), then the messages in order,
 * each its offset (FRAME_OFFSET_SIZE bytes), a u32 length and its bytes. */
#define FRAME_RETAINED_HEAD_SIZE 4u
#define FRAME_RETAINED_ENTRY_HEAD_SIZE (FRAME_OFFSET_SIZE + 4u)
typedef struct frame_retained_entry {
  const uint8_t *offset; /* FRAME_OFFSET_SIZE bytes of text */
  const uint8_t *bytes;
  uint32_t len;
} frame_retained_entry;
void frame_retained_head_write(uint8_t dst[FRAME_RETAINED_HEAD_SIZE], uint32_t left);
/* Writes one entry at dst (FRAME_RETAINED_ENTRY_HEAD_SIZE + len bytes);
 * returns the bytes written. */
size_t frame_retained_entry_write(uint8_t *dst, uint64_t epoch, uint64_t seq, const void *bytes,
                                  uint32_t len);
int frame_retained_head_parse(const uint8_t *payload, size_t len, uint32_t *left);
/* The entry at *pos of a reply's payload (start at
 * FRAME_RETAINED_HEAD_SIZE): 1 with *out filled and *pos moved past it, 0
 * at the end, -1 when malformed (an entry runs past the end). */
int frame_retained_next(const uint8_t *payload, size_t len, size_t *pos, frame_retained_entry *out);

/* ---- whole frames with the shared flag ----------------------------------- */

/* A shared PUBLISH at dst (head_len + FRAME_PUBLISH_DESC_SIZE bytes) from
 * head, the header and names of an ordinary PUBLISH (head_len bytes, the
 * payload left out): the same header with the size of the shared frame and
 * FRAME_FLAG_SHARED, the names, then d. Returns the frame's size, or 0 when
 * head is not a PUBLISH's header and names. */
uint32_t frame_encode_publish_shared(uint8_t *dst, const uint8_t *head, size_t head_len,
                                     const frame_publish_desc *d);

/* A shared MESSAGE for endpoint on channel a at dst, which must hold
 * frame_size(a_len, 0, FRAME_MESSAGE_DESC_SIZE) bytes. Returns the size. */
uint32_t frame_encode_message_shared(uint8_t *dst, uint32_t endpoint, const void *a, size_t a_len,
                                     const frame_message_desc *d);

/* On a MESSAGE at dst: the publisher's number, in the request id field. */
void frame_set_publisher(uint8_t *dst, uint32_t publisher);

/* A mark a process keeps on frames in its own input, in a bit of the flags
 * that the broker never sets: DELIVERED, handed over already, so skipped
 * (input can be handed over out of arrival order, across publishers:
 * channel_input.c). */
#define FRAME_LOCAL_DELIVERED 0x8000u
/* Sets the marks in set and clears those in clear, on the frame at dst. */
void frame_mark_local(uint8_t *dst, uint16_t set, uint16_t clear);

/* Writes request_id into the header of the frame at dst (a received
 * FRAME_HANDOFF: see above). */
void frame_set_request_id(uint8_t *dst, uint32_t request_id);

/* Little-endian helpers, for this module and the tests' hand-made bytes:
 * the rest of the engine reads and writes the wire through the functions
 * above. */
static inline uint32_t frame_load_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void frame_store_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline void frame_store_u64(uint8_t *p, uint64_t v) {
  frame_store_u32(p, (uint32_t)v);
  frame_store_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t frame_load_u64(const uint8_t *p) {
  return (uint64_t)frame_load_u32(p) | ((uint64_t)frame_load_u32(p + 4) << 32);
}

#endif
