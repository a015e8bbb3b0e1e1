/* addon_channel: a channel as JavaScript holds it, an external that owns
 * an addon_channel (freed when collected), and the functions lib/ calls on
 * it: channelCreate, channelAttach, channelSend, channelPublishMany,
 * channelSendMany, channelWait, channelTake, channelFlush, channelRef, channelMaxFrameSize and
 * channelClose.
 *
 * From create to release a channel is in its instance's list, so teardown
 * (addon_cleanup) releases what JavaScript has not closed. A released
 * channel's external lives on until collected; every call on it but
 * channelClose throws ERR_CLUSTER_STORE_CLOSED. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "addon_internal.h"
#include "buffer.h"
#include "frame.h"

/* Large payloads (BUFFER_PARTS_MIN) are sent in two parts
 * (channel_send_parts) when the names are this short or shorter. */
#define ADDON_HEAD_MAX 1024u

static void addon_channel_unlink(addon_channel *ac) {
  addon *a = ac->owner;
  if (ac->prev)
    ac->prev->next = ac->next;
  else if (a->channels == ac)
    a->channels = ac->next;
  if (ac->next) ac->next->prev = ac->prev;
  ac->prev = ac->next = NULL;
}

/* Drops the JavaScript callbacks: this breaks the cycle between the store's
 * closures and the channel, so both can be collected. */
static void addon_channel_drop_callbacks(napi_env env, addon_channel *ac) {
  if (ac->on_input) napi_delete_reference(env, ac->on_input);
  if (ac->on_close) napi_delete_reference(env, ac->on_close);
  if (ac->pool) napi_delete_reference(env, ac->pool);
  if (ac->inbox_bytes) napi_delete_reference(env, ac->inbox_bytes);
  if (ac->inbox_words) napi_delete_reference(env, ac->inbox_words);
  ac->on_input = ac->on_close = ac->pool = ac->inbox_bytes = ac->inbox_words = NULL;
  ac->inbox_data = NULL;
  ac->inbox_word_data = NULL;
}

void addon_channel_release(addon_channel *ac, void (*done)(void *arg), void *arg) {
  if (ac->released) return;
  ac->released = 1;
  addon_channel_unlink(ac);
  channel_release(ac->ch, done, arg);
  ac->ch = NULL;
}

static void addon_channel_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  addon_channel *ac = data;
  addon_channel_release(ac, NULL, NULL);
  addon_channel_drop_callbacks(env, ac);
  if (ac->async) napi_async_destroy(env, ac->async);
  free(ac);
}

/* channelCreate(maxFrameSize, onInput(bytes, descriptors, poolViews), onClose(reason)) */
napi_value addon_channel_create(napi_env env, napi_callback_info info) {
  addon *a;
  size_t argc = 3;
  napi_value argv[3];
  uint32_t max_frame_size;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&a));
  if (argc < 3 || addon_get_u32(env, argv[0], &max_frame_size) != 0 ||
      max_frame_size < FRAME_MIN_MAX_SIZE)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG",
                       "channelCreate(maxFrameSize, onInput, onClose)");
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  addon_channel *ac = calloc(1, sizeof(*ac));
  if (!ac) return addon_throw(env, "ERR_CLUSTER_STORE_MEMORY", "out of memory");
  ac->owner = a;
  ac->ch = channel_create(loop, max_frame_size, &addon_channel_events, ac);
  napi_value name, external;
  if (!ac->ch) {
    free(ac);
    return addon_throw(env, "ERR_CLUSTER_STORE_MEMORY", "out of memory");
  }
  if (napi_create_reference(env, argv[1], 1, &ac->on_input) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &ac->on_close) != napi_ok ||
      napi_create_string_utf8(env, "ClusterStoreChannel", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &ac->async) != napi_ok ||
      napi_create_external(env, ac, addon_channel_finalize, NULL, &external) != napi_ok) {
    addon_throw_last(env, "channelCreate");
    channel_release(ac->ch, NULL, NULL);
    addon_channel_drop_callbacks(env, ac);
    if (ac->async) napi_async_destroy(env, ac->async);
    free(ac);
    return NULL;
  }
  ac->next = a->channels;
  if (a->channels) a->channels->prev = ac;
  a->channels = ac;
  return external;
}

addon_channel *addon_get_channel(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    addon_throw(env, "ERR_CLUSTER_STORE_ARG", "not a channel");
    return NULL;
  }
  addon_channel *ac = data;
  if (!ac->ch) {
    addon_throw(env, "ERR_CLUSTER_STORE_CLOSED", "the channel was released");
    return NULL;
  }
  return ac;
}

