'use strict';
// The master's side: the broker thread, started once per process, and the
// hand-over of a channel to each cluster worker that asks for one.
//
// A worker asks over node's IPC channel, with a message whose `cmd` starts
// with NODE_: node routes those to the internal 'internalMessage' event, so
// the application's own 'message' handlers in the master and the workers
// never see this traffic. The master answers with one end of a fresh
// socketpair whose other end its broker thread owns (see connection.js for
// the worker's side). The broker also runs in a plain process, or a worker
// thread, that makes a store: the same engine, attached to directly.

var cluster = require('cluster');
var net = require('net');
var threads = require('worker_threads');
var debug = require('debug');
var native = require('./native');
var protocol = require('./protocol');
var options = require('./options');

var log = {
  master: debug('socket.io-cluster-store:master'),
  error: debug('socket.io-cluster-store:error')
};

// The hand-over over the IPC channel: a worker sends CMD_ATTACH with a
// nonce and IPC_VERSION; the master answers CMD_CHANNEL with the same
// nonce, and one end of a socketpair or an error. Both strings and the
// version are the same in every release that speaks this exchange.
var CMD_ATTACH = 'NODE_SOCKET_IO_CLUSTER_STORE_ATTACH';
var CMD_CHANNEL = 'NODE_SOCKET_IO_CLUSTER_STORE_CHANNEL';
var IPC_VERSION = 1;

var master = {
  options: null,
  started: false,
  listening: false,
  attached: 0
};

function isMasterProcess() {
  return (cluster.isPrimary !== undefined ? cluster.isPrimary : cluster.isMaster) &&
    threads.isMainThread;
}

// The retention limits (options.js), which a running broker keeps.
var RETAIN = ['retainMessages', 'retainBytes', 'retainMs'];

// Starts this process's broker with options' limits, once; later calls
// with other limits throw, since they cannot change under a running broker.
function startBroker(opts) {
  if (master.started) {
    var running = master.running;
    if (opts.maxFrameSize !== running.maxFrameSize || opts.queueLimit !== running.queueLimit ||
        opts.sharedMemory !== running.sharedMemory || RETAIN.some(function (name) {
          return opts[name] !== running[name];
        }) || (opts.redis || null) !== running.redis ||
        (opts.redis && opts.redisPrefix !== running.redisPrefix)) {
      throw options.optionError('the broker already runs with maxFrameSize ' + running.maxFrameSize +
        ', queueLimit ' + running.queueLimit + ', sharedMemory ' + running.sharedMemory +
        RETAIN.map(function (name) { return ', ' + name + ' ' + running[name]; }).join('') +
        ' and ' + (running.redis ? 'a Redis uplink' : 'no Redis uplink') +
        '; pass options to setup() in the same turn as requiring the module, before any store ' +
        'or worker uses it');
    }
    return;
  }
  var uplink = opts.redis ? options.readRedis(opts.redis, opts.redisPrefix, opts.redisPresenceMs) : undefined;
  native.brokerStart(opts.maxFrameSize, opts.queueLimit, opts.sharedMemory, opts.retainMessages,
    opts.retainBytes, opts.retainMs, uplink);
  master.started = true;
  master.running = { maxFrameSize: opts.maxFrameSize, queueLimit: opts.queueLimit,
    sharedMemory: opts.sharedMemory, retainMessages: opts.retainMessages,
    retainBytes: opts.retainBytes, retainMs: opts.retainMs, redis: opts.redis || null,
    redisPrefix: opts.redisPrefix };
  log.master('broker started (max frame %d bytes, queue limit %d bytes)',
    opts.maxFrameSize, opts.queueLimit);
  if (uplink) watchUplink(uplink);
}

// The broker thread cannot log: the uplink's state is looked at a few
// times a second, and each change of fault is said once, as a process
// warning (stderr, unless the app listens for 'warning'), so a wrong
// password or an unreachable Redis is never silent. Coming up is logged
// with DEBUG=socket.io-cluster-store:*.
var UPLINK_CHECK_MS = 250;
var STATE_INDEX = protocol.STAT_NAMES.indexOf('uplinkState');
var FAULT_INDEX = protocol.STAT_NAMES.indexOf('uplinkFault');
var CONNECTS_INDEX = protocol.STAT_NAMES.indexOf('uplinkConnects');
var UPLINK = native.constants.UPLINK_STATE;

function watchUplink(uplink) {
  var where = uplink.host + ':' + uplink.port;
  var said = '';
  var connects = 0;
  var timer = setInterval(function () {
    var values = native.brokerStats();
    if (!values) return clearInterval(timer);
    var state = values[STATE_INDEX];
    if (values[CONNECTS_INDEX] > connects) {
      var first = connects === 0;
      connects = values[CONNECTS_INDEX];
      log.master('uplink to Redis at %s is up (time %d)', where, connects);
      if (said) {
        process.emitWarning('Redis uplink to ' + where + ' is up again; this machine ' +
          'is joined to the others', { code: 'ERR_CLUSTER_STORE_UPLINK' });
      } else if (!first) {
        // Down and up again between two looks: still said, once.
        var why = native.brokerUplinkFault() || 'the connection was lost';
        log.error('uplink: %s (up again)', why);
        process.emitWarning('socket.io-cluster-store: Redis uplink to ' + where + ' was down (' +
          why + ') and is up again; what went across meanwhile is counted in uplinkDropped',
        { code: 'ERR_CLUSTER_STORE_UPLINK' });
      }
      said = '';
    }
    if (state !== UPLINK.DOWN || values[FAULT_INDEX] === 0) return;
    var text = native.brokerUplinkFault();
    if (text === said) return;
    said = text;
    log.error('uplink: %s', text);
    process.emitWarning('socket.io-cluster-store: ' + text + (/[.?!]$/.test(text) ? ' ' : '. ') +
      'This machine goes on alone ' +
      '(local delivery and data work); the uplink tries again by itself.',
    { code: 'ERR_CLUSTER_STORE_UPLINK' });
  }, UPLINK_CHECK_MS);
  timer.unref();
}

function answerWorker(worker, message) {
  var reply = { cmd: CMD_CHANNEL, nonce: message.nonce, protocol: IPC_VERSION };
  if (message.protocol !== IPC_VERSION) {
    reply.error = 'the master runs socket.io-cluster-store protocol ' + IPC_VERSION +
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
  // holding it for good (the broker would keep serving a channel nobody
  // reads), so
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
  var cut = values[protocol.STAT_NAMES.indexOf('workersCutOff')];
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
function setup(opts, deferStart) {
  if (opts !== undefined && opts !== null) {
    var read = options.readOptions(opts, master.options || options.DEFAULTS);
    if (master.started) startBroker(read); // throws when the running broker's limits differ
    master.options = read;
  } else if (!master.options) {
    master.options = options.readOptions(null);
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

// The options setup() was given in this process (defaults once it ran
// without any), or null before it ran.
function setupOptions() {
  return master.options;
}

// The broker's counters; with an uplink also uplinkError, the text of its
// last fault ('' when none).
function stats() {
  var out = protocol.statsObject(native.brokerStats());
  if (out && out.uplinkState !== 0) out.uplinkError = native.brokerUplinkFault();
  return out;
}

module.exports = {
  CMD_ATTACH: CMD_ATTACH,
  CMD_CHANNEL: CMD_CHANNEL,
  IPC_VERSION: IPC_VERSION,
  isMasterProcess: isMasterProcess,
  setup: setup,
  setupOptions: setupOptions,
  startBroker: startBroker,
  stats: stats
};
