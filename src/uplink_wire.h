/* uplink_wire: the bytes the uplink's own messages carry through Redis;
 * pure, no I/O (see uplink.h for what the messages do).
 *
 * Every message starts with its origin, the sending machine's id
 * (UPLINK_WIRE_ORIGIN bytes). A topic's message then holds one or more
 * records; a control message an op byte, then (for '+' and '-') records.
 * A record is a 4-byte little-endian length and that many bytes: an opaque
 * payload, or a topic's name.
 *
 * A note, on a machine's own channel, is per-client data business between
 * two machines: the origin, an op byte (UPLINK_WIRE_REQUEST: requests for
 * clients the receiver owns; UPLINK_WIRE_ANSWER: their answers), then one
 * or more items. A request item is its id (4 bytes, little-endian, the
 * asker's), the frame type of the request (1 byte), and three records: the
 * client, the key, the payload. An answer item is the request's id, a
 * status (1 byte: a FRAME_STATUS, or UPLINK_WIRE_NOT_OWNER), and two
 * records: the client and the value (or the text of an error). Anyone who can publish on the
 * prefix's channels can send these bytes, so the readers below take any input: they never read past
 * it, and say where it stops making sense. */
#ifndef CLUSTER_STORE_UPLINK_WIRE_H
#define CLUSTER_STORE_UPLINK_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define UPLINK_WIRE_ORIGIN 8u
#define UPLINK_WIRE_RECORD_HEAD 4u

/* The record at *at of p (len bytes): 1 with *bytes, *bytes_len and *at
 * past it; 0 at the end of p; -1 when what is left is not a whole record
 * (the rest is to be ignored). */
int uplink_wire_record(const uint8_t *p, size_t len, size_t *at, const uint8_t **bytes,
                       uint32_t *bytes_len);

/* Writes a record's head for len bytes at dst (UPLINK_WIRE_RECORD_HEAD). */
void uplink_wire_record_head(uint8_t dst[UPLINK_WIRE_RECORD_HEAD], uint32_t len);

/* A control message: 0 with *origin, *op and *records (where its records
 * start), or -1 when it is too short to be one. */
int uplink_wire_control(const uint8_t *p, size_t len, const uint8_t **origin, uint8_t *op,
                        size_t *records);

/* A topic's message: 0 with *origin and *records, or -1 when too short. */
int uplink_wire_message(const uint8_t *p, size_t len, const uint8_t **origin, size_t *records);

#define UPLINK_WIRE_REQUEST 'r'
#define UPLINK_WIRE_ANSWER 'a'
#define UPLINK_WIRE_NOT_OWNER 0xffu /* the receiver does not own the client: ask Redis again */

/* One item of a note: a request (type: its frame type; a, b, c: client,
 * key, payload) or an answer (type: its status; a, b: client, value;
 * c empty). */
typedef struct uplink_wire_item {
  uint32_t id;
  uint8_t type;
  const uint8_t *a, *b, *c;
  uint32_t a_len, b_len, c_len;
} uplink_wire_item;

/* Bytes an item of a note of op takes with these records (an answer has
 * no c), or 0 when a record is over 4 GiB. */
size_t uplink_wire_item_size(uint8_t op, size_t a_len, size_t b_len, size_t c_len);
/* Writes an item of a note of op at dst (uplink_wire_item_size bytes);
 * returns the bytes written. */
size_t uplink_wire_item_write(uint8_t *dst, uint8_t op, const uplink_wire_item *item);
/* The item at *at of a note of op (p, len bytes): 1 with *item and *at
 * past it; 0 at the end; -1 when the rest is not a whole item. */
int uplink_wire_item_read(const uint8_t *p, size_t len, uint8_t op, size_t *at,
                          uplink_wire_item *item);

#endif