addon_channel *addon_channel_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
                                  const char *usage) {
  size_t argc = n;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < n) {
    addon_throw(env, "ERR_CLUSTER_STORE_ARG", usage);
    return NULL;
  }
  return addon_get_channel(env, argv[0]);
}

napi_value addon_channel_attach(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  addon_channel *ac = addon_channel_args(env, info, 2, argv, "channelAttach(channel, fd)");
  if (!ac) return NULL;
  if (addon_get_fd(env, argv[1], &fd) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelAttach needs a file descriptor");
  const char *why = NULL;
  if (channel_attach(ac->ch, fd, &why) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_CLOSED", why);
  return addon_undefined(env);
}

/* A string argument's UTF-8 length, or -1 (with an exception) when the
 * argument is neither a string nor undefined (which counts as empty). */
static int64_t addon_string_length(napi_env env, napi_value v, const char *what) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok) return -1;
  if (type == napi_undefined) return 0;
  if (type != napi_string) {
    char text[160];
    snprintf(text, sizeof(text), "%s must be a string", what);
    napi_throw_type_error(env, "ERR_CLUSTER_STORE_ARG", text);
    return -1;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  return (int64_t)len;
}

static void addon_throw_send_error(napi_env env, addon_channel *ac, uint32_t size, int error) {
  char text[400];
  if (error == E2BIG) {
    snprintf(text, sizeof(text),
             "a frame of %u bytes is over the maximum of %u bytes (set maxFrameSize in the "
             "master's setup() to allow larger values)",
             (unsigned)size, (unsigned)channel_max_frame_size(ac->ch));
    napi_throw_range_error(env, "ERR_CLUSTER_STORE_TOO_LARGE", text);
  } else if (error == ENOMEM) {
    napi_throw_error(env, "ERR_CLUSTER_STORE_MEMORY", "socket.io-cluster-store: out of memory");
  } else {
    snprintf(text, sizeof(text), "socket.io-cluster-store: %s", channel_close_reason(ac->ch));
    napi_throw_error(env, "ERR_CLUSTER_STORE_CLOSED", text);
  }
}

/* A frame's header and names, as channelSend was given them. */
typedef struct addon_head {
  uint8_t type;
  uint16_t flags;
  uint32_t endpoint;
  uint32_t request_id;
  napi_value a;
  size_t a_len;
  napi_value b;
  size_t b_len;
  size_t payload_len;
} addon_head;

/* Writes the header and the names at dst (room for both plus one byte);
 * returns where the payload goes, or NULL with an exception pending. Each
 * string is encoded in place; its NUL terminator lands on the next field's
 * first byte (or the spare byte), which is written over next. */
static uint8_t *addon_write_head(napi_env env, uint8_t *dst, const addon_head *h) {
  size_t written = 0;
  frame_write_header(dst, h->type, 0, h->flags, h->endpoint, h->request_id, h->a_len, h->b_len,
                     h->payload_len);
  uint8_t *p = dst + FRAME_HEADER_SIZE;
  if (h->a_len) {
    NAPI_CALL(env, napi_get_value_string_utf8(env, h->a, (char *)p, h->a_len + 1, &written));
    p += h->a_len;
  }
  if (h->b_len) {
    NAPI_CALL(env, napi_get_value_string_utf8(env, h->b, (char *)p, h->b_len + 1, &written));
    p += h->b_len;
  }
  return p;
}

/* channelSend(channel, type, endpoint, requestId, a, b, payload, flags, flushNow)
 * a and b: strings (or undefined); payload: a Buffer/Uint8Array or undefined. */
napi_value addon_channel_send(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  addon_channel *ac = addon_channel_args(
      env, info, 9, argv,
      "channelSend(channel, type, endpoint, requestId, a, b, payload, flags, flushNow)");
  if (!ac) return NULL;
  uint32_t type, endpoint, request_id, flags;
  bool flush_now = false;
  if (addon_get_u32(env, argv[1], &type) != 0 || addon_get_u32(env, argv[2], &endpoint) != 0 ||
      addon_get_u32(env, argv[3], &request_id) != 0 || addon_get_u32(env, argv[7], &flags) != 0 ||
      napi_get_value_bool(env, argv[8], &flush_now) != napi_ok || type == 0 ||
      type > FRAME_TYPE_MAX || type == FRAME_HANDOFF) /* that one: channelHandoff */
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelSend: bad header arguments");
  int64_t a_len = addon_string_length(env, argv[4], "a channel name or client id");
  if (a_len < 0) return NULL;
  int64_t b_len = addon_string_length(env, argv[5], "a key");
  if (b_len < 0) return NULL;
  void *payload = NULL;
  size_t payload_len = 0;
  napi_valuetype payload_type;
  NAPI_CALL(env, napi_typeof(env, argv[6], &payload_type));
  if (payload_type != napi_undefined) {
    bool is_typed = false;
    NAPI_CALL(env, napi_is_typedarray(env, argv[6], &is_typed));
    if (!is_typed) {
      napi_throw_type_error(env, "ERR_CLUSTER_STORE_ARG", "payload must be a Uint8Array");
      return NULL;
    }
    napi_typedarray_type ta_type;
    NAPI_CALL(env,
              napi_get_typedarray_info(env, argv[6], &ta_type, &payload_len, &payload, NULL, NULL));
    if (ta_type != napi_uint8_array)
      return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "payload must be a Uint8Array");
  }
  uint32_t size = frame_size((size_t)a_len, (size_t)b_len, payload_len);
  /* Only the flags JavaScript may set: FRAME_FLAG_SHARED is the channel's
   * to set, on frames whose payload it put in the pool. */
  flags &= FRAME_FLAG_BARRIER | FRAME_FLAG_REMOTE | FRAME_FLAG_RETAIN | FRAME_FLAG_UNROUTED |
           FRAME_FLAG_SETTLE;
  addon_head h = {(uint8_t)type, (uint16_t)flags, endpoint,      request_id, argv[4],
                  (size_t)a_len, argv[5],         (size_t)b_len, payload_len};
  if (size && payload_len >= BUFFER_PARTS_MIN && h.a_len + h.b_len <= ADDON_HEAD_MAX) {
    /* A large payload is not copied into the queue: header and names are
     * put together here, the payload goes from the caller's memory. */
    uint8_t head[FRAME_HEADER_SIZE + ADDON_HEAD_MAX + 1];
    uint8_t *end = addon_write_head(env, head, &h);
    if (!end) return NULL;
    if (channel_send_parts(ac->ch, head, (size_t)(end - head), payload, payload_len, flush_now) !=
        0) {
      addon_throw_send_error(env, ac, size, errno);
      return NULL;
    }
    return addon_undefined(env);
  }
  uint8_t *at = channel_reserve(ac->ch, size ? size : UINT32_MAX);
  if (!at) {
    addon_throw_send_error(env, ac, size ? size : UINT32_MAX, errno);
    return NULL;
  }
  uint8_t *p = addon_write_head(env, at, &h);
  if (!p) return NULL;
  if (payload_len) memcpy(p, payload, payload_len);
  channel_commit(ac->ch, size, flush_now);
  return addon_undefined(env);
}

