/* resp: Redis's wire format (RESP2), written and read (see resp.h).
 *
 * The scanner keeps where it stopped (the next item's offset and how many
 * elements each open array still waits for), so bytes that arrive a few at
 * a time are looked at once each, except a line cut in the middle, which
 * is looked for again (lines are short: numbers, and simple strings up to
 * max_bulk). A bulk string is skipped by its length, never scanned. */
#include "resp.h"

#include <string.h>

/* The longest decimal an int64 takes, sign included. */
#define RESP_NUMBER_MAX 20u

const char *resp_strerror(int result) {
  switch (result) {
  case RESP_OK:
    return "ok";
  case RESP_INCOMPLETE:
    return "incomplete reply";
  case RESP_BAD_TYPE:
    return "unknown type byte (not RESP2)";
  case RESP_BAD_NUMBER:
    return "malformed length or integer";
  case RESP_BAD_LINE:
    return "line or bulk string not ended by CRLF";
  case RESP_TOO_LONG:
    return "bulk string or line over the limit";
  case RESP_TOO_DEEP:
    return "arrays nested over the limit";
  case RESP_TOO_MANY:
    return "more array elements than the limit";
  default:
    return "unknown error";
  }
}

/* ---- writing ------------------------------------------------------------- */

static size_t resp_digits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    d++;
  }
  return d;
}

