'use strict';
// Every patch this package makes to socket.io 0.9's Manager, made once per
// Manager, when it first reads its store (socket.io then sets
// `store.manager`, see store.js). Two concerns:
//
// Handshakes without sticky sessions. Before the Manager handles a request
// for a client it cannot vouch for (an id it has not seen, a client it does
// not know as connected, or a polling request, which any worker may get),
// the store makes the broker take in everything the other workers had
// already written and delivers it here, synchronously. So the `handshake`
// (or `connect`, `open`, `close`) that another worker published before
// answering the client is known here before the Manager looks. Requests for
// ids this worker already serves cost nothing.
//
// Polling clients without sticky sessions. Successive requests of an xhr-polling / jsonp-polling client land on any
// worker. socket.io 0.9 assumes they all land on one, and then crashes
// (writes to a poll another worker answered), loses client events (handled
// where the app has no handlers) and loses or duplicates packets (every
// worker buffers its own copy in closed[id]). This module gives each client
// one worker that owns it, its "home": the worker where handleClient made it
// connected (where 'connection' fired, where the app's handlers live).
//
// Client -> server: packets are handled at home only. Another worker that
// gets them republishes them on 'message-remote'; home, which never hears
// its own publications, handles them at once instead of publishing.
//
// Server -> client: only home queues and decides (its queue is socket.io's
// closed[id]). A packet for the client, whatever its origin (socket emit,
// room broadcast, 'dispatch-remote' from another worker), is written to
// home's own transport when that is open; else pushed to the worker that
// announced an open poll for the client; else queued. A worker that opens a
// poll for a client homed elsewhere announces it (and its end) to home,
// which pushes its queue there; the holder writes what it gets if its poll
// is still open, or sends it back, and home puts it back at the front of
// the queue. Other workers never buffer and never write room broadcasts or
// 'dispatch-remote' packets themselves. Volatile packets that cannot be
// written at once are dropped. Every write checks `transport.open`.
//
// Websocket (and flashsocket, htmlfile) transports live at home, where the
// packets are written directly, as before.

var debug = require('debug');
var log = debug('socket.io-cluster-store:polling');

var POLLING = new Set(['xhr-polling', 'jsonp-polling', 'htmlfile']);
// The topics of this module's own messages, with their arguments.
var OPEN = 'cluster-store:poll-open';     // (id, holder node)
var CLOSE = 'cluster-store:poll-close';   // (id, holder node)
var PUSH = 'cluster-store:push';          // (holder node, id, packets, volatile, home node)
var BOUNCE = 'cluster-store:bounce';      // (home node, id, packets, holder node)