/* channelPublishMany(channel, endpoint, topic, flags, bytes, ends, count):
 * count PUBLISH frames from one endpoint to one topic, no reply asked;
 * payload i is bytes[ends[i - 1], ends[i]) (the first from 0). What one
 * turn of the loop publishes in one call, the topic encoded once; each
 * frame is queued as channelSend queues a small one. Payloads of
 * BUFFER_PARTS_MIN bytes or more are refused: they take channelSend, which
 * may put them in the shared pool. Throws as channelSend; the frames before
 * the one that failed are queued. */
napi_value addon_channel_publish_many(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  addon_channel *ac =
      addon_channel_args(env, info, 7, argv,
                         "channelPublishMany(channel, endpoint, topic, flags, bytes, ends, count)");
  if (!ac) return NULL;
  uint32_t endpoint, flags, count;
  if (addon_get_u32(env, argv[1], &endpoint) != 0 || addon_get_u32(env, argv[3], &flags) != 0 ||
      addon_get_u32(env, argv[6], &count) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelPublishMany: bad header arguments");
  int64_t topic_len = addon_string_length(env, argv[2], "a channel name");
  if (topic_len < 0) return NULL;
  if (topic_len > (int64_t)ADDON_HEAD_MAX)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelPublishMany: the topic is too long");
  uint8_t topic[ADDON_HEAD_MAX + 1];
  size_t written = 0;
  if (topic_len > 0)
    NAPI_CALL(env, napi_get_value_string_utf8(env, argv[2], (char *)topic, (size_t)topic_len + 1,
                                              &written));
  size_t bytes_len = 0, ends_len = 0;
  void *bytes_data = NULL, *ends_data = NULL;
  int bytes_ok = addon_get_typed(env, argv[4], napi_uint8_array, &bytes_data, &bytes_len);
  if (bytes_ok < 0) return NULL;
  int ends_ok = addon_get_typed(env, argv[5], napi_uint32_array, &ends_data, &ends_len);
  if (ends_ok < 0) return NULL;
  if (!bytes_ok || !ends_ok || count > ends_len)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelPublishMany: bad arrays");
  /* What a plain publish may carry (no reply, so no retention). */
  flags &= FRAME_FLAG_REMOTE;
  const uint8_t *bytes = bytes_data;
  const uint32_t *ends = ends_data;
  size_t start = 0;
  for (uint32_t i = 0; i < count; i++) {
    size_t end = ends[i];
    if (end < start || end > bytes_len || end - start >= BUFFER_PARTS_MIN)
      return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelPublishMany: bad payload bounds");
    size_t len = end - start;
    uint32_t size = frame_size((size_t)topic_len, 0, len);
    uint8_t *at = channel_reserve(ac->ch, size ? size : UINT32_MAX);
    if (!at) {
      addon_throw_send_error(env, ac, size ? size : UINT32_MAX, errno);
      return NULL;
    }
    frame_write_header(at, FRAME_PUBLISH, 0, (uint16_t)flags, endpoint, 0, (size_t)topic_len, 0,
                       len);
    if (topic_len > 0) memcpy(at + FRAME_HEADER_SIZE, topic, (size_t)topic_len);
    if (len) memcpy(at + FRAME_HEADER_SIZE + topic_len, bytes + start, len);
    channel_commit(ac->ch, size, 0);
    start = end;
  }
  return addon_undefined(env);
}

/* Throws what addon_throw_send_error throws for the frame that could not
 * be queued, with `queued` on the error: how many frames of the call were. */
static void addon_throw_send_many_error(napi_env env, addon_channel *ac, uint32_t size, int error,
                                        uint32_t queued) {
  napi_value err, count;
  addon_throw_send_error(env, ac, size, error);
  if (napi_get_and_clear_last_exception(env, &err) != napi_ok) return;
  if (napi_create_uint32(env, queued, &count) == napi_ok)
    (void)napi_set_named_property(env, err, "queued", count);
  napi_throw(env, err);
}

/* channelSendMany(channel, words, bytes, count): count frames of any kind
 * channelSend sends, in order, as channelSend queues them without flushNow:
 * frame i is described by words[i * SEND_WORDS ...] (SEND_WORD names them),
 * its fields lie in bytes right after those of frame i - 1 (field a, field
 * b, payload; names already UTF-8). What one turn of the loop asks of the
 * broker, in one call. Payloads of BUFFER_PARTS_MIN bytes or more are
 * refused: they take channelSend, which may send them without a copy.
 * Throws as channelSend, with `queued` on the error: the frames before the
 * one that failed are queued, the rest are not. */
napi_value addon_channel_send_many(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  addon_channel *ac =
      addon_channel_args(env, info, 4, argv, "channelSendMany(channel, words, bytes, count)");
  if (!ac) return NULL;
  uint32_t count;
  if (addon_get_u32(env, argv[3], &count) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelSendMany: bad count");
  size_t words_len = 0, bytes_len = 0;
  void *words_data = NULL, *bytes_data = NULL;
  int words_ok = addon_get_typed(env, argv[1], napi_uint32_array, &words_data, &words_len);
  if (words_ok < 0) return NULL;
  int bytes_ok = addon_get_typed(env, argv[2], napi_uint8_array, &bytes_data, &bytes_len);
  if (bytes_ok < 0) return NULL;
  if (!words_ok || !bytes_ok || (size_t)count > words_len / ADDON_SEND_WORDS)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelSendMany: bad arrays");
  const uint32_t *w = words_data;
  const uint8_t *bytes = bytes_data;
  size_t start = 0;
  for (uint32_t i = 0; i < count; i++, w += ADDON_SEND_WORDS) {
    uint32_t type = w[ADDON_SEND_WORD_TYPE];
    size_t a_len = w[ADDON_SEND_WORD_A_LENGTH], b_len = w[ADDON_SEND_WORD_B_LENGTH];
    size_t payload_len = w[ADDON_SEND_WORD_PAYLOAD_LENGTH];
    size_t fields = a_len + b_len + payload_len; /* each under 2^32: no overflow */
    if (type == 0 || type > FRAME_TYPE_MAX || type == FRAME_HANDOFF ||
        payload_len >= BUFFER_PARTS_MIN || fields > bytes_len - start) {
      napi_value err, queued;
      if (napi_create_uint32(env, i, &queued) != napi_ok) return NULL;
      addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelSendMany: a bad frame description");
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) {
        (void)napi_set_named_property(env, err, "queued", queued);
        napi_throw(env, err);
      }
      return NULL;
    }
    uint32_t size = frame_size(a_len, b_len, payload_len);
    uint8_t *at = channel_reserve(ac->ch, size ? size : UINT32_MAX);
    if (!at) {
      addon_throw_send_many_error(env, ac, size ? size : UINT32_MAX, errno, i);
      return NULL;
    }
    /* As channelSend: only the flags JavaScript may set. */
    uint32_t flags =
        w[ADDON_SEND_WORD_FLAGS] & (FRAME_FLAG_BARRIER | FRAME_FLAG_REMOTE | FRAME_FLAG_RETAIN |
                                    FRAME_FLAG_UNROUTED | FRAME_FLAG_SETTLE);
    frame_write_header(at, (uint8_t)type, 0, (uint16_t)flags, w[ADDON_SEND_WORD_ENDPOINT],
                       w[ADDON_SEND_WORD_REQUEST_ID], a_len, b_len, payload_len);
    if (fields) memcpy(at + FRAME_HEADER_SIZE, bytes + start, fields);
    channel_commit(ac->ch, size, 0);
    start += fields;
  }
  return addon_undefined(env);
}

/* channelWait(channel, requestId, timeoutMs): blocks until the reply to
 * requestId arrives; returns [status, Buffer|null]. */
napi_value addon_channel_wait(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t request_id, timeout_ms;
  addon_channel *ac = addon_channel_args(env, info, 3, argv, "channelWait(channel, id, ms)");
  if (!ac) return NULL;
  if (addon_get_u32(env, argv[1], &request_id) != 0 || addon_get_u32(env, argv[2], &timeout_ms))
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelWait: bad arguments");
  uint8_t status = 0;
  uint8_t *payload = NULL;
  uint32_t payload_len = 0;
  const char *why = NULL;
  if (channel_wait_reply(ac->ch, request_id, (int)timeout_ms, &status, &payload, &payload_len,
                         &why) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_CLOSED", why);
  napi_value result, status_value, payload_value;
  napi_status st = napi_create_array_with_length(env, 2, &result);
  if (st == napi_ok) st = napi_create_uint32(env, status, &status_value);
  if (st == napi_ok) {
    if (payload)
      st = napi_create_buffer_copy(env, payload_len, payload, NULL, &payload_value);
    else
      st = napi_get_null(env, &payload_value);
  }
  free(payload);
  if (st == napi_ok) st = napi_set_element(env, result, 0, status_value);
  if (st == napi_ok) st = napi_set_element(env, result, 1, payload_value);
  if (st != napi_ok) {
    addon_throw_last(env, "channelWait");
    return NULL;
  }
  return result;
}

/* channelTake(channel): [Buffer (a copy of the frames waiting), Uint32Array
 * (their descriptor words), the pool's Array of region views or undefined],
 * or null when no frame is waiting. */
napi_value addon_channel_take(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  addon_channel *ac = addon_channel_args(env, info, 1, argv, "channelTake(channel)");
  if (!ac) return NULL;
  return addon_channel_batch(env, ac);
}

napi_value addon_channel_flush(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t timeout_ms;
  addon_channel *ac = addon_channel_args(env, info, 2, argv, "channelFlush(channel, ms)");
  if (!ac) return NULL;
  if (addon_get_u32(env, argv[1], &timeout_ms) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelFlush: bad timeout");
  const char *why = NULL;
  if (channel_flush_sync(ac->ch, (int)timeout_ms, &why) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_CLOSED", why);
  return addon_undefined(env);
}

napi_value addon_channel_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool ref = true;
  addon_channel *ac = addon_channel_args(env, info, 2, argv, "channelRef(channel, ref)");
  if (!ac) return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &ref));
  channel_set_ref(ac->ch, ref);
  return addon_undefined(env);
}

napi_value addon_channel_max_frame_size(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  addon_channel *ac = addon_channel_args(env, info, 1, argv, "channelMaxFrameSize(channel)");
  if (!ac) return NULL;
  NAPI_CALL(env, napi_create_uint32(env, channel_max_frame_size(ac->ch), &result));
  return result;
}

/* channelClose(channel): closes and releases it; the callbacks are dropped
 * and never called again. Harmless when already closed. */
napi_value addon_channel_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "channelClose(channel)");
  addon_channel *ac = data;
  addon_channel_release(ac, NULL, NULL);
  addon_channel_drop_callbacks(env, ac);
  return addon_undefined(env);
}