static uint8_t *resp_put_header(uint8_t *dst, char type, size_t n) {
  char digits[24];
  size_t d = 0;
  do {
    digits[d++] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  *dst++ = (uint8_t)type;
  while (d)
    *dst++ = (uint8_t)digits[--d];
  *dst++ = '\r';
  *dst++ = '\n';
  return dst;
}

size_t resp_command_size(const resp_arg *args, size_t argc) {
  size_t size = 1 + resp_digits(argc) + 2;
  for (size_t i = 0; i < argc; i++) {
    size_t n = args[i].a_len + args[i].b_len;
    size += 1 + resp_digits(n) + 2 + n + 2;
  }
  return size;
}

size_t resp_command_write(uint8_t *dst, const resp_arg *args, size_t argc) {
  uint8_t *at = resp_put_header(dst, '*', argc);
  for (size_t i = 0; i < argc; i++) {
    at = resp_put_header(at, '$', args[i].a_len + args[i].b_len);
    if (args[i].a_len) memcpy(at, args[i].a, args[i].a_len);
    at += args[i].a_len;
    if (args[i].b_len) memcpy(at, args[i].b, args[i].b_len);
    at += args[i].b_len;
    *at++ = '\r';
    *at++ = '\n';
  }
  return (size_t)(at - dst);
}

/* ---- reading -------------------------------------------------------------- */

void resp_scanner_init(resp_scanner *s, const resp_limits *limits) {
  memset(s, 0, sizeof(*s));
  s->limits = *limits;
  if (s->limits.max_depth > RESP_MAX_DEPTH) s->limits.max_depth = RESP_MAX_DEPTH;
}

/* A decimal int64 in [p, p + n): 0, or -1 when it is not one. */
static int resp_parse_number(const uint8_t *p, size_t n, int64_t *out) {
  int negative = 0;
  if (n > 0 && p[0] == '-') {
    negative = 1;
    p++;
    n--;
  }
  if (n == 0 || n > 19) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  if (v > (uint64_t)INT64_MAX) return -1;
  *out = negative ? -(int64_t)v : (int64_t)v;
  return 0;
}

/* Finds the \r\n that ends the line whose text starts at from; *end is
 * where the \r is. RESP_INCOMPLETE, RESP_BAD_LINE, RESP_TOO_LONG. */
static int resp_find_line(const uint8_t *buf, size_t len, size_t from, size_t max, size_t *end) {
  size_t limit = len - from > max + 1 ? from + max + 1 : len;
  const uint8_t *cr = memchr(buf + from, '\r', limit - from);
  if (!cr) return len - from > max ? RESP_TOO_LONG : RESP_INCOMPLETE;
  size_t at = (size_t)(cr - buf);
  if (at + 1 >= len) return RESP_INCOMPLETE;
  if (buf[at + 1] != '\n') return RESP_BAD_LINE;
  *end = at;
  return RESP_OK;
}

/* One item at s->pos: RESP_OK when it is whole (s->pos past it, or past
 * an array's header with the array pushed: *opened set). */
static int resp_scan_item(resp_scanner *s, const uint8_t *buf, size_t len, int *opened) {
  size_t pos = s->pos;
  *opened = 0;
  if (pos >= len) return RESP_INCOMPLETE;
  uint8_t type = buf[pos];
  size_t max = RESP_NUMBER_MAX;
  if (type == RESP_SIMPLE || type == RESP_ERROR)
    max = s->limits.max_bulk;
  else if (type != RESP_INTEGER && type != RESP_BULK && type != RESP_ARRAY)
    return RESP_BAD_TYPE;
  size_t end;
  int rc = resp_find_line(buf, len, pos + 1, max, &end);
  if (rc == RESP_TOO_LONG && max == RESP_NUMBER_MAX) return RESP_BAD_NUMBER;
  if (rc != RESP_OK) return rc;
  size_t next = end + 2;
  int64_t n = 0;
  if (type != RESP_SIMPLE && type != RESP_ERROR &&
      resp_parse_number(buf + pos + 1, end - pos - 1, &n) != 0)
    return RESP_BAD_NUMBER;
  if (type == RESP_BULK && n >= 0) {
    if ((uint64_t)n > s->limits.max_bulk) return RESP_TOO_LONG;
    if (len - next < (size_t)n + 2) return RESP_INCOMPLETE;
    if (buf[next + (size_t)n] != '\r' || buf[next + (size_t)n + 1] != '\n') return RESP_BAD_LINE;
    next += (size_t)n + 2;
  } else if ((type == RESP_BULK || type == RESP_ARRAY) && n < -1) {
    return RESP_BAD_NUMBER;
  } else if (type == RESP_ARRAY && n > 0) {
    if ((uint64_t)n > s->limits.max_elements - s->elements) return RESP_TOO_MANY;
    if (s->depth >= s->limits.max_depth) return RESP_TOO_DEEP;
    s->elements += (size_t)n;
    s->left[s->depth++] = n;
    *opened = 1;
  }
  s->pos = next;
  return RESP_OK;
}

int resp_scan(resp_scanner *s, const uint8_t *buf, size_t len, size_t *reply_len) {
  for (;;) {
    int opened;
    int rc = resp_scan_item(s, buf, len, &opened);
    if (rc != RESP_OK) return rc;
    if (opened) continue;
    /* An item is whole: so may be the arrays it ends. */
    while (s->depth > 0 && --s->left[s->depth - 1] == 0)
      s->depth--;
    if (s->depth == 0) {
      *reply_len = s->pos;
      s->pos = 0;
      s->elements = 0;
      return RESP_OK;
    }
  }
}

int resp_item_read(const uint8_t *reply, size_t len, size_t *pos, resp_item *out) {
  size_t at = *pos;
  memset(out, 0, sizeof(*out));
  if (at >= len) return -1;
  const uint8_t *cr = memchr(reply + at, '\r', len - at);
  if (!cr || (size_t)(cr - reply) + 2 > len) return -1;
  size_t end = (size_t)(cr - reply);
  size_t next = end + 2;
  out->type = reply[at];
  switch (out->type) {
  case RESP_SIMPLE:
  case RESP_ERROR:
    out->str = reply + at + 1;
    out->len = end - at - 1;
    break;
  case RESP_INTEGER:
  case RESP_ARRAY:
  case RESP_BULK:
    if (resp_parse_number(reply + at + 1, end - at - 1, &out->integer) != 0) return -1;
    if (out->type == RESP_INTEGER) break;
    if (out->integer < 0) {
      out->null = 1;
      out->integer = 0;
      break;
    }
    if (out->type != RESP_BULK) break;
    if ((uint64_t)out->integer + 2 > len - next) return -1;
    out->str = reply + next;
    out->len = (size_t)out->integer;
    next += out->len + 2;
    break;
  default:
    return -1;
  }
  *pos = next;
  return 0;
}

int resp_item_is(const resp_item *item, const char *text, size_t len) {
  if (item->type != RESP_SIMPLE && item->type != RESP_BULK) return 0;
  if (item->len != len) return 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t a = item->str[i], b = (uint8_t)text[i];
    if (a >= 'A' && a <= 'Z') a = (uint8_t)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = (uint8_t)(b - 'A' + 'a');
    if (a != b) return 0;
  }
  return 1;
}
