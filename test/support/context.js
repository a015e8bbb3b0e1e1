'use strict';
// What a function sent by a test (cluster.run, see harness.js) gets as
// `ctx` inside the master or a worker of test/fixtures/: the store module
// (loaded on first use), stores made by name, helpers to wait for things
// and call back, a scratch object that lives as long as the process, events
// and notes back to the test, and describe()/samples() for value checks.
// Also what the fixtures below runSource(), and call() for the plain-process
// fixtures.
//
//   ctx.ClusterStore            require(ROOT)(require('socket.io'))
//   ctx.store(name, options)    one store per name (made on first use), its
//                               'error' events recorded in ctx.errors
//   ctx.newStore(options)       a new store, 'error' recorded likewise
//   ctx.subscribe(name, ch)     store `name` subscribed to `ch`, every message
//                               kept in ctx.got(name, ch)
//   ctx.call(obj, method, ...)  obj[method](..., callback) as a Promise, see
//                               call() below
//   ctx.until(cond, ms, what)   resolves once cond() is truthy
//   ctx.state                   scratch object for the life of the process
//   ctx.emit(name, data)        an event to the test (cluster.events)
//   ctx.note(obj)               a JSON line appended, synchronously, to this
//                               process's file in CS_NOTES_DIR (cluster.notes()):
//                               for what must outlive the master, whose IPC
//                               carries every other answer
//   ctx.role, ctx.workerId      'master' or 'worker', and the worker's id
//   ctx.fork(env), ctx.workerPids()  in the master only (see master.js)

var fs = require('fs');
var path = require('path');
var processes = require('./processes');

var ROOT = path.join(__dirname, '..', '..');

// Runs the source text of a test function: fn(ctx, arg); resolves with its
// value.
function runSource(ctx, src, arg) {
  return Promise.resolve().then(function () {
    // eslint-disable-next-line no-new-func
    var fn = new Function('return (' + src + ');')();
    return fn(ctx, arg);
  });
}

// An error (thrown, or given by a store) as JSON, for an answer.
function errorInfo(err) {
  if (!err) return null;
  return {
    message: String(err && err.message !== undefined ? err.message : err),
    name: err && err.name,
    code: err && err.code,
    isError: err instanceof Error,
    isTypeError: err instanceof TypeError,
    isRangeError: err instanceof RangeError
  };
}

// call(obj, 'get', key) -> Promise of [err, value] (err null when there is
// none), which also reads as .err, .value and .ms (the time the callback
// took), as a RegExp match is an array with named parts. Rejects when the
// call throws, or when no callback comes within 10 s, so that a hang fails
// the test instead of stalling it.
function call(obj, method) {
  var args = Array.prototype.slice.call(arguments, 2);
  return processes.callBack(obj, method, args, 10000, function () {
    return method + '(' + args.map(String).join(', ') + ')';
  }).then(function (r) {
    var result = [r.err, r.value];
    result.err = r.err;
    result.value = r.value;
    result.ms = r.ms;
    return result;
  });
}

// Keeps the CPU busy for ms (a blocked event loop); returns the spins.
function busy(ms) {
  var end = Date.now() + ms;
  var spins = 0;
  while (Date.now() < end) spins++;
  return spins;
}

// options: { role: 'master' | 'worker', workerId, emit(name, data) }.
function createContext(options) {
  var notesDir = process.env.CS_NOTES_DIR || '';
  var ctx = {
    ROOT: ROOT,
    require: require,
    path: path,
    cluster: require('cluster'),
    role: options.role,
    workerId: options.workerId,
    pid: process.pid,
    describe: require('./describe'),
    samples: require('./samples'),
    until: processes.until,
    sleep: processes.sleep,
    busy: busy,
    call: call,
    errorInfo: errorInfo,
    emit: options.emit,
    state: {},
    errors: [],
    stores: [],
    _ClusterStore: null,
    get ClusterStore() {
      if (!this._ClusterStore) this._ClusterStore = require(ROOT)(require('socket.io'));
      return this._ClusterStore;
    },
    received: {},
    // A store made once per name and kept (ctx.store('a') twice: one store).
    named: {},
    store: function (name, storeOptions) {
      name = name || 'default';
      if (!this.named[name]) this.named[name] = this.newStore(storeOptions);
      return this.named[name];
    },
    // Subscribes store `name` to `channel`, recording every message's
    // arguments in ctx.got(name, channel). Resolves when the subscribe
    // callback runs.
    subscribe: function (name, channel) {
      var log = this.got(name, channel);
      var store = this.store(name);
      return new Promise(function (resolve, reject) {
        var timer = setTimeout(function () {
          reject(new Error('subscribe(' + channel + ') did not call back within 10 s'));
        }, 10000);
        store.subscribe(channel, function () {
          log.push(Array.prototype.slice.call(arguments));
        }, function (err) {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(true);
        });
      });
    },
    got: function (name, channel) {
      var key = name + '\u0000' + channel;
      if (!this.received[key]) this.received[key] = [];
      return this.received[key];
    },
    // A store whose 'error' events are recorded in ctx.errors.
    newStore: function (storeOptions) {
      var store = new this.ClusterStore(storeOptions);
      var errors = this.errors;
      store.on('error', function (err) { errors.push(errorInfo(err)); });
      this.stores.push(store);
      return store;
    },
    note: function (obj) {
      if (!notesDir) return;
      obj.t = obj.t || Date.now();
      fs.appendFileSync(path.join(notesDir, 'p' + process.pid + '.jsonl'), JSON.stringify(obj) + '\n');
    },
    rss: function () { return process.memoryUsage().rss; }
  };
  return ctx;
}

module.exports = { ROOT: ROOT, createContext: createContext, runSource: runSource, errorInfo: errorInfo,
  call: call };
