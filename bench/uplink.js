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
//   get/set ops/s                 the workers of each machine setting and
//                                 reading per-client data, 64 calls in flight
//                                 a worker: on their own machine's clients,
//                                 then B's on A's (ours: routed to their
//                                 owner)
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
  : { n: 150000, size: 100, ops: 250000, inFlight: 64, timeoutMs: 120000 };
var ROUNDS = quick ? 1 : 5;

function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

function startMachine(store, port, alone) {
  var child = childProcess.fork(MACHINE, [], {
    env: Object.assign({}, process.env, { UPLINK_STORE: store, UPLINK_REDIS_PORT: String(port), UPLINK_WORKERS: '2' },
      alone ? { UPLINK_ALONE: '1' } : {}),
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

// The machines of one store: A and B, each subscribed, the uplinks up.
async function startPair(store, redis) {
  var a = await startMachine(store, redis.port);
  var b = await startMachine(store, redis.port);
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
  return { a: a, b: b, round: 0 };
}

// kv on machine m's workers with the clients of machine `tag`: ops/s.
async function kvRate(m, tag) {
  var r = await m.ask('kv', { ops: PLAN.ops, inFlight: PLAN.inFlight, tag: tag });
  var ops = r.reduce(function (x, y) { return x + y.ops; }, 0);
  var ms = Math.max.apply(null, r.map(function (y) { return y.ms; }));
  return { rate: ops / (ms / 1000), errors: r.reduce(function (x, y) { return x + y.errors; }, 0) };
}

// One round for one store: deliveries across, then per-client data.
async function measure(pair, redis) {
  var a = pair.a;
  var b = pair.b;
  var round = pair.round++;
  await b.ask('reset');
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
  // Each machine on its own clients (A's, then B's: the same path for
  // both stores), then B on A's (ours: clients another machine owns).
  var own = [await kvRate(a, 'A' + round), await kvRate(b, 'B' + round)];
  var other = await kvRate(b, 'A' + round);
  return {
    delivered: got, wanted: want, deliveriesPerSecond: got / seconds,
    redisCpuPerDelivery: got ? cpuUsed / got : NaN,
    kvOpsPerSecond: 2 / (1 / own[0].rate + 1 / own[1].rate),
    kvOtherOpsPerSecond: other.rate,
    kvErrors: own[0].errors + own[1].errors + other.errors
  };
}

function fmt(n, digits) {
  if (!isFinite(n)) return 'n/a';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits === undefined ? 2 : digits);
}

function median(list) {
  var sorted = list.slice().sort(function (x, y) { return x - y; });
  var mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  var redis = await redisServer.start();
  if (!redis) {
    process.stdout.write('## Past one machine\n\nskipped: ' + redisServer.BINARY + ' is not installed\n');
    return;
  }
  var stores = ['cluster', 'redis'];
  var rounds = { cluster: [], redis: [], alone: [] };
  var connections = {};
  var pairs = {};
  try {
    // Both stores' machines stay up; the stores take turns, ROUNDS times,
    // so a busy moment of the machine falls on both.
    for (var store of stores) {
      var before = await info(redis, 'clients', 'connected_clients');
      pairs[store] = await startPair(store, redis);
      await sleep(300);
      connections[store] = (await info(redis, 'clients', 'connected_clients')) - before;
    }
    // Ours on one machine, no uplink: what per-client calls cost without
    // Redis at all, the ceiling for a machine's calls on its own clients.
    pairs.alone = { a: await startMachine('cluster', redis.port, true) };
    pairs.alone.b = pairs.alone.a;
    for (var round = 0; round < ROUNDS; round++) {
      for (var name of stores) {
        process.stderr.write('  uplink ' + name + ' round ' + (round + 1) + '...\n');
        rounds[name].push(await measure(pairs[name], redis));
      }
      process.stderr.write('  uplink alone round ' + (round + 1) + '...\n');
      rounds.alone.push({ kvOpsPerSecond: (await kvRate(pairs.alone.a, 'L' + round)).rate });
    }
  } finally {
    for (var key in pairs) {
      pairs[key].a.stop();
      if (pairs[key].b !== pairs[key].a) pairs[key].b.stop();
    }
    await redis.stop();
  }
  function med(name, field) { return median(rounds[name].map(function (r) { return r[field]; })); }
  function ratios(field) {
    return rounds.cluster.map(function (r, i) { return r[field] / rounds.redis[i][field]; });
  }
  function ratioCell(field) {
    var list = ratios(field);
    var text = fmt(median(list)) + '×';
    if (list.length > 1) text += ' (' + fmt(Math.min.apply(null, list)) + '–' + fmt(Math.max.apply(null, list)) + ')';
    return text;
  }
  var rows = [
    ['deliveries/s across machines', fmt(med('cluster', 'deliveriesPerSecond')), fmt(med('redis', 'deliveriesPerSecond')),
      ratioCell('deliveriesPerSecond'), '≥ 5×'],
    ['Redis CPU µs per delivery', fmt(med('cluster', 'redisCpuPerDelivery') * 1e6), fmt(med('redis', 'redisCpuPerDelivery') * 1e6),
      ratioCell('redisCpuPerDelivery'), '≤ 0.2×'],
    ['per-client get/set ops/s', fmt(med('cluster', 'kvOpsPerSecond')), fmt(med('redis', 'kvOpsPerSecond')),
      ratioCell('kvOpsPerSecond'), '≥ 3×'],
    ['… ours on one machine without an uplink (the ceiling)', fmt(med('alone', 'kvOpsPerSecond')), '',
      fmt(median(rounds.alone.map(function (r, i) { return r.kvOpsPerSecond / rounds.redis[i].kvOpsPerSecond; }))) + '×', ''],
    ['… on clients another machine owns', fmt(med('cluster', 'kvOtherOpsPerSecond')), fmt(med('redis', 'kvOtherOpsPerSecond')),
      ratioCell('kvOtherOpsPerSecond'), ''],
    ['connections to Redis', String(connections.cluster), String(connections.redis), '', '']
  ];
  var delivered = function (name) {
    return rounds[name].map(function (r) { return r.delivered + '/' + r.wanted; }).join(', ');
  };
  var errors = function (name) { return rounds[name].reduce(function (x, r) { return x + r.kvErrors; }, 0); };
  var text = ['## Past one machine: 2 machines × 2 workers through one redis-server', '',
    '| | ours | RedisStore | ours ÷ RedisStore | target |', '|---|---:|---:|---:|---|']
    .concat(rows.map(function (row) { return '| ' + row.join(' | ') + ' |'; }))
    .concat(['', '- ' + (quick ? 'quick run (a smoke test): ' : '') + ROUNDS + ' rounds, the stores taking turns; ' +
      'medians, and the ratio\'s range over the rounds in brackets. ' + PLAN.n + ' messages of ' + PLAN.size +
      ' bytes from each of machine A\'s workers; delivered across: ours ' + delivered('cluster') +
      ', RedisStore ' + delivered('redis') + '; ' + PLAN.ops + ' set+get pairs per worker, ' + PLAN.inFlight +
      ' in flight, on 1000 clients a worker: each machine on its own (harmonic mean of A\'s and B\'s rates), ' +
      'then B\'s workers on A\'s clients; data errors: ours ' + errors('cluster') + ', RedisStore ' +
      errors('redis') + '.', ''])
    .join('\n');
  process.stdout.write(text + '\n');
  if (out) fs.writeFileSync(out, text + '\n');
}

main().catch(function (err) {
  process.stderr.write('bench/uplink: ' + (err && err.stack || err) + '\n');
  process.exit(1);
});
