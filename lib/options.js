'use strict';
// The options setup() and the store take: their defaults, their ranges,
// and the one function that checks them.

var constants = require('./native').constants;

// maxFrameSize, queueLimit and the retention limits (retainMessages,
// retainBytes, retainMs: what the broker keeps for connection state
// recovery, all topics together) are the engine's (src/frame.h's
// FRAME_DEFAULT_LIST); the timeouts and sharedMemory are the shim's own.
// redis (a URL, master only) joins this machine to others (README, "Past
// one machine"); redisPrefix starts every Redis key and channel it uses;
// redisPresenceMs is how often a machine says it is there (one silent for
// three times that is taken for dead).
var DEFAULTS = {
  maxFrameSize: constants.DEFAULTS.maxFrameSize,
  queueLimit: constants.DEFAULTS.queueLimit,
  retainMessages: constants.DEFAULTS.retainMessages,
  retainBytes: constants.DEFAULTS.retainBytes,
  retainMs: constants.DEFAULTS.retainMs,
  attachTimeout: 5000,
  syncTimeout: 2000,
  sharedMemory: true,
  redis: null,
  redisPrefix: 'sio-cluster',
  redisPresenceMs: 10000
};

// 'redis://[[user]:password@]host[:port][/db]' as the uplink takes it:
// { host, port, user, password, db, prefix }. Throws a clear TypeError for
// what it cannot take (rediss://: TLS is not supported yet).
function readRedis(url, prefix, presenceMs) {
  if (typeof url !== 'string') throw optionError('redis must be a URL string like redis://:password@host:6379/0');
  var parsed;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw optionError('redis must be a URL like redis://:password@host:6379/0, got ' + JSON.stringify(url));
  }
  if (parsed.protocol === 'rediss:') {
    throw optionError('redis: TLS (rediss://) is not supported yet; use redis:// on a private ' +
      'network, or a TLS tunnel (stunnel, spiped) on this machine');
  }
  if (parsed.protocol !== 'redis:') {
    throw optionError('redis must start with redis://, got ' + JSON.stringify(parsed.protocol));
  }
  var host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw optionError('redis: the URL names no host');
  var port = parsed.port ? Number(parsed.port) : 6379;
  var path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) {
    throw optionError('redis: the database must be a number (redis://host:6379/0), got ' + JSON.stringify(path));
  }
  var db = path === '' ? 0 : Number(path);
  if (db > 0xffffffff) throw optionError('redis: database number out of range: ' + path);
  return {
    host: host,
    port: port,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    db: db,
    prefix: prefix,
    presenceMs: presenceMs || DEFAULTS.redisPresenceMs
  };
}

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
  integer('redisPresenceMs', 50, 600000);
  if (options.sharedMemory !== undefined) {
    if (typeof options.sharedMemory !== 'boolean') {
      throw optionError('sharedMemory must be true or false, got ' + String(options.sharedMemory));
    }
    out.sharedMemory = options.sharedMemory;
  }
  if (options.redisPrefix !== undefined) {
    if (typeof options.redisPrefix !== 'string' || !/^[^\s]{1,100}$/.test(options.redisPrefix)) {
      throw optionError('redisPrefix must be 1 to 100 characters without spaces, got ' +
        String(options.redisPrefix));
    }
    out.redisPrefix = options.redisPrefix;
  }
  if (options.redis !== undefined && options.redis !== null) {
    readRedis(options.redis, out.redisPrefix); // throws when it cannot be used
    out.redis = options.redis;
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
  readOptions: readOptions,
  readRedis: readRedis
};
