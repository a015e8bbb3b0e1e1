'use strict';
// require('socket.io-cluster-store')(io) -> ClusterStore for that socket.io.
// Requiring this module in the cluster master is enough to start the broker
// there; setup() says so explicitly and takes options.

var master = require('./master');
var createStore = require('./store');

var cache = new WeakMap();

function factory(io) {
  var Store = io && typeof io === 'object' ? cache.get(io) : undefined;
  if (!Store) {
    Store = createStore(io);
    cache.set(io, Store);
  }
  return Store;
}

factory.setup = function setup(options) { return master.setup(options); };
factory.stats = master.stats;
// socket.io 4 without sticky sessions (lib/handoff.js), loaded when used.
factory.handoff = function handoff(io, options) { return require('./handoff')(io, options); };
factory.handoff.stats = function stats() { return require('./handoff').stats(); };

if (master.isMasterProcess()) master.setup(null, true);

module.exports = factory;
