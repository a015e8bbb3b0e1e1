'use strict';
// The process's side of the engine: one channel to the master's broker per
// process (per thread, when loaded in worker threads), shared by every store
// instance in it, and the master's side of handing channels out.
//
// A cluster worker asks the master for a channel over node's IPC channel,
// with a message whose `cmd` starts with NODE_: node routes those to the
// internal 'internalMessage' event, so the application's own 'message'
// handlers in the master and the workers never see this traffic. The master
// answers with one end of a fresh socketpair whose other end its broker
// thread owns. Everywhere else (a plain process, the master itself, a
// worker thread) the broker runs in-process and the store connects to it
// directly; the engine and the protocol are the same.

var cluster = require('cluster');
var net = require('net');
var threads = require('worker_threads');
var debug = require('debug');
var native = require('./native');

var log = {
  master: debug('socket.io-cluster-store:master'),
  channel: debug('socket.io-cluster-store:channel'),
  error: debug('socket.io-cluster-store:error')
};

var CMD_ATTACH = 'NODE_SOCKET_IO_CLUSTER_STORE_ATTACH';
var CMD_CHANNEL = 'NODE_SOCKET_IO_CLUSTER_STORE_CHANNEL';
var PROTOCOL = 1;

// Mirrors src/frame.h.
var TYPE = {
  SUBSCRIBE: 2, UNSUBSCRIBE: 3, PUBLISH: 4, MESSAGE: 5, KV_GET: 6, KV_SET: 7, KV_HAS: 8,
  KV_DEL: 9, KV_CLEAR: 10, KV_EXPIRE: 11, KV_PERSIST: 12, CLOSE: 13, STATS: 14, SYNC: 15,
  REPLY: 16
};
var STATUS = { OK: 0, MISSING: 1, NO_MEMORY: 2, BAD_REQUEST: 3 };
var FLAG_BARRIER = 1;
var DESCRIPTOR_WORDS = 7;
var WORD_SHARED = 0x10000; // the payload is in the shared pool: region in word 2, offset in word 5
var STAT_NAMES = [
  'workers', 'workersCutOff', 'framesIn', 'bytesIn', 'messagesPublished', 'messagesDelivered',
  'bytesDelivered', 'channels', 'subscriptions', 'clients', 'keys', 'dataBytes', 'queuedBytes',
  'maxQueuedBytes', 'queueLimit', 'maxFrameSize', 'sharedDeliveries'
];

var DEFAULTS = {
  maxFrameSize: 32 * 1024 * 1024,
  queueLimit: 64 * 1024 * 1024,
  attachTimeout: 5000,
  syncTimeout: 2000,
  sharedMemory: true
};

var MIN_FRAME_SIZE = 4096;
var MAX_FRAME_SIZE = 0x7ffffff0;

function isWorkerProcess() {
  return cluster.isWorker && threads.isMainThread && typeof process.send === 'function';
}

function isMasterProcess() {
  return (cluster.isPrimary !== undefined ? cluster.isPrimary : cluster.isMaster) &&
    threads.isMainThread;
}

function optionError(message) {
  var err = new TypeError('socket.io-cluster-store: ' + message);
  err.code = 'ERR_CLUSTER_STORE_OPTION';
  return err;
}

// Validates the options both setup() and the store take; unknown keys are
// left alone (socket.io passes its own through the store constructor).
function readOptions(options, base) {
  var out = Object.assign({}, base || DEFAULTS);
  if (options === undefined || options === null) return out;
  if (typeof options !== 'object') throw optionError('options must be an object');
  function integer(name, min, max) {
    if (options[name] === undefined) return;
    var v = options[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw optionError(name + ' must be an integer from ' + min + ' to ' + max + ', got ' +
        String(v));
    }
    out[name] = v;
  }
  integer('maxFrameSize', MIN_FRAME_SIZE, MAX_FRAME_SIZE);
  integer('queueLimit', MIN_FRAME_SIZE, Number.MAX_SAFE_INTEGER);
  integer('attachTimeout', 1, 600000);
  integer('syncTimeout', 1, 600000);
  if (options.sharedMemory !== undefined) {
    if (typeof options.sharedMemory !== 'boolean') {
      throw optionError('sharedMemory must be true or false, got ' + String(options.sharedMemory));
    }
    out.sharedMemory = options.sharedMemory;
  }
  if (out.queueLimit < out.maxFrameSize) {
    throw optionError('queueLimit (' + out.queueLimit + ') must be at least maxFrameSize (' +
      out.maxFrameSize + '), or one large message would cut a worker off');
  }
  return out;
}

