#!/usr/bin/env node
'use strict';
// socket.io 4 adapters side by side: ours (`store`, socket.io-cluster-store/
// adapter), @socket.io/cluster-adapter (`cluster`, process.send through the
// primary's JavaScript) and @socket.io/redis-adapter (`redis`, redis 4
// client, on a redis-server this bench starts), with 2 and 4 workers:
//
//   - serverSideEmit from one worker: deliveries/s at the others, and the
//     primary's CPU per delivery (process.cpuUsage of the primary);
//   - io.emit from one worker to clients connected to the others:
//     deliveries/s, and the primary's CPU per delivery;
//   - serverSideEmit with an ack, and fetchSockets(): round trip p50/p99,
//     on a quiet cluster, then while another worker broadcasts as fast as
//     it can;
//   - with connectionStateRecovery on (a case of its own), socket.emit to
//     the clients of one worker: deliveries/s (socket.io makes every one a
//     broadcast through the adapter; ours keeps it for recovery).
//
//   node bench/adapter.js [--quick] [--adapters store,cluster,redis] [--workers 2,4] [--out FILE]
//   npm run bench -- --only adapter [--quick]
//
// Every case runs in a fresh primary (this file, BENCH_ADAPTER_ROLE=primary)
// in its own process group, killed at the end; every phase is bounded in
// count and time. Writes markdown to bench/results/adapter.md.

var childProcess = require('child_process');
var cluster = require('cluster');
var fs = require('fs');
var net = require('net');
var os = require('os');
var path = require('path');

