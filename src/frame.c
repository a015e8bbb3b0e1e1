/* frame: encoding and decoding of the channel's frames (see frame.h).
 *
 * The decoder is the one piece of the engine that reads bytes a peer chose,
 * so it checks every length against what is actually in the buffer and
 * against the agreed maximum before anything else looks at the frame. */
#include "frame.h"

#include <string.h>

#include "shm.h"

_Static_assert(FRAME_TYPE_MAX == FRAME_HANDOFF && FRAME_STATUS_MAX == FRAME_STATUS_BAD_REQUEST,
               "types and statuses run without gaps: a count is the largest value");
_Static_assert(SHM_POOL_SIZE <= UINT32_MAX, "a pool offset fits a message descriptor's u32");

int frame_decode(const uint8_t *buf, size_t len, uint32_t max_size, frame *out) {
  if (len < 4) return FRAME_INCOMPLETE;
  uint32_t size = frame_load_u32(buf);
  if (size < FRAME_HEADER_SIZE) return FRAME_MALFORMED;
  if (size > max_size) return FRAME_TOO_LARGE;
  if (len < FRAME_HEADER_SIZE) return FRAME_INCOMPLETE;

  /* The header is complete: validate it before waiting for the body, so a
   * bad frame is refused as early as possible. */
  frame_header h;
  frame_header_read(buf, &h);
  uint32_t room = size - FRAME_HEADER_SIZE;
  if (h.type == 0 || h.type > FRAME_TYPE_MAX) return FRAME_MALFORMED;
  if (h.status > FRAME_STATUS_MAX) return FRAME_MALFORMED;
  if (h.a_len > room || h.b_len > room - h.a_len) return FRAME_MALFORMED;
  if (len < size) return FRAME_INCOMPLETE;

  out->size = size;
  out->type = h.type;
  out->status = h.status;
  out->flags = h.flags;
  out->endpoint = h.endpoint;
  out->request_id = h.request_id;
  out->a = buf + FRAME_HEADER_SIZE;
  out->a_len = h.a_len;
  out->b = out->a + h.a_len;
  out->b_len = h.b_len;
  out->payload = out->b + h.b_len;
  out->payload_len = room - h.a_len - h.b_len;
  return FRAME_OK;
}

void frame_header_read(const uint8_t *buf, frame_header *out) {
  out->size = frame_load_u32(buf);
  out->type = buf[4];
  out->status = buf[5];
  out->flags = (uint16_t)(buf[6] | (buf[7] << 8));
  out->endpoint = frame_load_u32(buf + 8);
  out->request_id = frame_load_u32(buf + 12);
  out->a_len = frame_load_u32(buf + 16);
  out->b_len = frame_load_u32(buf + 20);
}

void frame_set_request_id(uint8_t *dst, uint32_t request_id) {
  frame_store_u32(dst + 12, request_id);
}

uint32_t frame_header_size(const uint8_t *buf) {
  return frame_load_u32(buf);
}

static void frame_header_write(uint8_t *dst, const frame_header *h) {
  frame_store_u32(dst, h->size);
  dst[4] = h->type;
  dst[5] = h->status;
  dst[6] = (uint8_t)h->flags;
  dst[7] = (uint8_t)(h->flags >> 8);
  frame_store_u32(dst + 8, h->endpoint);
  frame_store_u32(dst + 12, h->request_id);
  frame_store_u32(dst + 16, h->a_len);
  frame_store_u32(dst + 20, h->b_len);
}

uint32_t frame_size(size_t a_len, size_t b_len, size_t payload_len) {
  uint64_t total = (uint64_t)FRAME_HEADER_SIZE;
  if (a_len > UINT32_MAX || b_len > UINT32_MAX || payload_len > UINT32_MAX) return 0;
  total += (uint64_t)a_len + (uint64_t)b_len + (uint64_t)payload_len;
  if (total > UINT32_MAX) return 0;
  return (uint32_t)total;
}

