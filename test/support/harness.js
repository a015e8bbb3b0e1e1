'use strict';
// The test harness: starts test/fixtures/master.js (a real cluster master
// that forks real workers), runs functions in the master or in a worker,
// hears their events, reads their notes, signals processes, forks more
// workers, and kills everything it started, even when a test fails or
// mocha exits.
//
//   var c = await harness.start({ workers: 3, setup: { queueLimit: 1 << 22 } });
//   var v = await c.run(workerId | 'master', function (ctx, arg) { ... }, arg);
//   var all = await c.runAll(c.workerIds, function (ctx, arg) { ... }, arg);
//   var w = await c.fork();              // { id, pid, port }
//   c.kill(workerId | 'master', 'SIGKILL'); await c.close();
//
// The function is sent as source text and runs with a ctx from
// test/support/context.js; its (JSON) result comes back, a thrown error or
// rejected promise rejects run() with the remote message.
//
// start(options):
//   workers      workers forked at start (2)
//   load         false: the master never requires the module (true)
//   setup        options for setup() in the master, in the same turn as require
//   sio          true: every worker serves socket.io 0.9 with a ClusterStore
//                on one shared port (c.port)
//   env          more environment for the master and its workers
//   runTimeout   ms run() waits for an answer unless told (20000); also the
//                time the cluster has to start
//
// runNode(fixture, args, options) runs `node test/fixtures/<fixture>` (no
// cluster) and collects its output.

var EventEmitter = require('events');
var fs = require('fs');
var os = require('os');
var path = require('path');

var processes = require('./processes');
var readJsonLines = require('./jsonl').readJsonLines;

var FIXTURES = path.join(__dirname, '..', 'fixtures');
var waitFor = processes.waitFor;

