'use strict';
// The test side of a fixture cluster master, shared by the store suites
// (test/support/cluster.js, master test/fixtures/master.js) and the fault
// suites (test/faults/fixtures/harness.js, master
// test/faults/fixtures/master.js): spawning the master with an IPC channel,
// keeping the tail of its output, requests answered by a 'result' message
// ({ id, ok, value | error, stack }), and killing the master and its
// workers. A worker's 'exit' message goes to .exits (and an 'exit' event).
// Each suite's Cluster inherits from FixtureMaster and handles the master's
// other messages in _message(m).

var EventEmitter = require('events');

var processes = require('./processes');

// options: { label: heading of output() ('--- <label> stderr ---'), tail:
// characters of stdout and stderr kept, runTimeout: run()'s default }.
function FixtureMaster(child, options) {
  EventEmitter.call(this);
  this.child = child;
  this.pid = child.pid;
  this.outputLabel = options.label;
  this.runTimeout = options.runTimeout;
  this.exits = [];
  this.exited = false;
  this.exitInfo = null;
  this.closedStdio = false;
  this.pending = new Map();
  this.nextId = 1;
  this._stdout = processes.tail(child.stdout, options.tail);
  this._stderr = processes.tail(child.stderr, options.tail);
  var self = this;
  child.on('close', function () { self.closedStdio = true; });
  child.on('message', function (m) { self._onMessage(m); });
  child.on('exit', function (code, signal) {
    self.exited = true;
    self.exitInfo = { code: code, signal: signal };
    self._failAll(new Error('the cluster master exited (code ' + code + ', signal ' + signal + ')' +
      self.output()));
    self.emit('master-exit', self.exitInfo);
  });
}

FixtureMaster.prototype = Object.create(EventEmitter.prototype);
FixtureMaster.prototype.constructor = FixtureMaster;

// The last of the master's (and its workers') output, as text.
Object.defineProperty(FixtureMaster.prototype, 'stdout', { get: function () { return this._stdout.text; } });
Object.defineProperty(FixtureMaster.prototype, 'stderr', { get: function () { return this._stderr.text; } });

FixtureMaster.prototype.output = function () {
  var s = '';
  var label = this.outputLabel;
  if (this.stderr.trim()) s += '\n--- ' + label + ' stderr ---\n' + this.stderr.trim().slice(-4000);
  if (this.stdout.trim()) s += '\n--- ' + label + ' stdout ---\n' + this.stdout.trim().slice(-2000);
  return s;
};

FixtureMaster.prototype._onMessage = function (m) {
  if (!m || typeof m !== 'object') return;
  if (m.type === 'exit') {
    this.exits.push(m);
    this.emit('exit', m);
    return;
  }
  if (m.type !== 'result') {
    this._message(m);
    return;
  }
  var p = this.pending.get(m.id);
  if (!p) return;
  this.pending.delete(m.id);
  clearTimeout(p.timer);
  if (m.ok) {
    p.resolve(m.value);
  } else {
    // the store master sends error.stack, the fault master stack
    var err = new Error('[' + p.target + '] ' + (m.error && m.error.message) +
      (m.stack ? '\n  remote: ' + m.stack : ''));
    err.remote = m.error;
    if (m.error && m.error.stack) err.remoteStack = m.error.stack;
    p.reject(err);
  }
};

// The master's messages other than 'result'.
FixtureMaster.prototype._message = function () {};

FixtureMaster.prototype._failAll = function (err) {
  var pending = this.pending;
  this.pending = new Map();
  pending.forEach(function (p) {
    clearTimeout(p.timer);
    p.reject(err);
  });
};

// Sends message (with a new id) and resolves with the value of the
// 'result' that answers it; rejects on an error result, after timeout ms,
// or when the master exits meanwhile.
FixtureMaster.prototype._request = function (message, target, timeout) {
  var self = this;
  return new Promise(function (resolve, reject) {
    if (self.exited || !self.child.connected) {
      return reject(new Error('the cluster master is not running' + self.output()));
    }
    var id = self.nextId++;
    var p = { resolve: resolve, reject: reject, target: target };
    p.timer = setTimeout(function () {
      self.pending.delete(id);
      reject(new Error('[' + target + '] no answer within ' + timeout + ' ms' + self.output()));
    }, timeout);
    self.pending.set(id, p);
    message.id = id;
    self.child.send(message, function (err) {
      if (err && self.pending.has(id)) {
        self.pending.delete(id);
        clearTimeout(p.timer);
        reject(err);
      }
    });
  });
};

// run(target, fn, arg, { timeout }): fn(ctx, arg) in the master ('master')
// or in the worker with that cluster id; resolves with its (JSON) result.
FixtureMaster.prototype.run = function (target, fn, arg, options) {
  var timeout = (options && options.timeout) || this.runTimeout;
  return this._request({ type: 'run', target: target, src: fn.toString(), arg: arg }, target, timeout);
};

// The pids of the workers, for close().
FixtureMaster.prototype.workerPids = function () {
  return [];
};

// Kills the master and every worker (SIGKILL) and waits until they are gone.
FixtureMaster.prototype.close = function () {
  var self = this;
  var pids = [self.pid].concat(self.workerPids());
  pids.forEach(function (pid) { processes.killPid(pid, 'SIGKILL'); });
  return processes.waitFor(function () {
    return self.exited && pids.every(function (pid) { return !processes.isAlive(pid); });
  }, 10000, 'the cluster processes to exit').then(function () {
    processes.untrackGone(pids);
  });
};

// Spawns `node script` with an IPC channel and process.env plus `env`,
// makes the cluster with make(child) and resolves with it once it emits
// 'ready'; closes it and rejects if that takes over timeout ms or the
// master exits first. name: the cluster in those messages ('cluster',
// 'fault cluster').
function startMaster(make, script, env, timeout, name) {
  var child = processes.spawnNode(script, [], env, ['ignore', 'pipe', 'pipe', 'ipc']);
  var c = make(child);
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () {
      c.close().catch(function () {});
      reject(new Error('the ' + name + ' did not start within ' + timeout / 1000 + ' s' + c.output()));
    }, timeout);
    c.once('ready', function () {
      clearTimeout(timer);
      resolve(c);
    });
    child.once('exit', function (code, signal) {
      clearTimeout(timer);
      reject(new Error('the ' + name + ' master exited while starting (code ' + code +
        ', signal ' + signal + ')' + c.output()));
    });
  });
}

module.exports = { FixtureMaster: FixtureMaster, startMaster: startMaster };