uint32_t frame_write_header(uint8_t *dst, uint8_t type, uint8_t status, uint16_t flags,
                            uint32_t endpoint, uint32_t request_id, size_t a_len, size_t b_len,
                            size_t payload_len) {
  frame_header h = {frame_size(a_len, b_len, payload_len),
                    type,
                    status,
                    flags,
                    endpoint,
                    request_id,
                    (uint32_t)a_len,
                    (uint32_t)b_len};
  frame_header_write(dst, &h);
  return h.size;
}

uint32_t frame_encode(uint8_t *dst, uint8_t type, uint8_t status, uint32_t endpoint,
                      uint32_t request_id, const void *a, size_t a_len, const void *b, size_t b_len,
                      const void *payload, size_t payload_len) {
  uint32_t size =
      frame_write_header(dst, type, status, 0, endpoint, request_id, a_len, b_len, payload_len);
  uint8_t *p = dst + FRAME_HEADER_SIZE;
  if (a_len) memcpy(p, a, a_len);
  p += a_len;
  if (b_len) memcpy(p, b, b_len);
  p += b_len;
  if (payload_len) memcpy(p, payload, payload_len);
  return size;
}

void frame_hello_write(uint8_t dst[FRAME_HELLO_PAYLOAD_SIZE], uint32_t max_size) {
  memcpy(dst, FRAME_MAGIC, 4);
  frame_store_u32(dst + 4, FRAME_VERSION);
  frame_store_u32(dst + 8, max_size);
}

int frame_hello_parse(const uint8_t *payload, size_t len, uint32_t *version, uint32_t *max_size) {
  if (len < FRAME_HELLO_PAYLOAD_SIZE) return -1;
  if (memcmp(payload, FRAME_MAGIC, 4) != 0) return -1;
  *version = frame_load_u32(payload + 4);
  *max_size = frame_load_u32(payload + 8);
  return 0;
}

void frame_offer_write(uint8_t dst[FRAME_OFFER_SIZE], const frame_offer *offer) {
  frame_store_u32(dst, offer->region);
  frame_store_u32(dst + 4, offer->region_size);
  frame_store_u32(dst + 8, offer->slots);
  frame_store_u32(dst + 12, offer->payload_max);
  frame_store_u32(dst + 16, offer->generation);
}

int frame_offer_parse(const uint8_t *payload, size_t len, frame_offer *out) {
  if (len != FRAME_OFFER_SIZE) return -1;
  out->region = frame_load_u32(payload);
  out->region_size = frame_load_u32(payload + 4);
  out->slots = frame_load_u32(payload + 8);
  out->payload_max = frame_load_u32(payload + 12);
  out->generation = frame_load_u32(payload + 16);
  if (out->region >= SHM_REGIONS || out->region_size != SHM_REGION_SIZE ||
      out->slots != SHM_SLOTS || out->payload_max != SHM_PAYLOAD_MAX)
    return -1;
  return 0;
}

void frame_shared_ready_write(uint8_t dst[FRAME_SHARED_READY_SIZE], uint32_t pid) {
  frame_store_u32(dst, pid);
}

int frame_shared_ready_parse(const uint8_t *payload, size_t len, uint32_t *pid) {
  if (len != FRAME_SHARED_READY_SIZE) return -1;
  *pid = frame_load_u32(payload);
  return 0;
}

void frame_read_count_write(uint8_t dst[FRAME_READ_COUNT_SIZE], uint64_t count) {
  frame_store_u64(dst, count);
}

int frame_read_count_parse(const uint8_t *payload, size_t len, uint64_t *count) {
  if (len != FRAME_READ_COUNT_SIZE) return -1;
  *count = frame_load_u64(payload);
  return 0;
}

void frame_publish_desc_write(uint8_t dst[FRAME_PUBLISH_DESC_SIZE], const frame_publish_desc *d) {
  frame_store_u32(dst, d->slot);
  frame_store_u32(dst + 4, d->offset);
  frame_store_u32(dst + 8, d->length);
}