function hookManager(store, manager) {
  if (!manager || typeof manager.handleClient !== 'function' || manager.__clusterStoreHooked) return;
  manager.__clusterStoreHooked = true;

  var home = new Set();        // ids homed here
  var holders = new Map();     // at home: id -> node holding an open poll for it
  var announced = new Set();   // ids for which this (non-home) worker announced an open poll
  var outbox = new Map();      // at home: id -> { node, packets } pushed at the end of this tick
  var bounced = new Map();     // at home: id -> how many packets at the front of its queue came back
  var state = { remote: 0, handling: null };
  var publish = store.publish;

  var orig = {
    handleClient: manager.handleClient,
    onConnect: manager.onConnect,
    onClose: manager.onClose,
    onDisconnect: manager.onDisconnect,
    onClientMessage: manager.onClientMessage
  };

  function queue(id) {
    var q = manager.closed[id];
    if (!q) q = manager.closed[id] = [];
    return q;
  }

  function localOpen(id) {
    var t = manager.transports[id];
    return t && t.open ? t : null;
  }

  // Ends a client as socket.io does when it sends a disconnect packet: its
  // open poll, wherever it is, is answered with one, and every worker
  // drops it. For a client whose input this worker cannot pass on.
  function refuse(id, err) {
    var t = manager.transports[id];
    if (t) t.onForcedDisconnect();
    else publish.call(store, 'disconnect-force', id);
    if (!err) return;
    var e = new Error('socket.io-cluster-store: a message from client ' + id + ' was refused and the ' +
      'client disconnected: ' + err.message);
    e.code = err.code;
    store._fail(e);
  }

  // A client's packet goes home. One that cannot be sent (nested too
  // deep, over maxFrameSize) is refused to that client: this runs in
  // socket.io's request 'end' handler, where a throw would end the worker.
  function forward(id, packet) {
    try {
      publish.call(store, 'message-remote', id, packet);
    } catch (err) {
      log('message from %s refused: %s', id, err.message);
      refuse(id, err);
    }
  }

  // socket.io answers a POST ('1') before it parses the body, then may
  // write an error to that same response (a jsonp-polling body that is not
  // JSON: ERR_HTTP_HEADERS_SENT, out of the request's 'end' handler). No
  // worker writes to an answered poll: such a write is dropped, and the
  // client, which cannot be told why, is disconnected.
  function guardAnswered(res, id) {
    var told = false;
    function late() {
      if (!res.writableEnded) return false;
      if (!told) {
        told = true;
        log('late write to the answered POST of %s dropped; client disconnected', id);
        refuse(id, null);
      }
      return true;
    }
    var writeHead = res.writeHead;
    var write = res.write;
    var end = res.end;
    res.writeHead = function () { return late() ? res : writeHead.apply(res, arguments); };
    res.write = function () { return late() ? true : write.apply(res, arguments); };
    res.end = function () { return late() ? res : end.apply(res, arguments); };
  }

  function push(node, id, packets, volatile) {
    publish.call(store, PUSH, node, id, packets, !!volatile, store.nodeId);
  }

  // Packets for one holder are gathered until the end of the tick and go
  // in one push: the holder writes them all in the one response.
  function sendOutbox() {
    var entries = Array.from(outbox);
    outbox.clear();
    for (var i = 0; i < entries.length; i++) push(entries[i][1].node, entries[i][0], entries[i][1].packets, false);
  }

  function toHolder(node, id, packets) {
    var box = outbox.get(id);
    if (box && box.node !== node) {
      push(box.node, id, box.packets, false);
      box = null;
    }
    if (!box) {
      if (outbox.size === 0) process.nextTick(sendOutbox);
      outbox.set(id, box = { node: node, packets: [] });
    }
    for (var i = 0; i < packets.length; i++) box.packets.push(packets[i]);
  }

  // At home: one packet (an encoded string) for the client.
  function deliver(id, packet, volatile) {
    var t = localOpen(id);
    if (t) return t.onDispatch(packet, volatile);
    var holder = holders.get(id);
    if (holder) {
      if (volatile && !outbox.has(id)) return push(holder, id, [packet], true);
      return toHolder(holder, id, [packet]);
    }
    if (!volatile) queue(id).push(packet);
  }

  // At home: whatever is queued goes to the transport that is open now.
  function sendQueued(id) {
    var q = manager.closed[id];
    if (!q || !q.length) return;
    var t = localOpen(id);
    if (t) {
      manager.closed[id] = [];
      bounced.delete(id);
      return t.payload(q);
    }
    var holder = holders.get(id);
    if (holder) {
      manager.closed[id] = [];
      bounced.delete(id);
      toHolder(holder, id, q);
    }
  }

  manager.handleClient = function (data, req) {
    var id = data && data.id;
    if (id && req.method === 'POST' && req.res && POLLING.has(data.transport)) guardAnswered(req.res, id);
    state.handling = id;
    try {
      // A client this worker cannot vouch for: catch up with the broker
      // first (handshakes without sticky sessions, at the top).
      if (id && (!this.handshaken[id] || !this.connected[id] || POLLING.has(data.transport))) {
        store._catchUp();
      }
      orig.handleClient.apply(this, arguments);
    } finally {
      state.handling = null;
    }
    if (!id || data.query.disconnect !== undefined) return;
    var t = localOpen(id);
    if (!t) return;
    if (home.has(id)) {
      // The client polls here: any poll announced elsewhere is over.
      holders.delete(id);
      sendQueued(id);
    } else if (POLLING.has(data.transport) && this.connected[id]) {
      announced.add(id);
      publish.call(store, OPEN, id, store.nodeId);
    }
  };

  // The local call from handleClient (not the 'connect' from another worker)
  // makes this worker the client's home.
  manager.onConnect = function (id) {
    if (state.handling === id && !state.remote) home.add(id);
    return orig.onConnect.apply(this, arguments);
  };

  manager.onClose = function (id) {
    if (home.has(id)) {
      // Home's queue outlives the polls, wherever they were.
      delete this.open[id];
      queue(id);
      return;
    }
    orig.onClose.apply(this, arguments);
    if (!state.remote && announced.delete(id)) publish.call(store, CLOSE, id, store.nodeId);
  };

  manager.onDisconnect = function (id) {
    home.delete(id);
    outbox.delete(id);
    bounced.delete(id);
    holders.delete(id);
    announced.delete(id);
    var out = orig.onDisconnect.apply(this, arguments);
    // socket.io's onOpen leaves transports[id] = null where another worker
    // opened a poll, and its onDisconnect deletes truthy entries only: a
    // key per client that ever polled elsewhere, for good.
    delete this.transports[id];
    return out;
  };

  manager.onClientMessage = function (id, packet) {
    if (home.has(id)) return orig.onClientMessage.apply(this, arguments);
    if (state.remote) return; // not ours
    forward(id, packet);
  };

  // Not at home: nothing is buffered here (home has the packet, through
  // 'dispatch-remote').
  manager.onClientDispatch = function (id, packet) {
    if (home.has(id)) deliver(id, packet, false);
  };

  manager.onDispatch = function (room, packet, volatile, exceptions) {
    var ids = this.rooms[room];
    if (!ids) return;
    ids = ids.slice();
    for (var i = 0; i < ids.length; i++) {
      var id = ids[i];
      if (home.has(id) && !~exceptions.indexOf(id)) deliver(id, packet, volatile);
    }
  };

  // Home never hears its own 'message-remote' (published when it has no
  // transport for the client): it handles the packet itself instead.
  store.publish = function (topic, id, packet) {
    if (topic === 'message-remote' && home.has(id)) {
      if (this.listenerCount('publish') > 0) this.emit('publish', topic, id, packet);
      orig.onClientMessage.call(manager, id, packet);
      return this;
    }
    if (topic === 'message-remote') {
      forward(id, packet);
      return this;
    }
    return publish.apply(this, arguments);
  };

  store.subscribe(OPEN, function (id, node) {
    if (!home.has(id)) return;
    holders.set(id, node);
    sendQueued(id);
  });

  store.subscribe(CLOSE, function (id, node) {
    if (holders.get(id) === node) holders.delete(id);
  });

  store.subscribe(PUSH, function (node, id, packets, volatile, from) {
    if (node !== store.nodeId) return;
    var t = localOpen(id);
    if (t && (!volatile || t.drained)) {
      if (volatile) return t.onDispatch(packets[0], true);
      return t.payload(packets);
    }
    if (!volatile) {
      log('poll for %s gone, %d packets back home', id, packets.length);
      publish.call(store, BOUNCE, from, id, packets, store.nodeId);
    }
  });

  store.subscribe(BOUNCE, function (node, id, packets, holder) {
    if (node !== store.nodeId || !home.has(id)) return;
    // That worker has no open poll for the client now (if it opens one
    // again, its announcement comes after this): no more pushes there.
    if (holders.get(id) === holder) holders.delete(id);
    // Older than what was queued since, newer than what came back before.
    var q = queue(id);
    var at = Math.min(bounced.get(id) || 0, q.length);
    Array.prototype.splice.apply(q, [at, 0].concat(packets));
    bounced.set(id, at + packets.length);
    sendQueued(id);
  });

  // Replaces or wraps socket.io's own consumers of these topics.
  function wrapConsumer(topic, consumer) {
    if (typeof consumer !== 'function') return consumer;
    if (topic === 'dispatch-remote') {
      return function (id, packet, volatile) {
        if (home.has(id)) deliver(id, packet, volatile);
      };
    }
    if (topic === 'message-remote') {
      return function (id, packet) {
        if (home.has(id)) orig.onClientMessage.call(manager, id, packet);
      };
    }
    if (topic === 'close' || topic === 'connect') {
      return function () {
        state.remote++;
        try {
          return consumer.apply(this, arguments);
        } finally {
          state.remote--;
        }
      };
    }
    return consumer;
  }

  // socket.io's Manager is in initStore now: it set store.manager on its
  // first read of the store there, and subscribes next, in the same call,
  // once to each topic. So the first subscription to each of these topics
  // from now on is socket.io's own; any later one (the application's, or
  // another Manager's) is left as it is.
  var adapt = new Set(['dispatch-remote', 'message-remote', 'close', 'connect']);
  var subscribe = store.subscribe;
  store.subscribe = function (topic, consumer, fn) {
    if (adapt.delete(topic)) consumer = wrapConsumer(topic, consumer);
    return subscribe.call(this, topic, consumer, fn);
  };
}

module.exports = hookManager;
