'use strict';
// What a function sent by the test (harness.run) gets as `ctx` inside a
// fixture process: the store module, helpers to make stores and wait for
// things, a scratch object that lives as long as the process, and
// describe()/samples() for value checks.

var path = require('path');
var processes = require('./processes');
var remote = require('./remote');

var until = processes.until;
var callBack = processes.callBack;
var errorInfo = remote.errorInfo;

var ROOT = path.join(__dirname, '..', '..');

// call(obj, 'get', key) -> Promise of [err, value], with a timeout so that
// a callback that never comes fails the test instead of hanging it.
function call(obj, method) {
  var args = Array.prototype.slice.call(arguments, 2);
  return callBack(obj, method, args, 10000, function () {
    return method + '(' + args.map(String).join(', ') + ')';
  }).then(function (r) { return [r.err, r.value]; });
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
    sleep: processes.sleep,
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

module.exports = { createContext: createContext, runSource: remote.runSource, errorInfo: errorInfo,
  until: until, call: call, ROOT: ROOT };
