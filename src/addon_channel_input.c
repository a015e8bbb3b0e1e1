/* addon_channel_input: what a channel hands JavaScript from the loop, its
 * input and its close, through the callbacks given to channelCreate.
 *
 * Input reaches JavaScript in batches: one call per readable event (and,
 * while frames wait, per turn of the loop), with one Buffer holding the
 * bytes of the complete frames and a Uint32Array that says where the
 * fields of each frame handed over are (ADDON_DESCRIPTOR_WORDS words per
 * frame), so the shim decodes no framing itself. A call hands over at most
 * CHANNEL_SLICE_FRAMES frames, publishers interleaved (channel_lend_slice):
 * one turn of the loop does not swallow a storm ahead of a quiet message. A shared message's
 * payload is not in that Buffer but in the shared pool (shm.h): JavaScript gets an Array of
 * read-only ArrayBuffers along, one per region of the pool it has had messages from. The batch
 * onInput gets is copied into the channel's inbox (made once) when it fits, else lent in place
 * for the call (see addon_channel_on_input); channelTake's (addon_channel_batch) is a copy of
 * its own. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "addon_internal.h"
#include "frame.h"
#include "shm.h"

/* The largest batch copied into the inbox; larger ones are lent. Copying
 * this much costs about what lending costs (making an external buffer and
 * detaching it). */
#define ADDON_INBOX_BYTES (64u * 1024u)

/* Drops an exception a call left pending, for a failure that has its own
 * way out (a fallback), not one JavaScript must hear of. */
static void addon_clear_pending(napi_env env) {
  bool pending = false;
  napi_value ignored;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
    napi_get_and_clear_last_exception(env, &ignored);
}

static void addon_pool_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  shm_map_release(hint);
}

/* Makes element r of ac's pool Array a view of region r (an external
 * ArrayBuffer that keeps the mapping alive while referenced). One view per
 * region, made when first needed, not one of the whole pool: V8 counts an
 * external buffer's size as memory pressure, and a 256 MiB one made its
 * collector run often enough to cost a fifth of small-message throughput.
 * 0, or -1 (with an exception pending, or external buffers not allowed). */
static int addon_channel_view(napi_env env, addon_channel *ac, uint32_t r) {
  if (ac->pool_made & ((uint64_t)1 << r)) return 0;
  shm_map *m = ac->ch ? channel_pool(ac->ch) : NULL;
  napi_value pool, view;
  if (!m || !ac->pool || napi_get_reference_value(env, ac->pool, &pool) != napi_ok || !pool)
    return -1;
  shm_map_retain(m);
  if (napi_create_external_arraybuffer(env, m->base + (size_t)r * SHM_REGION_SIZE, SHM_REGION_SIZE,
                                       addon_pool_finalize, m, &view) != napi_ok) {
    shm_map_release(m);
    return -1;
  }
  if (napi_set_element(env, pool, r, view) != napi_ok) return -1;
  ac->pool_made |= (uint64_t)1 << r;
  return 0;
}

/* Once the channel has mapped the shared pool: JavaScript's Array of views
 * of it, with this process's own region as a first view (which also shows
 * whether external buffers are allowed here), then word to the broker that
 * shared messages may come. Without views, the process still publishes
 * through the pool but reads everything from the socket. */
static void addon_channel_share_pool(napi_env env, addon_channel *ac) {
  if (ac->pool || ac->pool_failed || !ac->ch) return;
  shm_map *m = channel_pool(ac->ch);
  if (!m) return;
  napi_value pool;
  if (napi_create_array_with_length(env, SHM_REGIONS, &pool) != napi_ok ||
      napi_create_reference(env, pool, 1, &ac->pool) != napi_ok ||
      addon_channel_view(env, ac, m->region_index) != 0) {
    if (ac->pool) napi_delete_reference(env, ac->pool);
    ac->pool = NULL;
    ac->pool_failed = 1;
    addon_clear_pending(env);
    return;
  }
  (void)channel_pool_ready(ac->ch); /* failing here means the channel failed, and says so */
}

