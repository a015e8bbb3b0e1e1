'use strict';
// Test harness: starts test/fixtures/master.js (a real cluster master that
// forks real workers), runs functions in the master or in a worker, and
// kills everything it started, even when a test fails or mocha exits.
//
//   var c = await startCluster({ workers: 4, sio: true });
//   var v = await c.run(workerId | 'master', function (ctx, arg) { ... }, arg);
//   await c.close();
//
// The function is sent as source text and runs with a ctx from
// test/support/context.js; its (JSON) result comes back, a thrown error or
// rejected promise rejects run() with the remote message.

var path = require('path');

var processes = require('./processes');
var fixtureMaster = require('./fixture-master');
var FixtureMaster = fixtureMaster.FixtureMaster;

var FIXTURES = path.join(__dirname, '..', 'fixtures');

function Cluster(child, options) {
  FixtureMaster.call(this, child, { label: 'fixture', tail: 64 * 1024, runTimeout: 20000 });
  this.options = options;
  this.workers = [];
  this.workerIds = [];
  this.port = null;
}

Cluster.prototype = Object.create(FixtureMaster.prototype);
Cluster.prototype.constructor = Cluster;

Cluster.prototype._message = function (m) {
  if (m.type === 'ready') {
    this.workers = m.workers.sort(function (a, b) { return a.id - b.id; });
    this.workerIds = this.workers.map(function (w) { return w.id; });
    this.port = this.workers.length ? this.workers[0].port : null;
    this.workers.forEach(function (w) { processes.track(w.pid); });
    this.emit('ready');
  }
};

// The same function in every worker (and the master, with includeMaster).
Cluster.prototype.runAll = function (fn, arg, options) {
  var self = this;
  var targets = self.workerIds.slice();
  if (options && options.includeMaster) targets.push('master');
  return Promise.all(targets.map(function (t) {
    return self.run(t, fn, typeof arg === 'function' ? arg(t) : arg, options);
  }));
};

Cluster.prototype.workerPid = function (id) {
  var w = this.workers.find(function (x) { return x.id === id; });
  return w && w.pid;
};

Cluster.prototype.workerPids = function () {
  return this.workers.map(function (w) { return w.pid; });
};

Cluster.prototype.signalMaster = function (signal) {
  return processes.killPid(this.pid, signal);
};

Cluster.prototype.waitExit = function (timeout) {
  var self = this;
  return processes.waitFor(function () { return self.exited; }, timeout || 10000, 'the master to exit');
};

function startCluster(options) {
  options = options || {};
  var env = Object.assign({
    CS_WORKERS: String(options.workers || 2),
    CS_LOAD: options.load === false ? '0' : '1',
    CS_SIO: options.sio ? '1' : '0',
    CS_SETUP: options.setup ? JSON.stringify(options.setup) : ''
  }, options.env || {});
  return fixtureMaster.startMaster(function (child) { return new Cluster(child, options); },
    path.join(FIXTURES, options.master || 'master.js'), env, options.readyTimeout || 20000, 'cluster');
}

// Runs `node <fixture>` (no cluster) and collects its output.
function runNode(fixture, args, options) {
  options = options || {};
  var child = processes.spawnNode(path.join(FIXTURES, fixture), args, options.env, ['ignore', 'pipe', 'pipe']);
  var stdout = processes.tail(child.stdout, 1024 * 1024);
  var stderr = processes.tail(child.stderr, 64 * 1024);
  var timeout = options.timeout || 20000;
  return new Promise(function (resolve) {
    var timedOut = false;
    var timer = setTimeout(function () {
      timedOut = true;
      processes.killPid(child.pid, 'SIGKILL');
    }, timeout);
    child.on('exit', function (code, signal) {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(function () {
        resolve({ code: code, signal: signal, timedOut: timedOut, stdout: stdout.text, stderr: stderr.text });
      });
    });
  });
}

module.exports = {
  startCluster: startCluster,
  runNode: runNode,
  waitFor: processes.waitFor,
  isAlive: processes.isAlive,
  killPid: processes.killPid,
  track: processes.track,
  FIXTURES: FIXTURES
};
