#!/usr/bin/env node
'use strict';
// socket.io 4 adapters side by side: ours (`store`, socket.io-cluster-store/
// adapter), @socket.io/cluster-adapter (`cluster`, process.send through the
// primary's JavaScript), @socket.io/redis-adapter (`redis`, redis 4 client,
// on a redis-server this bench starts) and the ceiling (`none`: socket.io's
// in-memory adapter, each worker emitting to its own clients), with 2 and 4
// workers:
//
//   - serverSideEmit from one worker: deliveries/s at the others, and the
//     primary's CPU per delivery (process.cpuUsage of the primary);
//   - io.emit from one worker to clients connected to the others:
//     deliveries/s, and the primary's CPU per delivery; `none` has every
//     worker but the first io.emit to its own clients at once, which is
//     the same per-client work with no adapter at all;
//   - serverSideEmit with an ack, and fetchSockets(): round trip p50/p99,
//     on a quiet cluster (after 200 of them, not timed), then while
//     another worker broadcasts as fast as it can (after a warm-up flood
//     of the same, drained);
//   - with connectionStateRecovery on (a case of its own), socket.emit to
//     the clients of one worker: deliveries/s (socket.io makes every one a
//     broadcast through the adapter; ours keeps it for recovery).
//
// A rate is what was delivered over the time from the first send to the
// last delivery: the sender floods for floodMs, then the bench waits until
// every receiver got everything (or nothing more came for stallMs, or
// maxDrainMs passed). An adapter without flow control (cluster-adapter's
// primary, Redis) queues what its receivers cannot take yet; that queue
// is drained and timed too, so a fast sender with slow receivers is not
// counted as fast deliveries.
//
//   node bench/adapter.js [--quick] [--adapters store,cluster,redis,none] [--workers 2,4]
//     [--phases sse,emit,rt,load,csr] [--repeat N] [--out FILE] [--profile DIR]
//   npm run bench -- --only adapter [--quick]
//
// Every case runs in a fresh primary (this file, BENCH_ADAPTER_ROLE=primary)
// in its own process group, killed at the end; every phase is bounded in
// count and time. Writes markdown to bench/results/adapter.md, and the raw
// figures to adapter.json beside it.

var childProcess = require('child_process');
var cluster = require('cluster');
var fs = require('fs');
var net = require('net');
var os = require('os');
var path = require('path');

var ROLE = process.env.BENCH_ADAPTER_ROLE || 'driver';
var ADAPTERS = ['store', 'baseline', 'cluster', 'redis', 'none'];
var PHASES = ['sse', 'emit', 'rt', 'load', 'csr'];
var REDIS_PORT = 31381;
var ROOT = path.join(__dirname, '..');
// BENCH_BASELINE=/other/checkout (its addon built) adds the adapter
// `baseline`: that build of this package, to compare two builds in one run.
var BASELINE = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : null;
var threadsCpuMs = require('./lib/bench-util').processThreadsCpuMs;

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))];
}

function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

// ---- worker: a socket.io 4 server with the adapter under test -------------

