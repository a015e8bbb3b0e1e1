'use strict';
// The primary's emitter: io.emit and friends from a process that runs no
// socket.io server (the cluster primary, or any process of the cluster).
// It publishes the same messages a server's adapter does, on the
// namespace's topic, through the broker; every server of the namespace
// acts on them as on another server's. It waits for no answer: requests
// that collect responses (fetchSockets, acks) belong to servers.

var Link = require('./link').Link;
var topics = require('./topics');

// The uid socket.io-adapter gives messages from an emitter.
var EMITTER_UID = 'emitter';
var RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting',
  'newListener', 'removeListener']);
var EVENT = 2; // socket.io-parser's PacketType.EVENT

function toArray(rooms) {
  if (rooms === undefined || rooms === null) return [];
  return Array.isArray(rooms) ? rooms.slice() : [rooms];
}

// nsp: the namespace's name; rooms, except: arrays; flags: socket.io's
// broadcast flags. Shares one Link per emitter tree.
function Emitter(link, nsp, rooms, except, flags) {
  this._link = link;
  this._nsp = nsp;
  this._rooms = rooms || [];
  this._except = except || [];
  this._flags = flags || {};
}

Emitter.prototype.of = function (nsp) {
  if (typeof nsp !== 'string') throw new TypeError('socket.io-cluster-store: a namespace is a string');
  return new Emitter(this._link, nsp.charAt(0) === '/' ? nsp : '/' + nsp);
};

Emitter.prototype.to = Emitter.prototype.in = function (room) {
  return new Emitter(this._link, this._nsp, this._rooms.concat(toArray(room)), this._except, this._flags);
};

Emitter.prototype.except = function (room) {
  return new Emitter(this._link, this._nsp, this._rooms, this._except.concat(toArray(room)), this._flags);
};

Emitter.prototype.compress = function (compress) {
  return new Emitter(this._link, this._nsp, this._rooms, this._except,
    Object.assign({}, this._flags, { compress: compress }));
};

Object.defineProperty(Emitter.prototype, 'volatile', {
  get: function () {
    return new Emitter(this._link, this._nsp, this._rooms, this._except,
      Object.assign({}, this._flags, { volatile: true }));
  }
});

Emitter.prototype._publish = function (type, data) {
  var message = { uid: EMITTER_UID, type: type, data: data };
  this._link.publish(topics.namespaceTopic(this._nsp), this._link.encode(message, 'a socket.io message'));
};

Emitter.prototype._opts = function () {
  return { rooms: this._rooms, except: this._except, flags: this._flags };
};

// Emits to every client of the namespace (in the rooms chosen, except
// those excluded), on every server. Throws a TypeError for arguments that
// cannot be sent, and an Error for an ack (no server would answer it).
Emitter.prototype.emit = function (ev) {
  if (RESERVED.has(ev)) throw new Error('socket.io-cluster-store: "' + ev + '" is a reserved event name');
  var args = Array.prototype.slice.call(arguments);
  if (typeof args[args.length - 1] === 'function') {
    throw new Error('socket.io-cluster-store: the emitter cannot wait for acknowledgements; ' +
      'emit with an ack from a socket.io server');
  }
  this._publish(messageTypes().BROADCAST, { packet: { type: EVENT, data: args, nsp: this._nsp },
    opts: this._opts() });
  return true;
};

Emitter.prototype.socketsJoin = function (rooms) {
  this._publish(messageTypes().SOCKETS_JOIN, { opts: this._opts(), rooms: toArray(rooms) });
};

Emitter.prototype.socketsLeave = function (rooms) {
  this._publish(messageTypes().SOCKETS_LEAVE, { opts: this._opts(), rooms: toArray(rooms) });
};

Emitter.prototype.disconnectSockets = function (close) {
  this._publish(messageTypes().DISCONNECT_SOCKETS, { opts: this._opts(), close: close === true });
};

Emitter.prototype.serverSideEmit = function () {
  var args = Array.prototype.slice.call(arguments);
  if (typeof args[args.length - 1] === 'function') {
    throw new Error('socket.io-cluster-store: the emitter cannot wait for acknowledgements');
  }
  this._publish(messageTypes().SERVER_SIDE_EMIT, { packet: args });
};

// Leaves the broker (the process may then exit on its own).
Emitter.prototype.close = function () {
  this._link.close();
};

function messageTypes() {
  return topics.socketIoAdapter().MessageType;
}

function createEmitter(opts) {
  var owner = {
    onLinkMessage: function () {},
    onLinkMember: function () {},
    onLinkError: function () {},
    onLinkReconnect: function () {}
  };
  return new Emitter(new Link(owner, opts || {}, undefined), '/');
}

module.exports = {
  createEmitter: createEmitter,
  Emitter: Emitter
};
