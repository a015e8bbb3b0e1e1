'use strict';
// The process's connection to the broker: one channel per process (per
// thread, when loaded in worker threads), shared by every store instance
// in it (each an endpoint), that matches replies to requests and delivers
// messages to the endpoints.
//
// A cluster worker asks the master for its channel over node's IPC
// channel (master.js answers) and asks again, with backoff, when it
// breaks or never comes. Everywhere else (a plain process, the master
// itself, a worker thread) the broker runs in-process and the channel
// attaches to it directly; the engine and the protocol are the same.

var cluster = require('cluster');
var threads = require('worker_threads');
var debug = require('debug');
var native = require('./native');
var protocol = require('./protocol');
var options = require('./options');
var master = require('./master');

var log = {
  channel: debug('socket.io-cluster-store:channel'),
  error: debug('socket.io-cluster-store:error')
};

var TYPE = protocol.TYPE;
var STATUS = protocol.STATUS;
var UPLINK_BARRIER_MS = native.constants.UPLINK_BARRIER_MS;
var FLAG_BARRIER = protocol.FLAG.BARRIER;
var FLAG_SETTLE = protocol.FLAG.SETTLE;
var UPLINK_STATE_INDEX = protocol.STAT_NAMES.indexOf('uplinkState');
var DESCRIPTOR_WORDS = protocol.DESCRIPTOR_WORDS;
var WORD_SHARED = protocol.WORD_SHARED;
var W_TYPE = protocol.WORD.TYPE;
var W_ENDPOINT = protocol.WORD.ENDPOINT;
var W_REQUEST_ID = protocol.WORD.REQUEST_ID;
var W_A_START = protocol.WORD.A_START;
var W_A_LENGTH = protocol.WORD.A_LENGTH;
var W_B_LENGTH = protocol.WORD.B_LENGTH;
var W_PAYLOAD_LENGTH = protocol.WORD.PAYLOAD_LENGTH;
var W_REGION = protocol.WORD.REGION;
var W_REGION_OFFSET = protocol.WORD.REGION_OFFSET;
var SEND_WORDS = protocol.SEND_WORDS;
var S_TYPE = protocol.SEND_WORD.TYPE;
var S_ENDPOINT = protocol.SEND_WORD.ENDPOINT;
var S_REQUEST_ID = protocol.SEND_WORD.REQUEST_ID;
var S_FLAGS = protocol.SEND_WORD.FLAGS;
var S_A_LENGTH = protocol.SEND_WORD.A_LENGTH;
var S_B_LENGTH = protocol.SEND_WORD.B_LENGTH;
var S_PAYLOAD_LENGTH = protocol.SEND_WORD.PAYLOAD_LENGTH;
var readOptions = options.readOptions;
var EMPTY = Buffer.alloc(0);

// Nonces of this copy of the module start with this: an answer to one of
// them that is not awaited is closed, and a second copy of the package in
// the same worker keeps its own answers.
var NONCE_PREFIX = process.pid + ':' + Math.random().toString(36).slice(2) + ':';
var RETRY_FIRST_MS = 100;
// A batch of publishes (Connection.publish), or of other requests
// (Connection.send): at most this many frames and payload bytes. A payload
// above BATCH_PAYLOAD_MAX bytes, or a topic (client id, key) above
// BATCH_TOPIC_MAX characters, goes alone: so a batched frame (header,
// names of up to 3 bytes a character, payload) always fits the smallest
// maxFrameSize a broker may have, and the pool takes the large ones.
var BATCH_FRAMES = 1024;
var BATCH_BYTES = 64 * 1024;
var BATCH_PAYLOAD_MAX = options.MIN_FRAME_SIZE / 2;
var BATCH_TOPIC_MAX = 256;
var RETRY_MAX_MS = 5000;

function isWorkerProcess() {
  return cluster.isWorker && threads.isMainThread && typeof process.send === 'function';
}

// The callbacks of the requests awaiting a reply, by request id. Ids are
// handed out in sequence and most replies come soon, so most callbacks live
// in a ring indexed by the id's low bits; one whose slot is still held by
// an older request waits in a Map. (A Map alone, every id a new key, cost
// a worker about 5% of its time on per-client get/set.)
var PENDING_RING = 4096; // a power of two

function Pending() {
  this.ids = new Uint32Array(PENDING_RING);
  this.callbacks = new Array(PENDING_RING).fill(undefined);
  this.overflow = new Map();
  this.size = 0;
}

Pending.prototype.set = function (id, callback) {
  var slot = id & (PENDING_RING - 1);
  if (this.callbacks[slot] === undefined) {
    this.ids[slot] = id;
    this.callbacks[slot] = callback;
  } else {
    this.overflow.set(id, callback);
  }
  this.size++;
};

// The callback of request id, removed; undefined when none waits.
Pending.prototype.take = function (id) {
  var slot = id & (PENDING_RING - 1);
  var callback = this.callbacks[slot];
  if (callback !== undefined && this.ids[slot] === id) {
    this.callbacks[slot] = undefined;
    this.size--;
    return callback;
  }
  if (this.overflow.size === 0) return undefined;
  callback = this.overflow.get(id);
  if (callback !== undefined) {
    this.overflow.delete(id);
    this.size--;
  }
  return callback;
};