async function worker() {
  var cfg = JSON.parse(process.env.BENCH_ADAPTER_CFG);
  var http = require('http');
  var Server = require('socket.io-v4').Server;
  var ioc = require('socket.io-client-v4').io;
  var adapter;
  if (cfg.adapter === 'store') adapter = require(path.join(ROOT, 'adapter')).createAdapter();
  else if (cfg.adapter === 'baseline') adapter = require(path.join(BASELINE, 'adapter')).createAdapter();
  else if (cfg.adapter === 'cluster') adapter = require('@socket.io/cluster-adapter').createAdapter();
  else if (cfg.adapter === 'redis') {
    var redis = require('redis4');
    var pub = redis.createClient({ url: 'redis://127.0.0.1:' + REDIS_PORT });
    var sub = pub.duplicate();
    // An 'error' without a listener would end the worker: report it, the
    // client reconnects by itself (and the figures show what was lost).
    [pub, sub].forEach(function (c) {
      c.on('error', function (err) { process.stderr.write('redis client: ' + err.message + '\n'); });
    });
    await Promise.all([pub.connect(), sub.connect()]);
    adapter = require('@socket.io/redis-adapter').createAdapter(pub, sub);
  }
  var httpServer = http.createServer();
  var io = new Server(httpServer, { adapter: adapter,
    connectionStateRecovery: cfg.csr ? { maxDisconnectionDuration: 120000 } : undefined });
  // first/last: when the first and the last of them arrived (Date.now(),
  // comparable across the processes of the machine).
  var counts = { sse: 0, client: 0, first: 0, last: 0 };
  function arrived() {
    var t = Date.now();
    if (counts.first === 0) counts.first = t;
    counts.last = t;
  }
  io.on('b', function () { counts.sse++; arrived(); });
  io.on('p', function (cb) { cb(1); });
  await new Promise(function (r) { httpServer.listen({ port: 0, host: '127.0.0.1', exclusive: true }, r); });
  var port = httpServer.address().port;
  var clients = [];
  var flooding = false;

  async function flood(kind, ms, batch) {
    flooding = true;
    var start = Date.now();
    var end = start + ms;
    var sent = 0;
    while (flooding && Date.now() < end) {
      var sockets = kind === 'semit' ? Array.from(io.of('/').sockets.values()) : null;
      for (var i = 0; i < batch; i++) {
        if (kind === 'sse') io.serverSideEmit('b', sent);
        else if (kind === 'semit') sockets[sent % sockets.length].emit('e', sent);
        else io.emit('e', sent);
        sent++;
      }
      await new Promise(setImmediate);
    }
    flooding = false;
    return { sent: sent, start: start, end: Date.now() };
  }

  function request(kind) {
    return kind === 'sse' ? io.serverSideEmitWithAck('p') : io.fetchSockets();
  }

  // A request that fails (a timeout: the adapter's own, 5 s) counts with
  // the time it took, and is counted apart. warm requests go first,
  // not timed, as a rate's warm-up flood: the first ones of a phase run
  // code the JIT has not compiled yet, on every server.
  async function roundTrips(kind, count, ms, warm) {
    for (var w = 0; w < (warm || 0); w++) {
      try {
        await request(kind);
      } catch (err) {
        break; // (the timed ones count failures)
      }
    }
    var times = [];
    var failed = 0;
    var end = Date.now() + ms;
    for (var i = 0; i < count && Date.now() < end; i++) {
      var t0 = process.hrtime.bigint();
      try {
        await request(kind);
      } catch (err) {
        failed++;
      }
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    times.sort(function (a, b) { return a - b; });
    return { count: times.length, failed: failed, p50: percentile(times, 50), p99: percentile(times, 99) };
  }

  process.on('message', async function (m) {
    if (m && m.cmd === 'exit') process.exit(0);
    if (!m || m.id === undefined) return;
    var reply = { id: m.id };
    try {
      if (m.cmd === 'count') reply.value = cfg.adapter === 'none' ? 1 : await io.of('/').adapter.serverCount();
      else if (m.cmd === 'clients') {
        for (var i = 0; i < m.n; i++) {
          var c = ioc('http://127.0.0.1:' + port, { transports: ['websocket'], forceNew: true });
          c.on('e', function () { counts.client++; arrived(); });
          clients.push(c);
          await new Promise(function (r) { c.once('connect', r); });
        }
        reply.value = clients.length;
      } else if (m.cmd === 'reset') {
        counts.sse = 0;
        counts.client = 0;
        counts.first = 0;
        counts.last = 0;
        reply.value = true;
      } else if (m.cmd === 'counts') reply.value = counts;
      else if (m.cmd === 'cpu') {
        var used = process.cpuUsage();
        reply.value = used.user + used.system;
      } else if (m.cmd === 'flood') reply.value = await flood(m.kind, m.ms, m.batch);
      else if (m.cmd === 'stop') { flooding = false; reply.value = true; }
      else if (m.cmd === 'rt') reply.value = await roundTrips(m.kind, m.count, m.ms, m.warm);
    } catch (err) {
      reply.error = err.message;
    }
    process.send(reply);
  });
  process.send({ ready: port });
}

// ---- primary: one case (an adapter, a number of workers) -------------------

async function primary() {
  var cfg = JSON.parse(process.env.BENCH_ADAPTER_CFG);
  if (cfg.adapter === 'store') require(path.join(ROOT, 'adapter')).setupPrimary();
  else if (cfg.adapter === 'baseline') require(path.join(BASELINE, 'adapter')).setupPrimary();
  else if (cfg.adapter === 'cluster') require('@socket.io/cluster-adapter').setupPrimary();
  // --profile DIR: the workers write CPU profiles there (they exit on
  // their own at the end, so that node writes them).
  cluster.setupPrimary({ exec: __filename,
    execArgv: cfg.profile ? ['--cpu-prof', '--cpu-prof-dir=' + cfg.profile] : process.execArgv });
  var workers = [];
  var nextId = 1;
  var waiting = new Map();
  for (var i = 0; i < cfg.workers; i++) {
    var w = cluster.fork({ BENCH_ADAPTER_ROLE: 'worker', BENCH_ADAPTER_CFG: process.env.BENCH_ADAPTER_CFG });
    workers.push(w);
  }
  await Promise.all(workers.map(function (w) {
    return new Promise(function (resolve) {
      w.on('message', function (m) {
        if (m && m.ready) return resolve();
        if (m && m.id && waiting.has(m.id)) {
          var cb = waiting.get(m.id);
          waiting.delete(m.id);
          cb(m);
        }
      });
    });
  }));
  function ask(w, m) {
    return new Promise(function (resolve, reject) {
      m.id = nextId++;
      waiting.set(m.id, function (r) {
        if (r.error) reject(new Error(m.cmd + (m.kind ? ' ' + m.kind : '') + ': ' + r.error));
        else resolve(r.value);
      });
      w.send(m);
    });
  }
  function all(m) { return Promise.all(workers.map(function (w) { return ask(w, Object.assign({}, m)); })); }
  // Every server must know the others (cluster-adapter learns it from heartbeats).
  for (var tries = 0; ; tries++) {
    var counts = await all({ cmd: 'count' });
    if (counts.every(function (c) { return c === (cfg.adapter === 'none' ? 1 : cfg.workers); })) break;
    if (tries > 200) throw new Error('servers never saw each other: ' + counts.join(','));
    await sleep(50);
  }
  var p = cfg.params;
  var out = {};
  function phase(name) { return !cfg.phases || cfg.phases.indexOf(name) >= 0; }
  var others = workers.slice(1);

  // Floods from senders for ms, then waits until receivers got what was
  // sent (expectedOf(sent) deliveries in all), or nothing more came for
  // stallMs, or maxDrainMs passed. Returns what the floods and the
  // receivers' last counts said.
  async function floodAndDrain(kind, senders, receivers, ms, expectedOf) {
    await all({ cmd: 'reset' });
    var floods = await Promise.all(senders.map(function (w) {
      return ask(w, { cmd: 'flood', kind: kind, ms: ms, batch: p.batch });
    }));
    var sent = floods.reduce(function (s, f) { return s + f.sent; }, 0);
    var expected = expectedOf(sent);
    var deadline = Date.now() + p.maxDrainMs;
    var delivered = -1;
    var changed = Date.now();
    var got;
    for (;;) {
      got = await Promise.all(receivers.map(function (w) { return ask(w, { cmd: 'counts' }); }));
      var now = got.reduce(function (s, c) { return s + (kind === 'sse' ? c.sse : c.client); }, 0);
      if (now !== delivered) changed = Date.now();
      delivered = now;
      if (delivered >= expected || Date.now() - changed > p.stallMs || Date.now() > deadline) break;
      await sleep(100);
    }
    return { sent: sent, expected: expected, delivered: delivered,
      start: Math.min.apply(null, floods.map(function (f) { return f.start; })),
      last: Math.max.apply(null, got.map(function (c) { return c.last; })) };
  }

  // A rate: a short flood first, not counted (the JIT warms up on it), then
  // floodMs (times floodScale) of it. The rate is over the time from the
  // first send to the last delivery.
  async function measure(kind, senders, receivers, expectedOf, floodScale) {
    if (p.warmMs) await floodAndDrain(kind, senders, receivers, p.warmMs, expectedOf);
    var workersCpu0 = await all({ cmd: 'cpu' });
    var redisCpu0 = cfg.redisPid ? threadsCpuMs(cfg.redisPid).total : 0;
    var cpu0 = process.cpuUsage();
    var threads0 = threadsCpuMs(process.pid);
    var floodMs = p.floodMs * (floodScale || 1);
    var r = await floodAndDrain(kind, senders, receivers, floodMs, expectedOf);
    var sent = r.sent;
    var expected = r.expected;
    var delivered = r.delivered;
    var cpu = process.cpuUsage(cpu0);
    var threads = threadsCpuMs(process.pid);
    var workersCpu = await all({ cmd: 'cpu' });
    var allUs = cpu.user + cpu.system + (cfg.redisPid ? 1000 * (threadsCpuMs(cfg.redisPid).total - redisCpu0) : 0);
    workersCpu.forEach(function (us, i) { allUs += us - workersCpu0[i]; });
    var seconds = (r.last - r.start) / 1000;
    return { sent: sent, expected: expected, delivered: delivered, seconds: seconds,
      floodSeconds: floodMs / 1000,
      rate: delivered > 0 && seconds > 0 ? delivered / seconds : NaN,
      primaryUsPerDelivery: delivered > 0 ? (cpu.user + cpu.system) / delivered : NaN,
      // The primary's JavaScript thread alone (ours routes on another
      // thread of the primary, counted in the figure above).
      primaryJsUsPerDelivery: delivered > 0 ? 1000 * (threads.main - threads0.main) / delivered : NaN,
      // Every process of the case (the primary, the workers, redis-server):
      // what a delivery costs the machine, whatever else runs on it.
      allUsPerDelivery: delivered > 0 ? allUs / delivered : NaN };
  }

  async function done() {
    if (cfg.profile) {
      await Promise.all(workers.map(function (w) {
        return new Promise(function (resolve) {
          w.on('exit', resolve);
          w.send({ cmd: 'exit' });
          setTimeout(resolve, 10000);
        });
      }));
    }
    process.send({ result: out });
    workers.forEach(function (w) { w.process.kill('SIGKILL'); });
    setTimeout(function () { process.exit(0); }, 100);
  }

  // Connection state recovery: socket.emit to the clients of one worker.
  if (cfg.csr) {
    await ask(workers[0], { cmd: 'clients', n: p.clients });
    out.semit = await measure('semit', [workers[0]], [workers[0]], function (sent) { return sent; });
    return done();
  }

  await Promise.all(others.map(function (w) { return ask(w, { cmd: 'clients', n: p.clients }); }));
  if (cfg.adapter === 'none') {
    // The ceiling: the same clients, each worker emitting to its own.
    // Three times the flood: it drains as it goes, so this keeps the time
    // it is measured over near that of an adapter's flood and drain.
    if (phase('emit')) {
      out.emit = await measure('emit', others, others, function (sent) { return sent * p.clients; }, 3);
    }
    return done();
  }
  if (phase('sse')) out.sse = await measure('sse', [workers[0]], others, function (sent) { return sent * others.length; });
  if (phase('emit')) {
    out.emit = await measure('emit', [workers[0]], others, function (sent) {
      return sent * others.length * p.clients;
    });
  }
  if (phase('rt')) {
    out.sseAck = await ask(workers[0], { cmd: 'rt', kind: 'sse', count: p.rtCount, ms: p.rtMs, warm: p.rtWarm });
    out.fetch = await ask(workers[0], { cmd: 'rt', kind: 'fetch', count: p.rtCount, ms: p.rtMs, warm: p.rtWarm });
  }
  if (!phase('load')) return done();
  // Under load: worker 2 broadcasts to its clients' peers as fast as it can.
  // First a short flood of the same, drained and not measured, as before
  // every rate: the first broadcasts a server ever receives run code the
  // JIT has not compiled yet, a start-up cost, not load (in traces the
  // first round trip after a cold start took 0.8-1.1 s, the later ones
  // under 0.3 s).
  if (p.warmMs) {
    await floodAndDrain('emit', [workers[1]], workers.slice(1), p.warmMs, function (sent) {
      return sent * (workers.length - 1) * p.clients;
    });
  }
  var loader = ask(workers[1], { cmd: 'flood', kind: 'emit', ms: p.rtMs * 2 + 2000, batch: p.batch });
  await sleep(100);
  out.sseAckLoaded = await ask(workers[0], { cmd: 'rt', kind: 'sse', count: p.rtCount, ms: p.rtMs });
  out.fetchLoaded = await ask(workers[0], { cmd: 'rt', kind: 'fetch', count: p.rtCount, ms: p.rtMs });
  await ask(workers[1], { cmd: 'stop' });
  await loader;
  done();
}

// ---- driver -----------------------------------------------------------------

function parseArgs(argv) {
  var opts = { quick: false, adapters: ADAPTERS.filter(function (a) { return a !== 'baseline' || BASELINE; }), workers: [2, 4], phases: PHASES.slice(), repeat: 1,
    out: path.join(__dirname, 'results', 'adapter.md') };
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--adapters') opts.adapters = argv[++i].split(',');
    else if (a === '--workers') opts.workers = argv[++i].split(',').map(Number);
    else if (a === '--out') opts.out = path.resolve(argv[++i]);
    else if (a === '--profile') opts.profile = path.resolve(argv[++i]);
    else if (a === '--phases') opts.phases = argv[++i].split(',');
    else if (a === '--repeat') opts.repeat = Math.max(1, parseInt(argv[++i], 10) || 1);
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node bench/adapter.js [--quick] [--adapters ' + ADAPTERS.join(',') +
        '] [--workers 2,4] [--phases ' + PHASES.join(',') + '] [--repeat N] [--out FILE] [--profile DIR]\n');
      process.exit(0);
    } else {
      process.stderr.write('unknown option ' + a + '\n');
      process.exit(2);
    }
  }
  opts.adapters.forEach(function (x) {
    if (ADAPTERS.indexOf(x) < 0) { process.stderr.write('unknown adapter ' + x + '\n'); process.exit(2); }
    if (x === 'baseline' && !BASELINE) {
      process.stderr.write('the adapter baseline needs BENCH_BASELINE=/other/checkout\n');
      process.exit(2);
    }
  });
  return opts;
}

