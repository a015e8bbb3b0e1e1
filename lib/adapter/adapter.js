'use strict';
// ClusterStoreAdapter: socket.io 4's ClusterAdapter (socket.io-adapter)
// over the broker. ClusterAdapter does the socket.io side (what each
// message type means, the local broadcast); this class is the transport:
//
//  - doPublish: a message to every other server of the namespace, as one
//    PUBLISH on the namespace's topic (the broker copies it to the others,
//    never back to us);
//  - doPublishResponse: a response to one server, on that server's own
//    topic, which only it subscribes to;
//  - who the other servers are: every adapter instance is a member of its
//    namespace's topic, tagged with its uid, so the broker lists the others
//    when it joins and tells it when one joins or leaves (a process that
//    dies leaves at once: no heartbeats). serverCount() is 1 + that list,
//    and a request waits for exactly the servers that were there when it
//    was sent; one that leaves meanwhile is no longer waited for.
//
// Connection state recovery (persistSession, restoreSession, the offsets
// of recoverable broadcasts) is recovery.js's, on the broker's retention;
// this class hands it what it needs where marked below.

var debug = require('debug');
var Link = require('./link').Link;
var closedError = require('./link').closedError;
var Recovery = require('./recovery').Recovery;
var topics = require('./topics');

var log = debug('socket.io-cluster-store:adapter');
var logError = debug('socket.io-cluster-store:error');

// As socket.io-adapter's ClusterAdapter: a serverSideEmit with an ack waits
// this long for the other servers (fetchSockets takes its timeout flag).
var DEFAULT_TIMEOUT = 5000;
var hasOwn = Object.prototype.hasOwnProperty;
var objectProto = Object.prototype;

function encodeOptions(opts) {
  return { rooms: Array.from(opts.rooms || []), except: Array.from(opts.except || []),
    flags: opts.flags };
}

function decodeOptions(opts) {
  return { rooms: new Set(opts.rooms), except: new Set(opts.except), flags: opts.flags };
}

// What a fetchSockets answer says of a socket: as ClusterAdapter's, the
// handshake without its sessionStore (it may hold cycles). A copy keeps
// the own enumerable string keys, the only ones the codec sends; a plain
// handshake without a sessionStore (socket.io's own) is sent as it is,
// which comes to the same bytes without making the copy.
function describeSocket(socket) {
  var from = socket.handshake;
  var handshake = from;
  if (from === null || typeof from !== 'object' || Object.getPrototypeOf(from) !== objectProto ||
      hasOwn.call(from, 'sessionStore')) {
    handshake = {};
    for (var key in from) {
      if (key !== 'sessionStore' && hasOwn.call(from, key)) handshake[key] = from[key];
    }
  }
  return { id: socket.id, handshake: handshake, rooms: Array.from(socket.rooms), data: socket.data };
}

// The local sockets, then the others' (the array of the local ones).
function joinSockets(local, remote) {
  for (var i = 0; i < remote.length; i++) local.push(remote[i]);
  return local;
}

var defined = null;