function statsObject(values) {
  if (!values) return null;
  var out = {};
  for (var i = 0; i < STAT_NAMES.length; i++) out[STAT_NAMES[i]] = values[i];
  return out;
}

// ---- master -------------------------------------------------------------

var master = {
  options: null,
  started: false,
  listening: false,
  attached: 0
};

function startBroker(options) {
  if (master.started) {
    var running = master.running;
    if (options.maxFrameSize !== running.maxFrameSize || options.queueLimit !== running.queueLimit ||
        options.sharedMemory !== running.sharedMemory) {
      throw optionError('the broker already runs with maxFrameSize ' + running.maxFrameSize +
        ', queueLimit ' + running.queueLimit + ' and sharedMemory ' + running.sharedMemory +
        '; pass options to setup() in the same turn as requiring the module, before any store ' +
        'or worker uses it');
    }
    return;
  }
  native.brokerStart(options.maxFrameSize, options.queueLimit, options.sharedMemory);
  master.started = true;
  master.running = { maxFrameSize: options.maxFrameSize, queueLimit: options.queueLimit,
    sharedMemory: options.sharedMemory };
  log.master('broker started (max frame %d bytes, queue limit %d bytes)',
    options.maxFrameSize, options.queueLimit);
}

function answerWorker(worker, message) {
  var reply = { cmd: CMD_CHANNEL, nonce: message.nonce, protocol: PROTOCOL };
  if (message.protocol !== PROTOCOL) {
    reply.error = 'the master runs socket.io-cluster-store protocol ' + PROTOCOL +
      ' and this worker protocol ' + message.protocol + ': use one version of the package';
    worker.send(reply, function () {});
    return;
  }
  var fd;
  var socket;
  try {
    startBroker(master.options);
    fd = native.brokerPair();
    // Only a wrapper to pass the descriptor along: it must never read, so
    // not one byte meant for the worker is taken here.
    socket = new net.Socket({ fd: fd, readable: false, writable: false });
  } catch (err) {
    log.error('cannot give worker %d a channel: %s', worker.id, err.message);
    reply.error = 'the master could not open a channel: ' + err.message;
    worker.send(reply, function () {});
    return;
  }
  // node closes the master's copy of the descriptor once the worker has
  // acknowledged it. A worker killed at the wrong moment can leave node
  // holding it for good (the broker would keep a connection to nobody), so
  // it is also closed when the worker exits; closing twice is a no-op.
  var handle = socket._handle;
  var handleClosed = false;
  var closeHandle = handle.close;
  handle.close = function () {
    if (handleClosed) return undefined;
    handleClosed = true;
    return closeHandle.apply(handle, arguments);
  };
  worker.once('exit', function () { handle.close(); });
  worker.send(reply, socket, function (err) {
    if (err) {
      log.error('worker %d went away before its channel was sent: %s', worker.id, err.message);
      socket.destroy();
      return;
    }
    master.attached++;
    log.master('worker %d attached', worker.id);
    reportCutOffs();
  });
}

// The broker thread cannot log; its counters say when it cut a worker off.
// Checked whenever a worker (re)attaches, which is what a cut-off worker does.
function reportCutOffs() {
  var values = native.brokerStats();
  if (!values) return;
  var cut = values[STAT_NAMES.indexOf('workersCutOff')];
  if (cut > (master.cutOffsSeen || 0)) {
    log.error('the broker cut %d worker channel(s) off for passing queueLimit (%d bytes) ' +
      'without reading', cut - (master.cutOffsSeen || 0), master.running.queueLimit);
    master.cutOffsSeen = cut;
  }
}

function watchWorker(worker) {
  if (worker.__socketIoClusterStore) return;
  worker.__socketIoClusterStore = true;
  worker.process.on('internalMessage', function (message) {
    if (message && message.cmd === CMD_ATTACH) answerWorker(worker, message);
  });
}

// Serves channels to every worker forked from this process (the master)
// and starts the broker. Requiring the module calls it without options, and
// the broker itself starts on the next tick, so that setup(options) called
// right after require still applies. Idempotent.
function setup(options, deferStart) {
  if (options !== undefined && options !== null) {
    var opts = readOptions(options, master.options || DEFAULTS);
    if (master.started) startBroker(opts); // throws when the running broker's limits differ
    master.options = opts;
  } else if (!master.options) {
    master.options = readOptions(null);
  }
  if (!isMasterProcess()) return false;
  if (!master.listening) {
    master.listening = true;
    Object.keys(cluster.workers || {}).forEach(function (id) { watchWorker(cluster.workers[id]); });
    cluster.on('fork', watchWorker);
  }
  if (deferStart) {
    process.nextTick(function () {
      try {
        startBroker(master.options);
      } catch (err) {
        log.error('broker did not start: %s', err.message);
      }
    });
  } else {
    startBroker(master.options);
  }
  return true;
}

