/* addon_uplink: the uplink's face in JavaScript (uplink.h).
 *
 * brokerStart's fourth argument, { host, port, user, password, db,
 * prefix, presenceMs }, as lib/options.js checked it (readRedis), read into the
 * uplink's options; and brokerUplinkFault, the text of the uplink's last
 * fault, for the master's log and stats(). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "addon_internal.h"

/* obj[name] as a string into dst (dst_len bytes with the NUL); "" when it
 * is undefined. 0, or -1 with an exception pending. */
static int addon_uplink_string(napi_env env, napi_value obj, const char *name, char *dst,
                               size_t dst_len) {
  napi_value v;
  napi_valuetype type;
  size_t len = 0;
  dst[0] = '\0';
  if (napi_get_named_property(env, obj, name, &v) != napi_ok ||
      napi_typeof(env, v, &type) != napi_ok)
    return addon_throw_last(env, "reading the uplink's options"), -1;
  if (type == napi_undefined || type == napi_null) return 0;
  if (type != napi_string || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok ||
      len >= dst_len) {
    char text[160];
    snprintf(text, sizeof(text), "redis: %s must be a string of at most %zu bytes", name,
             dst_len - 1);
    addon_throw(env, "ERR_CLUSTER_STORE_OPTION", text);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, dst, dst_len, &len) != napi_ok)
    return addon_throw_last(env, "reading the uplink's options"), -1;
  return 0;
}

static int addon_uplink_number(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok ||
      napi_get_value_uint32(env, v, out) != napi_ok) {
    char text[160];
    snprintf(text, sizeof(text), "redis: %s must be a number", name);
    addon_throw(env, "ERR_CLUSTER_STORE_OPTION", text);
    return -1;
  }
  return 0;
}

int addon_read_uplink(napi_env env, napi_value obj, uplink_options *out) {
  memset(out, 0, sizeof(*out));
  if (addon_uplink_string(env, obj, "host", out->host, sizeof(out->host)) != 0 ||
      addon_uplink_string(env, obj, "user", out->user, sizeof(out->user)) != 0 ||
      addon_uplink_string(env, obj, "password", out->password, sizeof(out->password)) != 0 ||
      addon_uplink_string(env, obj, "prefix", out->prefix, sizeof(out->prefix)) != 0 ||
      addon_uplink_number(env, obj, "port", &out->port) != 0 ||
      addon_uplink_number(env, obj, "db", &out->db) != 0 ||
      addon_uplink_number(env, obj, "presenceMs", &out->presence_ms) != 0)
    return -1;
  if (!out->host[0] || out->port == 0 || out->port > 65535) {
    addon_throw(env, "ERR_CLUSTER_STORE_OPTION", "redis: a host and a port from 1 to 65535");
    return -1;
  }
  return 0;
}

napi_value addon_broker_uplink_fault(napi_env env, napi_callback_info info) {
  addon *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&a));
  char text[600];
  text[0] = '\0';
  if (a->broker) broker_uplink_fault(a->broker, text, sizeof(text));
  napi_value result;
  NAPI_CALL(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result));
  return result;
}
