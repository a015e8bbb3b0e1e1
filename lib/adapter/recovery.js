'use strict';
// Connection state recovery for the socket.io 4 adapter, across workers,
// on the broker's retention (lib/retained.js, src/broker_retain.c) and
// bound namespaces (src/broker_bind.c). One Recovery per adapter (per
// namespace), made when the server has connectionStateRecovery on.
//
// What socket.io asks (socket.io 4.8's Socket and Namespace): every
// recoverable packet (an event, no ack, not volatile) reaches clients with
// an offset as its last argument; a client that comes back sends its
// session id (pid) and the last offset it got, and restoreSession(pid,
// offset) answers with its session (sid, rooms, data) and every recoverable
// packet it would have got since, in order, or null (a new session).
//
// How:
//  - The log: a recoverable broadcast is published with retention on the
//    namespace's topic. The broker keeps it (bounded: setup()'s
//    retainMessages, retainBytes, retainMs) under an offset, hands the
//    offset to every other server with the message, and to this one in its
//    reply; only then is it delivered here, offset appended, so every
//    client sees its packets in offset order (the broker never lets a
//    retained message overtake another).
//  - Sessions: each connected socket's session (sid, pid, rooms, data) is
//    kept in a broker namespace named after its pid, bound to this
//    process's channel: should the worker die, the broker keeps it
//    maxDisconnectionDuration more. It is written when the socket
//    connects and when its rooms change (socket.data as it is then). When
//    socket.io persists a session (a disconnection it may recover from),
//    it is written once more and given maxDisconnectionDuration to live.
//    A socket that leaves for good takes its session with it.
//  - Restoring: the session is taken (read and removed in one step, so only
//    one worker restores it), then the log is read after the client's
//    offset; packets meant for the session's rooms are its missed packets.
//    A broadcast that reaches this worker after that read and before
//    socket.io has made the socket is added to them too, so nothing falls
//    between the log and the live stream. The broker refuses a read it
//    cannot answer in full (offset of another master run, or older than a
//    message the limits dropped): then there is no recovery, as socket.io
//    does when its own buffer is too short.

var debug = require('debug');
var codec = require('../codec');
var protocol = require('../protocol');
var wire = require('./wire');
var retained = require('../retained');

var log = debug('socket.io-cluster-store:recovery');

var TYPE = protocol.TYPE;
var EVENT = 2; // socket.io-parser's PacketType.EVENT
var BROADCAST = 3; // socket.io-adapter's MessageType.BROADCAST
var SESSION_KEY = 's';
var PREFIX = 'socket.io-cluster-store/session#';

// Whether socket.io would store this packet for recovery (as
// ClusterAdapter's addOffsetIfNecessary decides).
function recoverable(packet, opts) {
  return packet.type === EVENT && packet.id === undefined &&
    !(opts.flags && opts.flags.volatile !== undefined);
}

// Whether a packet broadcast with opts (rooms and except as arrays or
// Sets) goes to a socket in these rooms.
function reaches(opts, rooms) {
  var to = Array.from(opts.rooms || []);
  var except = new Set(opts.except || []);
  var included = to.length === 0 || rooms.some(function (room) { return to.indexOf(room) !== -1; });
  return included && rooms.every(function (room) { return !except.has(room); });
}

// adapter: the ClusterStoreAdapter; link: its Link (connection, endpoint);
// topic: the namespace's topic.
function Recovery(adapter, link, topic) {
  this.adapter = adapter;
  this.link = link;
  this.topic = topic;
  this.nsp = adapter.nsp;
  this.ttl = adapter.nsp.server.opts.connectionStateRecovery.maxDisconnectionDuration;
  this.changed = new Set(); // sids whose session is written on the next turn
  this.writing = null;
  this.persisted = new Set(); // sids persisted, until socket.io's cleanup (left)
  this.restoring = new Map(); // sid -> { rooms, early, packets, after }
}

Recovery.prototype.namespace = function (pid) {
  return PREFIX + this.nsp.name + '#' + pid;
};

Recovery.prototype.send = function (type, pid, key, payload) {
  this.link.connection.send({ type: type, endpoint: this.link.endpoint, topic: undefined,
    client: this.namespace(pid), key: key, payload: payload, flags: 0, now: false, callback: null });
};