function masterStats() {
  return statsObject(native.brokerStats());
}

// ---- process side -------------------------------------------------------

// One per process: multiplexes every store instance (endpoint) over one
// channel and matches replies to requests.
function Connection(options) {
  this.options = options;
  this.endpoints = new Map();
  this.pending = new Map();
  this.inbox = []; // batches being delivered, oldest first: [bytes, words, next index, pool]
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
  this.open();
}

Connection.prototype.open = function () {
  var self = this;
  this.poolBytes = []; // a new channel: the old one's pool views may go
  this.state = 'attaching';
  this.failure = null;
  // maxFrameSize sets the limit of a broker this process runs. A worker's
  // channel states the largest limit there is in its hello and takes the
  // master's broker's from the broker's hello (the broker sends nothing over
  // what a process stated), so a worker's own maxFrameSize is ignored: it
  // could only make the channel refuse what the master routes (issue #16).
  var limit = this.worker ? MAX_FRAME_SIZE : this.options.maxFrameSize;
  var channel = native.channelCreate(limit,
    // The addon lends its input buffer for the length of this call (an
    // ArrayBuffer it detaches afterwards): everything kept is copied out
    // by the decoders, nothing holds on to these bytes. Nor to the shared
    // pool's: a payload read there may be written over once read.
    function onInput(bytes, words, pool) {
      self.deliver(bytes instanceof ArrayBuffer ? Buffer.from(bytes) : bytes, words, pool);
    },
    function onClose(reason) { if (self.channel === channel) self.lost(reason); });
  this.channel = channel;
  this.updateRef();
  if (this.worker) {
    this.attachThroughMaster(channel);
  } else {
    try {
      startBroker(readOptions(null, master.options || this.options));
      native.channelAttach(channel, native.brokerPair());
      this.opened();
      log.channel('attached to the broker in this process');
    } catch (err) {
      this.lost(err.message);
    }
  }
};

Connection.prototype.attachThroughMaster = function (channel) {
  var self = this;
  var nonce = process.pid + ':' + Date.now() + ':' + Math.random();
  var timer = null;
  function finish() {
    clearTimeout(timer);
    process.removeListener('internalMessage', onMessage);
    process.removeListener('disconnect', onDisconnect);
  }
  function onMessage(message, handle) {
    if (!message || message.cmd !== CMD_CHANNEL || message.nonce !== nonce) return;
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
    self.lost('the cluster master did not answer within ' + self.options.attachTimeout +
      ' ms. Require socket.io-cluster-store in the master process (or call ' +
      "require('socket.io-cluster-store').setup() there) before forking the workers");
  }, this.options.attachTimeout);
  process.on('internalMessage', onMessage);
  process.on('disconnect', onDisconnect);
  try {
    process.send({ cmd: CMD_ATTACH, nonce: nonce, protocol: PROTOCOL });
  } catch (err) {
    finish();
    this.lost('could not ask the master for a channel: ' + err.message);
  }
};

Connection.prototype.opened = function () {
  this.state = 'open';
  var again = this.wasOpen;
  this.wasOpen = true;
  this.backoff = 0;
  if (again) this.endpoints.forEach(function (endpoint) { endpoint.onReconnect(); });
};

// The channel is gone: every pending request fails, every store hears of it.
// A channel that had worked is opened again (the broker may have cut this
// process off for not reading, and the master is still there): the stores
// subscribe again and emit 'reconnect'. Messages published in between are
// lost to this process; the data in the broker is not.
Connection.prototype.lost = function (reason) {
  if (this.state === 'closed' && this.failure) return;
  reason = String(reason).replace(/^(socket\.io-cluster-store: )+/, '');
  var channel = this.channel;
  this.state = 'closed';
  this.failure = reason;
  if (channel) native.channelClose(channel);
  log.error('channel closed: %s', reason);
  var pending = this.pending;
  this.pending = new Map();
  this.updateRef();
  var error = this.error();
  pending.forEach(function (callback) { callback(error); });
  this.endpoints.forEach(function (endpoint) { endpoint.onChannelError(error); });
  if (this.wasOpen) this.scheduleReconnect();
};

Connection.prototype.scheduleReconnect = function () {
  var self = this;
  if (this.reconnectTimer || this.endpoints.size === 0) return;
  if (this.worker && !process.connected) return;
  this.backoff = Math.min(this.backoff ? this.backoff * 2 : 100, 5000);
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
  this.updateRef();
};