// Every callback waiting, oldest request first, removed.
Pending.prototype.drain = function () {
  var waiting = [];
  for (var slot = 0; slot < PENDING_RING; slot++) {
    if (this.callbacks[slot] === undefined) continue;
    waiting.push([this.ids[slot], this.callbacks[slot]]);
    this.callbacks[slot] = undefined;
  }
  this.overflow.forEach(function (callback, id) { waiting.push([id, callback]); });
  this.overflow = new Map();
  this.size = 0;
  // Ids wrap (see newRequestId): the oldest follows the widest gap.
  waiting.sort(function (x, y) { return x[0] - y[0]; });
  var start = 0;
  var gap = waiting.length > 0 ? waiting[0][0] + 0x100000000 - waiting[waiting.length - 1][0] : 0;
  for (var i = 1; i < waiting.length; i++) {
    if (waiting[i][0] - waiting[i - 1][0] > gap) {
      gap = waiting[i][0] - waiting[i - 1][0];
      start = i;
    }
  }
  return waiting.slice(start).concat(waiting.slice(0, start)).map(function (entry) { return entry[1]; });
};

// One per process: multiplexes every store instance (endpoint) over one
// channel and matches replies to requests.
function Connection(opts) {
  this.options = opts;
  this.endpoints = new Map();
  this.pending = new Pending();
  // Batches being delivered, oldest first: [bytes, words, next index,
  // pool, end of the words, length of the bytes].
  this.inbox = [];
  this.yielding = false; // yieldSoon was called: end the batch being delivered after this frame
  this.delivering = 0; // deliverInbox calls under way
  this.poolBytes = []; // Buffers over the views of the shared pool's regions
  this.nextRequest = 1;
  this.nextEndpoint = 1;
  this.channel = null;
  this.state = 'closed';
  this.failure = null;
  this.worker = isWorkerProcess();
  this.refd = null;
  this.wasOpen = false;
  this.backoff = 0;
  this.reconnectTimer = null;
  this.attempt = null; // the attach through the master in flight: { nonce, answer, abandon }
  this.attempts = 0;
  this.told = new Set(); // endpoints that heard of the current failure
  this.bridged = null; // the broker is joined to other machines (settle); null: not known yet
  // Publishes gathered for one call into the engine (publish): payload i
  // is batchBytes[batchEnds[i - 1], batchEnds[i]).
  this.batchEndpoint = 0;
  this.batchTopic = '';
  this.batchFlags = 0;
  this.batchBytes = Buffer.allocUnsafe(BATCH_BYTES);
  this.batchEnds = new Uint32Array(BATCH_FRAMES);
  this.batchCount = 0;
  this.batchUsed = 0;
  this.batchScheduled = false;
  // Other requests gathered for one call into the engine (send): frame i
  // is described by sendWords[i * SEND_WORDS ...], its fields (names as
  // UTF-8, then the payload) follow frame i - 1's in sendBytes. Only one of
  // the two batches holds frames at any time, so the order of everything
  // this process sends stays the order of the calls.
  this.sendWords = new Uint32Array(BATCH_FRAMES * SEND_WORDS);
  this.sendBytes = Buffer.allocUnsafe(BATCH_BYTES);
  this.sendCount = 0;
  this.sendUsed = 0;
  var self = this;
  this.flushBatchLater = function () {
    self.batchScheduled = false;
    try {
      self.flushBatch();
    } catch (err) {
      // Out of memory: nothing the publishers can be told any more.
      log.error('publishes lost: %s', err.message);
    }
  };
  this.deliverRestLater = function () { self.deliverInbox(); };
  if (this.worker) this.closeLateAnswers();
  this.open();
}

Connection.prototype.open = function () {
  var self = this;
  this.poolBytes = []; // a new channel: the old one's pool views may go
  // The failure, if any, stays until a channel is attached: calls made
  // while a retry waits for the master fail at once with it (see send).
  this.state = 'attaching';
  // maxFrameSize sets the limit of a broker this process runs. A worker's
  // channel states the largest limit there is in its hello and takes the
  // master's broker's from the broker's hello (the broker sends nothing over
  // what a process stated), so a worker's own maxFrameSize is ignored: it
  // could only make the channel refuse what the master routes.
  var limit = this.worker ? options.MAX_FRAME_SIZE : this.options.maxFrameSize;
  var channel = native.channelCreate(limit,
    // The bytes are the addon's for the length of this call only: its
    // inbox (a Buffer it writes the next batch into; count frames, len
    // bytes), or its input buffer lent as an ArrayBuffer it detaches
    // afterwards. Everything kept is copied out by the decoders, nothing
    // holds on to these bytes. Nor to the shared pool's: a payload read
    // there may be written over once read.
    function onInput(bytes, words, pool, count, len) {
      if (bytes instanceof ArrayBuffer) self.deliver(Buffer.from(bytes), words, pool, words.length, bytes.byteLength);
      else self.deliver(bytes, words, pool, count * DESCRIPTOR_WORDS, len);
    },
    function onClose(reason) { if (self.channel === channel) self.lost(reason); });
  this.channel = channel;
  this.updateRef();
  if (this.worker) {
    this.attachThroughMaster(channel);
  } else {
    try {
      master.startBroker(readOptions(null, master.setupOptions() || this.options));
      native.channelAttach(channel, native.brokerPair());
      this.opened();
      log.channel('attached to the broker in this process');
    } catch (err) {
      this.lost(err.message);
    }
  }
};

