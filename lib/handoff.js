'use strict';
// socket.io 4 without sticky sessions: each engine.io session belongs to
// the worker that created it, and a request for it that reaches another
// worker is handed to the owner with its TCP connection.
//
// The session id says who owns it: generateId is wrapped to put this
// process's tag in front ("<tag>_<id>"). Every worker that enables this
// subscribes to a topic of its own, named after its tag. A gate sits between
// each TCP connection of the HTTP server and node's HTTP parser: it reads
// the request head, and when the request names a session another worker
// owns, it waits until this worker has answered what it was already asked
// on that connection, stops reading, and hands the descriptor and the bytes
// read so far to the owner's topic (the broker passes both, see
// src/broker_handoff.c). The owner adopts the socket as a connection of its
// own server and replays the bytes into it; later requests on the same
// keep-alive connection go through the owner's gate, and on again if they
// belong elsewhere. When the owner is gone (no subscriber), the request is
// served here, and engine.io answers "Session ID unknown" so the client
// starts a new session. Nothing of this runs in the primary.
//
// Placement: a session lives where its handshake is served, so the gate
// also looks at handshakes (a GET on engine.io's path with no sid). The
// workers tell each other how many sessions each holds, on the peers topic
// (at most one message per LOAD_DELAY ms each, and at least one per
// LOAD_EVERY ms while it places handshakes: a worker whose event loop is
// stuck falls silent, and is not placed at once its last count is older than
// LOAD_STALE ms). A handshake that reaches a
// worker holding more sessions than the least loaded one, by more than a
// small slack, is handed to that one on its placement topic, where it is
// served whatever the counts say then: once, never on again. A worker
// counts what it placed at each peer until that peer's next count arrives,
// so a burst of handshakes is dealt out, not all sent to the same one.
//
// HTTPS: a TLS connection cannot move (its keys live in this process), so
// the gate sits behind TLS, and a foreign request's connection is relayed
// instead: its plaintext goes to the owner through the broker as messages,
// where a stand-in socket feeds the owner's HTTP server, and the answers
// come back the same way (lib/handoff-relay.js).

var net = require('net');
var performance = require('perf_hooks').performance;
var tls = require('tls');
var debug = require('debug')('socket.io-cluster-store:handoff');
var connection = require('./connection');
var protocol = require('./protocol');
var relay = require('./handoff-relay');

var TYPE = protocol.TYPE;
var STATUS = protocol.STATUS;
// Machine-local topics (their prefix keeps them off the uplink, src/uplink.h):
// a pid tag names a process of this machine only.
var TOPIC_PREFIX = 'socket.io-cluster-store:local:handoff:';
// Every receiver is a member of this topic, tagged with its tag: the broker
// tells the others at once when its process is gone (see handoff-relay.js).
var PEERS_TOPIC = 'socket.io-cluster-store:local:handoff-peers';
// A handshake handed to <tag> to be served there (placement).
var PLACE_PREFIX = 'socket.io-cluster-store:local:handoff-place:';
// A worker's session counts go out at most this often (ms),
var LOAD_DELAY = 10;
// and at least this often while it has a server that places handshakes;
var LOAD_EVERY = 1000;
// a peer whose last count is older than this is not placed at (stuck, or
// stopped: what is handed to it would wait for it).
var LOAD_STALE = 3500;
var TAG_PATTERN = /^[0-9a-z]{1,12}$/;
// A request head larger than this is not looked into: the HTTP server gets
// it as it is (and refuses it, past its own maxHeaderSize).
var MAX_HEAD = 64 * 1024;
// Bytes held for another worker while this one finishes answering on the
// connection: past this, nothing more is read until the connection moves.
var MAX_HELD = 1024 * 1024;
var kGate = Symbol('socket.io-cluster-store:gate');
var kReplay = Symbol('socket.io-cluster-store:replay');
var kSite = Symbol('socket.io-cluster-store:site');
var kPlaced = Symbol('socket.io-cluster-store:placed');

var HEAD = 0;
var BODY = 1;
var CHUNKED = 2;
var HOLD = 3;
var THROUGH = 4;
var RELAY = 5;

// ---- the process's receiver: one topic, every server of the process -------

