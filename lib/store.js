'use strict';
// ClusterStore: socket.io 0.9's store contract on top of the engine.
// The surface follows socket.io's RedisStore (same events, same callbacks);
// underneath, every call is one frame to the master's broker.

var util = require('util');
var debug = require('debug');
var codec = require('./codec');
var protocol = require('./protocol');
var options = require('./options');
var master = require('./master');
var connection = require('./connection');
var hookManager = require('./manager');

var log = debug('socket.io-cluster-store:store');
var TYPE = protocol.TYPE;
var STATUS = protocol.STATUS;

// socket.io's state changes are written to the broker before the call
// returns, so that the HTTP response that follows them cannot overtake them
// (a client may come back through another worker at once). Broadcasts and
// everything else go out in batches, once per turn of the event loop.
var FLUSH_AT_ONCE = new Set([
  'handshake', 'connect', 'open', 'close', 'disconnect', 'join', 'leave', 'disconnect-force',
  'disconnect-remote', 'heartbeat-clear', 'message-remote'
]);
// With machines joined through Redis, the ones a client may follow to
// another machine are also settled there (Connection#settle) before the
// call returns: what the answer lets the client do next, another machine
// must already be able to see. Room changes and forwarded client packets
// act at the client's home and need no wait.
var SETTLE_FIRST = new Set([
  'handshake', 'connect', 'open', 'close', 'disconnect', 'disconnect-force', 'disconnect-remote',
  'heartbeat-clear'
]);

function storeError(message, code) {
  var err = new Error('socket.io-cluster-store: ' + message);
  err.code = code;
  return err;
}

function replyError(status, payload) {
  var text = payload && payload.length ? payload.toString('utf8') : 'request refused';
  return storeError('the broker refused the request: ' + text,
    status === STATUS.NO_MEMORY ? 'ERR_CLUSTER_STORE_MEMORY' : 'ERR_CLUSTER_STORE_REQUEST');
}

function keyError(what, value) {
  var err = new TypeError('socket.io-cluster-store: ' + what + ' must be a string, got ' +
    (value === null ? 'null' : typeof value));
  err.code = 'ERR_CLUSTER_STORE_KEY';
  return err;
}

// Names travel as UTF-8, which cannot carry a lone surrogate: two such
// names would collide. Refused rather than silently merged.
var wellFormed = typeof String.prototype.isWellFormed === 'function' ?
  function (s) { return s.isWellFormed(); } :
  function (s) { return !LONE_SURROGATE.test(s); };
var LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/;

// What errors call a topic: the API's word for it (README).
var A_TOPIC = 'a channel name';

// An Error for a name that cannot be used (not a string, or not well-formed
// Unicode), or null.
function checkName(what, value) {
  if (typeof value !== 'string') return keyError(what, value);
  if (!wellFormed(value)) {
    var err = new TypeError('socket.io-cluster-store: ' + what + ' contains a lone surrogate ' +
      '(not well-formed Unicode)');
    err.code = 'ERR_CLUSTER_STORE_KEY';
    return err;
  }
  return null;
}

// Messages and values this process received but could not decode (see
// decodeError), reported by store.stats() as decodeErrors.
var decodeErrors = 0;

// A payload that does not decode here (sent by another version of the
// package, or by a writer that does not check depth) costs that message
// only: never an exception out of the channel's callback, which would
// take the process down.
function decodeError(what, err) {
  decodeErrors++;
  var e = new Error('socket.io-cluster-store: ' + what + ' could not be decoded in this process and ' +
    'was dropped: ' + (err && err.message ? err.message : String(err)) + ' (run one version of ' +
    'socket.io-cluster-store in every process of the cluster)');
  e.code = 'ERR_CLUSTER_STORE_DECODE';
  e.cause = err;
  return e;
}

// Calls fn(err, ...) on the next tick: callbacks are never called before
// the call that takes them returns, whatever the outcome.
function later(fn, err, value) {
  if (typeof fn === 'function') process.nextTick(fn, err, value);
}

