/* broker_bind: namespaces bound to the life of a connection, and taken.
 *
 * KV_BIND from a connection takes the namespace's deadline away and
 * records (namespace, connection, ms) in the broker's bindings table: as
 * long as the connection lives the namespace stays; when it goes (its
 * process exited, crashed or was cut off), the namespace gets a deadline ms
 * later, like a KV_EXPIRE sent at that moment. A namespace has one binding
 * at most: a later KV_BIND (from any connection) replaces it, and KV_EXPIRE,
 * KV_PERSIST, KV_CLEAR and KV_TAKE end it (broker_bind_release), since each
 * says what the namespace's life is from then on.
 *
 * A front end uses it for what must outlive a process that dies without a
 * word, but not for long (socket.io: a connected client's session, which a
 * crashed worker could not save). Binding a namespace that has no keys is
 * allowed and does nothing until keys come.
 *
 * KV_TAKE reads a key and removes its whole namespace (binding included)
 * in one step: of two connections that take a namespace (two workers
 * restoring one session), one gets it. */
#define _GNU_SOURCE /* uv.h needs POSIX under -std=c11 */
#include <stdlib.h>

#include "broker_internal.h"

typedef struct broker_binding {
  const broker_conn *conn;
  uint32_t ms;
} broker_binding;

static void broker_binding_free(void *value, void *ctx) {
  (void)ctx;
  free(value);
}

int broker_bind_init(broker *b) {
  b->bindings = table_create();
  return b->bindings ? 0 : -1;
}

void broker_bind_free(broker *b) {
  if (b->bindings) table_destroy(b->bindings, broker_binding_free, NULL);
  b->bindings = NULL;
}

void broker_bind_handle(broker *b, broker_conn *c, const frame *f) {
  uint32_t ms;
  if (frame_expire_parse(f->payload, f->payload_len, &ms) != 0) {
    broker_conn_reply_text(c, f->request_id, FRAME_STATUS_BAD_REQUEST,
                           "bind needs a 4-byte millisecond count");
    return;
  }
  broker_binding *binding = table_get(b->bindings, f->a, f->a_len);
  if (!binding) {
    binding = malloc(sizeof(*binding));
    if (!binding || table_put(b->bindings, f->a, f->a_len, binding, NULL) != 0) {
      free(binding);
      broker_conn_reply_text(c, f->request_id, FRAME_STATUS_NO_MEMORY, "broker out of memory");
      return;
    }
  }
  binding->conn = c;
  binding->ms = ms;
  if (kv_persist(b->store, f->a, f->a_len)) b->expiry_changed = 1;
  broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, NULL, 0);
}

void broker_bind_take(broker *b, broker_conn *c, const frame *f) {
  /* What is past its deadline is gone, whether or not the timer ran. */
  uv_update_time(&b->loop);
  kv_expire_due(b->store, uv_now(&b->loop), SIZE_MAX);
  b->expiry_changed = 1;
  size_t len = 0;
  const void *value = kv_get(b->store, f->a, f->a_len, f->b, f->b_len, &len);
  if (!value) {
    broker_conn_reply(c, f->request_id, FRAME_STATUS_MISSING, NULL, 0);
    return;
  }
  /* The reply copies the value; one too large for c becomes an error that
   * says so, and then nothing is taken. */
  int fits = frame_size(0, 0, len) != 0 && frame_size(0, 0, len) <= c->peer_max;
  broker_conn_reply(c, f->request_id, FRAME_STATUS_OK, value, len);
  if (!fits) return;
  kv_clear(b->store, f->a, f->a_len);
  broker_bind_release(b, f->a, f->a_len);
}

void broker_bind_release(broker *b, const void *ns, size_t ns_len) {
  if (table_count(b->bindings) == 0) return;
  free(table_remove(b->bindings, ns, ns_len));
}

static int broker_bind_visit(const void *key, size_t key_len, void *value, void *ctx) {
  broker *b = ctx;
  broker_binding *binding = value;
  if (!binding->conn->dead) return 0;
  /* Out of memory for the deadline: the namespace goes now, rather than
   * stay for ever. */
  if (kv_expire_at(b->store, key, key_len, uv_now(&b->loop) + binding->ms) < 0)
    kv_clear(b->store, key, key_len);
  free(binding);
  return 1;
}

void broker_bind_drop_dead(broker *b) {
  if (table_count(b->bindings) == 0) return;
  uv_update_time(&b->loop);
  table_sweep(b->bindings, broker_bind_visit, b);
  b->expiry_changed = 1;
}
