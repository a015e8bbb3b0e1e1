'use strict';
// The broker topics the socket.io 4 adapter uses, and how it finds
// socket.io-adapter. One topic per namespace carries what every server of
// that namespace must see (broadcasts, room changes, requests); each adapter
// instance is a *member* of it, tagged with its server id, so the broker
// tells the others when it comes and goes. One topic per adapter instance
// carries the responses meant for it alone.

var PREFIX = 'socket.io-cluster-store/adapter#';

function namespaceTopic(nsp) {
  return PREFIX + 'nsp:' + nsp;
}

function responseTopic(uid) {
  return PREFIX + 'uid:' + uid;
}

// socket.io-adapter as the application installed it (socket.io 4 depends
// on it): from here first, then from where the application runs.
var loaded = null;
function socketIoAdapter() {
  if (loaded) return loaded;
  var err;
  try {
    loaded = require('socket.io-adapter');
  } catch (e) {
    err = e;
    try {
      loaded = require(require.resolve('socket.io-adapter', { paths: [process.cwd()] }));
    } catch (e2) { /* reported below */ }
  }
  if (!loaded || typeof loaded.ClusterAdapter !== 'function') {
    var e3 = new Error('socket.io-cluster-store/adapter needs socket.io-adapter 2.5 or later ' +
      '(socket.io 4 installs it): ' + (loaded ? 'the installed one has no ClusterAdapter; ' +
      'upgrade socket.io' : 'it could not be loaded (' + (err && err.message) + ')'));
    e3.code = 'ERR_CLUSTER_STORE_ADAPTER';
    loaded = null;
    throw e3;
  }
  return loaded;
}

module.exports = {
  namespaceTopic: namespaceTopic,
  responseTopic: responseTopic,
  socketIoAdapter: socketIoAdapter
};
