/* addon: the Node-API face of the engine.
 *
 * Everything here is per addon instance (napi_set_instance_data): each
 * worker thread that loads the addon gets its own broker slot and its own
 * channels, and nothing is shared through globals. The JavaScript shim in
 * lib/ is the only caller; these functions are its private API.
 *
 * This file is the module: its init and exports, the instance's data and
 * its teardown, the error plumbing, native.constants, the broker's
 * functions (brokerStart, brokerPair, brokerStats, brokerStop) and takeFd,
 * for the socket a worker is handed. A channel's functions are in
 * addon_channel.c, what it hands JavaScript from the loop in
 * addon_channel_input.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addon_internal.h"
#include "frame.h"
#include "uplink.h"

/* ---- error plumbing ------------------------------------------------------ */

void addon_throw_last(napi_env env, const char *call) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  char message[256];
  snprintf(message, sizeof(message), "socket.io-cluster-store: %s failed: %s", call,
           (napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message)
               ? info->error_message
               : "unknown Node-API error");
  napi_throw_error(env, "ERR_CLUSTER_STORE_NAPI", message);
}

napi_value addon_throw(napi_env env, const char *code, const char *message) {
  char text[512];
  snprintf(text, sizeof(text), "socket.io-cluster-store: %s", message);
  napi_throw_error(env, code, text);
  return NULL;
}

napi_value addon_undefined(napi_env env) {
  napi_value v;
  NAPI_CALL(env, napi_get_undefined(env, &v));
  return v;
}

int addon_get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

int addon_get_fd(napi_env env, napi_value v, int32_t *fd) {
  return napi_get_value_int32(env, v, fd) == napi_ok && *fd >= 0 ? 0 : -1;
}

int addon_get_typed(napi_env env, napi_value v, napi_typedarray_type type, void **data,
                    size_t *len) {
  bool is_typed = false;
  napi_typedarray_type actual;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok) {
    addon_throw_last(env, "napi_is_typedarray");
    return -1;
  }
  if (!is_typed) return 0;
  if (napi_get_typedarray_info(env, v, &actual, len, data, NULL, NULL) != napi_ok) {
    addon_throw_last(env, "napi_get_typedarray_info");
    return -1;
  }
  return actual == type ? 1 : 0;
}

/* ---- broker ------------------------------------------------------------- */

/* brokerStart(maxFrameSize, queueLimit, sharedMemory[, retainMessages,
 * retainBytes, retainMs[, uplink]]): true when started now, false when this
 * instance's broker already runs. Retention limits left out keep frame.h's
 * defaults. uplink: { host, port, user, password, db, prefix, presenceMs }
 * (addon_uplink.c), or undefined. */
static napi_value addon_broker_start(napi_env env, napi_callback_info info) {
  addon *a;
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&a));
  napi_value result;
  if (a->broker) {
    NAPI_CALL(env, napi_get_boolean(env, false, &result));
    return result;
  }
  broker_options options;
  broker_options_default(&options);
  double queue_limit = 0;
  bool shared = true;
  if (argc < 3 || addon_get_u32(env, argv[0], &options.max_frame_size) != 0 ||
      napi_get_value_double(env, argv[1], &queue_limit) != napi_ok ||
      napi_get_value_bool(env, argv[2], &shared) != napi_ok)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG",
                       "brokerStart(maxFrameSize, queueLimit, sharedMemory)");
  options.queue_limit = (uint64_t)queue_limit;
  options.shared = shared;
  if (argc >= 6) {
    double retain[3];
    for (int i = 0; i < 3; i++)
      if (napi_get_value_double(env, argv[3 + i], &retain[i]) != napi_ok || !(retain[i] >= 0) ||
          retain[i] > 9007199254740991.0)
        return addon_throw(env, "ERR_CLUSTER_STORE_ARG",
                           "brokerStart(maxFrameSize, queueLimit, sharedMemory, retainMessages, "
                           "retainBytes, retainMs): retention limits are whole numbers");
    options.retain_messages = (uint64_t)retain[0];
    options.retain_bytes = (uint64_t)retain[1];
    options.retain_ms = (uint64_t)retain[2];
  }
  uplink_options uplink;
  napi_valuetype uplink_type = napi_undefined;
  if (argc > 6) NAPI_CALL(env, napi_typeof(env, argv[6], &uplink_type));
  if (uplink_type == napi_object) {
    if (addon_read_uplink(env, argv[6], &uplink) != 0) return NULL;
    options.uplink = &uplink;
  }
  char err[256];
  if (broker_start(&a->broker, &options, err, sizeof(err)) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_BROKER", err);
  NAPI_CALL(env, napi_get_boolean(env, true, &result));
  return result;
}