// Every answer of the master reaches this listener, also those to attaches
// this process gave up on (the master's loop was busy past attachTimeout).
// Each carries one end of a pair whose other end the broker counts as a
// worker, holding a region of its pool, until it is closed: an answer that
// is not the one awaited now is closed at once, never left to node's
// wrapper (which would keep it open for the life of the process).
Connection.prototype.closeLateAnswers = function () {
  var self = this;
  process.on('internalMessage', function (message, handle) {
    if (!message || message.cmd !== master.CMD_CHANNEL || typeof message.nonce !== 'string' ||
        message.nonce.indexOf(NONCE_PREFIX) !== 0) return;
    var attempt = self.attempt;
    if (attempt && attempt.nonce === message.nonce) {
      attempt.answer(message, handle);
      return;
    }
    if (handle) handle.destroy();
    log.channel('closed a late answer of the master (%s)', handle ? 'a channel' : 'no channel');
  });
};

Connection.prototype.attachThroughMaster = function (channel) {
  var self = this;
  var attempt = { nonce: NONCE_PREFIX + ++this.attempts, answer: onAnswer, abandon: finish };
  var timer = null;
  function finish() {
    clearTimeout(timer);
    if (self.attempt === attempt) self.attempt = null;
    process.removeListener('disconnect', onDisconnect);
  }
  function onAnswer(message, handle) {
    finish();
    if (self.channel !== channel) {
      if (handle) handle.destroy();
      return;
    }
    if (message.error || !handle || !handle._handle || typeof handle._handle.fd !== 'number') {
      if (handle) handle.destroy();
      self.lost(message.error || 'the master sent no channel');
      return;
    }
    // node wrapped the received socket in a net.Socket that would start
    // reading on the next turn of the loop: take a duplicate of the
    // descriptor and destroy the wrapper now, before it can read anything.
    var fd;
    try {
      fd = native.takeFd(handle._handle.fd);
    } catch (err) {
      handle.destroy();
      self.lost(err.message);
      return;
    }
    handle.destroy();
    try {
      native.channelAttach(channel, fd);
    } catch (err) {
      self.lost(err.message);
      return;
    }
    self.opened();
    log.channel('worker %d attached to the master', cluster.worker && cluster.worker.id);
  }
  function onDisconnect() {
    finish();
    self.lost('the IPC channel to the master closed before it answered');
  }
  timer = setTimeout(function () {
    finish();
    // The same words for every attempt: a retry that fails so is told
    // only to stores that have not heard it yet (see lost).
    self.lost('the cluster master did not answer within ' + self.options.attachTimeout +
      ' ms. Require socket.io-cluster-store in the master process (or call ' +
      "require('socket.io-cluster-store').setup() there; with socket.io 4, setupPrimary() " +
      "from 'socket.io-cluster-store/adapter') before forking the workers. If it " +
      "is required, the master's event loop was busy: this worker keeps asking, and its " +
      "stores emit 'reconnect' once the master answers (raise attachTimeout to wait longer)");
  }, this.options.attachTimeout);
  this.attempt = attempt;
  process.on('disconnect', onDisconnect);
  try {
    process.send({ cmd: master.CMD_ATTACH, nonce: attempt.nonce, protocol: master.IPC_VERSION });
  } catch (err) {
    finish();
    this.lost('could not ask the master for a channel: ' + err.message);
  }
};

// After a failure (a channel that broke, or a first attach that failed),
// the stores subscribe again and emit 'reconnect' once that is live.
Connection.prototype.opened = function () {
  this.state = 'open';
  var again = this.failure !== null;
  this.failure = null;
  this.told.clear();
  this.wasOpen = true;
  this.backoff = 0;
  this.learnBridged();
  if (again) {
    this.endpoints.forEach(function (endpoint) {
      endpoint.onReconnect();
      endpoint.resubscribe();
    });
  }
};

