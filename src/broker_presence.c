/* broker_presence: the members of a topic.
 *
 * A subscriber that subscribes with a tag (opaque bytes, at most
 * FRAME_TAG_MAX) is a member of the topic. A front end uses this to know,
 * from the broker itself, who is there: a new member's SUBSCRIBE is
 * answered with the other members' tags, the others get a JOINED frame,
 * and when a member goes (unsubscribe, endpoint closed, or its connection
 * gone, however it went) every member left gets a LEFT frame with its tag.
 * Nothing waits on timers or heartbeats: a process that dies is known to
 * be gone as soon as the broker reaps its connection.
 *
 * JOINED and LEFT are queued like replies (nothing overtakes them), after
 * whatever the broker had already queued for the member: a message the
 * leaver sent before it went is delivered before its LEFT. */
#define _GNU_SOURCE /* uv.h needs POSIX under -std=c11 */
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "uplink.h"

int broker_presence_join(broker_subscriber *s, const frame *f) {
  uint8_t *tag = malloc(f->payload_len);
  if (!tag) return -1;
  memcpy(tag, f->payload, f->payload_len);
  s->tag = tag;
  s->tag_len = f->payload_len;
  return 0;
}

void broker_presence_forget(broker_subscriber *s) {
  free(s->tag);
  s->tag = NULL;
  s->tag_len = 0;
}

/* Queues one JOINED or LEFT for member `to`: not a message, so nothing
 * overtakes it. A member whose process takes no frame that large misses
 * it (a topic name near the frame limit). */
void broker_presence_send(const broker_subscriber *to, const uint8_t *name, size_t name_len,
                          const broker_subscriber *who, uint8_t type) {
  broker_conn *c = to->conn;
  uint32_t size = frame_size(name_len, 0, who->tag_len);
  if (c->dead || size == 0 || size > c->peer_max) return;
  uint8_t *at = broker_conn_reserve(c, size);
  if (!at) return;
  frame_encode(at, type, 0, to->endpoint, 0, name, name_len, NULL, 0, who->tag, who->tag_len);
  broker_conn_committed(c, size);
  broker_conn_control_queued(c);
}

void broker_presence_tell(const broker_topic *topic, const uint8_t *name, size_t name_len,
                          const broker_subscriber *who, uint8_t type) {
  if (!who->tag) return;
  for (size_t i = 0; i < topic->count; i++) {
    const broker_subscriber *s = &topic->subscribers[i];
    if (!s->tag || (s->conn == who->conn && s->endpoint == who->endpoint)) continue;
    broker_presence_send(s, name, name_len, who, type);
  }
}

void broker_presence_remote(broker *b, const uint8_t *name, size_t name_len, const uint8_t *tag,
                            uint32_t tag_len, uint8_t type) {
  broker_topic *topic = table_get(b->topics, name, name_len);
  if (!topic) return;
  broker_subscriber who = {NULL, 0, tag_len, (uint8_t *)tag};
  for (size_t i = 0; i < topic->count; i++)
    if (topic->subscribers[i].tag)
      broker_presence_send(&topic->subscribers[i], name, name_len, &who, type);
}

void broker_presence_reply(broker_conn *c, uint32_t request_id, const broker_topic *topic,
                           const uint8_t *name, size_t name_len, uint32_t endpoint) {
  const uplink_members *remote =
      c->broker->uplink ? uplink_members_find(c->broker->uplink, name, name_len) : NULL;
  size_t len = 0;
  for (size_t i = 0; i < topic->count; i++) {
    const broker_subscriber *s = &topic->subscribers[i];
    if (s->tag && !(s->conn == c && s->endpoint == endpoint)) len += FRAME_MEMBER_HEAD + s->tag_len;
  }
  for (size_t i = 0; remote && i < remote->count; i++)
    len += FRAME_MEMBER_HEAD + remote->list[i].tag_len;
  uint8_t *list = len ? malloc(len) : NULL;
  if (len && !list) {
    broker_conn_reply_text(c, request_id, FRAME_STATUS_NO_MEMORY, "broker out of memory");
    return;
  }
  size_t at = 0;
  for (size_t i = 0; i < topic->count; i++) {
    const broker_subscriber *s = &topic->subscribers[i];
    if (s->tag && !(s->conn == c && s->endpoint == endpoint))
      at += frame_member_write(list + at, s->tag, s->tag_len);
  }
  for (size_t i = 0; remote && i < remote->count; i++)
    at += frame_member_write(list + at, remote->list[i].tag, remote->list[i].tag_len);
  broker_conn_reply(c, request_id, FRAME_STATUS_OK, list, len);
  free(list);
}