/* brokerPair(): a new connection to this instance's broker; returns the
 * process end's file descriptor. */
static napi_value addon_broker_pair(napi_env env, napi_callback_info info) {
  addon *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&a));
  if (!a->broker) return addon_throw(env, "ERR_CLUSTER_STORE_BROKER", "the broker is not running");
  int fd = -1;
  if (broker_connect_pair(a->broker, &fd) != 0) {
    char text[200];
    snprintf(text, sizeof(text), "could not connect to the broker: %s", strerror(errno));
    return addon_throw(env, "ERR_CLUSTER_STORE_BROKER", text);
  }
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}

static napi_value addon_broker_stats(napi_env env, napi_callback_info info) {
  addon *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&a));
  napi_value result;
  if (!a->broker) {
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  uint64_t values[FRAME_STATS_COUNT];
  broker_get_stats(a->broker, values);
  NAPI_CALL(env, napi_create_array_with_length(env, FRAME_STATS_COUNT, &result));
  for (uint32_t i = 0; i < FRAME_STATS_COUNT; i++) {
    napi_value v;
    NAPI_CALL(env, napi_create_double(env, (double)values[i], &v));
    NAPI_CALL(env, napi_set_element(env, result, i, v));
  }
  return result;
}

static napi_value addon_broker_stop(napi_env env, napi_callback_info info) {
  addon *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&a));
  if (a->broker) {
    broker_stop(a->broker);
    a->broker = NULL;
  }
  return addon_undefined(env);
}

/* takeFd(fd): a close-on-exec duplicate of fd, so the caller can destroy
 * node's wrapper of a received socket without losing the socket. */
static napi_value addon_take_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || addon_get_fd(env, argv[0], &fd) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "takeFd(fd) needs a file descriptor");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) {
    char text[200];
    snprintf(text, sizeof(text), "could not take the channel's descriptor: %s", strerror(errno));
    return addon_throw(env, "ERR_CLUSTER_STORE_CHANNEL", text);
  }
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, copy, &result));
  return result;
}

/* ---- instance lifetime --------------------------------------------------- */

static void addon_cleanup_channel_done(void *arg) {
  addon *a = arg;
  if (--a->closing == 0 && a->cleanup) {
    napi_remove_async_cleanup_hook(a->cleanup);
    a->cleanup = NULL;
  }
}

/* At environment teardown (process exit, worker thread end): stop the
 * broker thread and close every channel's handles before the loop goes. */
static void addon_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  addon *a = arg;
  a->cleanup = handle;
  if (a->broker) {
    broker_stop(a->broker);
    a->broker = NULL;
  }
  a->closing = 1; /* held until every release is under way */
  while (a->channels) {
    addon_channel *ac = a->channels;
    a->closing++;
    addon_channel_release(ac, addon_cleanup_channel_done, a);
  }
  addon_cleanup_channel_done(a);
}

static void addon_finalize_instance(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  addon *a = data;
  if (a->broker) broker_stop(a->broker);
  free(a);
}

/* ---- constants ----------------------------------------------------------- */

static napi_status addon_set_number(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_status st = napi_create_double(env, value, &v);
  return st == napi_ok ? napi_set_named_property(env, obj, name, v) : st;
}

static napi_status addon_set_string_element(napi_env env, napi_value array, uint32_t i,
                                            const char *text) {
  napi_value v;
  napi_status st = napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  return st == napi_ok ? napi_set_element(env, array, i, v) : st;
}

/* Freezes value and sets it as obj[name]. */
static napi_status addon_set_frozen(napi_env env, napi_value obj, const char *name,
                                    napi_value value) {
  napi_status st = napi_object_freeze(env, value);
  return st == napi_ok ? napi_set_named_property(env, obj, name, value) : st;
}

