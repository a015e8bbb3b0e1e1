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
 *   12     4     request id: echoed in the reply; 0 when no reply is wanted
 *   16     4     length of field a (a channel name or a namespace)
 *   20     4     length of field b (a key)
 *   24     a     field a bytes
 *   24+a   b     field b bytes
 *   24+a+b ...   payload: the rest of the frame (a message or a value)
 *
 * The header says the whole length, so a reader always knows how much to
 * wait for, and a length over the agreed maximum is refused before any
 * memory is spent on it. Payloads are opaque: the engine never looks inside.
 * The first frame each way is a HELLO carrying the magic and the version.
 *
 * This module is pure: it encodes into caller memory and decodes from it,
 * with no allocation and no I/O, so it can be unit-tested and fuzzed alone. */
#ifndef CLUSTER_STORE_FRAME_H
#define CLUSTER_STORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 24u
#define FRAME_VERSION 2u
#define FRAME_MAGIC "CSTO"
#define FRAME_HELLO_PAYLOAD_SIZE 12u /* magic, version, max frame size */
#define FRAME_MIN_MAX_SIZE 4096u     /* smallest maximum frame size allowed */
#define FRAME_DEFAULT_MAX_SIZE (64u * 1024u * 1024u)
#define FRAME_LIMIT_MAX_SIZE 0x7ffffff0u /* largest maximum frame size allowed */

enum frame_type {
  FRAME_HELLO = 1,       /* both ways, first frame: payload magic, version, max size */
  FRAME_SUBSCRIBE = 2,   /* a = channel; replied once the subscription is live */
  FRAME_UNSUBSCRIBE = 3, /* a = channel; replied once it is gone */
  FRAME_PUBLISH = 4,     /* a = channel, payload = message; no reply */
  FRAME_MESSAGE = 5,     /* broker to process: endpoint = subscriber, a = channel */
  FRAME_KV_GET = 6,      /* a = namespace, b = key; reply payload = value */
  FRAME_KV_SET = 7,      /* a = namespace, b = key, payload = value */
  FRAME_KV_HAS = 8,      /* a = namespace, b = key */
  FRAME_KV_DEL = 9,      /* a = namespace, b = key */
  FRAME_KV_CLEAR = 10,   /* a = namespace: remove it now */
  FRAME_KV_EXPIRE = 11,  /* a = namespace, payload = 4-byte milliseconds, little-endian */
  FRAME_KV_PERSIST = 12, /* a = namespace: cancel its expiry */
  FRAME_CLOSE = 13,      /* the endpoint is gone: drop its subscriptions */
  FRAME_STATS = 14,      /* reply payload = FRAME_STATS_COUNT 8-byte counters */
  FRAME_SYNC = 15,       /* replied after the broker took in all input already sent to it */
  FRAME_REPLY = 16,      /* broker to process: request id, status, payload */
  /* The shared pool (shm.h). Broker to process, right after its hello and
   * with the pool's descriptor passed alongside (SCM_RIGHTS): payload =
   * SHM_OFFER_SIZE bytes, u32s: the region given to this process, the
   * region size, the slot count, the largest shared payload, the region's
   * generation (for its consumed count, shm.h). Process to
   * broker, once the pool is mapped: payload = the process id (4 bytes), so
   * the broker can tell when the process is gone; from then on the broker
   * may send this process shared messages. */
  FRAME_SHARED = 17,
  /* Process to broker: payload = 8-byte count of the shared messages this
   * process has finished reading, all told; their slots may be freed. */
  FRAME_SHARED_READ = 18,
  FRAME_TYPE_MAX = 18
};

/* Header flags. */
enum frame_flag {
  /* Before handling this request, the broker takes in everything the other
   * connections have already sent, so the reply reflects every write that
   * happened before the request. */
  FRAME_FLAG_BARRIER = 1,
  /* On PUBLISH (process to broker) and MESSAGE (broker to process): the
   * payload is not here but in the shared pool, and the frame's payload is
   * a descriptor (SHM_PUBLISH_DESC_SIZE or SHM_MESSAGE_DESC_SIZE bytes). */
  FRAME_FLAG_SHARED = 2
};

enum frame_status {
  FRAME_STATUS_OK = 0,
  FRAME_STATUS_MISSING = 1,     /* key or namespace not found */
  FRAME_STATUS_NO_MEMORY = 2,   /* the broker could not allocate */
  FRAME_STATUS_BAD_REQUEST = 3, /* malformed request (payload says why) */
  FRAME_STATUS_MAX = 3
};

/* Counters in a FRAME_STATS reply, in this order. */
enum frame_stat {
  FRAME_STAT_CONNECTIONS,     /* processes attached now */
  FRAME_STAT_CONNECTIONS_CUT, /* cut off for not reading */
  FRAME_STAT_FRAMES_IN,
  FRAME_STAT_BYTES_IN,
  FRAME_STAT_MESSAGES_PUBLISHED,
  FRAME_STAT_MESSAGES_DELIVERED,
  FRAME_STAT_BYTES_DELIVERED,
  FRAME_STAT_CHANNELS,
  FRAME_STAT_SUBSCRIPTIONS,
  FRAME_STAT_NAMESPACES,
  FRAME_STAT_KEYS,
  FRAME_STAT_KV_BYTES,
  FRAME_STAT_QUEUED_BYTES,     /* output waiting to be written, all connections */
  FRAME_STAT_MAX_QUEUED_BYTES, /* the largest one connection's queue has been */
  FRAME_STAT_QUEUE_LIMIT,
  FRAME_STAT_MAX_FRAME_SIZE,
  FRAME_STAT_SHARED_DELIVERED, /* deliveries whose payload was read from the shared pool */
  FRAME_STATS_COUNT
};

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

/* Size of a frame with these field lengths; 0 if it would exceed UINT32_MAX. */
uint32_t frame_size(size_t a_len, size_t b_len, size_t payload_len);

/* Writes a header for a frame of the given field lengths at dst (which must
 * hold FRAME_HEADER_SIZE bytes); the caller writes the fields after it.
 * Returns the total frame size (as frame_size). */
uint32_t frame_write_header(uint8_t *dst, uint8_t type, uint8_t status, uint32_t endpoint,
                            uint32_t request_id, size_t a_len, size_t b_len, size_t payload_len);

/* Encodes a whole frame into dst, which must hold frame_size(...) bytes.
 * Returns the size written. Any field pointer may be NULL when its length is 0. */
uint32_t frame_encode(uint8_t *dst, uint8_t type, uint8_t status, uint32_t endpoint,
                      uint32_t request_id, const void *a, size_t a_len, const void *b, size_t b_len,
                      const void *payload, size_t payload_len);

/* HELLO payload helpers. frame_hello_parse returns 0 when the payload is a
 * valid hello (and stores the peer's version and max size), -1 otherwise. */
void frame_hello_write(uint8_t dst[FRAME_HELLO_PAYLOAD_SIZE], uint32_t max_size);
int frame_hello_parse(const uint8_t *payload, size_t len, uint32_t *version, uint32_t *max_size);

/* Little-endian helpers shared by the engine's modules. */
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