// The channel is gone, or never came: every pending request fails, every
// store hears of it. It is opened again with backoff (the broker may have
// cut this process off for not reading, or the master's loop was busy when
// the worker asked), in a worker as long as its master may answer, in a
// plain process if it had worked (there a failure is the process's own).
// Messages published in between are lost to this process; the data in the
// broker is not. A retry that fails as the last attempt did is reported
// only to stores made since: one 'error' per store and outage, whatever
// the number of attempts.
Connection.prototype.lost = function (reason) {
  if (this.state === 'closed' && this.failure) return;
  // What came before the failure is delivered before it is told.
  if (this.inbox.length > 0 && this.delivering === 0) this.deliverInbox();
  reason = String(reason).replace(/^(socket\.io-cluster-store: )+/, '');
  var channel = this.channel;
  var repeated = this.failure === reason;
  this.batchCount = 0; // publishes gathered for the broken channel are lost with it
  this.batchUsed = 0;
  this.sendCount = 0; // so are other requests (pending: they fail below)
  this.sendUsed = 0;
  this.state = 'closed';
  this.failure = reason;
  if (this.attempt) this.attempt.abandon(); // its answer, if any, is closed when it comes
  if (channel) native.channelClose(channel);
  var pending = this.pending.drain();
  this.updateRef();
  var error = this.error();
  pending.forEach(function (callback) { callback(error); });
  if (repeated) {
    log.channel('attach failed again, for the same reason');
  } else {
    log.error('channel closed: %s', reason);
    this.told.clear();
  }
  var told = this.told;
  this.endpoints.forEach(function (endpoint, id) {
    if (told.has(id)) return;
    told.add(id);
    endpoint.onChannelError(error);
  });
  if (this.worker || this.wasOpen) this.scheduleReconnect();
};

Connection.prototype.scheduleReconnect = function () {
  var self = this;
  if (this.reconnectTimer || this.endpoints.size === 0) return;
  if (this.worker && !process.connected) return;
  // Capped: a worker whose master never loaded the module asks at most
  // once per attachTimeout + RETRY_MAX_MS, for as long as it has stores.
  this.backoff = Math.min(this.backoff ? this.backoff * 2 : RETRY_FIRST_MS, RETRY_MAX_MS);
  log.channel('reconnecting in %d ms', this.backoff);
  this.reconnectTimer = setTimeout(function () {
    self.reconnectTimer = null;
    if (self.state === 'closed' && self.endpoints.size > 0) self.reopen();
  }, this.backoff);
  // A worker's IPC channel keeps it alive; a plain process must stay up to
  // reconnect (its stores are still open).
  if (this.worker) this.reconnectTimer.unref();
};

Connection.prototype.error = function () {
  var err = new Error('socket.io-cluster-store: ' + (this.failure || 'the channel is closed'));
  err.code = 'ERR_CLUSTER_STORE_CLOSED';
  return err;
};

Connection.prototype.updateRef = function () {
  // A cluster worker lives as long as its servers and IPC channel do; the
  // channel must not hold it up when cluster asks it to exit. Elsewhere an
  // open store keeps the process alive, like a Redis connection does.
  var ref = this.pending.size > 0 || (!this.worker && this.endpoints.size > 0);
  if (ref === this.refd || !this.channel || this.state === 'closed') return;
  this.refd = ref;
  native.channelRef(this.channel, ref);
};

Connection.prototype.addEndpoint = function (endpoint) {
  var id = this.nextEndpoint++;
  this.endpoints.set(id, endpoint);
  if (this.state === 'closed' && this.failure) this.reopen();
  this.updateRef();
  return id;
};

Connection.prototype.removeEndpoint = function (id) {
  this.endpoints.delete(id);
  this.told.delete(id);
  this.updateRef();
};

// After a failure, a new store (or an explicit reconnect) opens a new
// channel, as long as the master may still answer.
Connection.prototype.reopen = function () {
  if (this.worker && !process.connected) return false;
  clearTimeout(this.reconnectTimer);
  this.reconnectTimer = null;
  this.refd = null;
  this.open();
  return true;
};

// Sends one request to the broker, named fields:
//   type      protocol.TYPE
//   endpoint  the store instance it concerns (addEndpoint)
//   topic     a pub/sub topic (subscribe, unsubscribe, publish), or
//   client    a client id, whose data a KV_* request reads or writes
//   key       one of that client's keys
//   payload   a Buffer: the message or the value
//   flags     protocol.FLAG bits (none: 0)
//   now       true: written before this returns (flushed); else gathered
//             with the other requests of this turn of the JavaScript stack
//             and handed to the engine in one call (see gather)
//   callback  (err, status, payload) once the broker replied; none: no
//             reply is asked for
// Give every field, in this order, even those left undefined: every
// request then has one shape, and the publish path reads its fields at
// full speed whatever else the process sends. Nothing keeps the request
// object once this returns.
Connection.prototype.send = function (request) {
  var callback = request.callback;
  // Only a first attach queues calls behind its hello; while a retry waits
  // for the master they fail at once, rather than each waiting out an
  // attempt that may well fail the same way.
  if (this.state === 'closed' || this.failure) {
    var error = this.error();
    if (callback) process.nextTick(callback, error);
    return;
  }
  var id = 0;
  if (callback) {
    id = this.newRequestId();
  }
  if (request.now !== true && this.gather(request.type, request.endpoint,
      request.topic !== undefined ? request.topic : request.client, request.key, request.payload,
      request.flags || 0, id)) {
    if (callback) {
      this.awaitReply(id, callback);
    }
    return;
  }
  try {
    this.write(request, id);
  } catch (err) {
    // The engine found the channel broken before the loop could tell us:
    // the same as hearing it from the loop. Other errors (a frame over the
    // limit: nothing was queued) go to the caller.
    if (err.code !== 'ERR_CLUSTER_STORE_CLOSED') throw err;
    this.lost(err.message);
    if (callback) process.nextTick(callback, this.error());
    return;
  }
  if (callback) {
    this.awaitReply(id, callback);
  }
};

