'use strict';
// A Link is one endpoint of the process's connection to the broker, for the
// socket.io 4 adapter and the primary's emitter: it publishes encoded
// messages, subscribes to topics (as a member, with a tag, when asked), and
// hands what arrives to its owner:
//
//   owner.onLinkMessage(topic, value, offset)  a message (decoded), with
//                                        its offset when it was retained
//   owner.onLinkMember(joined, topic, tag)  a member joined (true) or left
//   owner.onLinkError(err)               the channel failed, or a message
//                                        could not be decoded
//   owner.onLinkReconnect()              the channel is back: subscribe again
//
// The connection calls its endpoints with the store's names (onMessage,
// onChannelError, resubscribe, onReconnect); a Link translates, so the
// adapter keeps socket.io-adapter's own onMessage.

var wire = require('./wire');
var protocol = require('../protocol');
var connection = require('../connection');
var retained = require('../retained');

var TYPE = protocol.TYPE;
var STATUS = protocol.STATUS;
var FLAG_REMOTE = protocol.FLAG.REMOTE;

// The links of this process (this thread) subscribed to each topic. A
// message for them is delivered here, synchronously, as socket.io's
// in-memory adapters do between servers of one process; the broker takes
// it to the other processes only (FLAG_REMOTE). Each receiver decodes its
// own copy.
var localSubscribers = new Map(); // topic -> Set of Links

// nsp: the name of the namespace whose messages this link carries (they
// do not carry it: see wire.js).
function Link(owner, opts, nsp) {
  this.owner = owner;
  this.nsp = nsp;
  this.connection = connection.forProcess(opts);
  this.closed = false;
  this.topics = new Set(); // those this link is subscribed to
  this.endpoint = this.connection.addEndpoint(this);
}

Link.prototype.send = function (type, topic, payload, callback) {
  this.connection.send({ type: type, endpoint: this.endpoint, topic: topic, client: undefined,
    key: undefined, payload: payload, flags: 0, now: false, callback: callback || null });
};

// Encodes a message ({ uid, type, data }: wire.js; a TypeError, before
// anything is sent, for what cannot be encoded); what names it in that
// error.
Link.prototype.encode = function (message, what) {
  return wire.encode(message, what);
};

// Publishes encoded bytes to topic: every other link subscribed gets it,
// those of this process before this returns. now: written to the broker
// before this returns, not at the end of this turn of the loop (for
// requests and responses, which someone waits for: a busy worker's turn
// can be long).
Link.prototype.publish = function (topic, bytes, now) {
  if (this.closed) return;
  this.connection.publish(this.endpoint, topic, bytes, FLAG_REMOTE, now === true);
  var here = localSubscribers.get(topic);
  if (!here || (here.size === 1 && here.has(this))) return;
  // The encoder reuses its buffer, and a receiver may publish (answer)
  // while it is being delivered to: the receivers read a copy.
  var copy = Buffer.from(bytes);
  var self = this;
  Array.from(here).forEach(function (link) {
    if (link !== self && !link.closed) link.onMessage(topic, copy);
  });
};

// The message just delivered completes something a caller awaits: the
// rest of the batch it came in waits for a later turn (see
// Connection.yieldSoon).
Link.prototype.yieldSoon = function () {
  this.connection.yieldSoon();
};

// Publishes encoded bytes to topic and has the broker keep them in the
// topic's log (lib/retained.js): callback(err, offset) once the broker has
// taken them. The other links of this process subscribed to topic get them
// then, with the offset, right before callback (without it, if the broker
// could not keep them), so that they see this process's retained messages
// in the order of their offsets, between the others' as the broker sent
// those.
Link.prototype.publishRetained = function (topic, bytes, callback) {
  if (this.closed) return process.nextTick(callback, closedError());
  var here = localSubscribers.get(topic);
  var copy = here && !(here.size === 1 && here.has(this)) ? Buffer.from(bytes) : null;
  var self = this;
  retained.publishRemote(this.connection, this.endpoint, topic, bytes, function (err, offset) {
    var now = copy && localSubscribers.get(topic);
    if (now) {
      Array.from(now).forEach(function (link) {
        if (link !== self && !link.closed) link.onMessage(topic, copy, err ? undefined : offset);
      });
    }
    callback(err, offset);
  });
};

