/* resp: Redis's wire format (RESP2), written and read; pure, no I/O.
 *
 * Writing: a command is an array of bulk strings. Each argument is given in
 * up to two pieces that are sent back to back (a key prefix and a name, an
 * origin and a payload), so no caller has to join them first.
 * resp_command_size says how many bytes a command takes, resp_command_write
 * writes it into memory the caller provides.
 *
 * Reading is in two steps. resp_scan finds where one complete reply ends
 * in the bytes received so far, checking its whole structure against the
 * limits; it is incremental: called again with the same bytes and more
 * after them, it goes on where it stopped instead of starting over (the
 * caller keeps the bytes from the start of the reply until it is
 * complete). Once a reply is complete, resp_item reads it item by item,
 * an array's elements following the array. A scanner is a plain struct
 * the caller owns: no global state, no allocation.
 *
 * RESP2's five types: +simple string, -error, :integer, $bulk string
 * ($-1: null), *array (*-1: null). Anything else, a length or integer that
 * is not a number, a line without its \r\n, a bulk without its trailing
 * \r\n, or a reply over the limits is an error that names what was wrong;
 * a connection that gets one cannot be trusted any more. */
#ifndef CLUSTER_STORE_RESP_H
#define CLUSTER_STORE_RESP_H

#include <stddef.h>
#include <stdint.h>

/* ---- writing ------------------------------------------------------------- */

/* One argument of a command: the bytes of a, then those of b (either may
 * be empty; a NULL pointer only with a zero length). */
typedef struct resp_arg {
  const void *a;
  size_t a_len;
  const void *b;
  size_t b_len;
} resp_arg;

/* Bytes the command of argc arguments takes. */
size_t resp_command_size(const resp_arg *args, size_t argc);

/* Writes the command at dst, which holds resp_command_size bytes; returns
 * the bytes written. */
size_t resp_command_write(uint8_t *dst, const resp_arg *args, size_t argc);

/* ---- reading -------------------------------------------------------------- */

enum resp_type {
  RESP_SIMPLE = '+',
  RESP_ERROR = '-',
  RESP_INTEGER = ':',
  RESP_BULK = '$',
  RESP_ARRAY = '*'
};

enum resp_result {
  RESP_OK = 0,          /* a complete reply */
  RESP_INCOMPLETE = -1, /* more bytes needed */
  RESP_BAD_TYPE = -2,   /* a type byte RESP2 does not have */
  RESP_BAD_NUMBER = -3, /* a length or integer that is not a decimal number in range */
  RESP_BAD_LINE = -4,   /* a line or bulk not ended by \r\n */
  RESP_TOO_LONG = -5,   /* a bulk string or a line over max_bulk */
  RESP_TOO_DEEP = -6,   /* arrays nested deeper than max_depth */
  RESP_TOO_MANY = -7    /* more elements in one reply than max_elements */
};

/* What resp_result says, for logs and errors. */
const char *resp_strerror(int result);

#define RESP_MAX_DEPTH 8u /* the deepest a scanner can follow */

typedef struct resp_limits {
  size_t max_bulk;     /* the longest bulk string (and line) accepted */
  uint32_t max_depth;  /* 1: no arrays inside arrays; at most RESP_MAX_DEPTH */
  size_t max_elements; /* array elements in one reply, all levels told */
} resp_limits;

typedef struct resp_scanner {
  resp_limits limits;
  size_t pos;                   /* where the next item starts, from the reply's start */
  size_t elements;              /* array elements met so far */
  uint32_t depth;               /* open arrays */
  int64_t left[RESP_MAX_DEPTH]; /* elements still to come in each open array */
} resp_scanner;

/* A scanner at the start of a reply. max_depth is capped at
 * RESP_MAX_DEPTH. */
void resp_scanner_init(resp_scanner *s, const resp_limits *limits);

/* Looks for the end of the reply that starts at buf (len bytes received so
 * far). RESP_OK: *reply_len is its length and the scanner is ready for the
 * next reply (its bytes start at buf + *reply_len: call again with those).
 * RESP_INCOMPLETE: call again with the same start and more bytes. An error
 * is final. Never reads past buf + len. */
int resp_scan(resp_scanner *s, const uint8_t *buf, size_t len, size_t *reply_len);

/* One item of a scanned reply. */
typedef struct resp_item {
  int type;           /* enum resp_type */
  int null;           /* $-1 or *-1 */
  int64_t integer;    /* RESP_INTEGER; an array's element count */
  const uint8_t *str; /* simple, error, bulk: the bytes (not terminated) */
  size_t len;
} resp_item;

/* Reads the item at *pos of a reply resp_scan accepted (len: its length)
 * and moves *pos past its own bytes (an array's elements come next).
 * 0, or -1 past the end (only for a reply resp_scan did not accept). */
int resp_item_read(const uint8_t *reply, size_t len, size_t *pos, resp_item *out);

/* Whether an item is a bulk or simple string equal to text (len bytes),
 * ASCII case aside (Redis answers "message", "PONG", ...). */
int resp_item_is(const resp_item *item, const char *text, size_t len);

#endif