var receiver = null;

function Receiver() {
  this.connection = connection.forProcess();
  this.tag = process.pid.toString(36);
  this.topic = TOPIC_PREFIX + this.tag;
  this.placeTopic = PLACE_PREFIX + this.tag;
  this.sites = new Set();
  this.stats = { handedOff: 0, adopted: 0, servedHere: 0, relayed: 0, placed: 0 };
  this.loads = new Map(); // peer tag -> { ports: Map(port -> its sessions there), at }
  this.sent = new Map(); // peer tag -> handshakes placed there since its last count
  this.loadTimer = null;
  var self = this;
  this.loadTicker = setInterval(function () { self.publishLoad(true); }, LOAD_EVERY);
  this.loadTicker.unref();
  this.endpoint = this.connection.addEndpoint(this);
  this.relay = relay.create(this);
  this.ready = this.subscribe();
}

Receiver.prototype.subscribe = function () {
  var self = this;
  return new Promise(function (resolve) {
    var waiting = 4;
    function done(err) {
      if (err) debug('subscribing failed: %s', err.message);
      if (--waiting > 0) return;
      self.loadChanged(); // the peers learn this worker's counts
      resolve();
    }
    [[self.topic, undefined], [self.placeTopic, undefined], [self.relay.topic, undefined],
      [PEERS_TOPIC, Buffer.from(self.tag, 'latin1')]].forEach(function (sub) {
      self.connection.send({ type: TYPE.SUBSCRIBE, endpoint: self.endpoint, topic: sub[0],
        client: undefined, key: undefined, payload: sub[1], flags: 0, now: true,
        callback: done });
    });
  });
};

// The endpoint's side of lib/connection.js.
Receiver.prototype.onMessage = function (topic, payload) {
  if (topic === PEERS_TOPIC) this.onLoad(payload.toString('latin1'));
  else this.relay.onMessage(payload);
};
// A peer came (it learns this worker's counts) or went: what was relayed to
// or from it ends, and no handshake is placed there.
Receiver.prototype.onMember = function (joined, topic, tag) {
  if (topic !== PEERS_TOPIC) return;
  if (joined) {
    this.loadChanged();
    return;
  }
  var who = tag.toString('latin1');
  this.loads.delete(who);
  this.sent.delete(who);
  this.relay.peerGone(who);
};
Receiver.prototype.onChannelError = function (err) {
  debug('channel error: %s', err.message);
  this.relay.onChannelError(err);
};
Receiver.prototype.onReconnect = function () {};
Receiver.prototype.resubscribe = function () { this.ready = this.subscribe(); };

// A connection handed to this process: adopted by the server listening on
// its local port, its bytes replayed there.
Receiver.prototype.onHandoff = function (topic, bytes, fd) {
  var socket;
  try {
    socket = new net.Socket({ fd: fd, readable: true, writable: true });
  } catch (err) {
    debug('could not adopt a connection: %s', err.message);
    require('./native').closeFd(fd);
    return;
  }
  var site = this.siteFor(socket.localPort);
  if (!site) {
    debug('no server here listens on port %d: connection closed', socket.localPort);
    socket.destroy();
    return;
  }
  this.stats.adopted++;
  var server = site.server;
  server._connections++;
  socket.server = server;
  socket._server = server;
  socket[kReplay] = bytes;
  socket[kPlaced] = topic === this.placeTopic;
  server.emit('connection', socket);
};

// The server listening on port; or, when none does, the only server there
// is (one that does not listen itself: connections reach it some other
// way, e.g. @socket.io/sticky's).
Receiver.prototype.siteFor = function (port) {
  var found = null;
  this.sites.forEach(function (site) {
    var address = site.server.address();
    if (!found && address && address.port === port) found = site;
  });
  if (!found && this.sites.size === 1) {
    var only = this.sites.values().next().value;
    if (!only.server.listening) found = only;
  }
  return found;
};