/* The pool's view, or undefined. */
static napi_value addon_channel_pool_value(napi_env env, addon_channel *ac) {
  napi_value v = NULL;
  if (ac->pool && napi_get_reference_value(env, ac->pool, &v) == napi_ok && v) return v;
  if (napi_get_undefined(env, &v) != napi_ok) return NULL;
  return v;
}

/* Writes to w the descriptor words for count frames in data[0..len):
 * those starting at picked[0..count), or (picked NULL) the first count not
 * handed over before; and makes a view of every region a shared message in
 * them lies in. 0, or -1 with an exception pending. */
static int addon_channel_fill_words(napi_env env, addon_channel *ac, const uint8_t *data,
                                    size_t len, int count, const uint32_t *picked, uint32_t *w) {
  size_t offset = 0;
  for (int i = 0; i < count; i++) {
    frame f;
    /* Already validated by channel_frames: this walk cannot fail. */
    if (picked) offset = picked[i];
    frame_decode(data + offset, len - offset, UINT32_MAX, &f);
    if (!picked && (f.flags & FRAME_LOCAL_DELIVERED)) {
      offset += f.size; /* handed over already */
      i--;
      continue;
    }
    w[ADDON_WORD_TYPE] = (uint32_t)f.type | ((uint32_t)f.status << 8);
    w[ADDON_WORD_ENDPOINT] = f.endpoint;
    w[ADDON_WORD_REQUEST_ID] = f.request_id;
    w[ADDON_WORD_A_START] = (uint32_t)(offset + FRAME_HEADER_SIZE);
    w[ADDON_WORD_A_LENGTH] = f.a_len;
    w[ADDON_WORD_B_LENGTH] = f.b_len;
    w[ADDON_WORD_PAYLOAD_LENGTH] = f.payload_len;
    w[ADDON_WORD_REGION] = 0;
    w[ADDON_WORD_REGION_OFFSET] = 0;
    frame_message_desc d;
    if (f.type == FRAME_MESSAGE && (f.flags & FRAME_FLAG_SHARED)) {
      /* Checked by channel_frames already: this parse cannot fail. */
      if (frame_message_desc_parse(f.payload, f.payload_len, &d) != 0) {
        addon_throw(env, "ERR_CLUSTER_STORE_CHANNEL", "a malformed shared message");
        return -1;
      }
      uint32_t r = d.offset / SHM_REGION_SIZE;
      if (addon_channel_view(env, ac, r) != 0) {
        addon_throw_last(env, "channel input");
        return -1;
      }
      w[ADDON_WORD_TYPE] |= ADDON_WORD_SHARED;
      w[ADDON_WORD_PAYLOAD_LENGTH] = d.length;
      w[ADDON_WORD_REGION] = r;
      w[ADDON_WORD_REGION_OFFSET] = d.offset - r * SHM_REGION_SIZE;
    }
    w += ADDON_DESCRIPTOR_WORDS;
    offset += f.size;
  }
  return 0;
}

/* A Uint32Array of room for the words of count frames, its memory in
 * *data; NULL with an exception pending. */
static napi_value addon_words_array(napi_env env, size_t count, uint32_t **data) {
  napi_value buffer, words;
  void *memory = NULL;
  size_t word_count = count * ADDON_DESCRIPTOR_WORDS;
  NAPI_CALL(env, napi_create_arraybuffer(env, word_count * 4, &memory, &buffer));
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint32_array, word_count, buffer, 0, &words));
  *data = memory;
  return words;
}

/* The descriptor words (as addon_channel_fill_words) in a Uint32Array of
 * their own, or NULL with an exception pending. */
static napi_value addon_channel_words(napi_env env, addon_channel *ac, const uint8_t *data,
                                      size_t len, int count, const uint32_t *picked) {
  uint32_t *words_data = NULL;
  napi_value words = addon_words_array(env, (size_t)count, &words_data);
  if (!words || addon_channel_fill_words(env, ac, data, len, count, picked, words_data) != 0)
    return NULL;
  return words;
}

/* Builds [Buffer, Uint32Array, pool views] from a copy of the complete frames waiting
 * on ac, or null when there are none (for channelTake, whose caller keeps
 * the batch as long as it likes). */
