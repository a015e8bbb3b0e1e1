/* uplink_wire: the bytes the uplink's own messages carry (see
 * uplink_wire.h). */
#include "uplink_wire.h"

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
