/* uplink_claim: who owns a client, as Redis says (see uplink_owner.c).
 *
 * The ownership record PREFIX:o:CLIENT holds the owner's origin. A claim is
 * one script: it sets the record to this machine when there is none and
 * the request that asks writes (a read of a client no one has is answered
 * "missing" and makes no record), and says who has it. A release deletes
 * the record only while it still names this machine. A machine gone (it
 * said goodbye, or has not been heard of for three presence periods while
 * this one was up) loses its clients' data: the next write takes them
 * over, a read finds nothing. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

/* Sets the record to ARGV[1] when there is none, or when it names ARGV[2]
 * (a machine gone); only when ARGV[3] is "1" (a request that writes).
 * Returns the owner, or nil when there is none. */
static const char uplink_claim_script[] =
    "local o = redis.call('GET', KEYS[1]) "
    "if o == false or o == ARGV[2] then "
    "if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] end "
    "return false end "
    "return o";

/* Deletes the record if it still names ARGV[1]. */
static const char uplink_claim_release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

/* Whether origin is a machine gone: it said goodbye, or this one, up for
 * three presence periods, has not heard of it for as long. */
int uplink_claim_gone(uplink *u, const uint8_t *origin) {
  if (table_get(u->machines, origin, UPLINK_ORIGIN_SIZE)) return 0;
  uint64_t patience = 3u * (uint64_t)u->options.presence_ms;
  return uv_now(&u->broker->loop) - u->owners->up_since > patience;
}

/* Asks Redis who owns o (making it this machine when no one does and the
 * first request waiting writes, or when gone is the owner and gone). */
void uplink_claim_ask(uplink *u, uplink_owner *o, const uint8_t *gone) {
  if (o->state == UPLINK_OWNER_MINE) o->local_data = 1; /* owned in an earlier epoch */
  /* A client with data here (from while Redis was away) keeps it if no
   * one else has it: claimed whatever the request. */
  int create = o->local_data || (o->head && uplink_owner_writes(o->head->type));
  uint8_t *name = malloc(o->name_len ? o->name_len : 1);
  if (!name) {
    uplink_fail(u, UPLINK_FAULT_LOST, "out of memory asking Redis who owns a client");
    return;
  }
  if (o->name_len) memcpy(name, o->name, o->name_len);
  resp_arg args[7] = {{"EVAL", 4, NULL, 0},
                      {uplink_claim_script, sizeof(uplink_claim_script) - 1, NULL, 0},
                      {"1", 1, NULL, 0},
                      {u->owner_prefix, u->owner_prefix_len, o->name, o->name_len},
                      {u->origin, UPLINK_ORIGIN_SIZE, NULL, 0},
                      {gone ? gone : (const uint8_t *)"", gone ? UPLINK_ORIGIN_SIZE : 0, NULL, 0},
                      {create ? "1" : "0", 1, NULL, 0}};
  uplink_entry e = {UPLINK_E_CLAIM, (uint8_t)(gone != NULL), 0, NULL, name, o->name_len, 0};
  uplink_owner_set_state(u, o, UPLINK_OWNER_CLAIMING);
  if (uplink_send(u, &u->command, args, 7, &e) != 0)
    uplink_fail(u, UPLINK_FAULT_LOST, "Redis is not keeping up with this machine's requests");
}

void uplink_claim_reply(uplink *u, const uplink_entry *e, const resp_item *item) {
  uplink_owner *o = table_get(u->owners->by_name, e->name, e->name_len);
  if (!o || o->state != UPLINK_OWNER_CLAIMING) return;
  if (item->type == RESP_ERROR) {
    char text[300];
    snprintf(text, sizeof(text), "Redis refused to say who keeps this client's data: %.*s",
             item->len > 200 ? 200 : (int)item->len, (const char *)item->str);
    for (uplink_waiting *w; (w = uplink_owner_pop(o));) {
      uplink_owner_fail(u, o, w, text);
      free(w);
    }
    uplink_owner_drop(u, o);
    return;
  }
  if (item->type != RESP_BULK || item->null) {
    /* No one has it, nor anything here, and nothing waiting writes:
     * there is nothing to read. */
    for (uplink_waiting *w; o->head && !uplink_owner_writes(o->head->type);) {
      w = uplink_owner_pop(o);
      uplink_owner_answer(u, o, w, FRAME_STATUS_MISSING, NULL, 0);
      free(w);
    }
    if (!o->head) {
      uplink_owner_drop(u, o);
      return;
    }
    uplink_claim_ask(u, o, NULL); /* a write waits now */
    return;
  }
  if (item->len != UPLINK_ORIGIN_SIZE) {
    uplink_fail(u, UPLINK_FAULT_NOT_REDIS, "an ownership record that is not a machine's id");
    return;
  }
  if (memcmp(item->str, u->origin, UPLINK_ORIGIN_SIZE) == 0) {
    uplink_owner_set_state(u, o, UPLINK_OWNER_MINE);
    o->epoch = u->owners->epoch;
    o->local_data = 0;
    uplink_owner_progress(u, o);
    return;
  }
  if (!e->op && uplink_claim_gone(u, item->str)) {
    uplink_claim_ask(u, o, item->str); /* take it over */
    return;
  }
  if (o->local_data) uplink_owner_clear_here(u, o); /* another machine's: this view goes */
  o->local_data = 0;
  expiry_cancel(&u->owners->deadlines, &o->deadline);
  memcpy(o->origin, item->str, UPLINK_ORIGIN_SIZE);
  uplink_owner_set_state(u, o, UPLINK_OWNER_REMOTE);
  uplink_owner_progress(u, o);
}

/* Deletes o's record if its data is gone and nothing waits (once Redis
 * is there). */
void uplink_claim_release(uplink *u, uplink_owner *o) {
  if (!o->release_wanted || o->state != UPLINK_OWNER_MINE || o->head || u->state != UPLINK_UP)
    return;
  o->release_wanted = 0;
  uint8_t *name = malloc(o->name_len ? o->name_len : 1);
  if (!name) return; /* the record stays: a client with no data */
  if (o->name_len) memcpy(name, o->name, o->name_len);
  resp_arg args[6] = {
      {"EVAL", 4, NULL, 0},
      {uplink_claim_release_script, sizeof(uplink_claim_release_script) - 1, NULL, 0},
      {"1", 1, NULL, 0},
      {u->owner_prefix, u->owner_prefix_len, o->name, o->name_len},
      {u->origin, UPLINK_ORIGIN_SIZE, NULL, 0}};
  uplink_entry e = {UPLINK_E_RELEASE, 0, 0, NULL, name, o->name_len, 0};
  if (uplink_send(u, &u->command, args, 5, &e) != 0) return;
  uplink_owner_set_state(u, o, UPLINK_OWNER_RELEASING);
}

void uplink_claim_release_reply(uplink *u, const uplink_entry *e) {
  uplink_owner *o = table_get(u->owners->by_name, e->name, e->name_len);
  if (!o || o->state != UPLINK_OWNER_RELEASING) return;
  if (!o->head) {
    uplink_owner_drop(u, o);
    return;
  }
  uplink_owner_set_state(u, o, UPLINK_OWNER_UNKNOWN);
  uplink_claim_ask(u, o, NULL); /* requests came meanwhile */
}