var ROLE = process.env.BENCH_ADAPTER_ROLE || 'driver';
var ADAPTERS = ['store', 'cluster', 'redis'];
var REDIS_PORT = 31381;
var ROOT = path.join(__dirname, '..');
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
  else if (cfg.adapter === 'cluster') adapter = require('@socket.io/cluster-adapter').createAdapter();
  else {
    var redis = require('redis4');
    var pub = redis.createClient({ url: 'redis://127.0.0.1:' + REDIS_PORT });
    var sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    adapter = require('@socket.io/redis-adapter').createAdapter(pub, sub);
  }
  var httpServer = http.createServer();
  var io = new Server(httpServer, { adapter: adapter,
    connectionStateRecovery: cfg.csr ? { maxDisconnectionDuration: 120000 } : undefined });
  var counts = { sse: 0, client: 0 };
  io.on('b', function () { counts.sse++; });
  io.on('p', function (cb) { cb(1); });
  await new Promise(function (r) { httpServer.listen({ port: 0, host: '127.0.0.1', exclusive: true }, r); });
  var port = httpServer.address().port;
  var clients = [];
  var flooding = false;

  async function flood(kind, ms, batch) {
    flooding = true;
    var end = Date.now() + ms;
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
    return sent;
  }

  async function roundTrips(kind, count, ms) {
    var times = [];
    var end = Date.now() + ms;
    for (var i = 0; i < count && Date.now() < end; i++) {
      var t0 = process.hrtime.bigint();
      if (kind === 'sse') await io.serverSideEmitWithAck('p');
      else await io.fetchSockets();
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    times.sort(function (a, b) { return a - b; });
    return { count: times.length, p50: percentile(times, 50), p99: percentile(times, 99) };
  }

  process.on('message', async function (m) {
    var reply = { id: m.id };
    try {
      if (m.cmd === 'count') reply.value = await io.of('/').adapter.serverCount();
      else if (m.cmd === 'clients') {
        for (var i = 0; i < m.n; i++) {
          var c = ioc('http://127.0.0.1:' + port, { transports: ['websocket'], forceNew: true });
          c.on('e', function () { counts.client++; });
          clients.push(c);
          await new Promise(function (r) { c.once('connect', r); });
        }
        reply.value = clients.length;
      } else if (m.cmd === 'reset') {
        counts.sse = 0;
        counts.client = 0;
        reply.value = true;
      } else if (m.cmd === 'counts') reply.value = counts;
      else if (m.cmd === 'flood') reply.value = await flood(m.kind, m.ms, m.batch);
      else if (m.cmd === 'stop') { flooding = false; reply.value = true; }
      else if (m.cmd === 'rt') reply.value = await roundTrips(m.kind, m.count, m.ms);
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
  else if (cfg.adapter === 'cluster') require('@socket.io/cluster-adapter').setupPrimary();
  cluster.setupPrimary({ exec: __filename });
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
      waiting.set(m.id, function (r) { if (r.error) reject(new Error(r.error)); else resolve(r.value); });
      w.send(m);
    });
  }
  function all(m) { return Promise.all(workers.map(function (w) { return ask(w, Object.assign({}, m)); })); }
  // Every server must know the others (cluster-adapter learns it from heartbeats).
  for (var tries = 0; ; tries++) {
    var counts = await all({ cmd: 'count' });
    if (counts.every(function (c) { return c === cfg.workers; })) break;
    if (tries > 200) throw new Error('servers never saw each other: ' + counts.join(','));
    await sleep(50);
  }
  var p = cfg.params;
  var out = {};
  var others = workers.slice(1);

  // Connection state recovery: socket.emit to the clients of one worker.
  if (cfg.csr) {
    await ask(workers[0], { cmd: 'clients', n: p.clients });
    await all({ cmd: 'reset' });
    var emitted = await ask(workers[0], { cmd: 'flood', kind: 'semit', ms: p.floodMs, batch: p.batch });
    await sleep(p.drainMs);
    var local = await ask(workers[0], { cmd: 'counts' });
    out.semit = { sent: emitted, delivered: local.client, rate: local.client / (p.floodMs / 1000) };
    process.send({ result: out });
    workers.forEach(function (w) { w.process.kill('SIGKILL'); });
    setTimeout(function () { process.exit(0); }, 100);
    return;
  }

  async function throughput(kind) {
    await all({ cmd: 'reset' });
    var cpu0 = process.cpuUsage();
    var threads0 = threadsCpuMs(process.pid);
    var sent = await ask(workers[0], { cmd: 'flood', kind: kind, ms: p.floodMs, batch: p.batch });
    await sleep(p.drainMs);
    var cpu = process.cpuUsage(cpu0);
    var threads = threadsCpuMs(process.pid);
    var got = await Promise.all(others.map(function (w) { return ask(w, { cmd: 'counts' }); }));
    var delivered = got.reduce(function (s, c) { return s + (kind === 'sse' ? c.sse : c.client); }, 0);
    return { sent: sent, delivered: delivered, rate: delivered / (p.floodMs / 1000),
      primaryUsPerDelivery: delivered ? (cpu.user + cpu.system) / delivered : NaN,
      // The primary's JavaScript thread alone (ours routes on another
      // thread of the primary, counted in the figure above).
      primaryJsUsPerDelivery: delivered ? 1000 * (threads.main - threads0.main) / delivered : NaN };
  }

  out.sse = await throughput('sse');
  await Promise.all(others.map(function (w) { return ask(w, { cmd: 'clients', n: p.clients }); }));
  out.emit = await throughput('emit');
  out.sseAck = await ask(workers[0], { cmd: 'rt', kind: 'sse', count: p.rtCount, ms: p.rtMs });
  out.fetch = await ask(workers[0], { cmd: 'rt', kind: 'fetch', count: p.rtCount, ms: p.rtMs });
  // Under load: worker 2 broadcasts to its clients' peers as fast as it can.
  var loader = ask(workers[1], { cmd: 'flood', kind: 'emit', ms: p.rtMs * 2 + 2000, batch: p.batch });
  await sleep(100);
  out.sseAckLoaded = await ask(workers[0], { cmd: 'rt', kind: 'sse', count: p.rtCount, ms: p.rtMs });
  out.fetchLoaded = await ask(workers[0], { cmd: 'rt', kind: 'fetch', count: p.rtCount, ms: p.rtMs });
  await ask(workers[1], { cmd: 'stop' });
  await loader;
  process.send({ result: out });
  workers.forEach(function (w) { w.process.kill('SIGKILL'); });
  setTimeout(function () { process.exit(0); }, 100);
}

