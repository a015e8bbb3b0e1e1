/* uplink_wire: the bytes the uplink's own messages carry (see
 * uplink_wire.h). */
#include "uplink_wire.h"

#include <string.h>

int uplink_wire_record(const uint8_t *p, size_t len, size_t *at, const uint8_t **bytes,
                       uint32_t *bytes_len) {
  if (*at >= len) return 0;
  if (len - *at < UPLINK_WIRE_RECORD_HEAD) return -1;
  const uint8_t *h = p + *at;
  uint32_t n =
      (uint32_t)h[0] | ((uint32_t)h[1] << 8) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 24);
  if (n > len - *at - UPLINK_WIRE_RECORD_HEAD) return -1;
  *bytes = h + UPLINK_WIRE_RECORD_HEAD;
  *bytes_len = n;
  *at += UPLINK_WIRE_RECORD_HEAD + n;
  return 1;
}

void uplink_wire_record_head(uint8_t dst[UPLINK_WIRE_RECORD_HEAD], uint32_t len) {
  dst[0] = (uint8_t)len;
  dst[1] = (uint8_t)(len >> 8);
  dst[2] = (uint8_t)(len >> 16);
  dst[3] = (uint8_t)(len >> 24);
}

int uplink_wire_control(const uint8_t *p, size_t len, const uint8_t **origin, uint8_t *op,
                        size_t *records) {
  if (len < UPLINK_WIRE_ORIGIN + 1) return -1;
  *origin = p;
  *op = p[UPLINK_WIRE_ORIGIN];
  *records = UPLINK_WIRE_ORIGIN + 1;
  return 0;
}

int uplink_wire_message(const uint8_t *p, size_t len, const uint8_t **origin, size_t *records) {
  if (len < UPLINK_WIRE_ORIGIN) return -1;
  *origin = p;
  *records = UPLINK_WIRE_ORIGIN;
  return 0;
}

static uint32_t uplink_wire_u32(const uint8_t *h) {
  return (uint32_t)h[0] | ((uint32_t)h[1] << 8) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 24);
}

size_t uplink_wire_item_size(uint8_t op, size_t a_len, size_t b_len, size_t c_len) {
  if (a_len > UINT32_MAX || b_len > UINT32_MAX || c_len > UINT32_MAX) return 0;
  if (op != UPLINK_WIRE_REQUEST) return 4 + 1 + 2 * UPLINK_WIRE_RECORD_HEAD + a_len + b_len;
  return 4 + 1 + 3 * UPLINK_WIRE_RECORD_HEAD + a_len + b_len + c_len;
}

static uint8_t *uplink_wire_put(uint8_t *at, const uint8_t *bytes, uint32_t len) {
  uplink_wire_record_head(at, len);
  if (len) memcpy(at + UPLINK_WIRE_RECORD_HEAD, bytes, len);
  return at + UPLINK_WIRE_RECORD_HEAD + len;
}

size_t uplink_wire_item_write(uint8_t *dst, uint8_t op, const uplink_wire_item *item) {
  uplink_wire_record_head(dst, item->id); /* the same little-endian layout */
  dst[4] = item->type;
  uint8_t *at = uplink_wire_put(dst + 5, item->a, item->a_len);
  at = uplink_wire_put(at, item->b, item->b_len);
  if (op == UPLINK_WIRE_REQUEST) at = uplink_wire_put(at, item->c, item->c_len);
  return (size_t)(at - dst);
}

int uplink_wire_item_read(const uint8_t *p, size_t len, uint8_t op, size_t *at,
                          uplink_wire_item *item) {
  if (*at >= len) return 0;
  if (len - *at < 5) return -1;
  size_t pos = *at + 5;
  item->id = uplink_wire_u32(p + *at);
  item->type = p[*at + 4];
  item->c = NULL;
  item->c_len = 0;
  if (uplink_wire_record(p, len, &pos, &item->a, &item->a_len) != 1 ||
      uplink_wire_record(p, len, &pos, &item->b, &item->b_len) != 1)
    return -1;
  if (op == UPLINK_WIRE_REQUEST && uplink_wire_record(p, len, &pos, &item->c, &item->c_len) != 1)
    return -1;
  *at = pos;
  return 1;
}
