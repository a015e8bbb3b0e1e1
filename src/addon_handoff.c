/* addon_handoff: what JavaScript calls to hand a descriptor on through the
 * broker (FRAME_HANDOFF), and to close one it was handed and will not use.
 * A HANDOFF that arrives reaches JavaScript like any frame, its descriptor
 * plus one in the REQUEST_ID word (frame.h); from then on JavaScript owns
 * it (adopts it, or closes it with closeFd). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addon_internal.h"

#define ADDON_TOPIC_MAX 1024u

/* channelHandoff(channel, endpoint, requestId, topic, payload, fd): sends
 * payload (a Uint8Array) and a duplicate of fd to a subscriber of topic;
 * the caller keeps fd. */
napi_value addon_channel_handoff(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  addon_channel *ac = addon_channel_args(
      env, info, 6, argv, "channelHandoff(channel, endpoint, requestId, topic, payload, fd)");
  if (!ac) return NULL;
  uint32_t endpoint, request_id;
  int32_t fd;
  if (addon_get_u32(env, argv[1], &endpoint) != 0 ||
      addon_get_u32(env, argv[2], &request_id) != 0 || addon_get_fd(env, argv[5], &fd) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG",
                       "channelHandoff: endpoint, request id and descriptor must be numbers");
  char topic[ADDON_TOPIC_MAX + 1];
  size_t topic_len = 0;
  if (napi_get_value_string_utf8(env, argv[3], topic, sizeof(topic), &topic_len) != napi_ok ||
      topic_len == 0 || topic_len >= ADDON_TOPIC_MAX)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG",
                       "channelHandoff: the topic must be a string of 1 to 1023 bytes");
  void *payload = NULL;
  size_t payload_len = 0;
  int payload_ok = addon_get_typed(env, argv[4], napi_uint8_array, &payload, &payload_len);
  if (payload_ok < 0) return NULL;
  if (!payload_ok)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG",
                       "channelHandoff: payload must be a Uint8Array");
  if (channel_send_handoff(ac->ch, endpoint, request_id, topic, topic_len, payload, payload_len,
                           fd) != 0) {
    char text[300];
    int error = errno;
    if (error == EPIPE)
      snprintf(text, sizeof(text), "socket.io-cluster-store: %s", channel_close_reason(ac->ch));
    else
      snprintf(text, sizeof(text), "socket.io-cluster-store: could not hand the connection on: %s",
               error == E2BIG ? "over the maximum frame size" : strerror(error));
    return addon_throw(
        env, error == EPIPE ? "ERR_CLUSTER_STORE_CLOSED" : "ERR_CLUSTER_STORE_HANDOFF", text);
  }
  return addon_undefined(env);
}

/* closeFd(fd): closes a descriptor a HANDOFF brought that is not used. */
napi_value addon_close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || addon_get_fd(env, argv[0], &fd) != 0)
    return addon_throw(env, "ERR_CLUSTER_STORE_ARG", "closeFd(fd) needs a file descriptor");
  close(fd);
  return addon_undefined(env);
}
