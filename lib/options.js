'use strict';
// The options setup() and the store take: their defaults, their ranges,
// and the one function that checks them.

var constants = require('./native').constants;

// maxFrameSize, queueLimit and the retention limits (retainMessages,
// retainBytes, retainMs: what the broker keeps for connection state
// recovery, all topics together) are the engine's (src/frame.h's
// FRAME_DEFAULT_LIST); the timeouts and sharedMemory are the shim's own.
var DEFAULTS = {
  maxFrameSize: constants.DEFAULTS.maxFrameSize,
  queueLimit: constants.DEFAULTS.queueLimit,
  retainMessages: constants.DEFAULTS.retainMessages,
  retainBytes: constants.DEFAULTS.retainBytes,
  retainMs: constants.DEFAULTS.retainMs,
  attachTimeout: 5000,
  syncTimeout: 2000,
  sharedMemory: true
};

// The range src/frame.h allows for a maximum frame size.
var MIN_FRAME_SIZE = constants.MIN_FRAME_SIZE;
var MAX_FRAME_SIZE = constants.MAX_FRAME_SIZE;

function optionError(message) {
  var err = new TypeError('socket.io-cluster-store: ' + message);
  err.code = 'ERR_CLUSTER_STORE_OPTION';
  return err;
}

// Validates the options both setup() and the store take, over base (the
// defaults when not given); unknown keys are left alone (socket.io passes
// its own through the store constructor).
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
  integer('retainMessages', 0, 0xffffffff);
  integer('retainBytes', 0, Number.MAX_SAFE_INTEGER);
  integer('retainMs', 1, 0x7fffffff);
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

module.exports = {
  DEFAULTS: DEFAULTS,
  MIN_FRAME_SIZE: MIN_FRAME_SIZE,
  MAX_FRAME_SIZE: MAX_FRAME_SIZE,
  optionError: optionError,
  readOptions: readOptions
};