// Hands fd and bytes to the owner of tag (or, place: a handshake to be
// served there); callback(true) once the broker passed them on, (false)
// when it could not (the owner is gone).
Receiver.prototype.send = function (tag, bytes, fd, place, callback) {
  try {
    var topic = (place ? PLACE_PREFIX : TOPIC_PREFIX) + tag;
    this.connection.handoff(this.endpoint, topic, bytes, fd, function (err, status) {
      if (err) debug('hand-off failed: %s', err.message);
      callback(!err && status === STATUS.OK);
    });
  } catch (err) {
    debug('hand-off failed: %s', err.message);
    process.nextTick(callback, false);
  }
};

// ---- placement: how many sessions each worker holds ------------------------

// This worker's sessions changed: its counts go out within LOAD_DELAY ms.
Receiver.prototype.loadChanged = function () {
  if (this.loadTimer) return;
  var self = this;
  this.loadTimer = setTimeout(function () {
    self.loadTimer = null;
    self.publishLoad();
  }, LOAD_DELAY);
  this.loadTimer.unref();
};

// "<tag> <port>:<sessions> ...", one pair per listening server that places
// handshakes (ifPlacing: nothing is sent when there is none).
Receiver.prototype.publishLoad = function (ifPlacing) {
  var text = this.tag;
  this.sites.forEach(function (site) {
    var port = site.placingPort();
    if (port !== null) text += ' ' + port + ':' + site.sessions();
  });
  if (ifPlacing && text === this.tag) return;
  try {
    this.connection.send({ type: TYPE.PUBLISH, endpoint: this.endpoint, topic: PEERS_TOPIC,
      client: undefined, key: undefined, payload: Buffer.from(text, 'latin1'), flags: 0,
      now: false, callback: null });
  } catch (err) {
    debug('could not send the session counts: %s', err.message);
  }
};

Receiver.prototype.onLoad = function (text) {
  var parts = text.split(' ');
  var tag = parts[0];
  if (tag === this.tag || !TAG_PATTERN.test(tag)) return;
  var ports = new Map();
  for (var i = 1; i < parts.length; i++) {
    var pair = parts[i].split(':');
    var port = Number(pair[0]);
    var count = Number(pair[1]);
    if (pair.length === 2 && port > 0 && count >= 0) ports.set(port, count);
  }
  this.loads.set(tag, { ports: ports, at: performance.now() });
  this.sent.delete(tag);
};

// fn(load, tag) for each peer heard from in the last LOAD_STALE ms.
Receiver.prototype.forEachHeard = function (fn) {
  var since = performance.now() - LOAD_STALE;
  this.loads.forEach(function (load, tag) { if (load.at >= since) fn(load, tag); });
};

// The peer to hand a new session on port to, or null to keep it here: the
// least loaded (ties broken at random), when this worker holds more than
// it plus a slack: 1, and 1 more per 8 sessions held here. The peers'
// counts are late by LOAD_DELAY and by however busy their event loops
// are; in a storm of connections dealt out evenly (round robin) a slack
// of 1 per 32 moved 59 % of the handshakes for nothing, 1 per 8 moved 29 %
// (npm run stress:v4, websocket, 1000 at once). A peer silent for
// LOAD_STALE ms is left out.
Receiver.prototype.placeFor = function (port, own) {
  var best = null;
  var least = Infinity;
  var ties = 0;
  var sent = this.sent;
  this.forEachHeard(function (load, tag) {
    var count = load.ports.get(port);
    if (count === undefined) return;
    count += sent.get(tag) || 0;
    if (count < least) {
      best = tag;
      least = count;
      ties = 1;
    } else if (count === least && Math.random() * ++ties < 1) {
      best = tag;
    }
  });
  if (best === null || own <= least + 1 + (own >> 3)) return null;
  sent.set(best, (sent.get(best) || 0) + 1);
  return best;
};

function getReceiver() {
  if (!receiver) receiver = new Receiver();
  return receiver;
}

// ---- who owns a session ----------------------------------------------------

function tagOf(sid) {
  var at = sid.indexOf('_');
  if (at <= 0) return null;
  var tag = sid.slice(0, at);
  return TAG_PATTERN.test(tag) ? tag : null;
}

