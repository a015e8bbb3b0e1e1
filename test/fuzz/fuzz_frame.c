/* libFuzzer target: the frame decoder, and the parsers of the payloads the
 * engine reads, on arbitrary bytes.
 *
 * Decodes frames one after another as a reader would, under a maximum
 * taken from the input, and checks what every decoded frame promises: its
 * fields lie inside the frame, the frame inside the input, and encoding it
 * again gives back the same bytes. Every payload parser then reads the
 * frame's payload (a parser must never read past it), and whatever one
 * accepts must be what it checks and must write back to the same bytes.
 * A shared publish is encoded again from its head and descriptor. Field b
 * goes through the offset parser too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "shm.h"

/* The payload parsers: each on f's payload, every time, whatever its type. */
static void fuzz_payloads(const frame *f) {
  uint8_t back[FRAME_STATS_SIZE];
  uint32_t version, peer_max, pid, ms;
  uint64_t count, values[FRAME_STATS_COUNT];
  frame_offer offer;
  frame_publish_desc pd;
  frame_message_desc md;
  const uint8_t *p = f->payload;
  size_t len = f->payload_len;
  {
    uint64_t epoch, seq;
    if (frame_offset_parse(f->b, f->b_len, &epoch, &seq) == 0 && f->b_len != FRAME_OFFSET_SIZE)
      abort();
  }
  if (frame_hello_parse(p, len, &version, &peer_max) == 0 && memcmp(p, FRAME_MAGIC, 4) != 0)
    abort();
  if (frame_offer_parse(p, len, &offer) == 0) {
    if (offer.region >= SHM_REGIONS || offer.region_size != SHM_REGION_SIZE) abort();
    frame_offer_write(back, &offer);
    if (len != FRAME_OFFER_SIZE || memcmp(back, p, len) != 0) abort();
  }
  if (frame_shared_ready_parse(p, len, &pid) == 0) {
    frame_shared_ready_write(back, pid);
    if (len != FRAME_SHARED_READY_SIZE || memcmp(back, p, len) != 0) abort();
  }
  if (frame_read_count_parse(p, len, &count) == 0) {
    frame_read_count_write(back, count);
    if (len != FRAME_READ_COUNT_SIZE || memcmp(back, p, len) != 0) abort();
  }
  if (frame_expire_parse(p, len, &ms) == 0) {
    frame_expire_write(back, ms);
    if (len != FRAME_EXPIRE_SIZE || memcmp(back, p, len) != 0) abort();
  }
  if (frame_stats_parse(p, len, values) == 0) {
    frame_stats_write(back, values);
    if (len != FRAME_STATS_SIZE || memcmp(back, p, len) != 0) abort();
  }
  /* A member list: each tag it yields lies inside the payload, and
   * writing the tags again gives back the bytes read so far. */
  {
    size_t at = 0, before = 0;
    const uint8_t *tag;
    uint32_t tag_len;
    uint8_t one[FRAME_MEMBER_HEAD + FRAME_TAG_MAX];
    while (frame_member_next(p, len, &at, &tag, &tag_len) == 1) {
      if (tag_len == 0 || tag_len > FRAME_TAG_MAX || tag < p || tag + tag_len > p + len) abort();
      if (frame_member_write(one, tag, tag_len) != at - before) abort();
      if (memcmp(one, p + before, at - before) != 0) abort();
      before = at;
    }
  }
  uint64_t epoch, seq;
  if (frame_offset_parse(p, len, &epoch, &seq) == 0) {
    uint8_t text[FRAME_OFFSET_SIZE];
    frame_offset_write(text, epoch, seq);
    if (len != FRAME_OFFSET_SIZE || memcmp(text, p, len) != 0) abort();
  }
  uint32_t left;
  if (frame_retained_head_parse(p, len, &left) == 0) {
    /* Every entry lies inside the payload, one after another. */
    size_t pos = FRAME_RETAINED_HEAD_SIZE;
    frame_retained_entry e;
    int rc;
    while ((rc = frame_retained_next(p, len, &pos, &e)) == 1)
      if (e.offset < p || e.bytes + e.len != p + pos || pos > len) abort();
    if (rc == 0 && pos != len) abort();
  }
  if (frame_publish_desc_parse(p, len, &pd) == 0) {
    /* Inside the data area of a region, in one of its slots. */
    if (pd.slot >= SHM_SLOTS || pd.length == 0 || pd.length > SHM_PAYLOAD_MAX ||
        (uint64_t)pd.offset + pd.length > SHM_DATA_SIZE)
      abort();
    frame_publish_desc_write(back, &pd);
    if (len != FRAME_PUBLISH_DESC_SIZE || memcmp(back, p, len) != 0) abort();
  }
  if (frame_message_desc_parse(p, len, &md) == 0) {
    /* Inside the data area of one region of the pool. */
    uint64_t region = md.offset / SHM_REGION_SIZE;
    uint64_t start = shm_data_offset((uint32_t)region);
    if (region >= SHM_REGIONS || md.length == 0 || md.length > SHM_PAYLOAD_MAX ||
        md.offset < start || (uint64_t)md.offset + md.length > (region + 1) * SHM_REGION_SIZE)
      abort();
    frame_message_desc_write(back, &md);
    if (len != FRAME_MESSAGE_DESC_SIZE || memcmp(back, p, len) != 0) abort();
  }
}

