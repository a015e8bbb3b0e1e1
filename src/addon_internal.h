/* addon_internal: what the addon's files (addon.c, addon_channel.c,
 * addon_channel_input.c) share, and nothing else includes: an addon
 * instance's data, a channel's JavaScript side, the words that describe a
 * batch's frames, and the error plumbing every function JavaScript calls
 * goes through. The addon has no public header: lib/native.js loads it and
 * lib/ is its only caller.
 *
 * Nothing here is global, since the addon loads in worker threads too: a
 * function JavaScript calls gets its instance as the callback's data (set
 * in addon_init), a channel is the pointer of its napi external, and the
 * channel's callbacks get it back as their context. */
#ifndef CLUSTER_STORE_ADDON_INTERNAL_H
#define CLUSTER_STORE_ADDON_INTERNAL_H

/* Every addon file includes node_api.h through here, so all see one
 * version. */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>

#include "broker.h"
#include "channel.h"
#include "uplink.h"

/* The words that describe one frame of a batch, X(NAME, index), exported
 * as native.constants.WORD (with DESCRIPTOR_WORDS, the count). Each word
 * means one thing: REGION and REGION_OFFSET are 0 unless the payload is in
 * the shared pool. */
#define ADDON_WORD_LIST(X)                                                                         \
  X(TYPE, 0) /* type (low byte), status (next byte), ADDON_WORD_SHARED */                          \
  X(ENDPOINT, 1)                                                                                   \
  X(REQUEST_ID, 2)                                                                                 \
  X(A_START, 3) /* where field a starts in the batch's bytes; b and the payload follow */          \
  X(A_LENGTH, 4)                                                                                   \
  X(B_LENGTH, 5)                                                                                   \
  X(PAYLOAD_LENGTH, 6)                                                                             \
  X(REGION, 7) /* the pool's region the payload is in (its view: onInput's third argument) */      \
  X(REGION_OFFSET, 8) /* where the payload starts in that region */

#define ADDON_WORD_ENUM_(name, index) ADDON_WORD_##name = index,
#define ADDON_WORD_COUNT_(name, index) +1
enum addon_word {
  ADDON_WORD_LIST(ADDON_WORD_ENUM_) ADDON_DESCRIPTOR_WORDS = 0 ADDON_WORD_LIST(ADDON_WORD_COUNT_)
};
/* In a descriptor's TYPE word: the payload is in the shared pool. */
#define ADDON_WORD_SHARED (1u << 16)

/* The words that describe one frame JavaScript hands channelSendMany,
 * X(NAME, index), exported as native.constants.SEND_WORD (with SEND_WORDS,
 * the count). The frame's fields lie in the call's bytes one after the
 * other, frame after frame: field a, field b, then the payload. */
#define ADDON_SEND_WORD_LIST(X)                                                                    \
  X(TYPE, 0)                                                                                       \
  X(ENDPOINT, 1)                                                                                   \
  X(REQUEST_ID, 2) /* 0: no reply asked for */                                                     \
  X(FLAGS, 3)                                                                                      \
  X(A_LENGTH, 4)                                                                                   \
  X(B_LENGTH, 5)                                                                                   \
  X(PAYLOAD_LENGTH, 6)

#define ADDON_SEND_WORD_ENUM_(name, index) ADDON_SEND_WORD_##name = index,
enum addon_send_word {
  ADDON_SEND_WORD_LIST(ADDON_SEND_WORD_ENUM_) ADDON_SEND_WORDS =
      0 ADDON_SEND_WORD_LIST(ADDON_WORD_COUNT_)
};

typedef struct addon_channel addon_channel;

typedef struct addon {
  napi_env env;
  broker *broker;
  addon_channel *channels;
  napi_async_cleanup_hook_handle cleanup;
  size_t closing; /* channels released at teardown, not yet freed */
} addon;

struct addon_channel {
  addon *owner;
  channel *ch;
  napi_ref on_input;
  napi_ref on_close;
  napi_async_context async;
  addon_channel *prev;
  addon_channel *next;
  int released;
  napi_ref pool;      /* an Array: element r views region r of the shared pool */
  uint64_t pool_made; /* the regions viewed so far, one bit each */
  int pool_failed;    /* no view could be made: shared messages are not asked for */
  /* The inbox: a Buffer and a Uint32Array made once, that small batches
   * are copied into and handed over in (see addon_channel_on_input). */
  napi_ref inbox_bytes;
  napi_ref inbox_words;
  uint8_t *inbox_data;
  uint32_t *inbox_word_data;
  int inbox_failed; /* could not be made: batches are lent */
  int inbox_busy;   /* handed to JavaScript now */
};

