'use strict';
// require('socket.io-cluster-store/adapter'): the socket.io 4 adapter.
module.exports = require('./lib/adapter');
