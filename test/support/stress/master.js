'use strict';
// The stress fixture's cluster master (a child of run() in index.js): loads
// the chosen store the way its README says, forks the workers onto one
// shared port (node's default round-robin scheduling, no sticky sessions)
// and relays the runner's commands to them.

var cluster = require('cluster');
var path = require('path');
var rpc = require('./rpc');
var stores = require('./stores');

var cfg = JSON.parse(process.env.STRESS_CONFIG || '{}');
var primary = cluster.isPrimary !== undefined ? cluster.isPrimary : cluster.isMaster;
if (!primary) throw new Error('stress/master.js is the cluster master, not a worker');

stores.masterSetup(cfg);

cluster.schedulingPolicy = cluster.SCHED_RR;
(cluster.setupPrimary || cluster.setupMaster).call(cluster, {
  exec: path.join(__dirname, 'worker.js'),
  args: []
});

var workers = {}; // id -> { worker, call, listening }
var exits = [];
var stopping = false;

function forkOne() {
  var worker = cluster.fork({ STRESS_CONFIG: JSON.stringify(cfg) });
  var entry = { worker: worker, call: rpc.caller(worker, 'worker ' + worker.id), listening: false };
  workers[worker.id] = entry;
  rpc.onNotice(worker, function (event) {
    if (event === 'listening') {
      entry.listening = true;
      maybeReady();
    }
  });
  worker.on('exit', function (code, signal) {
    if (stopping) return;
    var info = { worker: worker.id, pid: worker.process.pid, code: code, signal: signal };
    exits.push(info);
    rpc.notify(process, 'worker-exit', info);
  });
}

var ready = false;
function maybeReady() {
  if (ready) return;
  var ids = Object.keys(workers);
  if (ids.length < cfg.workers) return;
  if (!ids.every(function (id) { return workers[id].listening; })) return;
  ready = true;
  rpc.notify(process, 'ready', {
    pid: process.pid,
    workers: ids.map(function (id) { return { id: Number(id), pid: workers[id].worker.process.pid }; })
  });
}

function one(id) {
  var entry = workers[id];
  if (!entry) throw new Error('no worker ' + id);
  return entry;
}

// Every worker's answer; a dead worker answers { worker, dead: true }.
function all(cmd, args, timeout) {
  return Promise.all(Object.keys(workers).map(function (id) {
    return workers[id].call(cmd, args, timeout).catch(function (err) {
      return { worker: Number(id), dead: true, error: err.message };
    });
  }));
}

rpc.serve(process, {
  broadcast: function (a) { return one(a.from).call('broadcast', a, 5000); },
  room: function (a) { return one(a.from).call('room', a, 5000); },
  inspect: function (a) { return all('inspect', a, 10000); },
  records: function () { return all('records', {}, 20000); },
  reset: function () { return all('reset', {}, 5000); },
  exits: function () { return exits; }
});

function stop() {
  if (stopping) return;
  stopping = true;
  Object.keys(workers).forEach(function (id) {
    try { workers[id].worker.process.kill('SIGKILL'); } catch (e) { /* gone */ }
  });
  setTimeout(function () { process.exit(0); }, 100);
}

// The runner going away (or telling us to) ends everything.
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

for (var i = 0; i < cfg.workers; i++) forkOne();