module.exports = function createStore(io) {
  var Store = io && io.Store;
  if (typeof Store !== 'function' || typeof Store.Client !== 'function') {
    throw new TypeError('socket.io-cluster-store: pass your socket.io module, as in ' +
      "require('socket.io-cluster-store')(require('socket.io'))");
  }

  function ClusterStore(opts) {
    if (!(this instanceof ClusterStore)) return new ClusterStore(opts);
    var read = options.readOptions(opts);
    Store.call(this, opts || {});
    this.nodeId = process.pid + ':' + Math.random().toString(36).slice(2);
    this._connection = connection.forProcess(read);
    this._consumers = new Map();
    this._closed = false;
    this._endpoint = this._connection.addEndpoint(this);
    log('store %d created', this._endpoint);
  }

  util.inherits(ClusterStore, Store);

  // socket.io sets `store.manager` whenever a Manager reads its store; the
  // first time, manager.js patches that Manager.
  Object.defineProperty(ClusterStore.prototype, 'manager', {
    configurable: true,
    get: function () { return this._manager; },
    set: function (manager) {
      this._manager = manager;
      hookManager(this, manager);
    }
  });

  // The last topic published that passed checkName (a string; at first an
  // object no caller has): a broadcast publishes on one topic again and again.
  var checkedTopic = {};

  ClusterStore.prototype.publish = function (topic) {
    if (topic !== checkedTopic) {
      var bad = checkName(A_TOPIC, topic);
      if (bad) throw bad;
      checkedTopic = topic;
    }
    var args = Array.prototype.slice.call(arguments, 1);
    // Encoding errors throw a TypeError here, before anything is sent.
    var payload = codec.encode(args, 'the arguments published on', undefined, topic);
    if (!this._closed) {
      // Consecutive publishes to one topic reach the engine in one call,
      // the topic written once (Connection#publish).
      var now = FLUSH_AT_ONCE.has(topic);
      this._connection.publish(this._endpoint, topic, payload, 0, now);
      // Joined to other machines: the answer that follows may send the
      // client to another machine, which must know this first. (Each of
      // SETTLE_FIRST is in FLUSH_AT_ONCE.)
      if (now && SETTLE_FIRST.has(topic)) this._connection.settle(this._endpoint);
    }
    if (this.listenerCount('publish') > 0) this.emit.apply(this, ['publish', topic].concat(args));
    return this;
  };

  ClusterStore.prototype.subscribe = function (topic, consumer, fn) {
    var bad = checkName(A_TOPIC, topic);
    if (bad) throw bad;
    var list = this._consumers.get(topic);
    if (!list) this._consumers.set(topic, list = []);
    if (typeof consumer === 'function') list.push(consumer);
    var self = this;
    this._request({ type: TYPE.SUBSCRIBE, topic: topic }, function (err) {
      if (err) return self._fail(err, fn);
      if (typeof fn === 'function') fn();
    });
    this.emit('subscribe', topic, consumer, fn);
    return this;
  };

  ClusterStore.prototype.unsubscribe = function (topic, fn) {
    var bad = checkName(A_TOPIC, topic);
    if (bad) throw bad;
    this._consumers.delete(topic);
    var self = this;
    this._request({ type: TYPE.UNSUBSCRIBE, topic: topic }, function (err) {
      if (err) return self._fail(err, fn);
      if (typeof fn === 'function') fn();
    });
    this.emit('unsubscribe', topic, fn);
    return this;
  };

  // Store.prototype.destroy destroys every client (with the expiration),
  // then the endpoint leaves the broker: its subscriptions are dropped.
  ClusterStore.prototype.destroy = function (clientExpiration) {
    Store.prototype.destroy.call(this, clientExpiration);
    if (this._closed) return this;
    this._closed = true;
    this._consumers.clear();
    var connection = this._connection;
    var endpoint = this._endpoint;
    connection.send({ type: TYPE.CLOSE, endpoint: endpoint, topic: undefined, client: undefined,
      key: undefined, payload: undefined, flags: 0, now: true,
      callback: function () { connection.removeEndpoint(endpoint); } });
    return this;
  };

  // Counters of the broker this store talks to (see README), and this
  // process's decodeErrors.
  ClusterStore.prototype.stats = function (fn) {
    this._request({ type: TYPE.STATS }, function (err, status, payload) {
      if (err) return fn(err);
      var values = [];
      for (var i = 0; i + 8 <= payload.length; i += 8) {
        values.push(payload.readUInt32LE(i) + payload.readUInt32LE(i + 4) * 0x100000000);
      }
      var stats = protocol.statsObject(values);
      stats.decodeErrors = decodeErrors;
      fn(null, stats);
    });
  };

  // A request of this store's, { type, topic or client, key, payload }
  // (see Connection#send), whose reply goes to callback.
  ClusterStore.prototype._request = function (request, callback) {
    if (this._closed) return later(callback, storeError('the store was destroyed', 'ERR_CLUSTER_STORE_DESTROYED'));
    try {
      this._connection.send({ type: request.type, endpoint: this._endpoint, topic: request.topic,
        client: request.client, key: request.key, payload: request.payload, flags: 0, now: false,
        callback: callback });
    } catch (err) {
      later(callback, err);
    }
  };

  ClusterStore.prototype._catchUp = function () {
    if (!this._closed) this._connection.catchUp(this._endpoint);
  };

  ClusterStore.prototype.onMessage = function (topic, payload) {
    this.onMessageAt(topic, payload, 0, payload.length);
  };

  // A message whose payload is bytes[start, end), lent for this call (the
  // decoder copies out what it keeps): read in place, with no view made.
  ClusterStore.prototype.onMessageAt = function (topic, bytes, start, end) {
    var consumers = this._consumers.get(topic);
    if (!consumers || consumers.length === 0) return;
    var args;
    try {
      args = codec.decode(bytes, start, end);
    } catch (err) {
      return this._fail(decodeError('a message on "' + topic + '"', err));
    }
    for (var i = 0; i < consumers.length; i++) consumers[i].apply(null, args);
  };

  ClusterStore.prototype.onChannelError = function (err) {
    this._fail(err);
  };

  // After a reconnect: subscribe again to every topic; 'reconnect' is
  // emitted once all of them are live in the broker (so a message published
  // after it is delivered).
  ClusterStore.prototype.resubscribe = function () {
    var self = this;
    var topics = Array.from(this._consumers.keys());
    var waiting = topics.length + 1;
    var failed = null;
    function done(err) {
      if (err && !failed) failed = err;
      if (--waiting > 0) return;
      if (failed) return log('subscribing again failed: %s', failed.message);
      log('store %d reconnected', self._endpoint);
      self.emit('reconnect');
    }
    topics.forEach(function (topic) {
      self._request({ type: TYPE.SUBSCRIBE, topic: topic }, done);
    });
    // Also waits for the channel itself: a store with no subscriptions
    // reconnects once a round trip succeeds.
    this._request({ type: TYPE.SYNC }, done);
  };

  ClusterStore.prototype.onReconnect = function () {};

  // Reports an error to the callback when there is one, and to 'error'
  // listeners; an unheard 'error' is logged, not thrown, so the worker
  // keeps serving what it can.
  ClusterStore.prototype._fail = function (err, fn) {
    if (typeof fn === 'function') fn(err);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else log('error (no listener): %s', err.message);
  };

  function Client(store, id) {
    Store.Client.call(this, store, id);
  }

  util.inherits(Client, Store.Client);

  // A request on this client's data, of type with key (NO_KEY: one that
  // concerns the whole client, as clear and expire do; a key that is not a
  // string is refused) and payload (or undefined). fn(err, value) once
  // answered, value as read(status, bytes, key) makes it. One closure per
  // call, no request object of its own: get and set are the hot path of
  // per-client data.
  Client.prototype._kv = function (type, key, payload, fn, read) {
    var bad = checkName('a client id', this.id) || (key !== NO_KEY ? checkName('a key', key) : null);
    if (bad) return later(fn, bad), this;
    var store = this.store;
    if (store._closed) return later(fn, storeError('the store was destroyed', 'ERR_CLUSTER_STORE_DESTROYED')), this;
    var callback = typeof fn !== 'function' ? null : function (err, status, bytes) {
      if (err) return fn(err);
      if (status !== STATUS.OK && status !== STATUS.MISSING) return fn(replyError(status, bytes));
      var value;
      try {
        value = read(status, bytes, key);
      } catch (e) {
        return fn(e);
      }
      fn(null, value);
    };
    try {
      store._connection.ask(type, store._endpoint, this.id, key !== NO_KEY ? key : undefined, payload,
        callback);
    } catch (err) {
      later(fn, err);
    }
    return this;
  };

  // Stands for "no key" in _kv (any key a caller passes is checked).
  var NO_KEY = {};

  function none() { return undefined; }

  function readValue(status, bytes, key) {
    if (status !== STATUS.OK) return null;
    try {
      return codec.decode(bytes);
    } catch (err) {
      throw decodeError('the value of "' + key + '"', err);
    }
  }

  function readFound(status) {
    return status === STATUS.OK;
  }

  Client.prototype.get = function (key, fn) {
    return this._kv(TYPE.KV_GET, key, undefined, fn, readValue);
  };

  Client.prototype.set = function (key, value, fn) {
    var bad = checkName('a key', key);
    if (bad) return later(fn, bad), this;
    var payload;
    try {
      payload = codec.encode(value, 'the value of', undefined, key);
    } catch (err) {
      later(fn, err);
      return this;
    }
    return this._kv(TYPE.KV_SET, key, payload, fn, none);
  };

  Client.prototype.has = function (key, fn) {
    return this._kv(TYPE.KV_HAS, key, undefined, fn, readFound);
  };

  Client.prototype.del = function (key, fn) {
    return this._kv(TYPE.KV_DEL, key, undefined, fn, none);
  };

  // destroy(): clear the client's data now. destroy(seconds): keep it that
  // long (a reconnecting client finds it), then clear it. Later writes do
  // not move the deadline, as with RedisStore's EXPIRE.
  Client.prototype.destroy = function (expiration) {
    if (typeof expiration !== 'number') {
      this._kv(TYPE.KV_CLEAR, NO_KEY, undefined, null, none);
    } else {
      var ms = Math.max(0, Math.min(0xffffffff, Math.round(expiration * 1000)));
      var payload = Buffer.alloc(4);
      payload.writeUInt32LE(ms, 0);
      this._kv(TYPE.KV_EXPIRE, NO_KEY, payload, null, none);
    }
    return this;
  };

  ClusterStore.Client = Client;
  ClusterStore.setup = function setup(opts) { return master.setup(opts); };
  return ClusterStore;
};
