'use strict';
// require('socket.io-cluster-store/adapter'): socket.io 4 on the cluster's
// broker, with @socket.io/cluster-adapter's names.
//
//   worker:   new Server(httpServer, { adapter: createAdapter() })
//   primary:  setupPrimary()
//
// Also createEmitter(), for io.emit from the primary (or any process).

var cluster = require('cluster');
var master = require('../master');
var adapterClass = require('./adapter').adapterClass;
var createEmitter = require('./emitter').createEmitter;
var options = require('../options');

// Returns the adapter factory socket.io's `adapter` option takes. opts:
// cluster-adapter's (heartbeatInterval, heartbeatTimeout: accepted, and
// not needed: the broker knows which servers are there), the store's
// attachTimeout and syncTimeout for this process's channel, and handoff
// (default true; false: no hand-off; { balance: false }: the hand-off, new
// sessions kept where their handshake lands; see the README's "socket.io 4
// without sticky sessions").
function createAdapter(opts) {
  if (opts !== undefined && opts !== null && typeof opts !== 'object') {
    throw options.optionError('createAdapter() takes an options object');
  }
  var read = opts || {};
  var handoffOptions = handoffOptionsOf(read.handoff);
  options.readOptions(read); // throws a TypeError for a bad store option
  var ClusterStoreAdapter = adapterClass();
  // socket.io 4 without sticky sessions (lib/handoff.js): in a cluster
  // worker, a request for another worker's session goes to that worker.
  var handoff = handoffOptions !== null && cluster.isWorker;
  return function (nsp) {
    if (handoff) require('../handoff').enableWhenAttached(nsp.server, handoffOptions);
    return new ClusterStoreAdapter(nsp, read);
  };
}

// The hand-off's options from createAdapter()'s handoff: null for none.
function handoffOptionsOf(value) {
  if (value === undefined || value === true) return {};
  if (value === false) return null;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw options.optionError('handoff must be true, false or { balance }, got ' +
      (Array.isArray(value) ? 'an array' : String(value)));
  }
  Object.keys(value).forEach(function (key) {
    if (key !== 'balance') {
      throw options.optionError('handoff takes { balance } only, got ' + JSON.stringify(key));
    }
  });
  if (value.balance !== undefined && typeof value.balance !== 'boolean') {
    throw options.optionError('handoff.balance must be true or false, got ' + String(value.balance));
  }
  return { balance: value.balance };
}

// In the primary: starts the broker and serves a channel to every worker
// (as require('socket.io-cluster-store').setup(options) does). Takes
// setup()'s options (maxFrameSize, queueLimit, sharedMemory).
function setupPrimary(opts) {
  master.setup(opts);
}

module.exports = {
  createAdapter: createAdapter,
  setupPrimary: setupPrimary,
  createEmitter: createEmitter
};

// cluster-adapter exports its class as NodeClusterAdapter; so do we (made
// on first use: it extends the application's socket.io-adapter).
Object.defineProperty(module.exports, 'NodeClusterAdapter', { enumerable: true, get: adapterClass });
Object.defineProperty(module.exports, 'ClusterStoreAdapter', { enumerable: true, get: adapterClass });