function redisPing(cb) {
  var sock = net.connect(REDIS_PORT, '127.0.0.1');
  var done = false;
  function end(ok) { if (!done) { done = true; sock.destroy(); cb(ok); } }
  sock.on('connect', function () { sock.write('PING\r\n'); });
  sock.on('data', function (d) { end(/PONG/.test(String(d))); });
  sock.on('error', function () { end(false); });
  setTimeout(function () { end(false); }, 500);
}

// A fresh redis-server on 127.0.0.1:REDIS_PORT, saving nothing. Its pub/sub
// output buffers are not limited: by default Redis disconnects a
// subscriber more than 32 MiB behind, and the flood would then measure
// reconnections (cluster-adapter's primary does not limit its queues
// either). Returns { pid, stop }; also killed when this process exits,
// however it exits. Refuses a port another redis-server already holds
// (its figures would be that one's).
async function startRedis() {
  if (await new Promise(redisPing)) throw new Error('port ' + REDIS_PORT + ' is taken by another redis-server');
  var dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-adapter-redis-'));
  var child = childProcess.spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1',
    '--dir', dir, '--save', '', '--appendonly', 'no', '--client-output-buffer-limit', 'pubsub 0 0 0'],
  { stdio: 'ignore' });
  var failed = null;
  function stop() {
    try { child.kill('SIGKILL'); } catch (e) { /* gone */ }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.on('exit', stop);
  ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGPIPE'].forEach(function (sig) {
    process.on(sig, function () { process.exit(1); });
  });
  child.on('error', function (e) { failed = e; });
  child.on('exit', function (code) { failed = failed || new Error('exited (' + code + ')'); });
  for (var i = 0; i < 100 && !failed; i++) {
    if (await new Promise(redisPing)) return { pid: child.pid, stop: stop };
    await sleep(50);
  }
  stop();
  throw new Error('redis-server did not start' + (failed ? ': ' + failed.message : ''));
}

