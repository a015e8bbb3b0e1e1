'use strict';
// What the benchmark compares, behind one face. Each entry says how to set
// it up in the cluster master (masterSetup) and how a worker gets its "bus"
// (create): an io.Store for the real stores, or a stand-in with the same
// publish/subscribe surface for the two floors (a raw AF_UNIX socketpair,
// node's own process.send).
//
//   cluster       this package (the C engine)
//   strong        strong-cluster-socket.io-store@0.1.8 (JSON through the master's JS)
//   redis         socket.io 0.9's RedisStore on a local redis-server
//   memory        socket.io 0.9's MemoryStore (per process: churn only)
//   socketpair    floor: length-prefixed frames (payload encoded by our codec)
//                 over a direct socketpair from one worker to the other(s),
//                 no broker
//   process.send  floor: node's IPC, relayed worker -> master JS -> worker(s)
//   baseline      another build of this package, at BENCH_BASELINE (a
//                 checkout with its addon built): before/after in one run

var path = require('path');
var v8 = require('v8');
var net = require('net');
var cluster = require('cluster');
var util = require('./bench-util');

// BENCH_PACKAGE=/other/checkout benchmarks another build of this package
// (e.g. one with symbols, for perf); its node_modules must resolve.
var ROOT = process.env.BENCH_PACKAGE ? path.resolve(process.env.BENCH_PACKAGE) :
  path.join(__dirname, '..', '..');

function fromRoot(name) {
  return require(require.resolve(name, { paths: [ROOT] }));
}

function installed(name) {
  try {
    require.resolve(name, { paths: [ROOT] });
    return true;
  } catch (e) {
    return false;
  }
}

var io = null;
function socketio() {
  if (!io) io = fromRoot('socket.io');
  return io;
}

// ---- floors ---------------------------------------------------------------

function LocalSubs() {
  this.subs = Object.create(null);
}
LocalSubs.prototype.subscribe = function (name, consumer, fn) {
  this.subs[name] = consumer;
  if (fn) setImmediate(fn);
};
LocalSubs.prototype.dispatch = function (name, args) {
  var consumer = this.subs[name];
  if (consumer) consumer.apply(null, args);
};

// process.send: every publish is one IPC message to the master, which
// relays it to every other worker (see relayInMaster).
function SendBus() {
  LocalSubs.call(this);
  var self = this;
  process.on('message', function (m) {
    if (m && m.n !== undefined && m.bench === undefined) self.dispatch(m.n, m.a);
  });
}
SendBus.prototype = Object.create(LocalSubs.prototype);
SendBus.prototype.publish = function (name) {
  process.send({ n: name, a: Array.prototype.slice.call(arguments, 1) });
};

function relayInMaster() {
  cluster.on('message', function (from, m) {
    if (!m || m.n === undefined || m.bench !== undefined) return;
    for (var id in cluster.workers) {
      var w = cluster.workers[id];
      if (w !== from && w.isConnected()) w.send(m);
    }
  });
}

// The floor carries the bytes ours carries: our codec's encoding when the
// package has one, else V8's serializer.
var codec = null;
function floorCodec() {
  if (codec) return codec;
  try {
    var c = require(path.join(ROOT, 'lib', 'codec.js'));
    if (typeof c.encode === 'function' && typeof c.decode === 'function') {
      codec = { name: 'lib/codec.js', encode: function (v) { return c.encode(v, 'a value'); }, decode: c.decode };
    }
  } catch (e) { /* fall back */ }
  if (!codec) codec = { name: 'v8.serialize', encode: v8.serialize, decode: v8.deserialize };
  return codec;
}