// send() for a PUBLISH that asks for no reply, the hot path of every
// broadcast (now: as send's). Consecutive publishes from one endpoint to one topic are
// gathered and handed to the engine in one call (channelPublishMany) at
// the end of this turn of the JavaScript stack (a microtask), or before
// anything else is sent, so the order of everything this process sends
// stays the order of the calls. Large payloads go one by one (the engine
// may put them in the shared pool).
Connection.prototype.publish = function (endpoint, topic, payload, flags, now) {
  if (this.state === 'closed' || this.failure) return;
  var len = payload.length;
  if (now || len > BATCH_PAYLOAD_MAX || topic.length > BATCH_TOPIC_MAX) {
    this.flushBatch();
    this.sendPublish(endpoint, topic, payload, flags, now);
    return;
  }
  if (this.sendCount > 0) this.flushSends(); // the requests gathered before this go first
  if (this.batchCount > 0 && (endpoint !== this.batchEndpoint || topic !== this.batchTopic ||
      flags !== this.batchFlags || this.batchUsed + len > BATCH_BYTES || this.batchCount === BATCH_FRAMES)) {
    this.flushBatch();
  }
  if (this.batchCount === 0) {
    this.batchEndpoint = endpoint;
    this.batchTopic = topic;
    this.batchFlags = flags;
    if (!this.batchScheduled) {
      this.batchScheduled = true;
      queueMicrotask(this.flushBatchLater);
    }
  }
  this.batchBytes.set(payload, this.batchUsed);
  this.batchUsed += len;
  this.batchEnds[this.batchCount++] = this.batchUsed;
};

Connection.prototype.sendPublish = function (endpoint, topic, payload, flags, now) {
  try {
    native.channelSend(this.channel, TYPE.PUBLISH, endpoint, 0, topic, undefined, payload, flags,
      now === true);
  } catch (err) {
    // As in send: a broken channel is a failure of the channel, anything
    // else (a frame over the limit, nothing queued) the caller's.
    if (err.code !== 'ERR_CLUSTER_STORE_CLOSED') throw err;
    this.lost(err.message);
  }
};

// send() for a request on a client's data (flags 0, not now), its fields
// as arguments: the path of every get and set, with no request object.
Connection.prototype.ask = function (type, endpoint, client, key, payload, callback) {
  if (this.state === 'closed' || this.failure || callback === null) {
    this.send({ type: type, endpoint: endpoint, topic: undefined, client: client, key: key,
      payload: payload, flags: 0, now: false, callback: callback });
    return;
  }
  var id = this.newRequestId();
  if (!this.gather(type, endpoint, client, key, payload, 0, id)) {
    // One that goes alone (a large value): as send sends it.
    this.send({ type: type, endpoint: endpoint, topic: undefined, client: client, key: key,
      payload: payload, flags: 0, now: false, callback: callback });
    return;
  }
  this.awaitReply(id, callback);
};

// Adds a request to the batch handed to the engine at the end of this
// turn of the JavaScript stack (a microtask), or before anything else is
// sent; false (nothing done) for one that goes alone: a large payload, a
// long name, or arguments the engine must refuse at once (channelSend
// throws for them, to the caller). a: the topic or client id, b: the key.
Connection.prototype.gather = function (type, endpoint, a, b, payload, flags, id) {
  var aChars = 0;
  var bChars = 0;
  var payloadLength = 0;
  if (a !== undefined) {
    if (typeof a !== 'string' || a.length > BATCH_TOPIC_MAX) return false;
    aChars = a.length;
  }
  if (b !== undefined) {
    if (typeof b !== 'string' || b.length > BATCH_TOPIC_MAX) return false;
    bChars = b.length;
  }
  if (payload !== undefined) {
    if (!(payload instanceof Uint8Array) || payload.length > BATCH_PAYLOAD_MAX) return false;
    payloadLength = payload.length;
  }
  if (typeof type !== 'number' || typeof endpoint !== 'number' || typeof flags !== 'number') return false;
  if (this.batchCount > 0) this.flushBatch(); // the publishes gathered before this go first
  if (this.sendCount === BATCH_FRAMES || this.sendUsed + 3 * (aChars + bChars) + payloadLength > BATCH_BYTES) {
    this.flushSends();
  }
  if (this.state === 'closed') return false; // a flush found the channel broken: send says so
  if (this.sendCount === 0 && !this.batchScheduled) {
    this.batchScheduled = true;
    queueMicrotask(this.flushBatchLater);
  }
  var bytes = this.sendBytes;
  var at = this.sendUsed;
  var aLength = aChars === 0 ? 0 : writeName(bytes, at, a);
  var bLength = bChars === 0 ? 0 : writeName(bytes, at + aLength, b);
  at += aLength + bLength;
  if (payloadLength > 0) bytes.set(payload, at);
  this.sendUsed = at + payloadLength;
  var w = this.sendWords;
  var i = this.sendCount++ * SEND_WORDS;
  w[i + S_TYPE] = type;
  w[i + S_ENDPOINT] = endpoint;
  w[i + S_REQUEST_ID] = id;
  w[i + S_FLAGS] = flags;
  w[i + S_A_LENGTH] = aLength;
  w[i + S_B_LENGTH] = bLength;
  w[i + S_PAYLOAD_LENGTH] = payloadLength;
  return true;
};

