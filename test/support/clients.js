'use strict';
// socket.io-client 0.9.16 helpers: connect real clients (websocket
// transport) to a cluster's shared port and place at least one on every
// worker.

var http = require('http');
var ioClient = require('socket.io-client');

var opened = new Set();

function withTimeout(promise, ms, what) {
  var timer;
  return Promise.race([
    promise,
    new Promise(function (resolve, reject) {
      timer = setTimeout(function () { reject(new Error('timed out after ' + ms + ' ms: ' + what)); }, ms);
    })
  ]).finally(function () { clearTimeout(timer); });
}

// emit(socket, name, ...args) -> Promise of the ack's arguments (array).
function emit(socket) {
  var args = Array.prototype.slice.call(arguments, 1);
  return withTimeout(new Promise(function (resolve) {
    args.push(function () { resolve(Array.prototype.slice.call(arguments)); });
    socket.emit.apply(socket, args);
  }), 10000, 'ack of ' + args[0]);
}

// A connected client: { socket, worker, id, pid }. timeoutMs: how long the
// connect may take before it counts as hung (15 s).
function connect(port, options, timeoutMs) {
  var socket = ioClient.connect('http://127.0.0.1:' + port, Object.assign({
    'force new connection': true,
    transports: ['websocket'],
    reconnect: false,
    'connect timeout': 10000
  }, options || {}));
  opened.add(socket);
  var connected = new Promise(function (resolve, reject) {
    socket.on('connect', resolve);
    socket.on('error', function (err) { reject(new Error('socket.io client error: ' + (err && err.message || err))); });
    socket.on('connect_failed', function () { reject(new Error('socket.io client: connect_failed')); });
  });
  return withTimeout(connected, timeoutMs || 15000, 'client connect').then(function () {
    return emit(socket, 'whoami');
  }).then(function (ack) {
    var info = ack[0];
    if (info.id !== socket.socket.sessionid) {
      throw new Error('the worker reports socket id ' + info.id + ' but the client has ' +
        socket.socket.sessionid);
    }
    return { socket: socket, worker: info.worker, pid: info.pid, id: info.id };
  }, function (err) {
    disconnect(socket);
    throw err;
  });
}

// A plain HTTP request on its own connection: moves cluster's round robin
// on by one worker. Resolves with the worker that answered.
function poke(port) {
  return withTimeout(new Promise(function (resolve, reject) {
    var req = http.get({ host: '127.0.0.1', port: port, path: '/whoami', agent: false }, function (res) {
      var body = '';
      res.setEncoding('utf8');
      res.on('data', function (c) { body += c; });
      res.on('end', function () {
        try { resolve(JSON.parse(body).worker); } catch (e) { reject(e); }
      });
    });
    req.on('error', reject);
  }), 10000, 'http poke');
}

// Connects clients until every worker in workerIds holds one. Round robin
// hands a client's handshake and its websocket to different workers, in a
// pattern that can leave some workers without websockets; a plain request
// between attempts shifts the pattern. Returns { byWorker: {id: client},
// all: [clients] }.
async function connectToEvery(port, workerIds, maxAttempts) {
  var byWorker = {};
  var all = [];
  maxAttempts = maxAttempts || workerIds.length * 8;
  for (var attempt = 0; attempt < maxAttempts; attempt++) {
    var missing = workerIds.filter(function (id) { return !byWorker[id]; });
    if (missing.length === 0) return { byWorker: byWorker, all: all };
    var c = await connect(port);
    all.push(c);
    if (!byWorker[c.worker]) byWorker[c.worker] = c;
    else await poke(port);
  }
  throw new Error('could not place a client on every worker (' + workerIds.join(', ') + ') in ' +
    maxAttempts + ' attempts; got ' + Object.keys(byWorker).join(', '));
}

function disconnect(socket) {
  opened.delete(socket);
  try { socket.disconnect(); } catch (e) { /* already gone */ }
}

function disconnectAll() {
  Array.from(opened).forEach(disconnect);
}

// Records every `event` a client receives.
function record(client, event) {
  var got = [];
  client.socket.on(event, function () { got.push(Array.prototype.slice.call(arguments)); });
  return got;
}

module.exports = {
  connect: connect,
  connectToEvery: connectToEvery,
  emit: emit,
  poke: poke,
  record: record,
  disconnect: disconnect,
  disconnectAll: disconnectAll,
  withTimeout: withTimeout
};