// The class, made once over the application's socket.io-adapter.
function adapterClass() {
  if (defined) return defined;
  var sio = topics.socketIoAdapter();
  var Adapter = sio.Adapter;
  var ClusterAdapter = sio.ClusterAdapter;
  var MessageType = sio.MessageType;

  class ClusterStoreAdapter extends ClusterAdapter {
    constructor(nsp, opts) {
      super(nsp);
      this._options = opts || {};
      this._members = new Set(); // the uids of the namespace's other servers
      this._requests = new Map(); // requestId -> fetchSockets / serverSideEmit waiting
      this._failure = null; // the channel's error while it is down
      this._closed = false;
      this._joined = false; // the latest join is done (this._ready resolved)
      this._joins = 0;
      // Request ids: answers come on this adapter's own topic, so they
      // need only be unique here (a random one cost ~5 µs a request).
      this._nextRequestId = 0;
      this._namespaceTopic = topics.namespaceTopic(nsp.name);
      this._responseTopic = topics.responseTopic(this.uid);
      this._link = new Link(this, linkOptions(this._options), nsp.name);
      this._recovery = nsp.server.opts.connectionStateRecovery ?
        new Recovery(this, this._link, this._namespaceTopic) : null;
      this._ready = this._join();
    }

    // socket.io calls this once the adapter is made; the subscriptions were
    // asked for already (older socket.io 4 releases never call it).
    init() {
      return this._ready;
    }

    close() {
      if (this._closed) return;
      this._closed = true;
      this._failAll(closedError());
      this._link.close();
    }

    serverCount() {
      var self = this;
      return this._ready.then(function () { return 1 + self._members.size; });
    }

    // ---- the transport (ClusterAdapter's two abstract methods) ----------

    doPublish(message) {
      this._publish(message);
      // Connection state recovery: the offset of this message goes here.
      return Promise.resolve('');
    }

    // ClusterAdapter's, without the promise and the debug line it makes
    // per message: every broadcast and serverSideEmit comes through here.
    publish(message) {
      message.uid = this.uid;
      message.nsp = this.nsp.name;
      this._publish(message);
    }

    _publish(message) {
      // Encoding errors throw here, before anything is sent: socket.io's
      // emit, serverSideEmit and the like get a TypeError saying why.
      var bytes = this._link.encode(message, 'a socket.io message');
      // A request (fetchSockets) is written at once: its answers are awaited.
      this._link.publish(this._namespaceTopic, bytes, message.data !== undefined &&
        message.data !== null && message.data.requestId !== undefined);
    }

    doPublishResponse(requesterUid, response) {
      var bytes;
      try {
        bytes = this._link.encode(response, 'a socket.io response');
      } catch (err) {
        // The requester hears why instead of waiting for its timeout.
        log('[%s] response %d cannot be sent: %s', this.uid, response.type, err.message);
        bytes = this._link.encode({ uid: response.uid, nsp: response.nsp, type: response.type,
          data: { requestId: response.data.requestId, error: err.message } }, 'an error response');
      }
      // At once: the requester waits for it, and this turn of the loop
      // may go on for long (a busy server: a slice of broadcasts to
      // deliver, its clients' sockets to serve).
      this._link.publish(topics.responseTopic(requesterUid), bytes, true);
      return Promise.resolve();
    }

    // ---- Connection state recovery (recovery.js) ----------------------

    persistSession(session) {
      if (this._recovery) this._recovery.persist(session);
    }

    restoreSession(pid, offset) {
      return this._recovery ? this._recovery.restore(pid, offset) : Promise.resolve(null);
    }

    // ClusterAdapter appends the offset a message came with to its packet
    // when the packet is recoverable; a message without one (from an
    // emitter, or from a server without recovery) is left as it was, or
    // clients would get `undefined` as one more argument.
    addOffsetIfNecessary(packet, opts, offset) {
      if (this._recovery && typeof offset === 'string') super.addOffsetIfNecessary(packet, opts, offset);
    }

    // A socket's rooms are part of its session: recovery keeps it up to date.
    addAll(id, rooms) {
      super.addAll(id, rooms);
      if (this._recovery) this._recovery.touched(id);
    }

    del(id, room) {
      super.del(id, room);
      if (this._recovery) this._recovery.touched(id);
    }

    delAll(id) {
      if (this._recovery) this._recovery.left(id);
      super.delAll(id);
    }

    // ---- broadcasts ------------------------------------------------------

    // As ClusterAdapter's, but an emit that cannot be encoded throws (a
    // TypeError naming the value) instead of going only to local clients.
    // With connection state recovery, a recoverable packet is kept by the
    // broker, and reaches the local clients once its offset is known.
    broadcast(packet, opts) {
      if (!(opts.flags && opts.flags.local)) {
        var message = { type: MessageType.BROADCAST,
          data: { packet: packet, opts: encodeOptions(opts) } };
        if (this._recovery) {
          var self = this;
          message.uid = this.uid;
          message.nsp = this.nsp.name;
          if (this._recovery.broadcast(packet, opts, message, function () {
            Adapter.prototype.broadcast.call(self, packet, opts);
          })) return;
        }
        this.publish(message);
      }
      return Adapter.prototype.broadcast.call(this, packet, opts);
    }

    // Each other server answers with how many clients it reached, then
    // each client's ack. A server's count is handed to socket.io only once
    // all of its clients' acks came (or the server left), so that a server
    // that dies mid-way completes the emit at once, with the acks received.
    broadcastWithAck(packet, opts, clientCountCallback, ack) {
      if (opts.flags && opts.flags.local) {
        return Adapter.prototype.broadcastWithAck.call(this, packet, opts, clientCountCallback, ack);
      }
      var self = this;
      var requestId = this._newRequestId();
      var message = { uid: this.uid, nsp: this.nsp.name, type: MessageType.BROADCAST,
        data: { packet: packet, requestId: requestId, opts: encodeOptions(opts) } };
      // Encoding throws before anything is sent. The bytes are sent once
      // the adapter has joined (a later turn): a copy, as the encoder's
      // buffer is reused by the next message.
      var bytes = Buffer.from(this._link.encode(message, 'a socket.io message'));
      var request = { clientCountCallback: clientCountCallback, ack: ack, servers: new Map() };
      this.ackRequests.set(requestId, request);
      this._whenReady(function () {
        self._members.forEach(function (uid) {
          request.servers.set(uid, { count: -1, acks: 0, done: false });
        });
        self._link.publish(self._namespaceTopic, bytes, true);
      });
      setTimeout(function () { self.ackRequests.delete(requestId); }, opts.flags.timeout);
      Adapter.prototype.broadcastWithAck.call(this, packet, opts, clientCountCallback, ack);
    }

    // ---- requests --------------------------------------------------------

    // The request goes first, then this server finds its own sockets
    // while the others answer: the local sockets come first in the result,
    // then each server's as its answer came.
    fetchSockets(opts) {
      if (opts.flags && opts.flags.local) return Adapter.prototype.fetchSockets.call(this, opts);
      if (!this._joined) return this._fetchSocketsWhenReady(opts);
      if (this._failure) return Promise.reject(this._failure);
      if (this._members.size === 0) return Adapter.prototype.fetchSockets.call(this, opts);
      var self = this;
      return new Promise(function (resolve, reject) {
        var local = null;
        var remote = null;
        var requestId = self._newRequestId();
        self._request(requestId, MessageType.FETCH_SOCKETS, (opts.flags && opts.flags.timeout) ||
          DEFAULT_TIMEOUT, [], function (err, responses) {
          if (err) return reject(err);
          remote = responses;
          if (local) resolve(joinSockets(local, remote));
        });
        try {
          self.publish({ type: MessageType.FETCH_SOCKETS,
            data: { opts: encodeOptions(opts), requestId: requestId } });
        } catch (err) {
          self._finish(requestId, err);
          return;
        }
        Adapter.prototype.fetchSockets.call(self, opts).then(function (sockets) {
          local = sockets;
          if (remote) resolve(joinSockets(local, remote));
        }, reject);
      });
    }

    async _fetchSocketsWhenReady(opts) {
      await this._ready;
      return this.fetchSockets(opts);
    }

    serverSideEmit(packet) {
      var withAck = typeof packet[packet.length - 1] === 'function';
      if (!withAck) {
        this.publish({ type: MessageType.SERVER_SIDE_EMIT, data: { packet: packet } });
        return Promise.resolve();
      }
      var ack = packet.pop();
      var self = this;
      var requestId = this._newRequestId();
      var message = { uid: this.uid, nsp: this.nsp.name, type: MessageType.SERVER_SIDE_EMIT,
        data: { requestId: requestId, packet: packet } };
      // A copy, sent in a later turn (see broadcastWithAck).
      var bytes = Buffer.from(this._link.encode(message, 'a serverSideEmit'));
      this._whenReady(function () {
        if (self._failure) return ack(self._failure, []);
        if (self._members.size === 0) return ack(null, []);
        self._request(requestId, MessageType.SERVER_SIDE_EMIT, DEFAULT_TIMEOUT, [], ack);
        self._link.publish(self._namespaceTopic, bytes, true);
      });
      return Promise.resolve();
    }

    // ClusterAdapter's, but a fetchSockets request is answered at once,
    // in this call, rather than from a promise's callback in a later
    // microtask: the requester waits for it.
    onMessage(message, offset) {
      if (message.type !== MessageType.FETCH_SOCKETS || message.uid === this.uid ||
          message.nsp !== this.nsp.name) {
        return super.onMessage(message, offset);
      }
      var sockets = [];
      this.apply(decodeOptions(message.data.opts), function (socket) {
        sockets.push(describeSocket(socket));
      });
      this.publishResponse(message.uid, { type: MessageType.FETCH_SOCKETS_RESPONSE,
        data: { requestId: message.data.requestId, sockets: sockets } });
    }

    onResponse(response) {
      var type = response.type;
      var data = response.data || {};
      if (type === MessageType.FETCH_SOCKETS_RESPONSE || type === MessageType.SERVER_SIDE_EMIT_RESPONSE) {
        var request = this._requests.get(data.requestId);
        if (!request || !request.missing.has(response.uid)) return;
        request.missing.delete(response.uid);
        if (data.error !== undefined) {
          return this._finish(data.requestId, new Error('socket.io-cluster-store: server ' +
            response.uid + ' could not send its response: ' + data.error));
        }
        if (type === MessageType.FETCH_SOCKETS_RESPONSE) {
          data.sockets.forEach(function (socket) { request.responses.push(socket); });
        } else {
          request.responses.push(data.packet);
        }
        if (request.missing.size === 0) {
          this._finish(data.requestId, null);
          this._link.yieldSoon();
        }
        return;
      }
      if (type === MessageType.BROADCAST_CLIENT_COUNT || type === MessageType.BROADCAST_ACK) {
        var ackRequest = this.ackRequests.get(data.requestId);
        var server = ackRequest && ackRequest.servers && ackRequest.servers.get(response.uid);
        if (!server || server.done) return;
        if (type === MessageType.BROADCAST_CLIENT_COUNT) {
          server.count = data.clientCount;
        } else {
          server.acks++;
          ackRequest.ack(data.packet);
        }
        if (server.count >= 0 && server.acks >= server.count) {
          server.done = true;
          ackRequest.clientCountCallback(server.count);
        }
        return;
      }
      super.onResponse(response);
    }

    // ---- what the link brings --------------------------------------------

    // What another server sent is acted on here. An exception while doing
    // so (a serverSideEmit listener that throws, a broadcast socket.io
    // cannot encode for its clients) is that message's only: it is
    // reported ('error' on the adapter when it has listeners, else the
    // debug log) and the worker goes on.
    onLinkMessage(topic, message, offset) {
      if (!message || message.nsp !== this.nsp.name) return;
      try {
        if (topic === this._responseTopic) {
          this.onResponse(message);
        } else if (topic === this._namespaceTopic) {
          this.onMessage(message, offset);
          if (this._recovery) this._recovery.heardMessage(message, offset);
        }
      } catch (err) {
        logError('[%s] acting on message %d from %s threw: %s', this.uid, message.type,
          message.uid, err && err.stack);
        if (this.listenerCount('error') > 0) this.emit('error', err);
      }
    }

    onLinkMember(joined, topic, uid) {
      if (topic !== this._namespaceTopic || uid === this.uid) return;
      if (joined) {
        this._members.add(uid);
        return;
      }
      this._members.delete(uid);
      this._serverLeft(uid);
    }

    onLinkError(err) {
      if (err.code === 'ERR_CLUSTER_STORE_DECODE') {
        log('[%s] %s', this.uid, err.message);
        return;
      }
      log('[%s] channel failed: %s', this.uid, err.message);
      // Nothing from the other servers can reach us now.
      this._failure = err;
      var gone = Array.from(this._members);
      this._members.clear();
      this._failAll(err);
      var self = this;
      gone.forEach(function (uid) { self._serverLeft(uid); });
    }

    onLinkReconnect() {
      this._joined = false;
      this._ready = this._join();
    }

    // ---- inside ------------------------------------------------------------

    // Subscribes to this adapter's response topic, then joins the
    // namespace's topic as a member: resolves (never rejects) once both
    // are live, with the other servers known. The member joins once the
    // response topic is live (with machines joined through Redis: once the
    // others know to send its responses there), so no server learns of
    // this one before it can answer it.
    _join() {
      var self = this;
      var join = ++this._joins;
      return new Promise(function (resolve) {
        self._link.subscribe(self._responseTopic, undefined, function (err) {
          if (err) log('[%s] subscribing to responses failed: %s', self.uid, err.message);
          self._joinNamespace(function () {
            if (join === self._joins) self._joined = true;
            resolve();
          });
        });
      });
    }

    _joinNamespace(resolve) {
      var self = this;
      self._link.subscribe(self._namespaceTopic, self.uid, function (err, uids) {
        if (err) {
          self._failure = err;
        } else {
          self._failure = null;
          self._members = new Set(uids);
        }
        log('[%s] joined %s: %d other server(s)', self.uid, self.nsp.name, self._members.size);
        resolve();
      });
    }

    _newRequestId() {
      return (++this._nextRequestId).toString(36);
    }

    _whenReady(fn) {
      this._ready.then(fn).catch(function (err) {
        log('request failed: %s', err && err.message);
      });
    }

    // A request that waits for a response from each server there is now.
    _request(requestId, type, timeoutMs, responses, callback) {
      var self = this;
      var request = { type: type, missing: new Set(this._members), responses: responses,
        callback: callback, timeout: null };
      request.timeout = setTimeout(function () {
        if (!self._requests.has(requestId)) return;
        self._finish(requestId, new Error('timeout reached: missing ' + request.missing.size +
          ' responses'));
      }, timeoutMs);
      this._requests.set(requestId, request);
    }

    _finish(requestId, err) {
      var request = this._requests.get(requestId);
      if (!request) return;
      this._requests.delete(requestId);
      clearTimeout(request.timeout);
      if (request.type === MessageType.FETCH_SOCKETS) request.callback(err, err ? undefined : request.responses);
      else request.callback(err, request.responses);
    }

    _failAll(err) {
      var self = this;
      Array.from(this._requests.keys()).forEach(function (id) { self._finish(id, err); });
    }

    // A server is gone: nothing waits for it any more.
    _serverLeft(uid) {
      var self = this;
      this._requests.forEach(function (request, id) {
        if (!request.missing.delete(uid)) return;
        if (request.missing.size === 0) self._finish(id, null);
      });
      this.ackRequests.forEach(function (request) {
        var server = request.servers && request.servers.get(uid);
        if (!server || server.done) return;
        server.done = true;
        request.clientCountCallback(server.acks);
      });
    }
  }

  defined = ClusterStoreAdapter;
  return defined;
}

// The store options an adapter's connection takes (the first adapter or
// store of a process sets them for the process).
function linkOptions(opts) {
  var out = {};
  ['attachTimeout', 'syncTimeout', 'maxFrameSize', 'queueLimit', 'sharedMemory'].forEach(function (k) {
    if (opts[k] !== undefined) out[k] = opts[k];
  });
  return out;
}

module.exports = {
  adapterClass: adapterClass,
  DEFAULT_TIMEOUT: DEFAULT_TIMEOUT
};
