'use strict';
// One cluster worker of a benchmark run (see bench-master.js). Gets its run
// from BENCH_RUN and its number from cluster.worker.id, talks to the
// master with {bench: ...} messages, and does one scenario's work.

var cluster = require('cluster');
var http = require('http');
var stores = require('./bench-stores');
var util = require('./bench-util');

var cfg = JSON.parse(process.env.BENCH_RUN);
var index = cluster.worker.id;
cfg.index = index;
var entry = stores.STORES[cfg.store];
var bus = entry.create(cfg);
if (bus && typeof bus.on === 'function') {
  bus.on('error', function (err) { send({ bench: 'log', text: 'store error: ' + (err && err.message) }); });
}

function send(m) {
  if (process.connected) process.send(m);
}

var handlers = Object.create(null);
handlers.exit = function () { process.exit(0); };
process.on('message', function (m, handle) {
  if (!m || typeof m.bench !== 'string') return;
  var h = handlers[m.bench];
  if (h) h(m, handle);
});

// Every role subscribes to something first and reports ready once the
// store says the subscription is live: the store is connected by then.
function ready(extra) {
  send(Object.assign({ bench: 'ready', index: index }, extra || {}));
}

function cpuSnapshot() {
  var u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function packet(size) {
  var text = size ? 'x'.repeat(size) : 'hello world';
  return { type: 'event', name: 'chat', args: [{ user: 'u1', text: text }], endpoint: '' };
}

// Publish arguments of real apps' shapes (the 'app' workload), taking
// turns: what socket.io 0.9's broadcast publishes (room, packet, volatile,
// exceptions), with several event names, nested arguments and a Buffer in
// one packet of 8.
var EVENT_NAMES = ['chat message', 'item:updated', 'presence', 'typing', 'score', 'notification',
  'cursor', 'file'];
function appArgs(i) {
  var name = EVENT_NAMES[i & 7];
  var args;
  switch (i & 7) {
    case 0: args = [{ user: 'user-' + (i % 500), text: 'message number ' + i, at: 1733140000000 + i }]; break;
    case 1: args = [{ title: 'Item title ' + (i % 97), id: 100000 + i, tags: ['news', 'sport', 'local'],
      author: { id: 'u-' + (i % 50), name: 'Ada', roles: ['editor'] }, score: 4.5, draft: false }]; break;
    case 2: args = ['user-' + (i % 500), { online: true, since: 1733140000000, device: 'mobile' }]; break;
    case 3: args = ['user-' + (i % 500), true]; break;
    case 4: args = [{ id: i, points: i * 3, ranks: [1, 5, 9, 12], delta: -0.25 }]; break;
    case 5: args = [{ kind: 'mention', from: { id: 'u-7', name: 'Bob' }, refs: [{ room: 'r-1', msg: i }] }]; break;
    case 6: args = [{ x: i % 1920, y: i % 1080, doc: 'doc-' + (i % 20) }]; break;
    default: args = [{ name: 'avatar.png', size: 256, data: Buffer.alloc(256, i & 0xff) }];
  }
  return ['/room-' + (i % 16), { type: 'event', name: name, args: args, endpoint: '' }, false,
    i % 3 === 0 ? ['sid-' + (i % 1000)] : []];
}
var APP_ARGS = [];
for (var appI = 0; appI < 64; appI++) APP_ARGS.push(appArgs(appI));

// A client's data in the 'app' workload: 8 keys of object values.
function appValue(i) {
  return { nickname: 'user-' + (i % 512), room: 'room-' + (i % 16), joined: 1733140000000 + i,
    prefs: { theme: i & 1 ? 'dark' : 'light', sound: true, lang: 'en' }, seen: [i % 7, i % 11, i % 13] };
}

// ---- publish throughput -------------------------------------------------

function publishScenario() {
  var p = cfg.params;
  if (index === 1) {
    bus.subscribe('bench-ready', function () {}, function () { ready(); });
    handlers.link = function (m, handle) { bus.addLink(handle); send({ bench: 'linked' }); };
    handlers.go = function () {
      var pkt = packet(p.payload);
      var app = p.shape === 'app';
      var n = 0;
      var cpu0 = cpuSnapshot();
      var t0 = util.now();
      var deadline = t0 + p.duration;
      (function batch() {
        var stop = Math.min(p.max, n + p.batch);
        if (app) {
          for (; n < stop; n++) {
            var a = APP_ARGS[n & 63];
            bus.publish('dispatch', a[0], a[1], a[2], a[3]);
          }
        }
        for (; n < stop; n++) bus.publish('dispatch', '', pkt, false, []);
        if (n < p.max && util.now() < deadline) return setImmediate(batch);
        var t1 = util.now();
        send({ bench: 'published', count: n, t0: t0, t1: t1, cpu: cpuSnapshot() - cpu0 });
      })();
    };
  } else {
    var count = 0;
    var firstAt = 0;
    var lastAt = 0;
    var cpu0 = 0;
    var timer = null;
    bus.subscribe('dispatch', function () {
      if (count++ === 0) firstAt = util.now();
      lastAt = util.now();
    }, function () { ready(); });
    handlers.go = function () {
      cpu0 = cpuSnapshot();
      timer = setInterval(function () {
        send({ bench: 'progress', index: index, count: count, lastAt: lastAt });
      }, 100);
    };
    handlers.report = function () {
      clearInterval(timer);
      send({ bench: 'final', index: index, count: count, firstAt: firstAt, lastAt: lastAt,
        cpu: cpuSnapshot() - cpu0 });
    };
  }
}

// ---- round-trip latency ---------------------------------------------------

function latencyScenario() {
  var p = cfg.params;
  if (index === 1) {
    var pending = null;
    bus.subscribe('pong', function (seq) {
      if (pending && seq === pending.seq) pending.done();
    }, function () { ready(); });
    handlers.link = function (m, handle) { bus.addLink(handle); send({ bench: 'linked' }); };
    handlers.go = function () {
      var pkt = packet(0);
      var samples = [];
      var seq = 0;
      var deadline = 0;
      var cpu0 = cpuSnapshot();
      var t0 = util.now();
      function one() {
        var mine = ++seq;
        var start = util.hrMicros();
        pending = {
          seq: mine,
          done: function () {
            pending = null;
            if (mine > p.warmup) samples.push(util.hrMicros() - start);
            if (mine === p.warmup) deadline = util.now() + p.duration;
            if (samples.length < p.count && (mine <= p.warmup || util.now() < deadline)) one();
            else finish();
          }
        };
        bus.publish('ping', mine, pkt);
      }
      function finish() {
        var elapsed = util.now() - t0;
        samples.sort(function (a, b) { return a - b; });
        var sum = 0;
        for (var i = 0; i < samples.length; i++) sum += samples[i];
        send({
          bench: 'latency', count: samples.length, elapsed: elapsed, cpu: cpuSnapshot() - cpu0,
          p50: util.percentile(samples, 50), p90: util.percentile(samples, 90),
          p99: util.percentile(samples, 99), max: samples[samples.length - 1],
          mean: sum / samples.length
        });
      }
      one();
    };
  } else {
    bus.subscribe('ping', function (seq, pkt) { bus.publish('pong', seq, pkt); },
      function () { ready(); });
  }
}

// ---- latency under a broadcast storm --------------------------------------

// Worker 1 pings, worker 2 answers, worker 3 publishes `storm` as fast as
// its loop allows (params.batch per turn); the storm goes to every worker
// (params.slow false) or only to worker 4, whose handler burns
// params.burnMicros per message (params.slow true).
function busyWait(micros) {
  var end = util.hrMicros() + micros;
  while (util.hrMicros() < end) { /* a slow handler */ }
}

function stormScenario() {
  var p = cfg.params;
  var count = 0;
  var stormReader = p.slow ? index === 4 : index !== 3;
  var pending = 1 + (stormReader ? 1 : 0);
  function subscribed() {
    if (--pending === 0) ready();
  }
  var counting = null;
  if (stormReader) {
    bus.subscribe('storm', p.slow ? function () { count++; busyWait(p.burnMicros); } :
      function () { count++; }, subscribed);
  }
  handlers.storm = function () {
    count = 0;
    if (stormReader) {
      counting = setInterval(function () { util.writeStormCount(process.ppid, index, count); }, 100);
    }
  };
  handlers.report = function () {
    if (counting) clearInterval(counting);
    send({ bench: 'storm-count', index: index, count: count });
  };
  if (index === 1) {
    var waiting = null;
    bus.subscribe('pong', function (seq) {
      if (waiting && seq === waiting.seq) waiting.done();
    }, subscribed);
    handlers.go = function () {
      var pkt = packet(0);
      var samples = [];
      var seq = 0;
      var deadline = util.now() + p.duration;
      var finished = false;
      // A round trip still out at the deadline is counted at the age it
      // has then (a lower bound) and reported as unanswered: a store whose
      // quiet messages queue behind the storm for longer than the bench
      // allows still gets figures, not a timeout.
      var overdue = setTimeout(function () {
        if (!waiting) return;
        var late = waiting;
        waiting = null;
        samples.push(util.hrMicros() - late.start);
        finish(1);
      }, p.duration);
      function one() {
        var mine = ++seq;
        var start = util.hrMicros();
        waiting = {
          seq: mine,
          start: start,
          done: function () {
            waiting = null;
            if (mine > p.warmup) samples.push(util.hrMicros() - start);
            if (samples.length < p.count && util.now() < deadline) setImmediate(one);
            else finish(0);
          }
        };
        bus.publish('ping', mine, pkt);
      }
      function finish(unanswered) {
        if (finished) return;
        finished = true;
        clearTimeout(overdue);
        samples.sort(function (a, b) { return a - b; });
        send({
          bench: 'storm-latency', count: samples.length - unanswered, unanswered: unanswered,
          p50: util.percentile(samples, 50), p99: util.percentile(samples, 99),
          max: samples[samples.length - 1]
        });
      }
      one();
    };
  } else if (index === 2) {
    bus.subscribe('ping', function (seq, pkt) { bus.publish('pong', seq, pkt); }, subscribed);
  } else if (index === 3) {
    var running = false;
    var published = 0;
    bus.subscribe('bench-ready', function () {}, subscribed);
    handlers.storm = function () {
      var pkt = packet(0);
      running = true;
      published = 0;
      (function batch() {
        if (!running) return;
        for (var i = 0; i < p.batch; i++) bus.publish('storm', '', pkt, false, []);
        published += p.batch;
        setImmediate(batch);
      })();
    };
    handlers.report = function () {
      running = false;
      send({ bench: 'storm-count', index: index, published: published, count: 0 });
    };
  } else {
    bus.subscribe('bench-ready', function () {}, subscribed);
  }
}

// ---- per-client data ----------------------------------------------------

function kvScenario() {
  var p = cfg.params;
  var Client = bus.constructor.Client;
  bus.subscribe('bench-ready', function () {}, function () { ready(); });
  handlers.go = function () {
    var ops = 0;
    var errors = 0;
    var firstError = null;
    var running = p.inflight;
    var cpu0 = cpuSnapshot();
    var t0 = util.now();
    var deadline = t0 + p.duration;
    var value = { nickname: 'u1', room: 'lobby', n: 0 };
    function slot(s) {
      var i = 0;
      var fresh = 0;
      function next(err) {
        if (i > 0) {
          if (err) {
            errors++;
            if (!firstError) firstError = String(err && err.message || err);
          } else {
            ops++;
          }
        }
        if (util.now() >= deadline) {
          if (--running === 0) finish();
          return;
        }
        var client;
        if (p.fresh) {
          // A client id never used before: for strong, a lock acquired
          // through the master (its client objects keep the lock, so a
          // seen client is served from the worker's own memory, and a
          // second client object on the same id waits forever).
          client = new Client(bus, 'w' + index + 's' + s + 'f' + (fresh++));
        } else if (p.app) {
          // 512 ids per worker (strong's locks forbid sharing one across
          // workers), 8 keys each, spread so each slot walks all of them.
          var op = (i >> 1) * p.inflight + s;
          client = bus.client('w' + index + 'c' + (op % 512));
          var key = 'k' + ((op >> 9) & 7);
          if ((i++ & 1) === 0) client.set(key, appValue(op), next);
          else client.get(key, next);
          return;
        } else {
          client = bus.client('w' + index + 's' + s + 'c' + ((i >> 1) & 63));
        }
        if ((i++ & 1) === 0) client.set('nickname', value, next);
        else client.get('nickname', next);
      }
      next();
    }
    var reported = false;
    for (var s = 0; s < p.inflight; s++) slot(s);
    // Calls that never come back (a store that hangs) must not hold the
    // run: report them as hung.
    var guard = setTimeout(finish, p.duration + p.grace);
    function finish() {
      if (reported) return;
      reported = true;
      clearTimeout(guard);
      send({ bench: 'kv', index: index, ops: ops, errors: errors, firstError: firstError,
        hung: running, elapsed: Math.min(util.now(), deadline) - t0, cpu: cpuSnapshot() - cpu0 });
    }
  };
}

// ---- connection churn -----------------------------------------------------

function churnScenario() {
  var io = stores.socketio();
  var server = http.createServer();
  var sio = io.listen(server, {
    store: bus,
    'log level': 0,
    log: false,
    transports: ['websocket'],
    'flash policy server': false,
    'browser client': false
  });
  var connections = 0;
  sio.sockets.on('connection', function (socket) {
    connections++;
    socket.on('error', function () {});
  });
  server.listen(cfg.params.port, '127.0.0.1', function () { ready(); });
  handlers.report = function () {
    send({ bench: 'churn-worker', index: index, connections: connections });
  };
}

// ---- memory ---------------------------------------------------------------

function memoryScenario() {
  var p = cfg.params;
  bus.subscribe('bench-ready', function () {}, function () { ready(); });
  function bounded(total, inflight, op, done) {
    var started = 0;
    var finished = 0;
    var errors = 0;
    var firstError = null;
    function next(err) {
      if (err) {
        errors++;
        if (!firstError) firstError = String(err && err.message || err);
      }
      if (started < total) {
        op(started++, after);
      } else if (finished === total) {
        done(errors, firstError);
      }
    }
    function after(err) {
      finished++;
      next(err);
    }
    for (var i = 0; i < inflight && i < total; i++) op(started++, after);
    if (total === 0) done(0, null);
  }
  handlers['mem-clients'] = function () {
    var Client = bus.constructor.Client;
    var t0 = util.now();
    var value = { nickname: 'user' };
    bounded(p.clients, 256, function (i, cb) {
      new Client(bus, 'client-' + i).set('nickname', value, cb);
    }, function (errors, firstError) {
      send({ bench: 'mem-clients-done', elapsed: util.now() - t0, errors: errors,
        firstError: firstError });
    });
  };
  handlers['mem-channels'] = function () {
    var t0 = util.now();
    var consumer = function () {};
    bounded(p.channels, 256, function (i, cb) {
      bus.subscribe('room-' + i, consumer, cb);
    }, function (errors, firstError) {
      send({ bench: 'mem-channels-done', elapsed: util.now() - t0, errors: errors,
        firstError: firstError });
    });
  };
}

var SCENARIOS = {
  publish: publishScenario,
  latency: latencyScenario,
  storm: stormScenario,
  kv: kvScenario,
  churn: churnScenario,
  memory: memoryScenario
};

SCENARIOS[cfg.scenario]();
