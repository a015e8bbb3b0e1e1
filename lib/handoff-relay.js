'use strict';
// The relay of lib/handoff.js, for connections that cannot move: an HTTPS
// connection's TLS state lives in the process that accepted it, so instead
// of its descriptor, its plaintext goes to the owner of the session, as
// messages through the broker, and what the owner answers comes back the
// same way.
//
// A relayed connection is a *stream*, named by the accepting (origin)
// worker's tag and a number. The origin publishes 'open' (the server's
// port, and the bytes of the request it held) to the owner's relay topic,
// then everything it reads from the TLS socket; the owner makes a stand-in
// socket (a Duplex) that its HTTPS server takes as a connection
// ('secureConnection'), and publishes what that server writes back to the
// origin's relay topic. Once relayed, a connection stays relayed to that
// owner until it closes (the owner's gate still sends a later request for
// yet another worker on, through a relay of its own).
//
// Message: kind (1 byte), stream number (4), sender's tag length (1), the
// tag, then: 'open' the server's port (2) and the bytes; 'data' the bytes;
// 'end' and 'close' nothing. The owner's answers are the same kinds plus
// BACK, since a process may relay to a peer a stream of the same number as
// one that peer relays to it.
//
// When either side's process is gone (the broker says so at once, see
// peerGone), what was relayed with it ends: the origin closes the client's
// connection, the owner's server sees its stand-in close.
//
// Limits: no flow control (the relay forwards as fast as either side
// writes; what socket.io sends is small).

var stream = require('stream');
var debug = require('debug')('socket.io-cluster-store:handoff');
var protocol = require('./protocol');

var TYPE = protocol.TYPE;
var TOPIC_PREFIX = 'socket.io-cluster-store:local:relay:'; // machine-local (src/uplink.h)
// Origin to owner:
var OPEN = 1;
var DATA = 2;
var END = 3;
var CLOSE = 4;
// Owner to origin (a process may be both, for streams of the same number):
var BACK = 4;

function encode(kind, id, tag, extra, bytes) {
  var tagBytes = Buffer.from(tag, 'latin1');
  var head = Buffer.alloc(6 + tagBytes.length + (extra ? extra.length : 0));
  head[0] = kind;
  head.writeUInt32LE(id, 1);
  head[5] = tagBytes.length;
  tagBytes.copy(head, 6);
  if (extra) extra.copy(head, 6 + tagBytes.length);
  return bytes && bytes.length ? Buffer.concat([head, bytes]) : head;
}

function decode(payload) {
  if (payload.length < 6) return null;
  var tagLength = payload[5];
  if (payload.length < 6 + tagLength) return null;
  return { kind: payload[0], id: payload.readUInt32LE(1),
    tag: payload.toString('latin1', 6, 6 + tagLength), rest: payload.subarray(6 + tagLength) };
}

// The owner's stand-in for the origin's TLS socket.
function StandIn(relay, tag, id) {
  stream.Duplex.call(this, { allowHalfOpen: false });
  this.relay = relay;
  this.peer = tag;
  this.streamId = id;
  this.encrypted = true; // what the HTTPS server's requests see
  this.remoteAddress = undefined;
  this.remotePort = undefined;
}
Object.setPrototypeOf(StandIn.prototype, stream.Duplex.prototype);
StandIn.prototype._read = function () {};
StandIn.prototype._write = function (chunk, encoding, callback) {
  this.relay.publish(this.peer, BACK + DATA, this.streamId, null, chunk);
  callback();
};
StandIn.prototype._final = function (callback) {
  this.relay.publish(this.peer, BACK + END, this.streamId, null, null);
  callback();
};
StandIn.prototype._destroy = function (err, callback) {
  if (this.relay.forget(this.peer + ':' + this.streamId, this))
    this.relay.publish(this.peer, BACK + CLOSE, this.streamId, null, null);
  callback(err);
};
// What node's HTTP server and ws call on a socket.
StandIn.prototype.setTimeout = function (ms, callback) {
  if (callback) this.once('timeout', callback);
  return this;
};
StandIn.prototype.setNoDelay = function () { return this; };
StandIn.prototype.setKeepAlive = function () { return this; };
StandIn.prototype.ref = function () { return this; };
StandIn.prototype.unref = function () { return this; };
StandIn.prototype.address = function () { return {}; };
StandIn.prototype.destroySoon = function () { this.end(); };

function Relay(receiver) {
  this.receiver = receiver;
  this.tag = receiver.tag;
  this.topic = TOPIC_PREFIX + receiver.tag;
  this.next = 1;
  this.origins = new Map(); // our stream number -> the gate whose connection is relayed
  this.standIns = new Map(); // "<origin tag>:<number>" -> StandIn
}