/* ---- error plumbing ------------------------------------------------------ */

/* Returns NULL from the calling function, with an exception pending, when a
 * napi_* call fails. */
#define NAPI_CALL(env, call)                                                                       \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      addon_throw_last((env), #call);                                                              \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

/* Throws an Error (ERR_CLUSTER_STORE_NAPI) that names the call that failed
 * and says why, unless an exception is already pending. */
void addon_throw_last(napi_env env, const char *call);

/* Throws an Error with code and message; returns NULL, for `return
 * addon_throw(...)`. */
napi_value addon_throw(napi_env env, const char *code, const char *message);

/* undefined, or NULL with an exception pending. */
napi_value addon_undefined(napi_env env);

/* 0 with *out set, or -1 when v is not a number (no exception). */
int addon_get_u32(napi_env env, napi_value v, uint32_t *out);

/* 0 with *fd set, or -1 when v is not a file descriptor (a number >= 0;
 * no exception). */
int addon_get_fd(napi_env env, napi_value v, int32_t *fd);

/* 1 with *data and *len set when v is a typed array of that type; 0 when
 * it is not (no exception); -1 when N-API failed (an exception pending). */
int addon_get_typed(napi_env env, napi_value v, napi_typedarray_type type, void **data,
                    size_t *len);

/* ---- a channel (addon_channel.c) ----------------------------------------- */

/* Unlinks ac from its instance and releases its channel (channel_release,
 * with done and arg); once only, later calls do nothing. */
void addon_channel_release(addon_channel *ac, void (*done)(void *arg), void *arg);

/* The channel an external stands for, or NULL with an exception pending
 * (not a channel, or released). */
addon_channel *addon_get_channel(napi_env env, napi_value v);

/* For a function whose first argument is a channel: its n arguments into
 * argv and the channel, or NULL with an exception pending (fewer than n
 * came, usage then the message; or as addon_get_channel). */
addon_channel *addon_channel_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
                                  const char *usage);

/* The functions JavaScript calls, native.channelCreate and the rest (see
 * addon_init). */
napi_value addon_channel_create(napi_env env, napi_callback_info info);
napi_value addon_channel_attach(napi_env env, napi_callback_info info);
napi_value addon_channel_send(napi_env env, napi_callback_info info);
napi_value addon_channel_publish_many(napi_env env, napi_callback_info info);
napi_value addon_channel_send_many(napi_env env, napi_callback_info info);
napi_value addon_channel_wait(napi_env env, napi_callback_info info);
napi_value addon_channel_take(napi_env env, napi_callback_info info);
napi_value addon_channel_flush(napi_env env, napi_callback_info info);
napi_value addon_channel_ref(napi_env env, napi_callback_info info);
napi_value addon_channel_max_frame_size(napi_env env, napi_callback_info info);
napi_value addon_channel_close(napi_env env, napi_callback_info info);

/* ---- hand-offs (addon_handoff.c) ----------------------------------------- */

/* native.channelHandoff(channel, endpoint, requestId, topic, payload, fd)
 * and native.closeFd(fd). */
napi_value addon_channel_handoff(napi_env env, napi_callback_info info);
napi_value addon_close_fd(napi_env env, napi_callback_info info);

/* ---- a channel's input (addon_channel_input.c) --------------------------- */

/* The channel's events (channel_create): input batches to onInput, the
 * close to onClose. */
extern const channel_events addon_channel_events;

/* [Buffer, Uint32Array, pool views] with a copy of the frames waiting on
 * ac, or null when none is; NULL with an exception pending. */
napi_value addon_channel_batch(napi_env env, addon_channel *ac);

/* ---- addon_uplink.c ---------------------------------------------------- */

/* Reads brokerStart's uplink object into *out: 0, or -1 with an exception
 * pending. */
int addon_read_uplink(napi_env env, napi_value obj, uplink_options *out);
/* brokerUplinkFault(): the uplink's last fault as text, "" when none. */
napi_value addon_broker_uplink_fault(napi_env env, napi_callback_info info);

#endif
