#!/usr/bin/env node
'use strict';
// Past one machine, side by side: 2 machines x 2 workers through one
// redis-server, ours (each machine's broker joined to the others through
// Redis) against socket.io 0.9's RedisStore (each worker with its own
// three connections). Every worker subscribes to one topic, the workers of
// machine A publish, and the workers of machine B count what arrives:
//
//   deliveries/s across machines  what B's workers received / the time from
//                                 the first publish to the last arrival
//   Redis CPU per delivery        Redis's used_cpu_user + used_cpu_sys
//                                 (INFO) over that, / deliveries across
//   get/set ops/s                 every worker of both machines setting and
//                                 reading per-client data, 64 calls in flight
//   connections to Redis          INFO's connected_clients, less the bench's
//
//   node bench/uplink.js [--quick] [--out FILE]     (also: npm run bench -- --only uplink)
//
// Prints a markdown section (and writes it to FILE when given).

var childProcess = require('child_process');
var fs = require('fs');
var path = require('path');
var redisServer = require('../test/support/redis-server');

var MACHINE = path.join(__dirname, 'lib', 'uplink-machine.js');
var quick = process.argv.indexOf('--quick') >= 0;
var outAt = process.argv.indexOf('--out');
var out = outAt >= 0 ? process.argv[outAt + 1] : null;
var PLAN = quick ? { n: 2000, size: 100, ops: 2000, inFlight: 64, timeoutMs: 30000 }
  : { n: 50000, size: 100, ops: 50000, inFlight: 64, timeoutMs: 120000 };

function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