// ---- the log -----------------------------------------------------------

// A broadcast (message: ClusterAdapter's BROADCAST for it) to publish with
// retention; false when it is not recoverable (the adapter publishes it as
// usual). Encoding errors throw, before anything is sent. local(packet,
// opts) delivers to this server's clients, once the offset is known.
Recovery.prototype.broadcast = function (packet, opts, message, local) {
  if (!recoverable(packet, opts)) return false;
  var self = this;
  var bytes = wire.encode(message, 'a socket.io message');
  function sent(err, offset) {
    if (err) {
      // Not in the log: delivered here without an offset (a client that
      // missed it will not get it back, and knows no offset past it).
      log('[%s] retained publish failed: %s', self.adapter.uid, err.message);
    } else {
      packet.data.push(offset);
      self.heard(packet.data, opts, offset);
    }
    try {
      local(packet, opts);
    } catch (e) {
      // As for another server's message: this broadcast's failure only.
      log('[%s] delivering a broadcast here threw: %s', self.adapter.uid, e && e.stack);
      if (self.adapter.listenerCount('error') > 0) self.adapter.emit('error', e);
    }
  }
  // socket.emit under recovery is a broadcast to the socket's own room:
  // when the socket is here, no other server has anything to do with it,
  // and it is only kept in the log, sent to none of them.
  if (this.ownRoom(opts)) {
    retained.keep(this.link.connection, this.link.endpoint, this.topic, bytes, sent);
  } else {
    this.link.publishRetained(this.topic, bytes, sent);
  }
  return true;
};

// Whether opts name one room only, the own room of a socket of this server.
Recovery.prototype.ownRoom = function (opts) {
  if (!opts.rooms || opts.rooms.size !== 1 || (opts.except && opts.except.size > 0)) return false;
  var room = opts.rooms.values().next().value;
  var socket = this.nsp.sockets.get(room);
  return socket !== undefined && socket.id === room;
};

// A recoverable packet's data (offset last) reached this server: a session
// being restored that it is meant for gets it too. Before the session's
// read of the log is answered, it is kept aside (the answer may hold it
// too: the offsets tell); after, it is one more missed packet.
Recovery.prototype.heard = function (data, opts, offset) {
  if (this.restoring.size === 0) return;
  this.restoring.forEach(function (r) {
    if (!reaches(opts, r.rooms)) return;
    if (r.after === null) r.early.push(data.slice());
    else if (offset > r.after) r.packets.push(data.slice());
  });
};

// From another server, through the broker: message is ClusterAdapter's
// (its packet's data has the offset already, when it was recoverable).
Recovery.prototype.heardMessage = function (message, offset) {
  if (this.restoring.size === 0 || offset === undefined || !message || message.type !== BROADCAST ||
      !message.data || message.data.requestId !== undefined) return;
  var packet = message.data.packet;
  if (!packet || !Array.isArray(packet.data) || packet.data[packet.data.length - 1] !== offset) return;
  this.heard(packet.data, message.data.opts || {}, offset);
};

// ---- sessions ------------------------------------------------------------

// A socket's rooms changed (or it connected): its session is written on
// the next turn, once for any number of changes.
Recovery.prototype.touched = function (sid) {
  var r = this.restoring.get(sid);
  if (r && r.after !== null) {
    // socket.io is making the recovered socket: its missed packets are
    // read from r.packets now, and what comes next reaches it directly.
    this.restoring.delete(sid);
  }
  this.changed.add(sid);
  if (this.writing) return;
  var self = this;
  this.writing = setImmediate(function () {
    self.writing = null;
    var sids = self.changed;
    self.changed = new Set();
    sids.forEach(function (id) { self.writeLive(id); });
  });
};

// The live session of a connected socket, bound to this process.
Recovery.prototype.writeLive = function (sid) {
  var socket = this.nsp.sockets.get(sid);
  if (!socket || !socket.connected || typeof socket.pid !== 'string') return;
  var bytes = this.encode({ sid: sid, pid: socket.pid, rooms: Array.from(socket.rooms),
    data: socket.data });
  if (!bytes) return;
  this.send(TYPE.KV_SET, socket.pid, SESSION_KEY, bytes);
  retained.bind(this.link.connection, this.link.endpoint, this.namespace(socket.pid),
    Math.min(this.ttl, 0xffffffff));
};