// The sid= of a request target, or null.
function sidOf(target) {
  var q = target.indexOf('?');
  if (q < 0) return null;
  var at = target.indexOf('sid=', q);
  while (at > 0 && target[at - 1] !== '?' && target[at - 1] !== '&')
    at = target.indexOf('sid=', at + 4);
  if (at < 0) return null;
  var end = target.indexOf('&', at);
  var value = target.slice(at + 4, end < 0 ? target.length : end);
  try {
    return decodeURIComponent(value);
  } catch (err) {
    return value;
  }
}

// ---- the gate: between a connection and the HTTP parser --------------------

function Gate(socket, site) {
  this.socket = socket;
  this.site = site;
  this.emit = socket.emit; // the socket's own, to feed the HTTP server
  this.state = HEAD;
  this.head = null; // bytes of a request head not yet complete
  this.remaining = 0; // body bytes left (BODY), or of the current chunk (CHUNKED)
  this.chunk = null; // CHUNKED: 'size', 'data', 'crlf', 'trailer'
  this.line = ''; // CHUNKED: the line being read
  this.held = null; // HOLD: the bytes of a request for another worker, and all after
  this.owner = null; // HOLD: its owner's tag
  this.place = false; // HOLD: a handshake handed on to be served there
  this.forwarded = 0; // requests given to the HTTP server
  this.answered = 0; // ... and answered
  this.handing = false;
  this.heldBytes = 0;
  this.stopped = false; // reading stopped while holding (MAX_HELD)
  this.serveHere = false; // the next request is served here whoever owns it
}

Gate.prototype.pass = function (bytes) {
  if (bytes.length > 0) this.emit.call(this.socket, 'data', bytes);
};

Gate.prototype.through = function (bytes) {
  this.state = THROUGH;
  delete this.socket.emit; // the socket's own emit from now on
  this.pass(bytes);
};

Gate.prototype.onData = function (data) {
  while (data && data.length > 0 && !this.socket.destroyed) {
    switch (this.state) {
      case HEAD: data = this.onHead(data); break;
      case BODY: {
        var n = Math.min(this.remaining, data.length);
        this.remaining -= n;
        if (this.remaining === 0) this.state = HEAD;
        this.pass(data.subarray(0, n));
        data = data.subarray(n);
        break;
      }
      case CHUNKED: data = this.onChunked(data); break;
      case HOLD:
        this.held.push(data);
        this.heldBytes += data.length;
        if (this.heldBytes > MAX_HELD && !this.stopped && this.socket._handle) {
          this.stopped = true;
          this.socket._handle.readStop(); // reading stays true: the stream leaves it
        }
        return;
      case RELAY:
        this.site.receiver.relay.send(this, data);
        return;
      default:
        this.pass(data);
        return;
    }
  }
};

// Reads a request head; once complete, decides where the request goes.
// Returns the bytes after what it took.
Gate.prototype.onHead = function (data) {
  var buf = this.head ? Buffer.concat([this.head, data]) : data;
  // Empty lines between requests are allowed (RFC 9112, 2.2).
  var start = 0;
  while (start < buf.length && (buf[start] === 13 || buf[start] === 10)) start++;
  var end = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (end < 0) {
    if (buf.length - start > MAX_HEAD) {
      this.head = null;
      this.through(buf); // not ours to judge: the HTTP server refuses it
      return null;
    }
    this.head = buf;
    return null;
  }
  this.head = null;
  var headEnd = end + 4;
  var text = buf.toString('latin1', start, headEnd);
  var request = parseHead(text);
  var rest = buf.subarray(headEnd);
  if (!request) {
    this.through(buf);
    return null;
  }
  var owner = this.serveHere ? null : this.site.ownerOf(request);
  debug('%s %s -> %s%s (%d bytes, rest %d)', request.method, request.target, owner || 'here',
    request.place ? ' (placed)' : '', headEnd, rest.length);
  this.serveHere = false;
  if (owner) {
    this.state = HOLD;
    this.owner = owner;
    this.place = request.place;
    this.held = [buf.subarray(start)]; // the head and whatever followed it
    this.heldBytes = this.held[0].length;
    this.handOff();
    return null;
  }
  this.forwarded++;
  if (request.upgrade) {
    this.through(buf);
    return null;
  }
  if (request.chunked) {
    this.state = CHUNKED;
    this.chunk = 'size';
    this.line = '';
  } else if (request.length > 0) {
    this.state = BODY;
    this.remaining = request.length;
  }
  this.pass(buf.subarray(0, headEnd));
  return rest;
};