// ---- driver -----------------------------------------------------------------

function parseArgs(argv) {
  var opts = { quick: false, adapters: ADAPTERS.slice(), workers: [2, 4],
    out: path.join(__dirname, 'results', 'adapter.md') };
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--adapters') opts.adapters = argv[++i].split(',');
    else if (a === '--workers') opts.workers = argv[++i].split(',').map(Number);
    else if (a === '--out') opts.out = path.resolve(argv[++i]);
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node bench/adapter.js [--quick] [--adapters ' + ADAPTERS.join(',') +
        '] [--workers 2,4] [--out FILE]\n');
      process.exit(0);
    } else {
      process.stderr.write('unknown option ' + a + '\n');
      process.exit(2);
    }
  }
  opts.adapters.forEach(function (x) {
    if (ADAPTERS.indexOf(x) < 0) { process.stderr.write('unknown adapter ' + x + '\n'); process.exit(2); }
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

// A fresh redis-server on 127.0.0.1:REDIS_PORT, saving nothing.
async function startRedis() {
  var dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-adapter-redis-'));
  var child = childProcess.spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1',
    '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  var failed = null;
  child.on('error', function (e) { failed = e; });
  for (var i = 0; i < 100 && !failed; i++) {
    if (await new Promise(redisPing)) return function () { child.kill('SIGKILL'); };
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start' + (failed ? ': ' + failed.message : ''));
}

function runCase(cfg, timeoutMs) {
  return new Promise(function (resolve) {
    var child = childProcess.spawn(process.execPath, [__filename], { detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: Object.assign({}, process.env, { BENCH_ADAPTER_ROLE: 'primary', DEBUG: '',
        BENCH_ADAPTER_CFG: JSON.stringify(cfg) }) });
    var stderr = '';
    child.stderr.on('data', function (d) { stderr = (stderr + d).slice(-4000); });
    var finished = false;
    function finish(v) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      try { process.kill(-child.pid, 'SIGKILL'); } catch (e) { /* gone */ }
      resolve(v);
    }
    var timer = setTimeout(function () { finish({ error: 'timed out' }); }, timeoutMs);
    child.on('message', function (m) { if (m && m.result) finish({ result: m.result }); });
    child.on('exit', function (code) {
      finish({ error: 'exited (' + code + '): ' + stderr.trim().split('\n').slice(-2).join(' | ') });
    });
  });
}

function fmt(v, d) {
  if (typeof v !== 'number' || !isFinite(v)) return '–';
  return d === undefined ? Math.round(v).toLocaleString('en-US') : v.toFixed(d);
}

async function driver() {
  var opts = parseArgs(process.argv.slice(2));
  var params = opts.quick ?
    { floodMs: 300, drainMs: 700, batch: 200, clients: 2, rtCount: 100, rtMs: 1000 } :
    { floodMs: 3000, drainMs: 3000, batch: 500, clients: 10, rtCount: 2000, rtMs: 5000 };
  var stopRedis = null;
  if (opts.adapters.indexOf('redis') >= 0) {
    try {
      stopRedis = await startRedis();
    } catch (err) {
      process.stderr.write('bench: redis skipped: ' + err.message + '\n');
      opts.adapters = opts.adapters.filter(function (a) { return a !== 'redis'; });
    }
  }
  var results = {};
  var started = Date.now();
  for (var wi = 0; wi < opts.workers.length; wi++) {
    for (var ai = 0; ai < opts.adapters.length; ai++) {
      var cfg = { adapter: opts.adapters[ai], workers: opts.workers[wi], params: params };
      process.stderr.write('bench: adapter ' + cfg.adapter + ', ' + cfg.workers + ' workers ... ');
      var r = await runCase(cfg, 60000 + 10 * (params.floodMs + params.drainMs + params.rtMs));
      process.stderr.write((r.error ? 'error: ' + r.error : 'done') + '\n');
      results[cfg.workers + 'w ' + cfg.adapter] = r;
      cfg = { adapter: opts.adapters[ai], workers: opts.workers[wi], params: params, csr: true };
      process.stderr.write('bench: adapter ' + cfg.adapter + ', ' + cfg.workers +
        ' workers, connectionStateRecovery ... ');
      r = await runCase(cfg, 60000 + 10 * (params.floodMs + params.drainMs));
      process.stderr.write((r.error ? 'error: ' + r.error : 'done') + '\n');
      results[cfg.workers + 'w ' + cfg.adapter + ' csr'] = r;
    }
  }
  if (stopRedis) stopRedis();
  var rows = [
    ['serverSideEmit, deliveries/s', function (x) { return fmt(x.sse.rate); }],
    ['serverSideEmit, primary CPU per delivery (µs)', function (x) { return fmt(x.sse.primaryUsPerDelivery, 2); }],
    ['serverSideEmit, primary JavaScript thread CPU per delivery (µs)', function (x) { return fmt(x.sse.primaryJsUsPerDelivery, 2); }],
    ['io.emit to clients on other workers, deliveries/s', function (x) { return fmt(x.emit.rate); }],
    ['io.emit, primary CPU per delivery (µs)', function (x) { return fmt(x.emit.primaryUsPerDelivery, 2); }],
    ['io.emit, primary JavaScript thread CPU per delivery (µs)', function (x) { return fmt(x.emit.primaryJsUsPerDelivery, 2); }],
    ['serverSideEmit with ack, p50 / p99 (µs)', function (x) { return fmt(x.sseAck.p50) + ' / ' + fmt(x.sseAck.p99); }],
    ['fetchSockets, p50 / p99 (µs)', function (x) { return fmt(x.fetch.p50) + ' / ' + fmt(x.fetch.p99); }],
    ['serverSideEmit with ack under load, p50 / p99 (µs)', function (x) { return fmt(x.sseAckLoaded.p50) + ' / ' + fmt(x.sseAckLoaded.p99); }],
    ['fetchSockets under load, p50 / p99 (µs)', function (x) { return fmt(x.fetchLoaded.p50) + ' / ' + fmt(x.fetchLoaded.p99); }],
    ['socket.emit with connectionStateRecovery on, deliveries/s', function (x) { return fmt(x.semit.rate); }, ' csr']
  ];
  var parts = ['# socket.io 4 adapters', '',
    'Run: `node bench/adapter.js' + process.argv.slice(2).map(function (a) { return ' ' + a; }).join('') + '` (' +
    (opts.quick ? 'quick: a smoke test, not figures' : 'full') + '), ' + new Date().toISOString() + ', ' +
    ((Date.now() - started) / 1000).toFixed(0) + ' s; node ' + process.version + ', ' + os.cpus().length +
    ' CPUs. store: socket.io-cluster-store/adapter; cluster: @socket.io/cluster-adapter; redis: ' +
    '@socket.io/redis-adapter on a local redis-server. Compare columns of one run.', ''];
  opts.workers.forEach(function (n) {
    var cols = opts.adapters;
    parts.push('## ' + n + ' workers', '', '| figure | ' + cols.join(' | ') + ' |',
      '| --- |' + cols.map(function () { return ' ---: |'; }).join(''));
    rows.forEach(function (row) {
      parts.push('| ' + row[0] + ' | ' + cols.map(function (a) {
        var r = results[n + 'w ' + a + (row[2] || '')];
        return r && r.result ? row[1](r.result) : 'error';
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
  process.stderr.write('bench: written to ' + path.relative(process.cwd(), opts.out) + '\n');
}

var main = ROLE === 'worker' ? worker : ROLE === 'primary' ? primary : driver;
main().catch(function (err) {
  process.stderr.write((err && err.stack) || String(err));
  process.stderr.write('\n');
  process.exit(1);
});