// Writes s as UTF-8 at bytes[at] (room for 3 bytes a character); returns
// its length. Names are short and mostly ASCII: copied by hand, that costs
// less than a call into node's encoder.
function writeName(bytes, at, s) {
  var len = s.length;
  if (len <= 64) {
    for (var i = 0; i < len; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[at + i] = c;
    }
    if (i === len) return len;
  }
  return bytes.utf8Write(s, at);
}

// Hands the gathered requests to the engine. Every frame fits the smallest
// maxFrameSize there is (see BATCH_PAYLOAD_MAX), so only a broken channel
// (then every pending request fails) or a lack of memory can refuse one;
// then the requests that were not queued fail with that error.
Connection.prototype.flushSends = function () {
  var count = this.sendCount;
  if (count === 0) return;
  this.sendCount = 0;
  this.sendUsed = 0;
  if (this.state === 'closed' || this.failure) return;
  try {
    native.channelSendMany(this.channel, this.sendWords, this.sendBytes, count);
  } catch (err) {
    if (err.code === 'ERR_CLUSTER_STORE_CLOSED') return this.lost(err.message);
    var w = this.sendWords;
    for (var i = typeof err.queued === 'number' ? err.queued : 0; i < count; i++) {
      var id = w[i * SEND_WORDS + S_REQUEST_ID];
      var callback = id ? this.pending.take(id) : undefined;
      if (callback !== undefined) process.nextTick(callback, err);
    }
    if (this.pending.size === 0) this.updateRef();
  }
};

// Hands the gathered publishes (or other requests) to the engine. Every
// frame of a batch fits the smallest maxFrameSize there is (see
// BATCH_PAYLOAD_MAX), so only a broken channel (or no memory) can refuse one.
Connection.prototype.flushBatch = function () {
  if (this.sendCount > 0) this.flushSends();
  var count = this.batchCount;
  if (count === 0) return;
  this.batchCount = 0;
  this.batchUsed = 0;
  if (this.state === 'closed' || this.failure) return;
  try {
    native.channelPublishMany(this.channel, this.batchEndpoint, this.batchTopic, this.batchFlags,
      this.batchBytes, this.batchEnds, count);
  } catch (err) {
    if (err.code !== 'ERR_CLUSTER_STORE_CLOSED') throw err;
    this.lost(err.message);
  }
};

// The id of a new request that asks for a reply: never 0 (no reply), and
// wrapping before 0xffffffff.
Connection.prototype.newRequestId = function () {
  var id = this.nextRequest;
  this.nextRequest = id >= 0xfffffffe ? 1 : id + 1;
  return id;
};

// callback(err, status, payload) when the reply to request id comes (or
// the channel breaks); the first one waiting keeps the process alive.
Connection.prototype.awaitReply = function (id, callback) {
  this.pending.set(id, callback);
  if (this.pending.size === 1) this.updateRef();
};

// One frame into the channel's output, with request id (0: no reply).
Connection.prototype.write = function (request, id) {
  if (this.batchCount > 0 || this.sendCount > 0) this.flushBatch();
  native.channelSend(this.channel, request.type, request.endpoint, id,
    request.topic !== undefined ? request.topic : request.client, request.key, request.payload,
    request.flags || 0, request.now === true);
};

// Hands a descriptor and bytes to the subscriber of topic (another
// process's endpoint): a duplicate of fd goes through the broker, the
// caller keeps fd. callback(err, status, payload) once the broker passed it
// on (STATUS.OK) or closed it (no subscriber: STATUS.MISSING). A failure
// to send at all throws.
Connection.prototype.handoff = function (endpoint, topic, payload, fd, callback) {
  if (this.state === 'closed' || this.failure) throw this.error();
  var id = this.newRequestId();
  try {
    this.flushBatch();
    native.channelHandoff(this.channel, endpoint, id, topic, payload, fd);
  } catch (err) {
    if (err.code === 'ERR_CLUSTER_STORE_CLOSED') this.lost(err.message);
    throw err;
  }
  this.awaitReply(id, callback);
};