// Follows a chunked body through to its end, passing every byte on.
Gate.prototype.onChunked = function (data) {
  var i = 0;
  while (i < data.length && this.state === CHUNKED) {
    if (this.chunk === 'data') {
      var n = Math.min(this.remaining, data.length - i);
      i += n;
      this.remaining -= n;
      if (this.remaining === 0) {
        this.chunk = 'crlf';
        this.remaining = 2;
      }
    } else if (this.chunk === 'crlf') {
      i++;
      if (--this.remaining === 0) this.chunk = 'size';
    } else {
      var nl = data.indexOf(10, i);
      var upto = nl < 0 ? data.length : nl + 1;
      this.line += data.toString('latin1', i, upto);
      i = upto;
      if (this.line.length > MAX_HEAD) {
        this.through(data.subarray(0, i)); // malformed: the HTTP server says so
        return data.subarray(i);
      }
      if (nl < 0) continue;
      var line = this.line.trim();
      this.line = '';
      if (this.chunk === 'trailer') {
        if (line === '') this.state = HEAD;
        continue;
      }
      var size = parseInt(line.split(';')[0], 16);
      if (!(size >= 0)) {
        this.through(data.subarray(0, i));
        return data.subarray(i);
      }
      if (size === 0) {
        this.chunk = 'trailer';
      } else {
        this.chunk = 'data';
        this.remaining = size;
      }
    }
  }
  this.pass(data.subarray(0, i));
  return data.subarray(i);
};

// A request this worker answered (its response went to the socket).
Gate.prototype.onAnswered = function () {
  this.answered++;
  if (this.state === HOLD) this.handOff();
};

// Hands the connection to the owner of the held request, once this worker
// has answered everything it was asked on it and written it all out.
Gate.prototype.handOff = function () {
  var self = this;
  var socket = this.socket;
  if (this.handing || this.state !== HOLD || socket.destroyed) return;
  if (this.answered < this.forwarded) return; // onAnswered comes back here
  if (socket.writableLength > 0) {
    socket.once('drain', function () { self.handOff(); });
    return;
  }
  if (socket.readableLength > 0) {
    // Read while the HTTP server had paused it: into the gate first.
    socket.resume();
    setImmediate(function () { self.handOff(); });
    return;
  }
  if (this.site.secure) {
    // This server's keep-alive timer must not close what is relayed now.
    socket.setTimeout(0);
    this.state = RELAY;
    this.site.receiver.relay.forward(this);
    return;
  }
  var handle = socket._handle;
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0) {
    this.serveLocally();
    return;
  }
  this.handing = true;
  // Nothing more is read here: what the kernel holds goes with the
  // descriptor. (reading stays true, so the stream does not start it again.)
  handle.readStop();
  var bytes = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held);
  var site = this.site;
  site.receiver.send(this.owner, bytes, handle.fd, this.place, function (passed) {
    self.handing = false;
    if (passed) {
      site.receiver.stats.handedOff++;
      if (self.place) site.receiver.stats.placed++;
      debug('connection handed to %s', self.owner);
      socket.destroy();
      return;
    }
    self.serveLocally();
  });
};

// The owner is gone: the request is served here (engine.io answers that it
// does not know the session, and the client starts a new one).
Gate.prototype.serveLocally = function () {
  var held = this.held;
  this.held = null;
  this.stopped = false;
  if (!this.socket.destroyed && this.socket._handle) this.socket._handle.readStart();
  this.state = HEAD;
  this.serveHere = true;
  this.site.receiver.stats.servedHere++;
  this.onData(held.length === 1 ? held[0] : Buffer.concat(held));
};

