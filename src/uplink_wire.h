/* uplink_wire: the bytes the uplink's own messages carry through Redis;
 * pure, no I/O (see uplink.h for what the messages do).
 *
 * Every message starts with its origin, the sending machine's id
 * (UPLINK_WIRE_ORIGIN bytes). A topic's message then holds one or more
 * records; a control message an op byte, then (for '+' and '-') records.
 * A record is a 4-byte little-endian length and that many bytes: an opaque
 * payload, or a topic's name. Anyone who can publish on the prefix's
 * channels can send these bytes, so the readers below take any input:
 * they never read past it, and say where it stops making sense. */
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

#endif
