'use strict';
// The cluster of bench/stress-v4.js (and bench/handoff.js): a primary that
// forks W socket.io 4 workers on one port, set up one of three ways
// (STRESS_SETUP):
//
//   handoff   node's round robin, this package's hand-off (lib/handoff.js);
//             broadcasts across workers through STRESS_ADAPTER
//   handoff-os  the same with cluster.SCHED_NONE: the workers accept from
//             the shared socket themselves (the kernel spreads connections,
//             less evenly), so the primary's JavaScript touches no
//             connection at all (under round robin it accepts each one and
//             passes it to a worker over IPC: node's own cost)
//   plain     node's round robin, nothing else (what fails without sticky)
//   sticky    @socket.io/sticky in the primary (round robin by sid)
//
// STRESS_ADAPTER: 'store' (this package's, socket.io-cluster-store/adapter),
// 'cluster' (@socket.io/cluster-adapter) or 'none' (socket.io's in-memory
// adapter: no broadcast across workers).
// STRESS_TRANSPORT_CHECK is not used here: the clients choose.
//
// The primary tells its parent (process.send) { type: 'ready', port } once
// every worker listens, relays { type: 'command' } messages to every worker
// and gathers their answers ({ type: 'answer', id, worker, value }).
// Workers count engine.io's refusals by code ('connection_error' events;
// code 1 is "Session ID unknown").

var cluster = require('cluster');
var http = require('http');
var path = require('path');

var SETUP = process.env.STRESS_SETUP || 'handoff';
var HANDOFF = SETUP === 'handoff' || SETUP === 'handoff-os';
var ADAPTER = process.env.STRESS_ADAPTER || 'cluster';
var WORKERS = Number(process.env.STRESS_WORKERS) || 4;
var ROOT = path.join(__dirname, '..', '..');

if (cluster.isPrimary) primary(); else worker();

function primary() {
  // STRESS_CPUS (bench/handoff.js --pin): the cluster on these CPUs (its
  // workers and threads inherit the affinity), the bench's clients on
  // another.
  if (process.env.STRESS_CPUS) {
    require('child_process').execFileSync('taskset', ['-a', '-p', '-c', process.env.STRESS_CPUS,
      String(process.pid)], { stdio: 'ignore' });
  }
  if (HANDOFF) require(ROOT); // the broker, in the primary
  if (ADAPTER === 'cluster') require('@socket.io/cluster-adapter').setupPrimary();
  if (ADAPTER === 'store') require(path.join(ROOT, 'adapter')).setupPrimary();
  cluster.schedulingPolicy = SETUP === 'handoff-os' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  // As @socket.io/sticky and @socket.io/cluster-adapter document: their
  // messages carry Buffers.
  cluster.setupPrimary({ serialization: 'advanced' });
  var port = null;
  var listening = 0;
  var pending = new Map(); // command id -> { answers, expect }
  function ready() {
    if (++listening === WORKERS && port) process.send({ type: 'ready', port: port, pid: process.pid });
  }
  if (SETUP === 'sticky') {
    var server = http.createServer();
    require('@socket.io/sticky').setupMaster(server, { loadBalancingMethod: 'round-robin' });
    server.listen(0, '127.0.0.1', function () {
      port = server.address().port;
      if (listening === WORKERS) process.send({ type: 'ready', port: port, pid: process.pid });
    });
  }
  for (var i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on('message', function (w, m) {
    if (!m || typeof m !== 'object') return;
    if (m.type === 'listening') {
      if (m.port) port = m.port;
      ready();
    } else if (m.type === 'answer') {
      var p = pending.get(m.id);
      if (!p) return;
      p.answers.push(m.value);
      if (p.answers.length === Object.keys(cluster.workers).length) {
        pending.delete(m.id);
        process.send({ type: 'answers', id: m.id, values: p.answers });
      }
    }
  });
  cluster.on('exit', function (w, code, signal) {
    process.send({ type: 'exit', worker: w.id, code: code, signal: signal });
  });
  process.on('message', function (m) {
    if (!m || m.type !== 'command') return;
    pending.set(m.id, { answers: [] });
    Object.keys(cluster.workers).forEach(function (id) { cluster.workers[id].send(m); });
  });
  process.on('disconnect', function () { process.exit(0); });
}

function worker() {
  var Server = require('socket.io-v4').Server;
  var id = cluster.worker.id;
  var options = { pingInterval: 10000, pingTimeout: 20000 };
  if (ADAPTER === 'cluster') options.adapter = require('@socket.io/cluster-adapter').createAdapter();
  if (ADAPTER === 'store') options.adapter = require(path.join(ROOT, 'adapter')).createAdapter();
  var server = http.createServer();
  var io = new Server(server, options);
  var refused = {};
  var closed = {}; // engine.io sessions closed here, by reason
  io.engine.on('connection', function (socket) {
    socket.once('close', function (reason) { closed[reason] = (closed[reason] || 0) + 1; });
  });
  var requests = 0;
  server.on('request', function () { requests++; });
  io.engine.on('connection_error', function (err) {
    var key = err.code + ' ' + err.message;
    refused[key] = (refused[key] || 0) + 1;
  });
  if (HANDOFF) require(path.join(ROOT, 'lib', 'handoff'))(io);
  io.on('connection', function (socket) {
    socket.on('ack', function (n, ack) { if (typeof ack === 'function') ack(id, n); });
    socket.on('join', function (room, ack) {
      socket.join(room);
      if (typeof ack === 'function') ack(id);
    });
    socket.on('rtt', function (t, ack) { if (typeof ack === 'function') ack(t); });
  });
  process.on('message', function (m) {
    if (!m || m.type !== 'command') return;
    var value = null;
    if (m.name === 'emit') io.emit('bcast', id, m.arg);
    else if (m.name === 'room') io.to(m.arg.room).emit('roomcast', id, m.arg.k);
    else if (m.name === 'stats') {
      value = { worker: id, clients: io.engine.clientsCount, refused: refused, closed: closed, requests: requests,
        handoff: HANDOFF ? require(path.join(ROOT, 'lib', 'handoff')).stats() : null,
        cpu: process.cpuUsage() };
    }
    process.send({ type: 'answer', id: m.id, value: value });
  });
  if (SETUP === 'sticky') {
    require('@socket.io/sticky').setupWorker(io);
    process.send({ type: 'listening' });
  } else {
    server.listen(0, '127.0.0.1', function () {
      process.send({ type: 'listening', port: server.address().port });
    });
  }
}