int frame_publish_desc_parse(const uint8_t *payload, size_t len, frame_publish_desc *out) {
  if (len != FRAME_PUBLISH_DESC_SIZE) return -1;
  out->slot = frame_load_u32(payload);
  out->offset = frame_load_u32(payload + 4);
  out->length = frame_load_u32(payload + 8);
  if (out->slot >= SHM_SLOTS || out->length == 0 || out->length > SHM_PAYLOAD_MAX ||
      out->offset > SHM_DATA_SIZE - out->length)
    return -1;
  return 0;
}

void frame_message_desc_write(uint8_t dst[FRAME_MESSAGE_DESC_SIZE], const frame_message_desc *d) {
  frame_store_u32(dst, d->offset);
  frame_store_u32(dst + 4, d->length);
}

int frame_message_desc_parse(const uint8_t *payload, size_t len, frame_message_desc *out) {
  if (len != FRAME_MESSAGE_DESC_SIZE) return -1;
  out->offset = frame_load_u32(payload);
  out->length = frame_load_u32(payload + 4);
  uint64_t in_region = out->offset % SHM_REGION_SIZE;
  if (out->length == 0 || out->length > SHM_PAYLOAD_MAX || out->offset >= SHM_POOL_SIZE ||
      in_region < SHM_HEADER_SIZE || in_region + out->length > SHM_REGION_SIZE)
    return -1;
  return 0;
}

size_t frame_member_write(uint8_t *dst, const uint8_t *tag, uint32_t len) {
  frame_store_u32(dst, len);
  if (len) memcpy(dst + FRAME_MEMBER_HEAD, tag, len);
  return FRAME_MEMBER_HEAD + (size_t)len;
}

int frame_member_next(const uint8_t *payload, size_t len, size_t *offset, const uint8_t **tag,
                      uint32_t *tag_len) {
  size_t at = *offset;
  if (at >= len) return 0;
  if (len - at < FRAME_MEMBER_HEAD) return -1;
  uint32_t n = frame_load_u32(payload + at);
  if (n == 0 || n > FRAME_TAG_MAX || len - at - FRAME_MEMBER_HEAD < n) return -1;
  *tag = payload + at + FRAME_MEMBER_HEAD;
  *tag_len = n;
  *offset = at + FRAME_MEMBER_HEAD + n;
  return 1;
}

void frame_expire_write(uint8_t dst[FRAME_EXPIRE_SIZE], uint32_t ms) {
  frame_store_u32(dst, ms);
}

int frame_expire_parse(const uint8_t *payload, size_t len, uint32_t *ms) {
  if (len != FRAME_EXPIRE_SIZE) return -1;
  *ms = frame_load_u32(payload);
  return 0;
}

void frame_stats_write(uint8_t dst[FRAME_STATS_SIZE], const uint64_t values[FRAME_STATS_COUNT]) {
  for (size_t i = 0; i < FRAME_STATS_COUNT; i++)
    frame_store_u64(dst + i * 8, values[i]);
}

int frame_stats_parse(const uint8_t *payload, size_t len, uint64_t values[FRAME_STATS_COUNT]) {
  if (len != FRAME_STATS_SIZE) return -1;
  for (size_t i = 0; i < FRAME_STATS_COUNT; i++)
    values[i] = frame_load_u64(payload + i * 8);
  return 0;
}

static const char frame_hex_digits[] = "0123456789abcdef";

static void frame_hex_write(uint8_t *dst, uint64_t v) {
  for (int i = 15; i >= 0; i--) {
    dst[i] = (uint8_t)frame_hex_digits[v & 15];
    v >>= 4;
  }
}

/* 16 lowercase hex digits: 0 with *out, or -1. */
static int frame_hex_parse(const uint8_t *src, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    uint8_t c = src[i];
    unsigned digit;
    if (c >= '0' && c <= '9')
      digit = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = (unsigned)(c - 'a' + 10);
    else
      return -1;
    v = (v << 4) | digit;
  }
  *out = v;
  return 0;
}