function Cluster(child, options, notesDir) {
  EventEmitter.call(this);
  this.child = child;
  this.pid = child.pid;
  this.options = options;
  this.runTimeout = options.runTimeout || 20000;
  this.notesDir = notesDir;
  this.workers = new Map(); // id -> pid, of every worker started
  this.port = null;
  this.events = [];
  this.exits = [];
  this.exited = false;
  this.exitInfo = null;
  this.closedStdio = false;
  this.pending = new Map();
  this.nextId = 1;
  this._stdout = processes.tail(child.stdout, 256 * 1024);
  this._stderr = processes.tail(child.stderr, 256 * 1024);
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

Cluster.prototype = Object.create(EventEmitter.prototype);
Cluster.prototype.constructor = Cluster;

// The last of the master's (and its workers') output, as text.
Object.defineProperty(Cluster.prototype, 'stdout', { get: function () { return this._stdout.text; } });
Object.defineProperty(Cluster.prototype, 'stderr', { get: function () { return this._stderr.text; } });

// The ids of the workers started so far (dead ones too), in order.
Object.defineProperty(Cluster.prototype, 'workerIds', {
  get: function () { return Array.from(this.workers.keys()).sort(function (a, b) { return a - b; }); }
});

Cluster.prototype.output = function () {
  var s = '';
  if (this.stderr.trim()) s += '\n--- cluster stderr ---\n' + this.stderr.trim().slice(-4000);
  if (this.stdout.trim()) s += '\n--- cluster stdout ---\n' + this.stdout.trim().slice(-2000);
  return s;
};

Cluster.prototype._adopt = function (w) {
  this.workers.set(w.id, w.pid);
  processes.track(w.pid);
  if (this.port === null && w.port) this.port = w.port;
};

Cluster.prototype._onMessage = function (m) {
  if (!m || typeof m !== 'object') return;
  if (m.type === 'ready') {
    m.workers.forEach(this._adopt, this);
    this.emit('ready');
  } else if (m.type === 'event') {
    this.events.push(m);
    this.emit('event', m);
  } else if (m.type === 'exit') {
    this.exits.push(m);
    this.emit('exit', m);
  } else if (m.type === 'result') {
    var p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) {
      p.resolve(m.value);
    } else {
      var err = new Error('[' + p.target + '] ' + (m.error && m.error.message) +
        (m.stack ? '\n  remote: ' + m.stack : ''));
      err.remote = m.error;
      if (m.stack) err.remoteStack = m.stack;
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
// or in the worker with that cluster id; resolves with its (JSON) result.
// Rejects on an error, after timeout ms, or when the master or that worker
// exits meanwhile.
Cluster.prototype.run = function (target, fn, arg, options) {
  var self = this;
  var timeout = (options && options.timeout) || this.runTimeout;
  var message = { type: 'run', target: target, src: fn.toString(), arg: arg };
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

// The same function in each of targets (worker ids, 'master'); arg may be a
// function of the target that gives each its own.
Cluster.prototype.runAll = function (targets, fn, arg, options) {
  var self = this;
  return Promise.all(targets.map(function (t) {
    return self.run(t, fn, typeof arg === 'function' ? arg(t) : arg, options);
  }));
};

// A new worker, once it is up: { id, pid, port }.
Cluster.prototype.fork = function () {
  var self = this;
  return this.run('master', function (ctx) { return ctx.fork(); }).then(function (w) {
    self._adopt(w);
    return w;
  });
};

Cluster.prototype.workerPid = function (id) {
  return this.workers.get(id);
};

Cluster.prototype.workerPids = function () {
  return Array.from(this.workers.values());
};

// Sends signal (SIGKILL by default) to a worker or to the master; true when
// it was sent.
Cluster.prototype.kill = function (id, signal) {
  return processes.killPid(id === 'master' ? this.pid : this.workers.get(id), signal || 'SIGKILL');
};

// The broker's stats(), read in the master.
Cluster.prototype.stats = function () {
  return this.run('master', function (ctx) { return ctx.require(ctx.ROOT).stats(); });
};

// Polls the broker's stats until pred(stats) holds; resolves with them.
Cluster.prototype.waitStats = async function (pred, timeout, what) {
  var deadline = Date.now() + (timeout || 10000);
  var last = null;
  for (;;) {
    last = await this.stats();
    if (pred(last)) return last;
    if (Date.now() > deadline) {
      throw new Error('timed out waiting for ' + (what || pred.toString()) + '; last stats ' +
        JSON.stringify(last));
    }
    await processes.sleep(20);
  }
};

// Resolves with the first event (ctx.emit) for which pred holds.
Cluster.prototype.waitEvent = function (pred, timeout, what) {
  var self = this;
  return waitFor(function () { return self.events.find(pred); }, timeout || 10000,
    function () { return (what || 'an event') + self.output(); });
};

// Resolves when the worker with that id has exited (with its 'exit'
// message: { worker, pid, code, signal }), or with 'master' when the master
// has (with { code, signal }).
Cluster.prototype.waitExit = function (id, timeout) {
  var self = this;
  if (id === 'master') {
    return waitFor(function () { return self.exitInfo; }, timeout || 10000, 'the master to exit');
  }
  return waitFor(function () {
    return self.exits.find(function (e) { return e.worker === id; });
  }, timeout || 10000, 'worker ' + id + ' to exit');
};

// The JSON lines each process wrote with ctx.note() so far, by pid (only
// complete lines: a process may be writing the last one).
Cluster.prototype.notes = function () {
  var out = {};
  var dir = this.notesDir;
  fs.readdirSync(dir).forEach(function (f) {
    var m = /^p(\d+)\.jsonl$/.exec(f);
    if (!m) return;
    out[m[1]] = readJsonLines(path.join(dir, f));
  });
  return out;
};

// Kills the master and every worker (SIGKILL), waits until they are gone,
// and removes the directory of ctx.note().
Cluster.prototype.close = function () {
  var self = this;
  var pids = [self.pid].concat(self.workerPids());
  pids.forEach(function (pid) { processes.killPid(pid, 'SIGKILL'); });
  return waitFor(function () {
    return self.exited && pids.every(function (pid) { return !processes.isAlive(pid); });
  }, 10000, 'the cluster processes to exit').then(function () {
    processes.untrackGone(pids);
    try {
      fs.rmSync(self.notesDir, { recursive: true, force: true });
    } catch (e) {
      // left in the temporary directory
    }
  });
};

function start(options) {
  options = options || {};
  var notesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cs-test-'));
  var env = Object.assign({
    CS_WORKERS: String(options.workers || 2),
    CS_LOAD: options.load === false ? '0' : '1',
    CS_SIO: options.sio ? '1' : '0',
    CS_SETUP: options.setup ? JSON.stringify(options.setup) : '',
    CS_NOTES_DIR: notesDir
  }, options.env || {});
  var child = processes.spawnNode(path.join(FIXTURES, 'master.js'), [], env, ['ignore', 'pipe', 'pipe', 'ipc']);
  var c = new Cluster(child, options, notesDir);
  var timeout = c.runTimeout;
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () {
      c.close().catch(function () {});
      reject(new Error('the cluster did not start within ' + timeout / 1000 + ' s' + c.output()));
    }, timeout);
    c.once('ready', function () {
      clearTimeout(timer);
      resolve(c);
    });
    child.once('exit', function (code, signal) {
      clearTimeout(timer);
      reject(new Error('the cluster master exited while starting (code ' + code +
        ', signal ' + signal + ')' + c.output()));
    });
  });
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
  start: start,
  runNode: runNode,
  waitFor: waitFor,
  sleep: processes.sleep,
  isAlive: processes.isAlive,
  killPid: processes.killPid,
  track: processes.track,
  FIXTURES: FIXTURES
};
