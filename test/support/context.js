'use strict';
// What a function sent by the test (harness.run) gets as `ctx` inside a
// fixture process: the store module, helpers to make stores and wait for
// things, a scratch object that lives as long as the process, and
// describe()/samples() for value checks.

var path = require('path');

var ROOT = path.join(__dirname, '..', '..');

function until(cond, timeout, what) {
  var deadline = Date.now() + (timeout || 10000);
  return new Promise(function (resolve, reject) {
    (function poll() {
      var v;
      try {
        v = cond();
      } catch (err) {
        reject(err);
        return;
      }
      if (v) return resolve(v);
      if (Date.now() > deadline) {
        return reject(new Error('timed out after ' + (timeout || 10000) + ' ms waiting for ' +
          (what || cond.toString())));
      }
      setTimeout(poll, 5);
    })();
  });
}

// call(obj, 'get', key) -> Promise of [err, value], with a timeout so that
// a callback that never comes fails the test instead of hanging it.
function call(obj, method) {
  var args = Array.prototype.slice.call(arguments, 2);
  var timeout = 10000;
  return new Promise(function (resolve, reject) {
    var done = false;
    var timer = setTimeout(function () {
      if (done) return;
      done = true;
      reject(new Error(method + '(' + args.map(String).join(', ') + ') did not call back within ' +
        timeout + ' ms'));
    }, timeout);
    args.push(function (err, value) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve([err || null, value]);
    });
    try {
      obj[method].apply(obj, args);
    } catch (err) {
      done = true;
      clearTimeout(timer);
      reject(err);
    }
  });
}

function errorInfo(err) {
  if (!err) return null;
  return {
    message: String(err.message || err),
    name: err.name,
    code: err.code,
    isError: err instanceof Error,
    isTypeError: err instanceof TypeError
  };
}

function createContext(extra) {
  var ctx = {
    ROOT: ROOT,
    require: require,
    path: path,
    describe: require('./describe'),
    samples: require('./samples'),
    until: until,
    call: call,
    errorInfo: errorInfo,
    sleep: function (ms) { return new Promise(function (r) { setTimeout(r, ms); }); },
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
    store: function (name, options) {
      if (!this.named[name]) this.named[name] = this.newStore(options);
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
    newStore: function (options) {
      var store = new this.ClusterStore(options);
      var errors = this.errors;
      store.on('error', function (err) { errors.push(errorInfo(err)); });
      this.stores.push(store);
      return store;
    }
  };
  return Object.assign(ctx, extra || {});
}

// Runs the source of a function sent by the harness: fn(ctx, arg).
function runSource(ctx, src, arg) {
  var fn = (0, eval)('(' + src + ')'); // eslint-disable-line no-eval
  return Promise.resolve().then(function () { return fn(ctx, arg); });
}

module.exports = { createContext: createContext, runSource: runSource, errorInfo: errorInfo,
  until: until, call: call, ROOT: ROOT };