void frame_offset_write(uint8_t dst[FRAME_OFFSET_SIZE], uint64_t epoch, uint64_t seq) {
  frame_hex_write(dst, epoch);
  dst[16] = '-';
  frame_hex_write(dst + 17, seq);
}

int frame_offset_parse(const uint8_t *text, size_t len, uint64_t *epoch, uint64_t *seq) {
  if (len != FRAME_OFFSET_SIZE || text[16] != '-') return -1;
  if (frame_hex_parse(text, epoch) != 0 || frame_hex_parse(text + 17, seq) != 0) return -1;
  return 0;
}

void frame_retained_head_write(uint8_t dst[FRAME_RETAINED_HEAD_SIZE], uint32_t left) {
  frame_store_u32(dst, left);
}

size_t frame_retained_entry_write(uint8_t *dst, uint64_t epoch, uint64_t seq, const void *bytes,
                                  uint32_t len) {
  frame_offset_write(dst, epoch, seq);
  frame_store_u32(dst + FRAME_OFFSET_SIZE, len);
  if (len) memcpy(dst + FRAME_RETAINED_ENTRY_HEAD_SIZE, bytes, len);
  return FRAME_RETAINED_ENTRY_HEAD_SIZE + (size_t)len;
}

int frame_retained_head_parse(const uint8_t *payload, size_t len, uint32_t *left) {
  if (len < FRAME_RETAINED_HEAD_SIZE) return -1;
  *left = frame_load_u32(payload);
  return 0;
}

int frame_retained_next(const uint8_t *payload, size_t len, size_t *pos,
                        frame_retained_entry *out) {
  size_t at = *pos;
  if (at >= len) return 0;
  if (len - at < FRAME_RETAINED_ENTRY_HEAD_SIZE) return -1;
  uint32_t n = frame_load_u32(payload + at + FRAME_OFFSET_SIZE);
  if (n > len - at - FRAME_RETAINED_ENTRY_HEAD_SIZE) return -1;
  out->offset = payload + at;
  out->bytes = payload + at + FRAME_RETAINED_ENTRY_HEAD_SIZE;
  out->len = n;
  *pos = at + FRAME_RETAINED_ENTRY_HEAD_SIZE + n;
  return 1;
}

uint32_t frame_encode_publish_shared(uint8_t *dst, const uint8_t *head, size_t head_len,
                                     const frame_publish_desc *d) {
  frame_header h;
  if (head_len < FRAME_HEADER_SIZE) return 0;
  frame_header_read(head, &h);
  if (h.type != FRAME_PUBLISH || (uint64_t)h.a_len + h.b_len != head_len - FRAME_HEADER_SIZE)
    return 0;
  h.size = frame_size(h.a_len, h.b_len, FRAME_PUBLISH_DESC_SIZE);
  h.flags |= FRAME_FLAG_SHARED;
  memmove(dst, head, head_len);
  frame_header_write(dst, &h);
  frame_publish_desc_write(dst + head_len, d);
  return h.size;
}

uint32_t frame_encode_message_shared(uint8_t *dst, uint32_t endpoint, const void *a, size_t a_len,
                                     const frame_message_desc *d) {
  uint32_t size = frame_write_header(dst, FRAME_MESSAGE, 0, FRAME_FLAG_SHARED, endpoint, 0, a_len,
                                     0, FRAME_MESSAGE_DESC_SIZE);
  if (a_len) memcpy(dst + FRAME_HEADER_SIZE, a, a_len);
  frame_message_desc_write(dst + FRAME_HEADER_SIZE + a_len, d);
  return size;
}

void frame_set_publisher(uint8_t *dst, uint32_t publisher) {
  frame_store_u32(dst + 12, publisher);
}

void frame_mark_local(uint8_t *dst, uint16_t set, uint16_t clear) {
  uint16_t flags = (uint16_t)(dst[6] | (dst[7] << 8));
  flags = (uint16_t)((flags & ~clear) | set);
  dst[6] = (uint8_t)(flags & 0xff);
  dst[7] = (uint8_t)(flags >> 8);
}