function runCase(cfg, timeoutMs) {
  return new Promise(function (resolve) {
    var child = childProcess.spawn(process.execPath, [__filename], { detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: Object.assign({}, process.env, { BENCH_ADAPTER_ROLE: 'primary', DEBUG: '',
        BENCH_ADAPTER_CFG: JSON.stringify(cfg) }) });
    var stderr = '';
    child.stderr.on('data', function (d) { if (stderr.length < 4000) stderr = (stderr + d).slice(0, 4000); });
    var finished = false;
    function kill() {
      try { process.kill(-child.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    }
    process.on('exit', kill);
    function finish(v) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      kill();
      process.removeListener('exit', kill);
      resolve(v);
    }
    var timer = setTimeout(function () { finish({ error: 'timed out' }); }, timeoutMs);
    child.on('message', function (m) { if (m && m.result) finish({ result: m.result }); });
    child.on('exit', function (code) {
      finish({ error: 'exited (' + code + '): ' + stderr.trim().split('\n').slice(0, 2).join(' | ') });
    });
  });
}

// The rounds of one case as one result: each figure the median of the
// rounds that ran (an error only when every round failed).
function medianOfRounds(list) {
  var ok = list.filter(function (r) { return r.result; });
  if (!ok.length) return list[0];
  return { result: median(ok.map(function (r) { return r.result; })), rounds: list.length, failedRounds: list.length - ok.length };
}

function median(values) {
  var first = values[0];
  if (typeof first === 'number') {
    var nums = values.filter(function (v) { return typeof v === 'number' && isFinite(v); })
      .sort(function (a, b) { return a - b; });
    return nums.length ? nums[(nums.length - 1) >> 1] : first;
  }
  if (first && typeof first === 'object') {
    var out = {};
    Object.keys(first).forEach(function (k) {
      out[k] = median(values.map(function (v) { return v && v[k]; }));
    });
    return out;
  }
  return first;
}

function fmt(v, d) {
  if (typeof v !== 'number' || !isFinite(v)) return '–';
  return d === undefined ? Math.round(v).toLocaleString('en-US') : v.toFixed(d);
}

// A rate, with the share delivered when not everything was.
function fmtRate(x) {
  if (!x) return '–';
  var text = fmt(x.rate);
  if (x.delivered < x.expected) text += ' (' + (100 * x.delivered / x.expected).toFixed(0) + ' % delivered)';
  return text;
}

function fmtTrips(x) {
  if (!x) return '–';
  return fmt(x.p50) + ' / ' + fmt(x.p99) + (x.failed ? ' (' + x.failed + ' of ' + x.count + ' failed)' : '');
}

async function driver() {
  var opts = parseArgs(process.argv.slice(2));
  var params = opts.quick ?
    { warmMs: 0, floodMs: 300, stallMs: 1000, maxDrainMs: 3000, batch: 200, clients: 2, rtCount: 100, rtMs: 1000,
      rtWarm: 0 } :
    { warmMs: 300, floodMs: 2000, stallMs: 3000, maxDrainMs: 30000, batch: 500, clients: 10, rtCount: 2000,
      rtMs: 5000, rtWarm: 200 };
  var redisPid = 0;
  var stopRedis = null;
  if (opts.adapters.indexOf('redis') >= 0) {
    try {
      var redis = await startRedis();
      redisPid = redis.pid;
      stopRedis = redis.stop;
    } catch (err) {
      process.stderr.write('bench: redis skipped: ' + err.message + '\n');
      opts.adapters = opts.adapters.filter(function (a) { return a !== 'redis'; });
    }
  }
  var rounds = {}; // case -> the results of each round
  var started = Date.now();
  var caseMs = 60000 + 2 * (params.floodMs + params.maxDrainMs) + 4 * params.rtMs;
  async function runOne(cfg, key, label) {
    process.stderr.write('bench: ' + (opts.repeat > 1 ? 'round ' + (round + 1) + ', ' : '') + 'adapter ' +
      cfg.adapter + ', ' + cfg.workers + ' workers' + label + ' ... ');
    var r = await runCase(cfg, caseMs);
    process.stderr.write((r.error ? 'error: ' + r.error : 'done') + '\n');
    (rounds[key] = rounds[key] || []).push(r);
  }
  // With --repeat, the adapters take turns, round after round, so that a
  // change in the machine's load falls on every column alike.
  for (var round = 0; round < opts.repeat; round++) {
    for (var wi = 0; wi < opts.workers.length; wi++) {
      for (var ai = 0; ai < opts.adapters.length; ai++) {
        var cfg = { adapter: opts.adapters[ai], workers: opts.workers[wi], params: params,
          profile: opts.profile, phases: opts.phases, redisPid: opts.adapters[ai] === 'redis' ? redisPid : 0 };
        await runOne(cfg, cfg.workers + 'w ' + cfg.adapter, '');
        if (cfg.adapter === 'none' || opts.phases.indexOf('csr') < 0) continue;
        await runOne(Object.assign({}, cfg, { csr: true, phases: undefined }), cfg.workers + 'w ' + cfg.adapter + ' csr',
          ', connectionStateRecovery');
      }
    }
  }
  var results = {};
  Object.keys(rounds).forEach(function (key) { results[key] = medianOfRounds(rounds[key]); });
  if (stopRedis) stopRedis();
  var rows = [
    ['serverSideEmit, deliveries/s', function (x) { return fmtRate(x.sse); }],
    ['serverSideEmit, primary CPU per delivery (µs)', function (x) { return fmt(x.sse && x.sse.primaryUsPerDelivery, 2); }],
    ['serverSideEmit, primary JavaScript thread CPU per delivery (µs)', function (x) { return fmt(x.sse && x.sse.primaryJsUsPerDelivery, 2); }],
    ['serverSideEmit, CPU per delivery, all processes (µs)', function (x) { return fmt(x.sse && x.sse.allUsPerDelivery, 2); }],
    ['io.emit to clients on other workers, deliveries/s', function (x) { return fmtRate(x.emit); }],
    ['io.emit, primary CPU per delivery (µs)', function (x) { return fmt(x.emit && x.emit.primaryUsPerDelivery, 2); }],
    ['io.emit, primary JavaScript thread CPU per delivery (µs)', function (x) { return fmt(x.emit && x.emit.primaryJsUsPerDelivery, 2); }],
    ['io.emit, CPU per delivery, all processes (µs)', function (x) { return fmt(x.emit && x.emit.allUsPerDelivery, 2); }],
    ['serverSideEmit with ack, p50 / p99 (µs)', function (x) { return fmtTrips(x.sseAck); }],
    ['fetchSockets, p50 / p99 (µs)', function (x) { return fmtTrips(x.fetch); }],
    ['serverSideEmit with ack under load, p50 / p99 (µs)', function (x) { return fmtTrips(x.sseAckLoaded); }],
    ['fetchSockets under load, p50 / p99 (µs)', function (x) { return fmtTrips(x.fetchLoaded); }],
    ['socket.emit with connectionStateRecovery on, deliveries/s', function (x) { return fmtRate(x.semit); }, ' csr'],
    ['socket.emit with connectionStateRecovery on, CPU per delivery, all processes (µs)', function (x) { return fmt(x.semit && x.semit.allUsPerDelivery, 2); }, ' csr']
  ];
  var parts = ['# socket.io 4 adapters', '',
    'Run: `node bench/adapter.js' + process.argv.slice(2).map(function (a) { return ' ' + a; }).join('') + '` (' +
    (opts.quick ? 'quick: a smoke test, not figures' : 'full') + '), ' + new Date().toISOString() + ', ' +
    ((Date.now() - started) / 1000).toFixed(0) + ' s; node ' + process.version + ', ' + os.cpus().length +
    ' CPUs. store: socket.io-cluster-store/adapter; cluster: @socket.io/cluster-adapter; redis: ' +
    '@socket.io/redis-adapter on a local redis-server; none: no adapter, each worker but the first ' +
    'emitting to its own clients (the ceiling of io.emit). A rate is what was delivered over the ' +
    'time from the first send to the last delivery, after a warm-up flood. ' +
    (opts.repeat > 1 ? 'Each figure is the median of ' + opts.repeat + ' rounds, the adapters taking turns. ' : '') +
    'Compare columns of one run.', ''];
  opts.workers.forEach(function (n) {
    var cols = opts.adapters;
    parts.push('## ' + n + ' workers', '', '| figure | ' + cols.join(' | ') + ' |',
      '| --- |' + cols.map(function () { return ' ---: |'; }).join(''));
    rows.forEach(function (row) {
      parts.push('| ' + row[0] + ' | ' + cols.map(function (a) {
        if (a === 'none' && (row[2] || !/io\.emit/.test(row[0]))) return '–';
        var r = results[n + 'w ' + a + (row[2] || '')];
        if (!r) return '–';
        return r.result ? row[1](r.result) : 'error';
      }).join(' | ') + ' |');
    });
    [['', ''], [' csr', ' (connectionStateRecovery)']].forEach(function (k) {
      cols.forEach(function (a) {
        var r = results[n + 'w ' + a + k[0]];
        if (r && r.error) parts.push('', '- ' + a + k[1] + ': ' + r.error);
      });
    });
    parts.push('');
  });
  var text = parts.join('\n');
  process.stdout.write(text + '\n');
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, text + '\n');
  fs.writeFileSync(opts.out.replace(/\.md$/, '') + '.json',
    JSON.stringify({ params: params, results: results, rounds: rounds }, null, 1) + '\n');
  process.stderr.write('bench: written to ' + path.relative(process.cwd(), opts.out) + '\n');
}

var main = ROLE === 'worker' ? worker : ROLE === 'primary' ? primary : driver;
main().catch(function (err) {
  process.stderr.write((err && err.stack) || String(err));
  process.stderr.write('\n');
  process.exit(1);
});