/* Steps of addon_constants: each runs while every call before it went well. */
#define ADDON_NUMBER_(key, value)                                                                  \
  if (st == napi_ok) st = addon_set_number(env, table, #key, (double)(value));
#define ADDON_STAT_NAME_(name, js_name)                                                            \
  if (st == napi_ok) st = addon_set_string_element(env, table, FRAME_STAT_##name, #js_name);
#define ADDON_TABLE_(name, list)                                                                   \
  if (st == napi_ok) st = napi_create_object(env, &table);                                         \
  list(ADDON_NUMBER_);                                                                             \
  if (st == napi_ok) st = addon_set_frozen(env, constants, name, table);

/* native.constants: what JavaScript shares with the engine, made from the
 * lists in frame.h and the descriptor words (addon_internal.h), so lib/
 * copies none of it. TYPE, STATUS, FLAG, DEFAULTS, WORD and SEND_WORD map
 * names to numbers; STAT_NAMES lists the counters of a STATS reply in their
 * order; the rest are numbers. Frozen, all of it. */
static napi_value addon_constants(napi_env env) {
  napi_value constants, table;
  napi_status st = napi_create_object(env, &constants);
  ADDON_TABLE_("TYPE", FRAME_TYPE_LIST)
  ADDON_TABLE_("STATUS", FRAME_STATUS_LIST)
  ADDON_TABLE_("FLAG", FRAME_FLAG_LIST)
  ADDON_TABLE_("DEFAULTS", FRAME_DEFAULT_LIST)
  ADDON_TABLE_("WORD", ADDON_WORD_LIST)
  ADDON_TABLE_("SEND_WORD", ADDON_SEND_WORD_LIST)
  ADDON_TABLE_("UPLINK_STATE", UPLINK_STATE_LIST)
  ADDON_TABLE_("UPLINK_FAULT", UPLINK_FAULT_LIST)
  table = constants;
  FRAME_NUMBER_LIST(ADDON_NUMBER_)
  ADDON_NUMBER_(DESCRIPTOR_WORDS, ADDON_DESCRIPTOR_WORDS)
  ADDON_NUMBER_(WORD_SHARED, ADDON_WORD_SHARED)
  ADDON_NUMBER_(SEND_WORDS, ADDON_SEND_WORDS)
  ADDON_NUMBER_(UPLINK_BARRIER_MS, UPLINK_BARRIER_MS)
  if (st == napi_ok) st = napi_create_array_with_length(env, FRAME_STATS_COUNT, &table);
  FRAME_STAT_LIST(ADDON_STAT_NAME_)
  if (st == napi_ok) st = addon_set_frozen(env, constants, "STAT_NAMES", table);
  if (st == napi_ok) st = napi_object_freeze(env, constants);
  if (st != napi_ok) {
    addon_throw_last(env, "making native.constants");
    return NULL;
  }
  return constants;
}

/* A property of native that is a function of the instance a (addon_init's,
 * given to the function as its data). */
#define ADDON_METHOD(name, fn)                                                                     \
  { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, a }

static napi_value addon_init(napi_env env, napi_value exports) {
  addon *a = calloc(1, sizeof(*a));
  if (!a) return addon_throw(env, "ERR_CLUSTER_STORE_MEMORY", "out of memory");
  a->env = env;
  if (napi_set_instance_data(env, a, addon_finalize_instance, NULL) != napi_ok) {
    free(a);
    addon_throw_last(env, "napi_set_instance_data");
    return NULL;
  }
  NAPI_CALL(env, napi_add_async_cleanup_hook(env, addon_cleanup, a, NULL));
  napi_value constants = addon_constants(env);
  if (!constants) return NULL;
  napi_property_descriptor props[] = {
      {"constants", NULL, NULL, NULL, NULL, constants, napi_enumerable, NULL},
      ADDON_METHOD("brokerStart", addon_broker_start),
      ADDON_METHOD("brokerPair", addon_broker_pair),
      ADDON_METHOD("brokerStats", addon_broker_stats),
      ADDON_METHOD("brokerStop", addon_broker_stop),
      ADDON_METHOD("brokerUplinkFault", addon_broker_uplink_fault),
      ADDON_METHOD("takeFd", addon_take_fd),
      ADDON_METHOD("channelCreate", addon_channel_create),
      ADDON_METHOD("channelAttach", addon_channel_attach),
      ADDON_METHOD("channelSend", addon_channel_send),
      ADDON_METHOD("channelPublishMany", addon_channel_publish_many),
      ADDON_METHOD("channelSendMany", addon_channel_send_many),
      ADDON_METHOD("channelWait", addon_channel_wait),
      ADDON_METHOD("channelTake", addon_channel_take),
      ADDON_METHOD("channelFlush", addon_channel_flush),
      ADDON_METHOD("channelRef", addon_channel_ref),
      ADDON_METHOD("channelMaxFrameSize", addon_channel_max_frame_size),
      ADDON_METHOD("channelClose", addon_channel_close),
      ADDON_METHOD("channelHandoff", addon_channel_handoff),
      ADDON_METHOD("closeFd", addon_close_fd),
  };
#undef ADDON_METHOD
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, addon_init)