// Blocks until the broker has taken in everything every process had sent
// before this call, then delivers what that brought to this process. Used
// where socket.io must know the cluster's state before it answers a request.
Connection.prototype.catchUp = function (endpoint) {
  if (this.state !== 'open') return false;
  var id = this.newRequestId();
  try {
    this.write({ type: TYPE.SYNC, endpoint: endpoint, topic: undefined, client: undefined,
      key: undefined, payload: undefined, flags: FLAG_BARRIER, now: true, callback: null }, id);
    var reply = native.channelWait(this.channel, id, this.barrierTimeout());
  } catch (err) {
    log.error('catch-up failed: %s', err.message);
    return false;
  }
  // Not OK: the local barrier held, the one across machines did not
  // (Redis broke or stopped answering); what came is delivered all the same.
  var held = reply[0] === STATUS.OK;
  if (!held) log.error('catch-up across machines failed: %s', replyText(reply));
  var batch = native.channelTake(this.channel);
  if (batch) this.deliver(batch[0], batch[1], batch[2], batch[1].length, batch[0].length);
  return held;
};

// How long a barrier may take: with an uplink, the broker may hold one
// while Redis is slow (up to UPLINK_BARRIER_MS, then it answers that the
// barrier did not hold), on top of the broker's own time.
Connection.prototype.barrierTimeout = function () {
  return this.bridged === false ? this.options.syncTimeout :
    this.options.syncTimeout + UPLINK_BARRIER_MS;
};

function replyText(reply) {
  return reply[1] && reply[1].length ? reply[1].toString('utf8') : 'status ' + reply[0];
}

// Whether the broker has an uplink to other machines: then the state
// changes that precede an answer to a client are settled (see settle).
// Until the broker has said (bridged null), they are settled too.
Connection.prototype.learnBridged = function () {
  var self = this;
  this.send({ type: TYPE.STATS, endpoint: 0, topic: undefined, client: undefined, key: undefined,
    payload: undefined, flags: 0, now: false,
    callback: function (err, status, payload) {
      if (err || !payload || payload.length < (UPLINK_STATE_INDEX + 1) * 8) return;
      self.bridged = payload.readUInt32LE(UPLINK_STATE_INDEX * 8) !== 0;
    } });
};

// With an uplink: blocks until Redis has taken everything the broker sent
// it before this call, so what this process published is visible on other
// machines before it answers a client that may come back through one of
// them. Without one it costs nothing. What arrives meanwhile is delivered
// from the loop, as usual (not from inside this call).
Connection.prototype.settle = function (endpoint) {
  if (this.state !== 'open' || this.bridged === false) return false;
  var id = this.newRequestId();
  try {
    this.write({ type: TYPE.SYNC, endpoint: endpoint, topic: undefined, client: undefined,
      key: undefined, payload: undefined, flags: FLAG_SETTLE, now: true, callback: null }, id);
    var reply = native.channelWait(this.channel, id, this.barrierTimeout());
  } catch (err) {
    log.error('settle failed: %s', err.message);
    return false;
  }
  if (reply[0] === STATUS.OK) return true;
  log.error('settle failed: %s', replyText(reply));
  return false;
};

// Delivers a batch of frames, in order. A consumer may wait on the broker
// from inside its callback (catchUp): the frames that brings are queued
// behind the rest of the current batch, and the nested call delivers the
// rest first, then them, so nothing overtakes anything.
Connection.prototype.deliver = function (bytes, words, pool, end, length) {
  this.inbox.push([bytes, words, 0, pool, end, length]);
  this.deliverInbox();
};

Connection.prototype.deliverInbox = function () {
  var firstError = null;
  this.delivering++;
  while (this.inbox.length) {
    var batch = this.inbox[0];
    var i = batch[2];
    if (i >= batch[4]) {
      this.inbox.shift();
      continue;
    }
    batch[2] = i + DESCRIPTOR_WORDS;
    this.yielding = false;
    try {
      this.deliverOne(batch[0], batch[1], i, batch[3]);
    } catch (err) {
      // One consumer's exception must not cost the rest of the batch.
      if (!firstError) firstError = err;
    }
    if (this.yielding) {
      this.yielding = false;
      if (this.setAsideRest()) break;
    }
  }
  this.delivering--;
  if (this.pending.size === 0) this.updateRef();
  if (firstError) throw firstError;
};

// A consumer whose caller awaits what the last frame brought (the answer
// to a request) asks that the rest of the batch wait: a batch of another
// server's broadcasts can take the busy process tens of milliseconds, and
// the caller's promise callbacks run only once this call returns. The rest
// is kept, copied, at the head of the inbox, and delivered before any
// newer input (deliver goes through the inbox in order) or, at the latest,
// in the check phase of this turn of the loop. Not for a batch with shared
// messages left (their bytes in the pool are given back once this call
// returns) or nested deliveries (catchUp): those go on as before.
Connection.prototype.yieldSoon = function () {
  this.yielding = true;
};

var SET_ASIDE_MAX = 1024 * 1024;

Connection.prototype.setAsideRest = function () {
  if (this.inbox.length !== 1) return false;
  var batch = this.inbox[0];
  var words = batch[1];
  var end = batch[4];
  if (batch[2] >= end || batch[5] > SET_ASIDE_MAX) return false;
  for (var i = batch[2]; i < end; i += DESCRIPTOR_WORDS) {
    if (words[i + W_TYPE] & WORD_SHARED) return false;
  }
  // The bytes (and the inbox's words) are the addon's for the length of
  // this call only.
  batch[0] = Buffer.from(batch[0].subarray(0, batch[5]));
  batch[1] = words.slice(0, end);
  setImmediate(this.deliverRestLater);
  return true;
};