function startMachine(store, port) {
  var child = childProcess.fork(MACHINE, [], {
    env: Object.assign({}, process.env, { UPLINK_STORE: store, UPLINK_REDIS_PORT: String(port), UPLINK_WORKERS: '2' }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  });
  var next = 1;
  var pending = new Map();
  var ready = new Promise(function (resolve, reject) {
    child.on('message', function (m) {
      if (m.type === 'ready') resolve();
      if (m.type === 'answer') {
        pending.get(m.id)(m.values);
        pending.delete(m.id);
      }
    });
    child.on('exit', function (code) { reject(new Error('machine exited (' + code + ')')); });
  });
  return ready.then(function () {
    return {
      ask: function (cmd, extra) {
        var id = next++;
        return new Promise(function (resolve) {
          pending.set(id, resolve);
          child.send(Object.assign({ cmd: cmd, type: cmd, id: id }, extra || {}));
        });
      },
      stop: function () { child.kill('SIGKILL'); }
    };
  });
}

function info(redis, section, field) {
  return redis.command(['INFO', section]).then(function (text) {
    var m = new RegExp('^' + field + ':([\\d.]+)', 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  });
}

function cpu(redis) {
  return Promise.all([info(redis, 'cpu', 'used_cpu_user'), info(redis, 'cpu', 'used_cpu_sys')])
    .then(function (v) { return v[0] + v[1]; });
}

async function measure(store, redis) {
  var a = await startMachine(store, redis.port);
  var b = await startMachine(store, redis.port);
  try {
    await a.ask('subscribe');
    await b.ask('subscribe');
    if (store === 'cluster') {
      var deadline = Date.now() + 10000;
      while (Date.now() < deadline) {
        var s = (await a.ask('stats'))[0];
        if (s.uplinkState === 2 && s.uplinkRemoteTopics > 0) break;
        await sleep(50);
      }
    }
    await a.ask('barrier');
    await b.ask('barrier');
    await b.ask('reset');
    var connections = (await info(redis, 'clients', 'connected_clients')) - 1;
    var want = 2 * 2 * PLAN.n; // each of B's workers hears both of A's
    var cpuBefore = await cpu(redis);
    var t0 = process.hrtime.bigint();
    await a.ask('publish', { n: PLAN.n, size: PLAN.size });
    var got = 0;
    var until = Date.now() + PLAN.timeoutMs;
    while (Date.now() < until) {
      got = (await b.ask('count')).reduce(function (x, y) { return x + y; }, 0);
      if (got >= want) break;
      await sleep(5);
    }
    var seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    var cpuUsed = (await cpu(redis)) - cpuBefore;
    var kv = (await a.ask('kv', { ops: PLAN.ops, inFlight: PLAN.inFlight }));
    var kvB = (await b.ask('kv', { ops: PLAN.ops, inFlight: PLAN.inFlight }));
    // Both machines at once would be fairer to Redis; one at a time shows
    // each machine's path the same way for both stores.
    var all = kv.concat(kvB);
    var ops = all.reduce(function (x, r) { return x + r.ops; }, 0);
    var ms = Math.max.apply(null, kv.map(function (r) { return r.ms; })) +
      Math.max.apply(null, kvB.map(function (r) { return r.ms; }));
    return {
      delivered: got, wanted: want, deliveriesPerSecond: got / seconds,
      redisCpuPerDelivery: got ? cpuUsed / got : NaN,
      kvOpsPerSecond: ops / (ms / 1000),
      kvErrors: all.reduce(function (x, r) { return x + r.errors; }, 0),
      connections: connections
    };
  } finally {
    a.stop();
    b.stop();
  }
}

function fmt(n, digits) {
  if (!isFinite(n)) return 'n/a';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits === undefined ? 2 : digits);
}

async function main() {
  var redis = await redisServer.start();
  if (!redis) {
    process.stdout.write('## Past one machine\n\nskipped: ' + redisServer.BINARY + ' is not installed\n');
    return;
  }
  var results = {};
  try {
    for (var store of ['cluster', 'redis']) {
      await redis.command(['FLUSHALL']);
      await sleep(300); // the last machines' connections go
      process.stderr.write('  uplink ' + store + '...\n');
      results[store] = await measure(store, redis);
      await sleep(300);
    }
  } finally {
    await redis.stop();
  }
  var c = results.cluster;
  var r = results.redis;
  var rows = [
    ['deliveries/s across machines', fmt(c.deliveriesPerSecond), fmt(r.deliveriesPerSecond),
      fmt(c.deliveriesPerSecond / r.deliveriesPerSecond) + '×', '≥ 5×'],
    ['Redis CPU µs per delivery', fmt(c.redisCpuPerDelivery * 1e6), fmt(r.redisCpuPerDelivery * 1e6),
      fmt(c.redisCpuPerDelivery / r.redisCpuPerDelivery) + '×', '≤ 0.2×'],
    ['per-client get/set ops/s', fmt(c.kvOpsPerSecond), fmt(r.kvOpsPerSecond),
      fmt(c.kvOpsPerSecond / r.kvOpsPerSecond) + '×', '≥ 3×'],
    ['connections to Redis', String(c.connections), String(r.connections), '', '']
  ];
  var text = ['## Past one machine: 2 machines × 2 workers through one redis-server', '',
    '| | ours | RedisStore | ours ÷ RedisStore | target |', '|---|---:|---:|---:|---|']
    .concat(rows.map(function (row) { return '| ' + row.join(' | ') + ' |'; }))
    .concat(['', '- ' + (quick ? 'quick run (a smoke test): ' : '') + PLAN.n + ' messages of ' + PLAN.size +
      ' bytes from each of machine A\'s workers; delivered across: ours ' + c.delivered + '/' + c.wanted +
      ', RedisStore ' + r.delivered + '/' + r.wanted + '; ' + PLAN.ops + ' set+get pairs per worker, ' +
      PLAN.inFlight + ' in flight; data errors: ours ' + c.kvErrors + ', RedisStore ' + r.kvErrors + '.', ''])
    .join('\n');
  process.stdout.write(text + '\n');
  if (out) fs.writeFileSync(out, text + '\n');
}

main().catch(function (err) {
  process.stderr.write('bench/uplink: ' + (err && err.stack || err) + '\n');
  process.exit(1);
});