// Subscribes to topic; with a tag (a string), as a member: callback(err,
// tags) then gets the other members' tags.
Link.prototype.subscribe = function (topic, tag, callback) {
  if (this.closed) return callback(closedError());
  var payload = tag === undefined ? undefined : Buffer.from(tag, 'utf8');
  var self = this;
  this.send(TYPE.SUBSCRIBE, topic, payload, function (err, status, bytes) {
    if (err) return callback(err);
    if (status !== STATUS.OK) {
      return callback(new Error('socket.io-cluster-store: the broker refused a subscription: ' +
        (bytes && bytes.length ? bytes.toString('utf8') : 'status ' + status)));
    }
    if (!self.closed) {
      var here = localSubscribers.get(topic);
      if (!here) localSubscribers.set(topic, here = new Set());
      here.add(self);
      self.topics.add(topic);
    }
    callback(null, tag === undefined ? null : parseTags(bytes));
  });
};

// Leaves the broker: every subscription goes, and the members of the
// topics this link was a member of are told.
Link.prototype.close = function () {
  if (this.closed) return;
  this.closed = true;
  var self = this;
  this.topics.forEach(function (topic) {
    var here = localSubscribers.get(topic);
    if (!here) return;
    here.delete(self);
    if (here.size === 0) localSubscribers.delete(topic);
  });
  this.topics.clear();
  var conn = this.connection;
  var endpoint = this.endpoint;
  conn.send({ type: TYPE.CLOSE, endpoint: endpoint, topic: undefined, client: undefined,
    key: undefined, payload: undefined, flags: 0, now: true,
    callback: function () { conn.removeEndpoint(endpoint); } });
};

// The connection's endpoint interface. onMessageAt: a message whose
// payload is bytes[start, end), read in place (the connection's batch or
// the shared pool, lent for the length of the call).
Link.prototype.onMessage = function (topic, payload, offset) {
  this.onMessageAt(topic, payload, 0, payload.length, offset);
};

Link.prototype.onMessageAt = function (topic, bytes, start, end, offset) {
  var value;
  try {
    value = wire.decode(bytes, this.nsp, start, end);
  } catch (err) {
    var e = new Error('socket.io-cluster-store: a message on "' + topic + '" could not be ' +
      'decoded in this process and was dropped: ' + err.message + ' (run one version of ' +
      'socket.io-cluster-store in every process of the cluster)');
    e.code = 'ERR_CLUSTER_STORE_DECODE';
    return this.owner.onLinkError(e);
  }
  this.owner.onLinkMessage(topic, value, offset);
};

Link.prototype.onMember = function (joined, topic, tag) {
  this.owner.onLinkMember(joined, topic, tag.toString('utf8'));
};

Link.prototype.onChannelError = function (err) {
  this.owner.onLinkError(err);
};

Link.prototype.onReconnect = function () {};

Link.prototype.resubscribe = function () {
  if (!this.closed) this.owner.onLinkReconnect();
};

// A member list (frame.h's frame_member_write, one after another): the
// tags as strings.
function parseTags(bytes) {
  var tags = [];
  var at = 0;
  while (bytes && at + 4 <= bytes.length) {
    var len = bytes.readUInt32LE(at);
    if (len === 0 || at + 4 + len > bytes.length) break;
    tags.push(bytes.toString('utf8', at + 4, at + 4 + len));
    at += 4 + len;
  }
  return tags;
}

function closedError() {
  var err = new Error('socket.io-cluster-store: the adapter was closed');
  err.code = 'ERR_CLUSTER_STORE_DESTROYED';
  return err;
}

module.exports = {
  Link: Link,
  parseTags: parseTags,
  closedError: closedError
};
