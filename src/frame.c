/* frame: encoding and decoding of the channel's frames (see frame.h).
 *
 * The decoder is the one piece of the engine that reads bytes a peer chose,
 * so it checks every length against what is actually in the buffer and
 * against the agreed maximum before anything else looks at the frame. */
#include "frame.h"

#include <string.h>

int frame_decode(const uint8_t *buf, size_t len, uint32_t max_size, frame *out) {
  if (len < 4) return FRAME_INCOMPLETE;
  uint32_t size = frame_load_u32(buf);
  if (size < FRAME_HEADER_SIZE) return FRAME_MALFORMED;
  if (size > max_size) return FRAME_TOO_LARGE;
  if (len < FRAME_HEADER_SIZE) return FRAME_INCOMPLETE;

  /* The header is complete: validate it before waiting for the body, so a
   * bad frame is refused as early as possible. */
  uint8_t type = buf[4];
  uint8_t status = buf[5];
  uint32_t a_len = frame_load_u32(buf + 16);
  uint32_t b_len = frame_load_u32(buf + 20);
  uint32_t room = size - FRAME_HEADER_SIZE;
  if (type == 0 || type > FRAME_TYPE_MAX) return FRAME_MALFORMED;
  if (status > FRAME_STATUS_MAX) return FRAME_MALFORMED;
  if (a_len > room || b_len > room - a_len) return FRAME_MALFORMED;
  if (len < size) return FRAME_INCOMPLETE;

  out->size = size;
  out->type = type;
  out->status = status;
  out->flags = (uint16_t)(buf[6] | (buf[7] << 8));
  out->endpoint = frame_load_u32(buf + 8);
  out->request_id = frame_load_u32(buf + 12);
  out->a = buf + FRAME_HEADER_SIZE;
  out->a_len = a_len;
  out->b = out->a + a_len;
  out->b_len = b_len;
  out->payload = out->b + b_len;
  out->payload_len = room - a_len - b_len;
  return FRAME_OK;
}

uint32_t frame_size(size_t a_len, size_t b_len, size_t payload_len) {
  uint64_t total = (uint64_t)FRAME_HEADER_SIZE;
  if (a_len > UINT32_MAX || b_len > UINT32_MAX || payload_len > UINT32_MAX) return 0;
  total += (uint64_t)a_len + (uint64_t)b_len + (uint64_t)payload_len;
  if (total > UINT32_MAX) return 0;
  return (uint32_t)total;
}

uint32_t frame_write_header(uint8_t *dst, uint8_t type, uint8_t status, uint32_t endpoint,
                            uint32_t request_id, size_t a_len, size_t b_len, size_t payload_len) {
  uint32_t size = frame_size(a_len, b_len, payload_len);
  frame_store_u32(dst, size);
  dst[4] = type;
  dst[5] = status;
  dst[6] = 0;
  dst[7] = 0;
  frame_store_u32(dst + 8, endpoint);
  frame_store_u32(dst + 12, request_id);
  frame_store_u32(dst + 16, (uint32_t)a_len);
  frame_store_u32(dst + 20, (uint32_t)b_len);
  return size;
}

uint32_t frame_encode(uint8_t *dst, uint8_t type, uint8_t status, uint32_t endpoint,
                      uint32_t request_id, const void *a, size_t a_len, const void *b, size_t b_len,
                      const void *payload, size_t payload_len) {
  uint32_t size =
      frame_write_header(dst, type, status, endpoint, request_id, a_len, b_len, payload_len);
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