// The request line and what the gate needs of the headers, or null when
// the head is not one it can follow (the HTTP server gets it as it is).
function parseHead(text) {
  var lineEnd = text.indexOf('\r\n');
  var first = text.slice(0, lineEnd).split(' ');
  if (first.length !== 3) return null;
  var request = { method: first[0], target: first[1], length: 0, chunked: false, upgrade: false,
    place: false };
  var lines = text.slice(lineEnd + 2).split('\r\n');
  var lengths = 0;
  for (var i = 0; i < lines.length; i++) {
    var colon = lines[i].indexOf(':');
    if (colon <= 0) continue;
    var name = lines[i].slice(0, colon).trim().toLowerCase();
    var value = lines[i].slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value)) return null;
      request.length = Number(value);
      lengths++;
    } else if (name === 'transfer-encoding') {
      if (!/(^|,)\s*chunked\s*$/i.test(value)) return null;
      request.chunked = true;
    } else if (name === 'upgrade') {
      request.upgrade = true;
    }
  }
  if (lengths > 1 || (lengths && request.chunked)) return null;
  // After CONNECT too the connection is no longer HTTP's.
  if (request.method === 'CONNECT') request.upgrade = true;
  return request;
}

// ---- a site: one HTTP(S) server and its engines -----------------------------

function Site(server, r) {
  this.server = server;
  this.engines = []; // [{ engine, path }]: one per socket.io Server on it
  this.receiver = r;
  this.secure = server instanceof tls.Server;
  this.balance = true; // handshakes are placed by load (options.balance)
}

// The tag of the worker that owns the request's session, when that is
// another worker; null when the request is for this one (or for no session).
// A handshake (no sid) goes where placeFor says: request.place is then set.
Site.prototype.ownerOf = function (request) {
  for (var i = 0; i < this.engines.length; i++) {
    var e = this.engines[i];
    if (request.target.lastIndexOf(e.path, 0) !== 0) continue;
    var sid = sidOf(request.target);
    if (!sid) return request.method === 'GET' ? this.placeHandshake(request) : null;
    if (e.engine.clients[sid]) return null;
    var tag = tagOf(sid);
    return tag && tag !== this.receiver.tag ? tag : null;
  }
  return null;
};

Site.prototype.placeHandshake = function (request) {
  var port = this.placingPort();
  if (port === null) return null;
  var tag = this.receiver.placeFor(port, this.sessions());
  request.place = tag !== null;
  return tag;
};

// The port this server places handshakes for, or null when it does not: it
// is not asked to, or it does not listen itself, or it is HTTPS (a TLS
// connection cannot move, and relaying a session's life is no saving).
Site.prototype.placingPort = function () {
  if (!this.balance || this.secure) return null;
  var address = this.server.address();
  return address && typeof address.port === 'number' ? address.port : null;
};

// The engine.io sessions open on this server.
Site.prototype.sessions = function () {
  var n = 0;
  for (var i = 0; i < this.engines.length; i++) n += this.engines[i].engine.clientsCount || 0;
  return n;
};

// A connection relayed here from a worker that could not hand it over
// (lib/handoff-relay.js): the server takes the stand-in as a connection.
Site.prototype.adoptRelayed = function (standIn, bytes) {
  standIn[kReplay] = bytes;
  this.server.emit('secureConnection', standIn);
};

Site.prototype.install = function () {
  var self = this;
  var server = this.server;
  // TLS: the gate sees the plaintext (secureConnection); otherwise the
  // connection's bytes (connection).
  var event = this.secure ? 'secureConnection' : 'connection';
  server.prependListener(event, function (socket) {
    var gate = new Gate(socket, self);
    socket[kGate] = gate;
    // node's HTTP server would read the connection itself (in C++, past
    // any JavaScript): it reads through 'data' events instead, and the
    // gate decides what it gets.
    if (socket._handle) socket._handle._consumed = true;
    socket.emit = function (name, data) {
      if (name === 'data' && this[kGate] && this[kGate].state !== THROUGH)
        return this[kGate].onData(data), true;
      return gate.emit.apply(this, arguments);
    };
  });
  server.on(event, function (socket) {
    var bytes = socket[kReplay];
    if (!bytes) return;
    socket[kReplay] = null;
    // A handshake placed here is served here.
    if (socket[kPlaced]) socket[kGate].serveHere = true;
    socket[kGate].onData(bytes);
  });
  // Each request's answer is counted through the server's emit, not a
  // listener: engine.io (and others) remove every 'request' listener when
  // they attach.
  var emit = server.emit;
  server.emit = function (name, req, res) {
    var gate = name === 'request' && req && req.socket && req.socket[kGate];
    if (gate) {
      var once = false;
      var answered = function () {
        if (once) return;
        once = true;
        gate.onAnswered();
      };
      res.once('finish', answered);
      res.once('close', answered);
    }
    return emit.apply(this, arguments);
  };
  // The peers learn at once when this server stops taking handshakes, and
  // soon when it starts.
  server.on('listening', function () { self.receiver.loadChanged(); });
  server.on('close', function () { self.receiver.publishLoad(); });
  this.receiver.sites.add(this);
};