Recovery.prototype.encode = function (session) {
  try {
    return codec.encode(session, 'a socket.io session');
  } catch (err) {
    log('[%s] session %s not kept: %s', this.adapter.uid, session.sid, err.message);
    return null;
  }
};

// socket.io's persistSession: the socket left in a way it may come back
// from; its session lives maxDisconnectionDuration from now.
Recovery.prototype.persist = function (session) {
  this.changed.delete(session.sid);
  var bytes = this.encode({ sid: session.sid, pid: session.pid, rooms: session.rooms,
    data: session.data });
  if (!bytes) {
    this.send(TYPE.KV_CLEAR, session.pid, undefined, undefined);
    return;
  }
  var ms = Buffer.alloc(4);
  ms.writeUInt32LE(Math.min(this.ttl, 0xffffffff), 0);
  this.send(TYPE.KV_SET, session.pid, SESSION_KEY, bytes);
  this.send(TYPE.KV_EXPIRE, session.pid, undefined, ms);
  this.persisted.add(session.sid);
};

// The socket left all its rooms (socket.io's cleanup, right after it
// persisted the session or decided not to): unless its session was
// persisted, it is gone for good.
Recovery.prototype.left = function (sid) {
  this.changed.delete(sid);
  if (this.persisted.delete(sid)) return;
  var socket = this.nsp.sockets.get(sid);
  if (socket && typeof socket.pid === 'string') this.send(TYPE.KV_CLEAR, socket.pid, undefined, undefined);
};

// socket.io's restoreSession: the session with its missed packets, or
// null.
Recovery.prototype.restore = function (pid, offset) {
  var self = this;
  if (typeof pid !== 'string' || !retained.isOffset(offset)) return Promise.resolve(null);
  return new Promise(function (resolve, reject) {
    retained.take(self.link.connection, self.link.endpoint, self.namespace(pid), SESSION_KEY,
      function (err, bytes) {
        if (err) return reject(err);
        if (!bytes) return resolve(null);
        var session;
        try {
          session = codec.decode(bytes);
        } catch (e) {
          return reject(e);
        }
        self.readMissed(session, offset, resolve, reject);
      });
  });
};

Recovery.prototype.readMissed = function (session, offset, resolve, reject) {
  var self = this;
  var rooms = Array.from(session.rooms || []);
  // Broadcasts heard from now on are kept for this session (those the
  // read also returns are told apart by their offsets).
  var pending = { rooms: rooms, early: [], packets: null, after: null };
  this.restoring.set(session.sid, pending);
  retained.read(this.link.connection, this.link.endpoint, this.topic, offset, function (err, entries) {
    if (err || !entries) {
      self.restoring.delete(session.sid);
      if (err) return reject(err);
      log('[%s] session %s: messages after %s are no longer kept', self.adapter.uid, session.sid, offset);
      return resolve(null);
    }
    var missed = [];
    var last = offset;
    for (var i = 0; i < entries.length; i++) {
      var message;
      try {
        message = wire.decode(entries[i].payload, self.nsp.name);
      } catch (e) {
        self.restoring.delete(session.sid);
        return resolve(null); // cannot tell what it missed: a new session
      }
      last = entries[i].offset;
      if (!message || message.type !== BROADCAST || !message.data || !message.data.packet) continue;
      if (message.nsp !== self.nsp.name || !reaches(message.data.opts || {}, rooms)) continue;
      missed.push(message.data.packet.data.concat([entries[i].offset]));
    }
    // What reached this server meanwhile, past what the log gave.
    pending.early.forEach(function (data) {
      if (data[data.length - 1] > last) missed.push(data);
    });
    pending.early = null;
    pending.packets = missed;
    pending.after = last;
    // socket.io makes the socket in the microtasks that follow; anything
    // heard before it does is added to missed (heard). Whatever happens,
    // the entry goes once this turn is over.
    setImmediate(function () {
      if (self.restoring.get(session.sid) === pending) self.restoring.delete(session.sid);
    });
    resolve({ sid: session.sid, pid: session.pid, rooms: rooms, data: session.data,
      missedPackets: missed });
  });
};

module.exports = {
  Recovery: Recovery,
  recoverable: recoverable,
  reaches: reaches
};