/* A PUBLISH's head (header and names) and a descriptor make a shared
 * publish that decodes to the same header, the flag added. */
static void fuzz_publish_shared(const uint8_t *at, const frame *f) {
  size_t head_len = FRAME_HEADER_SIZE + (size_t)f->a_len + f->b_len;
  frame_publish_desc d = {1, 2, 3};
  uint8_t *copy = malloc(head_len + FRAME_PUBLISH_DESC_SIZE);
  if (!copy) abort();
  uint32_t size = frame_encode_publish_shared(copy, at, head_len, &d);
  frame g;
  if (size != head_len + FRAME_PUBLISH_DESC_SIZE ||
      frame_decode(copy, size, UINT32_MAX, &g) != FRAME_OK)
    abort();
  if (g.type != FRAME_PUBLISH || g.flags != (f->flags | FRAME_FLAG_SHARED) ||
      g.endpoint != f->endpoint || g.request_id != f->request_id || g.a_len != f->a_len ||
      g.b_len != f->b_len || memcmp(g.a, f->a, f->a_len + f->b_len) != 0 ||
      g.payload_len != FRAME_PUBLISH_DESC_SIZE)
    abort();
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint32_t max_size = FRAME_HEADER_SIZE + (uint32_t)data[0] * 64u + data[1];
  data += 2;
  size -= 2;
  size_t offset = 0;
  while (offset < size) {
    frame f;
    int rc = frame_decode(data + offset, size - offset, max_size, &f);
    if (rc != FRAME_OK) {
      if (rc != FRAME_INCOMPLETE && rc != FRAME_TOO_LARGE && rc != FRAME_MALFORMED) abort();
      if (rc == FRAME_TOO_LARGE && size - offset >= FRAME_HEADER_SIZE) {
        frame_header h;
        frame_header_read(data + offset, &h);
        if (h.size <= max_size) abort();
      }
      break;
    }
    if (f.size < FRAME_HEADER_SIZE || f.size > max_size || f.size > size - offset) abort();
    if (f.a != data + offset + FRAME_HEADER_SIZE) abort();
    if ((size_t)f.a_len + f.b_len + f.payload_len + FRAME_HEADER_SIZE != f.size) abort();
    if (f.type == 0 || f.type > FRAME_TYPE_MAX || f.status > FRAME_STATUS_MAX) abort();
    uint8_t *copy = malloc(f.size);
    if (!copy) abort();
    uint32_t written = frame_write_header(copy, f.type, f.status, f.flags, f.endpoint, f.request_id,
                                          f.a_len, f.b_len, f.payload_len);
    memcpy(copy + FRAME_HEADER_SIZE, f.a, f.size - FRAME_HEADER_SIZE);
    if (written != f.size || memcmp(copy, data + offset, f.size) != 0) abort();
    free(copy);
    fuzz_payloads(&f);
    if (f.type == FRAME_PUBLISH) fuzz_publish_shared(data + offset, &f);
    offset += f.size;
  }
  return 0;
}