// ---- the API -----------------------------------------------------------------

// enable(io[, options]): hands requests for sessions of other workers to
// them. io: a socket.io 4 Server attached to its HTTP(S) server (or an
// engine.io Server, with options.server). options.server: the HTTP(S)
// server, when io is not attached to one; options.path: engine.io's path;
// options.balance: false to keep each session where its handshake lands
// (default: new sessions are placed on the least loaded worker).
function enable(io, options) {
  options = options || {};
  if (options.balance !== undefined && typeof options.balance !== 'boolean')
    throw new TypeError('socket.io-cluster-store: handoff(io, { balance }) must be true or false, got ' +
      String(options.balance));
  var attachFirst = new TypeError('socket.io-cluster-store: handoff(io) needs io attached to its ' +
    'HTTP server first (io.attach(server) or new Server(server)), or { server } in the options');
  if (io && typeof io.attach === 'function' && !io.engine) throw attachFirst;
  var engine = io && io.engine ? io.engine : io;
  var server = options.server || (io && io.httpServer);
  if (!engine || typeof engine.generateId !== 'function' || !engine.clients)
    throw new TypeError('socket.io-cluster-store: handoff(io) needs a socket.io 4 Server (or an ' +
      'engine.io Server)');
  if (!server || typeof server.prependListener !== 'function' || !(server instanceof net.Server))
    throw attachFirst;
  var path = options.path || (engine.opts && engine.opts.path) ||
    (typeof io.path === 'function' ? io.path() : '/socket.io');
  if (path[path.length - 1] !== '/') path += '/';
  var r = getReceiver();
  var site = server[kSite];
  if (!site) {
    site = server[kSite] = new Site(server, r);
    site.install();
  }
  if (options.balance === false) site.balance = false;
  if (site.engines.some(function (e) { return e.engine === engine; })) return site;
  site.engines.push({ engine: engine, path: path });
  engine.on('connection', function (socket) {
    r.loadChanged();
    socket.once('close', function () { r.loadChanged(); });
  });
  r.loadChanged();
  var generate = engine.generateId;
  engine.generateId = function (req) {
    var self = this;
    // The subscription is live before any session names this worker.
    return r.ready.then(function () { return generate.call(self, req); }).then(function (id) {
      return r.tag + '_' + id;
    });
  };
  return site;
}

// For the adapter (socket.io-cluster-store/adapter): enables the hand-off
// (options: { balance }) for io once it is attached to its HTTP(S) server:
// at once when it is, else when io.attach() (or listen()) is called. The
// adapter is made in the Server's constructor, before new
// Server(httpServer) attaches.
function enableWhenAttached(io, options) {
  if (!io || io[kSite]) return;
  io[kSite] = true;
  process.nextTick(function () {
    if (io.engine && io.httpServer) return enable(io, options);
    var attach = io.attach;
    if (typeof attach !== 'function') return;
    io.attach = function () {
      var out = attach.apply(this, arguments);
      io.attach = attach;
      if (io.engine && io.httpServer) enable(io, options);
      return out;
    };
  });
}

// This process's counters; peers: the other workers whose session counts
// it has heard lately (those it may place handshakes at).
function stats() {
  if (!receiver) return { handedOff: 0, adopted: 0, servedHere: 0, relayed: 0, placed: 0, peers: 0 };
  var peers = 0;
  receiver.forEachHeard(function () { peers++; });
  return Object.assign({ peers: peers }, receiver.stats);
}

module.exports = enable;
module.exports.enable = enable;
module.exports.stats = stats;
module.exports.enableWhenAttached = enableWhenAttached;
module.exports.tagOf = tagOf;
