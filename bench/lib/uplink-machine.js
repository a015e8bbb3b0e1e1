'use strict';
// One "machine" of bench/uplink.js: a cluster master with WORKERS workers,
// every worker with one store, either ours (the master joined to the
// others through Redis: setup({ redis })) or socket.io 0.9's RedisStore
// (each worker with its own three Redis connections). Driven over IPC by
// bench/uplink.js: every command goes to every worker, and the master
// answers with all their answers.
//
// Environment: UPLINK_STORE ('cluster' | 'redis'), UPLINK_REDIS_PORT,
// UPLINK_WORKERS (2), UPLINK_ALONE (ours without an uplink: one machine).

var cluster = require('cluster');
var path = require('path');

var ROOT = path.join(__dirname, '..', '..');
var STORE = process.env.UPLINK_STORE;
var PORT = Number(process.env.UPLINK_REDIS_PORT);
var WORKERS = Number(process.env.UPLINK_WORKERS || 2);

if (cluster.isPrimary || cluster.isMaster) {
  if (STORE === 'cluster' && process.env.UPLINK_ALONE) require(ROOT).setup();
  else if (STORE === 'cluster') {
    require(ROOT).setup({ redis: 'redis://127.0.0.1:' + PORT + '/0', redisPrefix: 'bench' });
  }
  var workers = [];
  var waiting = new Map(); // command id -> { answers, left }
  for (var i = 0; i < WORKERS; i++) workers.push(cluster.fork());
  var ready = 0;
  workers.forEach(function (w) {
    w.on('message', function (m) {
      if (m.type === 'ready' && ++ready === WORKERS) process.send({ type: 'ready' });
      if (m.type !== 'answer') return;
      var slot = waiting.get(m.id);
      slot.answers[workers.indexOf(w)] = m.value;
      if (--slot.left === 0) {
        waiting.delete(m.id);
        process.send({ type: 'answer', id: m.id, values: slot.answers });
      }
    });
  });
  process.on('message', function (m) {
    if (m.type === 'stats') {
      var stats = STORE === 'cluster' ? require(ROOT).stats() : null;
      process.send({ type: 'answer', id: m.id, values: [stats] });
      return;
    }
    waiting.set(m.id, { answers: [], left: WORKERS });
    workers.forEach(function (w) { w.send(m); });
  });
  process.on('disconnect', function () {
    workers.forEach(function (w) { try { w.process.kill('SIGKILL'); } catch (e) { /* gone */ } });
    process.exit(0);
  });
} else {
  var io = require('socket.io');
  var store;
  if (STORE === 'cluster') {
    store = new (require(ROOT)(io))();
  } else {
    var o = function () { return { port: PORT, host: '127.0.0.1' }; };
    store = new io.RedisStore({ redis: require('redis'), redisPub: o(), redisSub: o(), redisClient: o() });
  }
  var received = 0;
  var answer = function (id, value) { process.send({ type: 'answer', id: id, value: value }); };
  var commands = {
    subscribe: function (m) {
      store.subscribe('bench', function () { received++; }, function () { answer(m.id, true); });
    },
    reset: function (m) { received = 0; answer(m.id, true); },
    count: function (m) { answer(m.id, received); },
    barrier: function (m) {
      if (store._connection) store._connection.catchUp(store._endpoint);
      answer(m.id, true);
    },
    publish: function (m) {
      var payload = 'x'.repeat(m.size);
      var k = 0;
      (function more() {
        for (var j = 0; j < 500 && k < m.n; j++) store.publish('bench', k++, payload);
        if (k < m.n) setImmediate(more);
        else answer(m.id, true);
      })();
    },
    // ops set+get pairs on the data of many clients, `inFlight` at a time:
    // clients named after machine m.tag and this worker's id, so another
    // machine's workers can use the same ones (ours: clients another
    // machine owns).
    kv: function (m) {
      // One client object per id, made before the clock starts: socket.io
      // makes it once per connection (Socket#store) and socket.get/set
      // call it, so a call costs the store's get/set, not a new id string
      // looked up in Store#clients.
      var clients = [];
      for (var i = 0; i < 1000; i++) clients.push(store.client('bench-' + m.tag + '-' + cluster.worker.id + '-' + i));
      var started = process.hrtime.bigint();
      var issued = 0;
      var done = 0;
      var errors = 0;
      function one() {
        if (issued >= m.ops) return;
        var k = issued++;
        var c = clients[k % 1000];
        c.set('key', { n: k, s: 'value' }, function (err) {
          if (err) errors++;
          c.get('key', function (err2) {
            if (err2) errors++;
            done++;
            if (done === m.ops) {
              answer(m.id, { ops: 2 * m.ops, ms: Number(process.hrtime.bigint() - started) / 1e6, errors: errors });
            } else {
              one();
            }
          });
        });
      }
      for (var j = 0; j < m.inFlight; j++) one();
    }
  };
  process.on('message', function (m) { commands[m.cmd](m); });
  // RedisStore's connections need a moment; ours attaches on first use.
  setTimeout(function () { process.send({ type: 'ready' }); }, STORE === 'cluster' ? 0 : 300);
}