Connection.prototype.deliverOne = function (bytes, words, i, pool) {
  var type = words[i + W_TYPE] & 0xff;
  var start = words[i + W_A_START];
  var aEnd = start + words[i + W_A_LENGTH];
  // The payload is in[payloadStart, payloadEnd): in the batch, or in a
  // region of the shared pool (pool[r] views region r; a Buffer over each
  // is kept).
  var within = bytes;
  var payloadStart;
  if (words[i + W_TYPE] & WORD_SHARED) {
    var r = words[i + W_REGION];
    within = this.poolBytes[r];
    if (within === undefined || within.buffer !== pool[r]) within = this.poolBytes[r] = Buffer.from(pool[r]);
    payloadStart = words[i + W_REGION_OFFSET];
  } else {
    payloadStart = aEnd + words[i + W_B_LENGTH];
  }
  var payloadEnd = payloadStart + words[i + W_PAYLOAD_LENGTH];
  if (type === TYPE.MESSAGE) {
    // Field a is the topic; the endpoint is the subscriber. Field b, when
    // there is one, is a retained message's offset (text; see retained()).
    // An endpoint with onMessageAt reads the payload in place.
    var endpoint = this.endpoints.get(words[i + W_ENDPOINT]);
    var bLength = words[i + W_B_LENGTH];
    if (endpoint) {
      var topic = topicAt(bytes, start, aEnd);
      var offset = bLength > 0 ? bytes.toString('latin1', aEnd, aEnd + bLength) : undefined;
      if (endpoint.onMessageAt !== undefined) endpoint.onMessageAt(topic, within, payloadStart, payloadEnd, offset);
      else endpoint.onMessage(topic, within.subarray(payloadStart, payloadEnd), offset);
    }
    return;
  }
  // Most replies carry nothing (a set's, a delete's): one empty Buffer
  // stands for all of them.
  var payload = payloadEnd === payloadStart ? EMPTY : within.subarray(payloadStart, payloadEnd);
  if (type === TYPE.JOINED || type === TYPE.LEFT) {
    // A member of a topic this endpoint is a member of came or went.
    var member = this.endpoints.get(words[i + W_ENDPOINT]);
    if (member && member.onMember) member.onMember(type === TYPE.JOINED, bytes.toString('utf8', start, aEnd), payload);
  } else if (type === TYPE.HANDOFF) {
    // The frame names its descriptor (plus one): from here it is ours to
    // adopt or close.
    var fd = words[i + W_REQUEST_ID] - 1;
    var receiver = this.endpoints.get(words[i + W_ENDPOINT]);
    if (!receiver || typeof receiver.onHandoff !== 'function') {
      native.closeFd(fd);
      return;
    }
    receiver.onHandoff(bytes.toString('utf8', start, aEnd), Buffer.from(payload), fd);
  } else if (type === TYPE.REPLY) {
    var callback = this.pending.take(words[i + W_REQUEST_ID]);
    if (callback !== undefined) {
      callback(null, (words[i + W_TYPE] >>> 8) & 0xff, payload);
    }
  }
};

// The topic of a delivered message, as a string: the one made last time
// for the same bytes when there is one. A process hears few topics, and
// making the string again for every message cost more than comparing.
var TOPIC_CACHE_SIZE = 8;
var topicBytes = [];
var topicStrings = [];
var topicNext = 0;

function topicAt(bytes, start, end) {
  var len = end - start;
  for (var k = 0; k < topicBytes.length; k++) {
    var known = topicBytes[k];
    if (known.length !== len) continue;
    // Topics share long prefixes: compare from the end.
    var i = len - 1;
    while (i >= 0 && known[i] === bytes[start + i]) i--;
    if (i < 0) return topicStrings[k];
  }
  var topic = bytes.toString('utf8', start, end);
  topicBytes[topicNext] = Uint8Array.prototype.slice.call(bytes, start, end);
  topicStrings[topicNext] = topic;
  topicNext = (topicNext + 1) % TOPIC_CACHE_SIZE;
  return topic;
}

Connection.prototype.flush = function () {
  if (this.state !== 'open') return;
  try {
    this.flushBatch();
    native.channelFlush(this.channel, this.options.syncTimeout);
  } catch (err) {
    log.error('flush failed: %s', err.message);
  }
};

Connection.prototype.maxFrameSize = function () {
  return this.channel && this.state !== 'closed' ?
    native.channelMaxFrameSize(this.channel) : this.options.maxFrameSize;
};

var shared = null;

// The process's connection, made with these options the first time.
function forProcess(opts) {
  if (!shared) shared = new Connection(readOptions(opts, master.setupOptions() || options.DEFAULTS));
  return shared;
}

module.exports = {
  forProcess: forProcess
};