napi_value addon_channel_batch(napi_env env, addon_channel *ac) {
  napi_value result;
  const uint8_t *data = NULL;
  size_t len = 0;
  int count = ac->ch ? channel_frames(ac->ch, &data, &len) : 0;
  if (count <= 0) {
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  addon_channel_share_pool(env, ac);
  void *copy = NULL;
  napi_value bytes;
  NAPI_CALL(env, napi_create_buffer_copy(env, len, data, &copy, &bytes));
  napi_value words = addon_channel_words(env, ac, data, len, count, NULL);
  if (!words) return NULL;
  napi_value pool = addon_channel_pool_value(env, ac);
  if (!pool) return NULL;
  channel_consume(ac->ch, len);
  NAPI_CALL(env, napi_create_array_with_length(env, 3, &result));
  NAPI_CALL(env, napi_set_element(env, result, 0, bytes));
  NAPI_CALL(env, napi_set_element(env, result, 1, words));
  NAPI_CALL(env, napi_set_element(env, result, 2, pool));
  return result;
}

/* Calls a stored JavaScript callback from the loop, with node's callback
 * scope (so ticks and microtasks run after it) and uncaught exceptions
 * reported the usual way. */
static void addon_channel_call(addon_channel *ac, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = ac->owner->env;
  napi_value fn, recv, result;
  if (!fn_ref || napi_get_reference_value(env, fn_ref, &fn) != napi_ok || !fn) return;
  /* MakeCallback needs an object receiver; the global object stands in. */
  if (napi_get_global(env, &recv) != napi_ok) return;
  napi_status status = napi_make_callback(env, ac->async, recv, fn, argc, argv, &result);
  if (status == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

static void addon_report_pending(napi_env env) {
  bool pending = false;
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &error) == napi_ok)
    napi_fatal_exception(env, error);
}

/* Makes ac's inbox, once: a Buffer of ADDON_INBOX_BYTES and a Uint32Array
 * with room for the words of CHANNEL_SLICE_FRAMES frames, both kept for
 * the life of the channel. 0, or -1 (then batches are lent, as before). */
static int addon_channel_make_inbox(napi_env env, addon_channel *ac) {
  if (ac->inbox_data) return 0;
  if (ac->inbox_failed) return -1;
  napi_value bytes, words = NULL;
  void *data = NULL;
  uint32_t *word_data = NULL;
  if (napi_create_buffer(env, ADDON_INBOX_BYTES, &data, &bytes) != napi_ok ||
      !(words = addon_words_array(env, CHANNEL_SLICE_FRAMES, &word_data)) ||
      napi_create_reference(env, bytes, 1, &ac->inbox_bytes) != napi_ok ||
      napi_create_reference(env, words, 1, &ac->inbox_words) != napi_ok) {
    if (ac->inbox_bytes) napi_delete_reference(env, ac->inbox_bytes);
    ac->inbox_bytes = NULL;
    ac->inbox_failed = 1;
    addon_clear_pending(env);
    return -1;
  }
  ac->inbox_data = data;
  ac->inbox_word_data = word_data;
  return 0;
}

/* Hands a batch of count frames (data[0..len), lent by the channel) to
 * JavaScript in the inbox: copied into its Buffer, the words into its
 * Uint32Array, as onInput(bytes, words, pool, count, len). 1 when done so
 * (the frames are consumed or left unread, as the call went), 0 when the
 * batch does not fit or the inbox is in use (nothing done). */
static int addon_channel_to_inbox(napi_env env, addon_channel *ac, channel *ch, const uint8_t *data,
                                  size_t len, int count, const uint32_t *picked) {
  if (len > ADDON_INBOX_BYTES || count > (int)CHANNEL_SLICE_FRAMES || ac->inbox_busy ||
      addon_channel_make_inbox(env, ac) != 0)
    return 0;
  napi_value argv[5];
  if (napi_get_reference_value(env, ac->inbox_bytes, &argv[0]) != napi_ok || !argv[0] ||
      napi_get_reference_value(env, ac->inbox_words, &argv[1]) != napi_ok || !argv[1] ||
      napi_create_uint32(env, (uint32_t)count, &argv[3]) != napi_ok ||
      napi_create_uint32(env, (uint32_t)len, &argv[4]) != napi_ok) {
    addon_clear_pending(env);
    return 0;
  }
  memcpy(ac->inbox_data, data, len);
  int ok = addon_channel_fill_words(env, ac, data, len, count, picked, ac->inbox_word_data) == 0;
  argv[2] = ok ? addon_channel_pool_value(env, ac) : NULL;
  if (argv[2]) {
    ac->inbox_busy = 1;
    addon_channel_call(ac, ac->on_input, 5, argv);
    ac->inbox_busy = 0;
  }
  channel_unlend(ch, argv[2] ? CHANNEL_UNLEND_CONSUMED : CHANNEL_UNLEND_UNREAD);
  if (!argv[2]) addon_report_pending(env);
  return 1;
}

/* Input reaches JavaScript in one of two ways. A batch that fits the
 * inbox (most: a request, a reply, a few messages) is copied into it,
 * which costs less than making a buffer per call. A larger one is lent in
 * place as an external ArrayBuffer for the length of the call, and
 * detached after it. Either way nothing JavaScript keeps past the call
 * may be read after it (the inbox is overwritten by the next batch; a lent
 * view reads as empty): the shim copies what it keeps. Where external
 * buffers are not allowed, the frames are copied. */
static void addon_channel_on_input(channel *ch, void *ctx) {
  addon_channel *ac = ctx;
  napi_env env = ac->owner->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  const uint8_t *data = NULL;
  size_t len = 0;
  const uint32_t *picked = NULL;
  int count = channel_lend_slice(ch, CHANNEL_SLICE_FRAMES, &data, &len, &picked);
  addon_channel_share_pool(env, ac);
  if (count > 0 && addon_channel_to_inbox(env, ac, ch, data, len, count, picked)) {
    napi_close_handle_scope(env, scope);
    return;
  }
  if (count > 0) {
    napi_value argv[3];
    napi_status st = napi_create_external_arraybuffer(env, (void *)data, len, NULL, NULL, &argv[0]);
    if (st == napi_ok) {
      argv[1] = addon_channel_words(env, ac, data, len, count, picked);
      argv[2] = argv[1] ? addon_channel_pool_value(env, ac) : NULL;
      if (!argv[2]) argv[1] = NULL;
      if (argv[1]) addon_channel_call(ac, ac->on_input, 3, argv);
      /* Should detaching ever fail, JavaScript may still read the memory:
       * it is then never reused. Frames nobody was handed stay for the
       * next turn. */
      if (napi_detach_arraybuffer(env, argv[0]) != napi_ok)
        channel_unlend(ch, CHANNEL_UNLEND_ABANDON);
      else
        channel_unlend(ch, argv[1] ? CHANNEL_UNLEND_CONSUMED : CHANNEL_UNLEND_UNREAD);
      if (!argv[1]) addon_report_pending(env);
      napi_close_handle_scope(env, scope);
      return;
    }
    channel_unlend(ch, CHANNEL_UNLEND_UNREAD);
    addon_clear_pending(env); /* the copying way below */
  }
  if (count >= 0) {
    /* No external buffers here (or nothing to lend): the copying way. */
    napi_value batch = addon_channel_batch(env, ac);
    napi_valuetype type = napi_null;
    if (batch && napi_typeof(env, batch, &type) == napi_ok && type == napi_object) {
      napi_value argv[3];
      if (napi_get_element(env, batch, 0, &argv[0]) == napi_ok &&
          napi_get_element(env, batch, 1, &argv[1]) == napi_ok &&
          napi_get_element(env, batch, 2, &argv[2]) == napi_ok)
        addon_channel_call(ac, ac->on_input, 3, argv);
    } else {
      addon_report_pending(env);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void addon_channel_on_close(channel *ch, const char *reason, void *ctx) {
  (void)ch;
  addon_channel *ac = ctx;
  napi_env env = ac->owner->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[1];
  if (napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &argv[0]) == napi_ok)
    addon_channel_call(ac, ac->on_close, 1, argv);
  napi_close_handle_scope(env, scope);
}

const channel_events addon_channel_events = {addon_channel_on_input, addon_channel_on_close};