// After a failure, a new store (or an explicit reconnect) opens a new
// channel, as long as the master may still answer.
Connection.prototype.reopen = function () {
  if (this.worker && !process.connected) return false;
  this.refd = null;
  this.open();
  // Subscriptions go out at once: they wait in the new channel behind its
  // hello until the master hands it over.
  if (this.wasOpen) this.endpoints.forEach(function (endpoint) { endpoint.resubscribe(); });
  return true;
};

Connection.prototype.send = function (type, endpoint, a, b, payload, flags, flushNow, callback) {
  if (this.state === 'closed') {
    var error = this.error();
    if (callback) process.nextTick(callback, error);
    return;
  }
  var id = 0;
  if (callback) {
    id = this.nextRequest;
    this.nextRequest = id >= 0xfffffffe ? 1 : id + 1;
  }
  try {
    native.channelSend(this.channel, type, endpoint, id, a, b, payload, flags, flushNow);
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
    this.pending.set(id, callback);
    if (this.pending.size === 1) this.updateRef();
  }
};

// Blocks until the broker has taken in everything every process had sent
// before this call, then delivers what that brought to this process. Used
// where socket.io must know the cluster's state before it answers a request.
Connection.prototype.catchUp = function (endpoint) {
  if (this.state !== 'open') return false;
  var id = this.nextRequest;
  this.nextRequest = id >= 0xfffffffe ? 1 : id + 1;
  try {
    native.channelSend(this.channel, TYPE.SYNC, endpoint, id, undefined, undefined, undefined,
      FLAG_BARRIER, true);
    native.channelWait(this.channel, id, this.options.syncTimeout);
  } catch (err) {
    log.error('catch-up failed: %s', err.message);
    return false;
  }
  var batch = native.channelTake(this.channel);
  if (batch) this.deliver(batch[0], batch[1], batch[2]);
  return true;
};

// Delivers a batch of frames, in order. A consumer may wait on the broker
// from inside its callback (catchUp): the frames that brings are queued
// behind the rest of the current batch, and the nested call delivers the
// rest first, then them, so nothing overtakes anything.
Connection.prototype.deliver = function (bytes, words, pool) {
  this.inbox.push([bytes, words, 0, pool]);
  var firstError = null;
  while (this.inbox.length) {
    var batch = this.inbox[0];
    var i = batch[2];
    if (i >= batch[1].length) {
      this.inbox.shift();
      continue;
    }
    batch[2] = i + DESCRIPTOR_WORDS;
    try {
      this.deliverOne(batch[0], batch[1], i, batch[3]);
    } catch (err) {
      // One consumer's exception must not cost the rest of the batch.
      if (!firstError) firstError = err;
    }
  }
  if (this.pending.size === 0) this.updateRef();
  if (firstError) throw firstError;
};

Connection.prototype.deliverOne = function (bytes, words, i, pool) {
  var type = words[i] & 0xff;
  var start = words[i + 3];
  var aEnd = start + words[i + 4];
  var payload;
  if (words[i] & WORD_SHARED) {
    // pool[r] views region r of the shared pool; a Buffer over each is kept.
    var r = words[i + 2];
    var region = this.poolBytes[r];
    if (region === undefined || region.buffer !== pool[r]) region = this.poolBytes[r] = Buffer.from(pool[r]);
    payload = region.subarray(words[i + 5], words[i + 5] + words[i + 6]);
  } else {
    var payloadStart = aEnd + words[i + 5];
    payload = bytes.subarray(payloadStart, payloadStart + words[i + 6]);
  }
  if (type === TYPE.MESSAGE) {
    var endpoint = this.endpoints.get(words[i + 1]);
    if (endpoint) endpoint.onMessage(bytes.toString('utf8', start, aEnd), payload);
  } else if (type === TYPE.REPLY) {
    var callback = this.pending.get(words[i + 2]);
    if (callback) {
      this.pending.delete(words[i + 2]);
      callback(null, (words[i] >>> 8) & 0xff, payload);
    }
  }
};

Connection.prototype.flush = function () {
  if (this.state !== 'open') return;
  try {
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

function connection(options) {
  if (!shared) shared = new Connection(readOptions(options, master.options || DEFAULTS));
  return shared;
}

module.exports = {
  TYPE: TYPE,
  STATUS: STATUS,
  STAT_NAMES: STAT_NAMES,
  DEFAULTS: DEFAULTS,
  setup: setup,
  masterStats: masterStats,
  connection: connection,
  readOptions: readOptions,
  statsObject: statsObject,
  isMasterProcess: isMasterProcess,
  isWorkerProcess: isWorkerProcess
};
