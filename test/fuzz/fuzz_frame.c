/* libFuzzer target: the frame decoder on arbitrary bytes.
 *
 * Decodes frames one after another as a reader would, under a maximum
 * taken from the input, and checks what every decoded frame promises: its
 * fields lie inside the frame, the frame inside the input, and encoding it
 * again gives back the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

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
      break;
    }
    if (f.size < FRAME_HEADER_SIZE || f.size > max_size || f.size > size - offset) abort();
    if (f.a != data + offset + FRAME_HEADER_SIZE) abort();
    if ((size_t)f.a_len + f.b_len + f.payload_len + FRAME_HEADER_SIZE != f.size) abort();
    if (f.type == 0 || f.type > FRAME_TYPE_MAX || f.status > FRAME_STATUS_MAX) abort();
    uint8_t *copy = malloc(f.size);
    if (!copy) abort();
    uint32_t written = frame_encode(copy, f.type, f.status, f.endpoint, f.request_id, f.a, f.a_len,
                                    f.b, f.b_len, f.payload, f.payload_len);
    copy[6] = (uint8_t)f.flags;
    copy[7] = (uint8_t)(f.flags >> 8);
    if (written != f.size || memcmp(copy, data + offset, f.size) != 0) abort();
    free(copy);
    uint32_t version, peer_max;
    if (f.type == FRAME_HELLO) (void)frame_hello_parse(f.payload, f.payload_len, &version, &peer_max);
    offset += f.size;
  }
  return 0;
}