Relay.prototype.publish = function (tag, kind, id, extra, bytes) {
  this.receiver.connection.send({ type: TYPE.PUBLISH, endpoint: this.receiver.endpoint,
    topic: TOPIC_PREFIX + tag, client: undefined, key: undefined,
    payload: encode(kind, id, this.tag, extra, bytes), flags: 0, now: false, callback: null });
};

// Drops a stand-in; whether it was still known (the origin not told yet).
Relay.prototype.forget = function (key, standIn) {
  if (this.standIns.get(key) !== standIn) return false;
  this.standIns.delete(key);
  return true;
};

// Origin: relays the gate's connection to the owner of its held request.
Relay.prototype.forward = function (gate) {
  var self = this;
  var id = this.next++;
  if (this.next > 0xffffffff) this.next = 1;
  var socket = gate.socket;
  var owner = gate.owner;
  var held = gate.held.length === 1 ? gate.held[0] : Buffer.concat(gate.held);
  gate.held = null;
  gate.relayTo = { owner: owner, id: id };
  this.origins.set(id, gate);
  this.receiver.stats.relayed++;
  var port = Buffer.alloc(2);
  port.writeUInt16LE(socket.localPort || 0, 0);
  this.publish(owner, OPEN, id, port, held);
  socket.once('close', function () {
    if (self.origins.get(id) !== gate) return;
    self.origins.delete(id);
    self.publish(owner, CLOSE, id, null, null);
  });
  socket.once('end', function () { self.publish(owner, END, id, null, null); });
  debug('connection relayed to %s (stream %d)', owner, id);
};

// Origin: bytes read from a relayed connection.
Relay.prototype.send = function (gate, data) {
  this.publish(gate.relayTo.owner, DATA, gate.relayTo.id, null, data);
};

Relay.prototype.onMessage = function (payload) {
  var m = decode(payload);
  if (!m) return;
  if (m.kind === OPEN) return this.onOpen(m);
  if (m.kind <= CLOSE) {
    // Owner: from the origin's connection.
    var key = m.tag + ':' + m.id;
    var standIn = this.standIns.get(key);
    if (!standIn) return;
    if (m.kind === DATA) standIn.push(Buffer.from(m.rest));
    else if (m.kind === END) standIn.push(null);
    else if (m.kind === CLOSE) {
      this.standIns.delete(key);
      standIn.destroy();
    }
    return;
  }
  var gate = this.origins.get(m.id);
  if (!gate || gate.relayTo.owner !== m.tag) return;
  // Origin: from the owner's server.
  var socket = gate.socket;
  if (m.kind === BACK + DATA) socket.write(Buffer.from(m.rest));
  else if (m.kind === BACK + END) socket.end();
  else if (m.kind === BACK + CLOSE) {
    this.origins.delete(m.id);
    socket.destroy();
  }
};

// Owner: a connection relayed here; its server takes the stand-in.
Relay.prototype.onOpen = function (m) {
  if (m.rest.length < 2) return;
  var port = m.rest.readUInt16LE(0);
  var site = this.receiver.siteFor(port);
  if (!site || !site.secure) {
    this.publish(m.tag, BACK + CLOSE, m.id, null, null);
    return;
  }
  var standIn = new StandIn(this, m.tag, m.id);
  standIn.localPort = port; // for a relay on from here
  this.standIns.set(m.tag + ':' + m.id, standIn);
  standIn.server = site.server;
  site.adoptRelayed(standIn, Buffer.from(m.rest.subarray(2)));
};

// Another worker's process is gone: the connections relayed to it are
// closed (their client sees the connection end, and reconnects), and the
// stand-ins of the connections it relayed here end.
Relay.prototype.peerGone = function (tag) {
  var self = this;
  this.origins.forEach(function (gate, id) {
    if (gate.relayTo.owner !== tag) return;
    self.origins.delete(id);
    gate.socket.destroy();
  });
  this.standIns.forEach(function (standIn, key) {
    if (key.slice(0, key.lastIndexOf(':')) !== tag) return;
    self.standIns.delete(key);
    standIn.destroy();
  });
};

// The channel broke: relayed connections cannot go on.
Relay.prototype.onChannelError = function () {
  this.origins.forEach(function (gate) { gate.socket.destroy(); });
  this.origins.clear();
  this.standIns.forEach(function (standIn) { standIn.destroy(); });
  this.standIns.clear();
};

module.exports = {
  create: function (receiver) { return new Relay(receiver); }
};