// socketpair: frames written straight to the peer(s), no broker. The links
// are added as they come: a worker's own end (fd 4, the 'pipe' cluster
// gives it) and, in worker 1, the master's ends of the other workers'
// pipes, passed over IPC. Frames published in one tick are packed into one
// buffer and leave in one write per peer.
function PairBus() {
  LocalSubs.call(this);
  this.links = [];
  this.out = Buffer.allocUnsafe(256 * 1024);
  this.pos = 0;
  this.scheduled = false;
  this.codec = floorCodec();
}
PairBus.prototype = Object.create(LocalSubs.prototype);
PairBus.prototype.addLink = function (socket) {
  var self = this;
  var decode = this.codec.decode;
  var reader = new util.FrameReader(function (name, payload) {
    self.dispatch(name, decode(payload));
  });
  socket.on('data', function (chunk) { reader.push(chunk); });
  socket.on('error', function () {});
  this.links.push(socket);
};
PairBus.prototype.openOwnEnd = function () {
  this.addLink(new net.Socket({ fd: 4, readable: true, writable: true }));
};
PairBus.prototype.publish = function (name) {
  var payload = this.codec.encode(Array.prototype.slice.call(arguments, 1));
  var nameLen = Buffer.byteLength(name);
  var total = 6 + nameLen + payload.length;
  if (this.pos + total > this.out.length) {
    var grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + total));
    this.out.copy(grown, 0, 0, this.pos);
    this.out = grown;
  }
  var out = this.out;
  var at = this.pos;
  out.writeUInt32LE(total, at);
  out.writeUInt16LE(nameLen, at + 4);
  out.write(name, at + 6, nameLen, 'latin1');
  payload.copy(out, at + 6 + nameLen);
  this.pos = at + total;
  if (!this.scheduled) {
    this.scheduled = true;
    process.nextTick(flushPairs, this);
  }
};
function flushPairs(bus) {
  bus.scheduled = false;
  var chunk = bus.out.subarray(0, bus.pos);
  for (var i = 0; i < bus.links.length; i++) bus.links[i].write(chunk);
  bus.out = Buffer.allocUnsafe(Math.max(256 * 1024, Math.min(bus.out.length, 8 * 1024 * 1024)));
  bus.pos = 0;
}

// ---- the table ----------------------------------------------------------

// BENCH_BASELINE=/other/checkout adds the store `baseline`: that build of
// this package, run side by side with this one (`--stores cluster,baseline`),
// so a change is measured against what it changes in the same run.
var BASELINE = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : null;

var STORES = {
  cluster: {
    label: 'cluster',
    store: true,
    available: function () { return null; },
    masterSetup: function () { require(ROOT); },
    create: function () {
      var CS = require(ROOT)(socketio());
      return new CS();
    },
    statsInMaster: function () { return require(ROOT).stats(); }
  },
  baseline: {
    label: 'baseline',
    store: true,
    available: function () {
      return BASELINE ? null : 'skipped: set BENCH_BASELINE to another checkout of this package';
    },
    masterSetup: function () { require(BASELINE); },
    create: function () {
      var CS = require(BASELINE)(socketio());
      return new CS();
    },
    statsInMaster: function () { return require(BASELINE).stats(); }
  },
  strong: {
    label: 'strong',
    store: true,
    available: function () {
      return installed('strong-cluster-socket.io-store') && installed('strong-mq') &&
        installed('strong-store-cluster') ? null :
        'skipped: strong-cluster-socket.io-store (+ strong-mq, strong-store-cluster) not installed';
    },
    masterSetup: function () {
      // As its README says: required in the master before forking (it
      // hooks cluster's 'fork'/'online'); calling the factory there also
      // sets up strong-mq's native broker.
      var S = fromRoot('strong-cluster-socket.io-store');
      S(socketio());
      S.setup();
    },
    create: function () {
      var S = fromRoot('strong-cluster-socket.io-store')(socketio());
      return new S();
    }
  },
  redis: {
    label: 'redis',
    store: true,
    needsRedis: true,
    available: function () {
      return installed('redis') ? null : 'skipped: the redis client module is not installed';
    },
    masterSetup: function () {},
    create: function (cfg) {
      var io = socketio();
      var o = function () { return { port: cfg.redisPort, host: '127.0.0.1' }; };
      return new io.RedisStore({ redis: fromRoot('redis'), redisPub: o(), redisSub: o(), redisClient: o() });
    }
  },
  memory: {
    label: 'memory',
    store: true,
    available: function () { return null; },
    masterSetup: function () {},
    create: function () { return new (socketio().MemoryStore)(); }
  },
  socketpair: {
    label: 'socketpair',
    floor: true,
    pipes: true,
    available: function () { return null; },
    masterSetup: function () {},
    create: function (cfg) {
      var bus = new PairBus();
      if (cfg.index !== 1) bus.openOwnEnd();
      return bus;
    }
  },
  'process.send': {
    label: 'process.send',
    floor: true,
    available: function () { return null; },
    masterSetup: relayInMaster,
    create: function () { return new SendBus(); }
  }
};

module.exports = {
  ROOT: ROOT,
  STORES: STORES,
  NAMES: Object.keys(STORES),
  // What runs when --stores is not given: baseline only when asked for.
  DEFAULT_NAMES: Object.keys(STORES).filter(function (s) { return s !== 'baseline' || BASELINE; }),
  fromRoot: fromRoot,
  socketio: socketio,
  floorCodec: floorCodec
};
