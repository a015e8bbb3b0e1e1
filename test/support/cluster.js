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

var childProcess = require('child_process');
var path = require('path');

var FIXTURES = path.join(__dirname, '..', 'fixtures');

var processes = require('./processes');
var live = processes.live;
var killPid = processes.killPid;
var isAlive = processes.isAlive;
var waitFor = processes.waitFor;

function track(pid) {
  if (pid) live.add(pid);
}

function untrackWhenGone(pid) {
  if (!isAlive(pid)) live.delete(pid);
}

// Keeps the last `limit` characters of a stream, for failure messages.
function tail(stream, limit) {
  var out = { text: '' };
  if (!stream) return out;
  stream.setEncoding('utf8');
  stream.on('data', function (chunk) {
    out.text += chunk;
    if (out.text.length > limit) out.text = out.text.slice(-limit);
  });
  return out;
}

function Cluster(child, options) {
  this.child = child;
  this.options = options;
  this.pid = child.pid;
  this.workers = [];
  this.workerIds = [];
  this.port = null;
  this.exits = [];
  this.exited = false;
  this.exitInfo = null;
  this.pending = new Map();
  this.nextId = 1;
  this.stdout = tail(child.stdout, 64 * 1024);
  this.stderr = tail(child.stderr, 64 * 1024);
  var self = this;
  child.on('message', function (m) { self._onMessage(m); });
  child.on('exit', function (code, signal) {
    self.exited = true;
    self.exitInfo = { code: code, signal: signal };
    live.delete(child.pid);
    self._failAll(new Error('the cluster master exited (code ' + code + ', signal ' + signal + ')' +
      self.output()));
  });
}

Cluster.prototype.output = function () {
  var s = '';
  if (this.stderr.text.trim()) s += '\n--- fixture stderr ---\n' + this.stderr.text.trim().slice(-4000);
  if (this.stdout.text.trim()) s += '\n--- fixture stdout ---\n' + this.stdout.text.trim().slice(-2000);
  return s;
};

Cluster.prototype._onMessage = function (m) {
  if (!m || typeof m !== 'object') return;
  if (m.type === 'ready') {
    this.workers = m.workers.sort(function (a, b) { return a.id - b.id; });
    this.workerIds = this.workers.map(function (w) { return w.id; });
    this.port = this.workers.length ? this.workers[0].port : null;
    this.workers.forEach(function (w) { track(w.pid); });
    if (this.onReady) this.onReady();
  } else if (m.type === 'exit') {
    this.exits.push(m);
  } else if (m.type === 'result') {
    var p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) {
      p.resolve(m.value);
    } else {
      var err = new Error('[' + p.target + '] ' + (m.error && m.error.message));
      if (m.error && m.error.stack) err.remoteStack = m.error.stack;
      p.reject(err);
    }
  }
};

Cluster.prototype._failAll = function (err) {
  var pending = this.pending;
  this.pending = new Map();
  pending.forEach(function (p) {
    clearTimeout(p.timer);
    p.reject(err);
  });
};

// run(target, fn, arg, { timeout }): fn(ctx, arg) in the master ('master')
// or in the worker with that cluster id.
Cluster.prototype.run = function (target, fn, arg, options) {
  var self = this;
  var timeout = (options && options.timeout) || 20000;
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
    self.child.send({ type: 'run', id: id, target: target, src: fn.toString(), arg: arg },
      function (err) {
        if (err && self.pending.has(id)) {
          self.pending.delete(id);
          clearTimeout(p.timer);
          reject(err);
        }
      });
  });
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

Cluster.prototype.signalMaster = function (signal) {
  return killPid(this.pid, signal);
};

Cluster.prototype.waitExit = function (timeout) {
  var self = this;
  return waitFor(function () { return self.exited; }, timeout || 10000, 'the master to exit');
};

// Kills the master and every worker (SIGKILL) and waits until they are gone.
Cluster.prototype.close = function () {
  var self = this;
  var pids = [self.pid].concat(self.workers.map(function (w) { return w.pid; }));
  pids.forEach(function (pid) { killPid(pid, 'SIGKILL'); });
  return waitFor(function () {
    return self.exited && pids.every(function (pid) { return !isAlive(pid); });
  }, 10000, 'the cluster processes to exit').then(function () {
    pids.forEach(untrackWhenGone);
  });
};

function startCluster(options) {
  options = options || {};
  var env = Object.assign({}, process.env, {
    CS_WORKERS: String(options.workers || 2),
    CS_LOAD: options.load === false ? '0' : '1',
    CS_SIO: options.sio ? '1' : '0',
    CS_SETUP: options.setup ? JSON.stringify(options.setup) : ''
  }, options.env || {});
  delete env.NODE_UNIQUE_ID; // never look like a cluster worker ourselves
  var child = childProcess.spawn(process.execPath, [path.join(FIXTURES, options.master || 'master.js')], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: env
  });
  track(child.pid);
  var c = new Cluster(child, options);
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () {
      c.close().catch(function () {});
      reject(new Error('the cluster did not start within 20 s' + c.output()));
    }, options.readyTimeout || 20000);
    c.onReady = function () {
      clearTimeout(timer);
      resolve(c);
    };
    child.on('exit', function (code, signal) {
      clearTimeout(timer);
      reject(new Error('the cluster master exited while starting (code ' + code + ', signal ' +
        signal + ')' + c.output()));
    });
  });
}

// Runs `node <fixture>` (no cluster) and collects its output.
function runNode(fixture, args, options) {
  options = options || {};
  var env = Object.assign({}, process.env, options.env || {});
  delete env.NODE_UNIQUE_ID;
  var child = childProcess.spawn(process.execPath, [path.join(FIXTURES, fixture)].concat(args || []), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env
  });
  track(child.pid);
  var stdout = tail(child.stdout, 1024 * 1024);
  var stderr = tail(child.stderr, 64 * 1024);
  var timeout = options.timeout || 20000;
  return new Promise(function (resolve) {
    var timedOut = false;
    var timer = setTimeout(function () {
      timedOut = true;
      killPid(child.pid, 'SIGKILL');
    }, timeout);
    child.on('exit', function (code, signal) {
      clearTimeout(timer);
      live.delete(child.pid);
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
  waitFor: waitFor,
  isAlive: isAlive,
  killPid: killPid,
  track: track,
  FIXTURES: FIXTURES
};
