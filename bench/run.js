#!/usr/bin/env node
'use strict';
// Side-by-side benchmark: this package's store (`cluster`)
// against strong-cluster-socket.io-store (`strong`), socket.io 0.9's
// RedisStore on a local redis-server (`redis`), and the floor: a raw
// AF_UNIX socketpair between processes (`socketpair`) and node's own IPC
// (`process.send`), in one run.
//
//   npm run bench [-- --quick] [-- --only publish,latency] [-- --stores cluster,strong]
//
// Every figure comes from a fresh cluster (bench/lib/bench-master.js in its
// own process group, killed at the end), every scenario is bounded in time.
// Prints markdown tables and writes them to bench/results/latest.md.

var childProcess = require('child_process');
var fs = require('fs');
var net = require('net');
var os = require('os');
var path = require('path');
var stores = require('./lib/bench-stores');
var util = require('./lib/bench-util');

// 'uplink' runs bench/uplink.js (past one machine: 2 machines through one
// redis-server, ours against RedisStore) and adds its section.
var SCENARIOS = ['publish', 'latency', 'storm', 'kv', 'churn', 'memory', 'adapter', 'uplink'];
var REDIS_PORT = 31379;
var CHURN_PORT = 31080;

// ---- options --------------------------------------------------------------

function usage(code) {
  process.stdout.write([
    'usage: node bench/run.js [--quick] [--only ' + SCENARIOS.join(',') + '] [--cases KEYS]',
    '                         [--stores ' + stores.NAMES.join(',') + '] [--out FILE]',
    '  --quick   small counts and short windows (a smoke test CI can run)',
    '  --only    scenarios to run (default: all)',
    '  --stores  stores and floors to run (default: all; ours is `cluster`)',
    '  --cases   case keys to run within the scenarios, e.g. 2w-64k,4w-64k (default: all)',
    '  --repeat N  run every case N times, the stores taking turns, and report each',
    '            store\'s median run (default 1): steadier ratios on a noisy machine',
    '  --out     where to write the markdown (default bench/results/latest.md)',
    '  --profile DIR  run the master and the workers with --cpu-prof into DIR',
    ''
  ].join('\n'));
  process.exit(code);
}

function parseArgs(argv) {
  var opts = { quick: false, repeat: 1, only: SCENARIOS.slice(), stores: stores.DEFAULT_NAMES.slice(),
    out: path.join(__dirname, 'results', 'latest.md') };
  function list(value, known, what) {
    var items = String(value || '').split(',').map(function (s) { return s.trim(); })
      .filter(Boolean).map(function (s) { return s === 'send' || s === 'ipc' ? 'process.send' : s; });
    items.forEach(function (s) {
      if (known.indexOf(s) < 0) {
        process.stderr.write('unknown ' + what + ' "' + s + '" (known: ' + known.join(', ') + ')\n');
        process.exit(2);
      }
    });
    if (!items.length) usage(2);
    return items;
  }
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    var eq = a.indexOf('=');
    var key = eq > 0 ? a.slice(0, eq) : a;
    var val = eq > 0 ? a.slice(eq + 1) : undefined;
    function value() { return val !== undefined ? val : argv[++i]; }
    if (key === '--quick') opts.quick = true;
    else if (key === '--only') opts.only = list(value(), SCENARIOS, 'scenario');
    else if (key === '--stores') opts.stores = list(value(), stores.NAMES, 'store');
    else if (key === '--repeat') {
      opts.repeat = parseInt(value(), 10);
      if (!(opts.repeat >= 1 && opts.repeat <= 20)) {
        process.stderr.write('--repeat takes a count from 1 to 20\n');
        process.exit(2);
      }
    } else if (key === '--cases') opts.cases = String(value() || '').split(',').filter(Boolean);
    else if (key === '--out') opts.out = path.resolve(value());
    else if (key === '--profile') opts.profile = path.resolve(value());
    else if (key === '--help' || key === '-h') usage(0);
    else {
      process.stderr.write('unknown option ' + a + '\n');
      usage(2);
    }
  }
  return opts;
}

// ---- what runs --------------------------------------------------------------

function plan(quick) {
  var q = function (full, small) { return quick ? small : full; };
  return {
    publish: {
      title: 'Publish throughput',
      stores: ['cluster', 'baseline', 'strong', 'redis', 'socketpair', 'process.send'],
      cases: [
        { key: '2w-dispatch', label: '2 workers, dispatch packet', workers: 2, payload: 0 },
        { key: '4w-dispatch', label: '4 workers, dispatch packet', workers: 4, payload: 0 },
        { key: '2w-64k', label: '2 workers, 64 KiB payload', workers: 2, payload: 65536 },
        { key: '4w-64k', label: '4 workers, 64 KiB payload', workers: 4, payload: 65536 },
        // Packets of real apps' shapes, taking turns: several event names,
        // nested arguments ({ title, id, tags: [...] }, a user object), a
        // room list, and one packet in 8 carrying a Buffer.
        { key: '2w-app', label: '2 workers, app-shaped packets', workers: 2, payload: 0, shape: 'app' },
        { key: '4w-app', label: '4 workers, app-shaped packets', workers: 4, payload: 0, shape: 'app' }
      ].map(function (c) {
        c.params = {
          shape: c.shape || 'dispatch',
          payload: c.payload,
          duration: q(2500, 500),
          drain: q(4000, 1500),
          max: c.payload ? q(100000, 400) : q(5000000, 20000),
          batch: c.payload ? 16 : 1000
        };
        c.timeout = c.params.duration + c.params.drain + 20000;
        return c;
      })
    },
    latency: {
      title: 'Round-trip latency',
      stores: ['cluster', 'baseline', 'strong', 'redis', 'socketpair', 'process.send'],
      cases: [{ key: 'rt', label: '2 workers, ping -> pong', workers: 2,
        params: { count: q(5000, 500), warmup: q(200, 50), duration: q(3000, 1000) },
        timeout: q(3000, 1000) + 20000 }]
    },
    storm: {
      title: 'Round-trip latency under a broadcast storm',
      stores: ['cluster', 'baseline', 'strong', 'redis'],
      cases: [
        { key: 'storm-all', label: '4 workers, storm to every worker', slow: false },
        { key: 'storm-slow', label: '4 workers, storm to one slow reader (50 µs per message)', slow: true }
      ].map(function (c) {
        c.workers = 4;
        c.params = { slow: c.slow, burnMicros: 50, batch: 200, count: q(1000, 200), warmup: 20,
          settle: q(500, 200), duration: q(20000, 5000), drainLimit: 20000 };
        c.timeout = c.params.settle + c.params.duration + c.params.drainLimit + 10000;
        return c;
      })
    },
    kv: {
      title: 'Per-client data (get/set)',
      stores: ['cluster', 'baseline', 'strong', 'redis'],
      // [workers, in flight, fresh ids, app data]. App data: 512 client ids
      // per worker x 8 keys, each value an object (a profile with nested
      // preferences and a list), as an app's socket.set keeps them.
      cases: [[2, 1], [2, 64], [4, 1], [4, 64], [4, 64, true], [2, 64, false, true],
        [4, 64, false, true]].map(function (c) {
        return {
          key: c[0] + 'w-' + c[1] + (c[2] ? '-fresh' : '') + (c[3] ? '-app' : ''),
          label: c[0] + ' workers, ' + c[1] + ' in flight per worker' + (c[2] ? ', a new client id per op' : '') +
            (c[3] ? ', 512 ids x 8 keys, object values' : ''),
          workers: c[0],
          params: { inflight: c[1], fresh: !!c[2], app: !!c[3], duration: q(2500, 500), grace: 3000 },
          timeout: q(2500, 500) + 20000
        };
      })
    },
    churn: {
      title: 'Connection churn (socket.io-client 0.9.16, websocket, no sticky sessions)',
      stores: ['cluster', 'strong', 'redis', 'memory'],
      cases: [{ key: '4w', label: '4 workers', workers: 4,
        params: { port: CHURN_PORT, duration: q(3000, 1000), concurrency: q(16, 8), timeout: 3000 },
        timeout: q(3000, 1000) + 30000 }]
    },
    memory: {
      title: 'Broker memory',
      stores: ['cluster', 'baseline', 'strong', 'redis'],
      cases: [{ key: 'mem', label: '', workers: 1,
        params: { clients: q(100000, 10000), channels: q(10000, 1000) },
        timeout: q(120000, 40000) }]
    }
  };
}

// ---- processes ------------------------------------------------------------

var live = new Set(); // process groups and children to kill on the way out

function killAll() {
  live.forEach(function (k) { k(); });
  live.clear();
}

process.on('SIGINT', function () { killAll(); process.exit(130); });
process.on('SIGTERM', function () { killAll(); process.exit(143); });
process.on('exit', killAll);

function which(bin) {
  var dirs = (process.env.PATH || '').split(path.delimiter).concat(['/usr/sbin', '/usr/bin', '/usr/local/bin']);
  for (var i = 0; i < dirs.length; i++) {
    var p = path.join(dirs[i], bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch (e) { /* next */ }
  }
  return null;
}

function redisPing(cb) {
  var sock = net.connect(REDIS_PORT, '127.0.0.1');
  var done = false;
  function end(ok) {
    if (done) return;
    done = true;
    sock.destroy();
    cb(ok);
  }
  sock.on('connect', function () { sock.write('PING\r\n'); });
  sock.on('data', function (d) { end(/PONG/.test(String(d))); });
  sock.on('error', function () { end(false); });
  setTimeout(function () { end(false); }, 500);
}

// A fresh redis-server on 127.0.0.1:31379 with its own temp dir, for one
// run; cb(err, {pid, stop}).
function startRedis(cb) {
  var bin = which('redis-server');
  if (!bin) return cb(new Error('skipped: redis-server not installed'));
  redisPing(function (busy) {
    if (busy) return cb(new Error('skipped: something already answers on 127.0.0.1:' + REDIS_PORT));
    var dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-redis-'));
    var child = childProcess.spawn(bin, ['--port', String(REDIS_PORT), '--bind', '127.0.0.1',
      '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', ''],
    { stdio: 'ignore' });
    var exited = false;
    child.on('exit', function () { exited = true; });
    child.on('error', function () { exited = true; });
    function stop() {
      live.delete(stop);
      if (!exited) child.kill('SIGKILL');
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch (e) { /* leave it */ }
    }
    live.add(stop);
    var deadline = Date.now() + 5000;
    (function wait() {
      if (exited) {
        stop();
        return cb(new Error('skipped: redis-server exited at start'));
      }
      redisPing(function (ok) {
        if (ok) return cb(null, { pid: child.pid, stop: stop });
        if (Date.now() > deadline) {
          stop();
          return cb(new Error('skipped: redis-server did not answer within 5 s'));
        }
        setTimeout(wait, 50);
      });
    })();
  });
}

// One run of one case for one store, in a fresh process group.
function runOne(scenario, c, store, redis, profile, cb) {
  var cfg = { scenario: scenario, store: store, workers: c.workers, params: c.params,
    redisPort: REDIS_PORT, redisPid: redis ? redis.pid : 0 };
  var child = childProcess.spawn(process.execPath,
    ['--expose-gc'].concat(profile ? ['--cpu-prof', '--cpu-prof-dir=' + profile] : [],
      [path.join(__dirname, 'lib', 'bench-master.js')]), {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: Object.assign({}, process.env, { BENCH_RUN: JSON.stringify(cfg), DEBUG: '',
        BENCH_PROFILE: profile || '' })
    });
  var stderr = '';
  child.stderr.on('data', function (d) {
    stderr += d;
    if (stderr.length > 20000) stderr = stderr.slice(-10000);
  });
  var done = false;
  function kill() {
    live.delete(kill);
    try { process.kill(-child.pid, 'SIGKILL'); } catch (e) { /* gone */ }
  }
  live.add(kill);
  function finish(err, result) {
    if (done) return;
    done = true;
    clearTimeout(timer);
    // Let it stop its workers (and write profiles), then kill whatever is
    // left of the group.
    var grace = Date.now() + (profile ? 8000 : 1000);
    (function reap() {
      if (child.exitCode === null && child.signalCode === null && Date.now() < grace) {
        return setTimeout(reap, 20);
      }
      kill();
      cb(err, result);
    })();
  }
  var timer = setTimeout(function () {
    finish(new Error('timed out after ' + (c.timeout / 1000) + ' s'));
  }, c.timeout);
  child.on('message', function (m) {
    if (m && m.result) finish(null, m.result);
    else if (m && m.error) finish(new Error(m.error));
  });
  child.on('exit', function (code, signal) {
    var tail = stderr.trim().split('\n').slice(-3).join(' | ');
    finish(new Error('the run exited (' + (signal || code) + ')' + (tail ? ': ' + tail : '')));
  });
}

// ---- formatting -----------------------------------------------------------

function fmtInt(v) {
  if (typeof v !== 'number' || !isFinite(v)) return '–';
  return Math.round(v).toLocaleString('en-US');
}

function fmtNum(v, digits) {
  if (typeof v !== 'number' || !isFinite(v)) return '–';
  return v.toFixed(digits);
}

function fmtRatio(a, b) {
  if (typeof a !== 'number' || typeof b !== 'number' || !isFinite(a) || !isFinite(b) || b === 0) return '–';
  var r = a / b;
  return (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + '×';
}

function fmtMiB(bytes) {
  if (typeof bytes !== 'number' || !isFinite(bytes)) return '–';
  if (Math.abs(bytes) < 1048576) return (bytes / 1024).toFixed(0) + ' KiB';
  return (bytes / 1048576).toFixed(1) + ' MiB';
}

function table(header, rows) {
  var out = ['| ' + header.join(' | ') + ' |',
    '|' + header.map(function (h, i) { return i < 2 ? ' --- ' : ' ---: '; }).join('|') + '|'];
  rows.forEach(function (r) { out.push('| ' + r.join(' | ') + ' |'); });
  return out.join('\n');
}

// cell(store) for the stores of a scenario, then the ratio columns.
function metricRow(label, metric, storeList, results, fmt, ratios) {
  var row = [label, metric];
  storeList.forEach(function (s) {
    var r = results[s];
    if (!r) row.push('–');
    else if (r.skipped) row.push('skipped');
    else if (r.error) row.push('error');
    else row.push(fmt(r.value));
  });
  (ratios || []).forEach(function (other) {
    var ours = results.cluster;
    var them = results[other];
    row.push(ours && them && !ours.error && !them.error && !ours.skipped && !them.skipped ?
      fmtRatio(num(ours.value), num(them.value)) : '–');
  });
  return row;
}

function num(v) { return typeof v === 'number' ? v : NaN; }

function notesFor(storeList, byCase) {
  var notes = [];
  var seen = new Set();
  Object.keys(byCase).forEach(function (key) {
    storeList.forEach(function (s) {
      var r = byCase[key][s];
      if (!r || !(r.skipped || r.error)) return;
      var text = s + ': ' + (r.skipped || ('error: ' + r.error));
      if (seen.has(text)) return;
      seen.add(text);
      notes.push(text + (r.skipped ? '' : ' (' + key + ')'));
    });
  });
  return notes;
}

function repeatNotes(scenario, storeList, byCase) {
  var notes = [];
  Object.keys(byCase).forEach(function (key) {
    storeList.forEach(function (s) {
      var r = byCase[key][s];
      if (!r || !r.all) return;
      notes.push(key + ' ' + s + ', every run: ' + r.all.map(function (v) {
        if (typeof v !== 'number') return v;
        if (scenario === 'memory') return fmtMiB(v);
        return Math.abs(v) >= 1000 ? fmtInt(v) : fmtNum(v, 1);
      }).join(', '));
    });
  });
  return notes;
}

function pick(results, store, fn) {
  var r = results[store];
  if (!r) return undefined;
  if (r.skipped || r.error) return r;
  return { value: fn(r.result) };
}

function view(caseResults, storeList, fn) {
  var out = {};
  storeList.forEach(function (s) { out[s] = pick(caseResults, s, fn); });
  return out;
}

var RATIO_TITLES = { strong: 'ours ÷ strong', redis: 'ours ÷ redis', socketpair: 'ours ÷ socketpair',
  memory: 'ours ÷ memory' };

function ratioColumns(storeList, candidates) {
  if (storeList.indexOf('cluster') < 0) return [];
  return candidates.filter(function (s) { return storeList.indexOf(s) >= 0; });
}

function renderPublish(sc, storeList, res) {
  var ratios = ratioColumns(storeList, ['strong', 'redis', 'socketpair']);
  var header = ['case', 'figure'].concat(storeList, ratios.map(function (s) { return RATIO_TITLES[s]; }));
  var rows = [];
  sc.cases.forEach(function (c) {
    var r = res[c.key] || {};
    rows.push(metricRow(c.label, 'published msg/s', storeList,
      view(r, storeList, function (x) { return x.publishRate; }), fmtInt, ratios));
    rows.push(metricRow('', '**deliveries/s**', storeList,
      view(r, storeList, function (x) { return x.deliverRate; }), fmtInt, ratios));
    rows.push(metricRow('', 'delivered in window', storeList,
      view(r, storeList, function (x) { return x.expected ? 100 * x.delivered / x.expected : NaN; }),
      function (v) { return fmtNum(v, 1) + ' %'; }, []).concat(ratios.map(function () { return ''; })));
    rows.push(metricRow('', 'master JS thread CPU, µs per delivery', storeList,
      view(r, storeList, function (x) { return x.delivered ? 1000 * x.master.mainCpu / x.delivered : NaN; }),
      function (v) { return fmtNum(v, 3); }, []).concat(ratios.map(function () { return ''; })));
    rows.push(metricRow('', 'master other threads CPU, µs per delivery', storeList,
      view(r, storeList, function (x) { return x.delivered ? 1000 * x.master.otherCpu / x.delivered : NaN; }),
      function (v) { return fmtNum(v, 3); }, []).concat(ratios.map(function () { return ''; })));
    rows.push(metricRow('', 'publisher CPU, µs per message', storeList,
      view(r, storeList, function (x) { return x.published ? 1000 * x.publisherCpu / x.published : NaN; }),
      function (v) { return fmtNum(v, 2); }, []).concat(ratios.map(function () { return ''; })));
    rows.push(metricRow('', 'consumer CPU, µs per delivery', storeList,
      view(r, storeList, function (x) { return x.delivered ? 1000 * x.consumerCpu / x.delivered : NaN; }),
      function (v) { return fmtNum(v, 2); }, []).concat(ratios.map(function () { return ''; })));
  });
  return [
    'One worker publishes as fast as it can (batches of 1000 dispatch packets, or 16 64 KiB packets, per ' +
    'turn of its loop, `setImmediate` between batches) for ' + (sc.cases[0].params.duration / 1000) +
    ' s; every other worker subscribes and counts. deliveries/s = messages received by all consumers ÷ ' +
    'time from the first publish to the last delivery (after at most ' + (sc.cases[0].params.drain / 1000) +
    ' s of draining). Dispatch packet: `store.publish(\'dispatch\', \'\', {type:\'event\', name:\'chat\', ' +
    'args:[{user:\'u1\', text:\'hello world\'}], endpoint:\'\'}, false, [])`; 64 KiB: the same with a 64 KiB ' +
    'text. Higher is better. socketpair: worker 1 writes length-prefixed frames (payload encoded by ' +
    stores.floorCodec().name + ', the bytes ours carries) straight to a socketpair per consumer, one write per ' +
    'turn, no broker; process.send: worker -> master JS relay -> every other worker (node\'s JSON IPC).',
    '',
    table(header, rows)
  ].join('\n');
}

function renderLatency(sc, storeList, res) {
  var ratios = ratioColumns(storeList, ['strong', 'redis', 'socketpair']);
  var header = ['case', 'figure'].concat(storeList, ratios.map(function (s) { return RATIO_TITLES[s]; }));
  var rows = [];
  var c = sc.cases[0];
  var r = res[c.key] || {};
  [['p50', 'p50 µs'], ['p90', 'p90 µs'], ['p99', 'p99 µs'], ['mean', 'mean µs']].forEach(function (m, i) {
    rows.push(metricRow(i === 0 ? c.label : '', (i === 0 ? '**' + m[1] + '**' : m[1]), storeList,
      view(r, storeList, function (x) { return x[m[0]]; }), function (v) { return fmtNum(v, 1); }, ratios));
  });
  rows.push(metricRow('', 'round trips measured', storeList,
    view(r, storeList, function (x) { return x.count; }), fmtInt, []).concat(ratios.map(function () { return ''; })));
  return [
    'Worker A publishes `ping` (a sequence number and the dispatch packet), worker B publishes `pong` on ' +
    'receipt, A times it (p99 on a shared 2-core machine is mostly scheduling); up to ' + c.params.count +
    ' sequential round trips after ' + c.params.warmup +
    ' warm-up ones, at most ' + (c.params.duration / 1000) + ' s. Lower is better (a ratio below 1 means ' +
    'ours is faster). Ours and the other stores cross two hops each way (worker -> broker -> worker); ' +
    'socketpair is one direct round trip, so two raw round trips are 2 × its figure.',
    '',
    table(header, rows)
  ].join('\n');
}

function renderStorm(sc, storeList, res) {
  var ratios = ratioColumns(storeList, ['strong', 'redis']);
  var header = ['case', 'figure'].concat(storeList, ratios.map(function (s) { return RATIO_TITLES[s]; }));
  var rows = [];
  var p = sc.cases[0].params;
  sc.cases.forEach(function (c) {
    var r = res[c.key] || {};
    [['p50', 'quiet round trip p50 µs'], ['p99', '**quiet round trip p99 µs**'],
      ['max', 'quiet round trip max µs']].forEach(function (m, i) {
      rows.push(metricRow(i === 0 ? c.label : '', m[1], storeList,
        view(r, storeList, function (x) { return x[m[0]]; }), function (v) { return fmtNum(v, 1); }, ratios));
    });
    rows.push(metricRow('', '**storm deliveries/s**', storeList,
      view(r, storeList, function (x) { return x.stormRate; }), fmtInt, ratios));
    rows.push(metricRow('', 'storm drained', storeList,
      view(r, storeList, function (x) { return x.stormUndrained; }),
      function (v) { return v ? 'no: counted ' + v + ' s after the round trips' : 'yes'; }, [])
      .concat(ratios.map(function () { return ''; })));
    rows.push(metricRow('', 'round trips measured', storeList,
      view(r, storeList, function (x) { return x.count; }), fmtInt, []).concat(ratios.map(function () { return ''; })));
    rows.push(metricRow('', 'round trip unanswered at the deadline', storeList,
      view(r, storeList, function (x) { return x.unanswered || 0; }), fmtInt, [])
      .concat(ratios.map(function () { return ''; })));
  });
  return [
    'Worker 3 publishes a dispatch packet to `storm` as fast as its loop allows (' + p.batch + ' per turn, ' +
    '`setImmediate` between turns); after ' + p.settle + ' ms worker 1 publishes `ping`, worker 2 answers ' +
    '`pong`, up to ' + p.count + ' sequential round trips after ' + p.warmup + ' warm-up ones. Storm to every ' +
    'worker: workers 1, 2 and 4 subscribe to it; one slow reader: only worker 4 does, and its handler burns ' +
    p.burnMicros + ' µs per message. Storm deliveries/s: storm messages taken by all readers from the start of ' +
    'the storm until every reader has counted (after the last pong; for a store whose readers have not caught up ' + (p.drainLimit / 1000) + ' s after it, what they had taken in by then). The round trips stop after ' + (p.duration / 1000) + ' s; one still out then counts at the age it has (a lower bound) and as unanswered. Lower latency is better, higher deliveries/s is better.',
    '',
    table(header, rows)
  ].join('\n');
}

function renderKv(sc, storeList, res) {
  var ratios = ratioColumns(storeList, ['strong', 'redis']);
  var header = ['case', 'figure'].concat(storeList, ratios.map(function (s) { return RATIO_TITLES[s]; }));
  var rows = [];
  sc.cases.forEach(function (c) {
    var r = res[c.key] || {};
    rows.push(metricRow(c.label, '**ops/s**', storeList,
      view(r, storeList, function (x) { return x.rate; }), fmtInt, ratios));
    [['errors', 'errors'], ['hung', 'calls never answered']].forEach(function (m) {
      var v = view(r, storeList, function (x) { return x[m[0]]; });
      if (Object.keys(v).some(function (s) { return v[s] && v[s].value; })) {
        rows.push(metricRow('', m[1], storeList, v, fmtInt, []).concat(ratios.map(function () { return ''; })));
      }
    });
  });
  return [
    'Every worker runs N chains of `client(id).set(\'nickname\', {…})` then `get(\'nickname\')` on its own ' +
    'client ids (64 per chain, in turn) for ' + (sc.cases[0].params.duration / 1000) + ' s; ops/s = ' +
    'completed calls of all workers. Higher is better. strong keeps each client\'s lock (and a copy of its ' +
    'data) in the worker after the first call, so its repeat calls never leave the worker (and another ' +
    'worker touching that client hangs); the last row uses a new client id per set (a lock taken through ' +
    'the master) to show its shared-state path.',
    '',
    table(header, rows)
  ].join('\n');
}

function renderChurn(sc, storeList, res) {
  var ratios = ratioColumns(storeList, ['strong', 'redis']);
  var header = ['case', 'figure'].concat(storeList, ratios.map(function (s) { return RATIO_TITLES[s]; }));
  var c = sc.cases[0];
  var r = res[c.key] || {};
  var rows = [
    metricRow(c.label, '**connects/s (successes)**', storeList,
      view(r, storeList, function (x) { return x.rate; }), fmtInt, ratios),
    metricRow('', 'failed connects', storeList,
      view(r, storeList, function (x) { return x.failed; }), fmtInt, []).concat(ratios.map(function () { return ''; })),
    metricRow('', 'failure rate', storeList,
      view(r, storeList, function (x) { return 100 * x.failed / Math.max(1, x.failed + x.connected); }),
      function (v) { return fmtNum(v, 1) + ' %'; }, []).concat(ratios.map(function () { return ''; })),
    metricRow('', 'connect p50 ms', storeList,
      view(r, storeList, function (x) { return x.p50; }), function (v) { return fmtNum(v, 1); }, [])
      .concat(ratios.map(function () { return ''; })),
    metricRow('', 'connect p99 ms', storeList,
      view(r, storeList, function (x) { return x.p99; }), function (v) { return fmtNum(v, 1); }, [])
      .concat(ratios.map(function () { return ''; }))
  ];
  var reasons = [];
  storeList.forEach(function (s) {
    var x = r[s];
    if (x && x.result && x.result.failed) {
      reasons.push(s + ': ' + Object.keys(x.result.reasons).map(function (k) {
        return x.result.reasons[k] + ' × ' + k;
      }).join(', '));
    }
  });
  return [
    'One client process keeps ' + c.params.concurrency + ' socket.io-client 0.9.16 clients in flight ' +
    '(websocket only, `force new connection`, no reconnect), each disconnecting as soon as it is ' +
    'connected, for ' + (c.params.duration / 1000) + ' s against 4 workers sharing 127.0.0.1:' + c.params.port +
    ' through cluster\'s round robin, so a handshake and its websocket usually reach different workers. ' +
    'Only successes count; the client process shares the 2 cores with the workers.',
    '',
    table(header, rows)
  ].concat(reasons.length ? ['', 'Failure reasons: ' + reasons.join('; ') + '.'] : []).join('\n');
}

function renderMemory(sc, storeList, res) {
  var c = sc.cases[0];
  var r = res[c.key] || {};
  var ratios = ratioColumns(storeList, ['strong', 'redis']);
  var header = ['case', 'figure'].concat(storeList, ratios.map(function (s) { return RATIO_TITLES[s]; }));
  var cl = c.params.clients.toLocaleString('en-US');
  var ch = c.params.channels.toLocaleString('en-US');
  function delta(x, a, b) { return x[b].rss - x[a].rss; }
  function stat(x, phase, name) { return x[phase].stats ? x[phase].stats[name] : NaN; }
  var blank = ratios.map(function () { return ''; });
  var rows = [
    metricRow(cl + ' clients × 1 key', '**RSS growth**', storeList,
      view(r, storeList, function (x) { return delta(x, 'before', 'afterClients'); }), fmtMiB, ratios),
    metricRow('', 'bytes per client (RSS)', storeList,
      view(r, storeList, function (x) { return delta(x, 'before', 'afterClients') / x.clients; }), fmtInt, ratios),
    metricRow('', 'broker dataBytes', storeList,
      view(r, storeList, function (x) { return stat(x, 'afterClients', 'dataBytes') - stat(x, 'before', 'dataBytes'); }),
      fmtMiB, []).concat(blank),
    metricRow('', 'sets/s while filling', storeList,
      view(r, storeList, function (x) { return x.clients / (x.clientsPhase.elapsed / 1000); }), fmtInt, ratios),
    metricRow(ch + ' channels', '**RSS growth**', storeList,
      view(r, storeList, function (x) { return delta(x, 'afterClients', 'afterChannels'); }), fmtMiB, ratios),
    metricRow('', 'bytes per channel (RSS)', storeList,
      view(r, storeList, function (x) { return delta(x, 'afterClients', 'afterChannels') / x.channels; }), fmtInt, ratios),
    metricRow('', 'broker dataBytes', storeList,
      view(r, storeList, function (x) { return stat(x, 'afterChannels', 'dataBytes') - stat(x, 'afterClients', 'dataBytes'); }),
      fmtMiB, []).concat(blank),
    metricRow('', 'subscribes/s', storeList,
      view(r, storeList, function (x) { return x.channels / (x.channelsPhase.elapsed / 1000); }), fmtInt, ratios),
    metricRow('total', 'RSS of the state holder at the end', storeList,
      view(r, storeList, function (x) { return x.afterChannels.rss; }), fmtMiB, ratios)
  ];
  return [
    'One worker sets one small key (`nickname`) for each of ' + cl + ' client ids (256 in flight), then ' +
    'subscribes to ' + ch + ' channel names. RSS of the process holding the state, after a full GC (RSS moves in ' +
    'whole pages and allocator arenas: small differences are noise): the ' +
    'cluster master for ours and strong, redis-server for redis. broker dataBytes is our broker\'s own ' +
    'counter (`require(\'socket.io-cluster-store\').stats().dataBytes`). Lower is better. strong keeps ' +
    'subscriptions in each worker (every message goes to every worker), so its channels cost the master nothing.',
    '',
    table(header, rows)
  ].join('\n');
}

var RENDER = { publish: renderPublish, latency: renderLatency, storm: renderStorm, kv: renderKv, churn: renderChurn,
  memory: renderMemory };

// ---- targets --------------------------------------------------------------

function targets(results) {
  var rows = [];
  function val(scenario, key, store, fn) {
    var r = results[scenario] && results[scenario][key] && results[scenario][key][store];
    return r && r.result ? fn(r.result) : NaN;
  }
  function add(name, measured, ok) {
    rows.push([name, measured, isNaN(ok) ? 'n/a' : ok ? 'yes' : '**no**']);
  }
  function ratio(a, b) { return a / b; }
  var dr = function (x) { return x.deliverRate; };
  if (results.publish) {
    ['2w-dispatch', '4w-dispatch', '2w-app', '4w-app'].forEach(function (k) {
      var rr = ratio(val('publish', k, 'cluster', dr), val('publish', k, 'strong', dr));
      add('publish deliveries/s ≥ 10× strong (' + k + ')', fmtNum(rr, 1) + '×', isNaN(rr) ? NaN : rr >= 10);
    });
    ['2w-64k', '4w-64k'].forEach(function (k) {
      var rr = ratio(val('publish', k, 'cluster', dr), val('publish', k, 'strong', dr));
      add('64 KiB deliveries/s ≥ 20× strong (' + k + ')', fmtNum(rr, 1) + '×', isNaN(rr) ? NaN : rr >= 20);
    });
    // The master's JS thread only carries the benchmark's own control
    // messages (a progress report per consumer every 100 ms): a few ms.
    ['2w-dispatch', '4w-dispatch', '2w-64k', '4w-64k'].forEach(function (k) {
      var ms = val('publish', k, 'cluster', function (x) { return x.master.mainCpu; });
      var wall = val('publish', k, 'cluster', function (x) { return x.master.wall; });
      var n = val('publish', k, 'cluster', function (x) { return x.delivered; });
      var strongMs = val('publish', k, 'strong', function (x) { return x.master.mainCpu; });
      add('master JS thread does no per-message work (' + k + ')',
        fmtNum(ms, 0) + ' ms CPU in ' + fmtNum(wall / 1000, 1) + ' s for ' + fmtInt(n) + ' deliveries' +
        (isNaN(strongMs) ? '' : ' (strong: ' + fmtNum(strongMs, 0) + ' ms)'),
        isNaN(ms) ? NaN : ms <= Math.max(20, 0.02 * wall));
    });
  }
  if (results.latency) {
    var p50 = function (x) { return x.p50; };
    var ours = val('latency', 'rt', 'cluster', p50);
    var rs = ours / val('latency', 'rt', 'strong', p50);
    add('round-trip p50 ≤ 0.5× strong', fmtNum(rs, 2) + '×', isNaN(rs) ? NaN : rs <= 0.5);
    var rp = ours / (2 * val('latency', 'rt', 'socketpair', p50));
    add('round-trip p50 ≤ 2.5× two raw socketpair round trips', fmtNum(rp, 2) + '×', isNaN(rp) ? NaN : rp <= 2.5);
  }
  if (results.storm) {
    var p99 = function (x) { return x.p99; };
    var sr = function (x) { return x.stormRate; };
    var q = val('storm', 'storm-all', 'cluster', p99);
    var qr = q / val('storm', 'storm-all', 'redis', p99);
    add('quiet p99 under the storm ≤ 0.25× redis', fmtNum(qr, 2) + '×', isNaN(qr) ? NaN : qr <= 0.25);
    var qs = q / val('storm', 'storm-all', 'strong', p99);
    add('quiet p99 under the storm ≤ 0.1× strong', fmtNum(qs, 2) + '×', isNaN(qs) ? NaN : qs <= 0.1);
    var ts = val('storm', 'storm-all', 'cluster', sr) / val('storm', 'storm-all', 'strong', sr);
    add('storm deliveries/s ≥ 10× strong', fmtNum(ts, 1) + '×', isNaN(ts) ? NaN : ts >= 10);
  }
  if (results.kv) {
    ['2w-64', '4w-64', '2w-64-app', '4w-64-app'].forEach(function (k) {
      var rate = function (x) { return x.rate; };
      var rr = val('kv', k, 'cluster', rate) / val('kv', k, 'redis', rate);
      add('get/set ops/s with 64 in flight ≥ 5× redis (' + k + ')', fmtNum(rr, 2) + '×', isNaN(rr) ? NaN : rr >= 5);
    });
  }
  return rows.length ? table(['target', 'measured', 'met'], rows) : '';
}

// ---- main -------------------------------------------------------------------

// Which build of ours is measured: the commit and the addon binary that
// node-gyp-build picks (build/Release before prebuilds/).
function packageLine() {
  var rev = '';
  try {
    rev = childProcess.execFileSync('git', ['describe', '--always', '--dirty'], {
      cwd: stores.ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch (e) { /* not a checkout */ }
  var addon = '';
  try {
    addon = path.relative(stores.ROOT, stores.fromRoot('node-gyp-build').path(stores.ROOT));
  } catch (e) {
    addon = 'not built';
  }
  return 'ours at ' + (rev || 'unknown revision') + ', addon ' + addon;
}

function main() {
  var opts = parseArgs(process.argv.slice(2));
  // `adapter`: the socket.io 4 adapters, run by bench/adapter.js (its own
  // report, bench/results/adapter.md), before the store's scenarios.
  if (opts.only.indexOf('adapter') >= 0) {
    opts.only = opts.only.filter(function (name) { return name !== 'adapter'; });
    var adapterRun = childProcess.spawnSync(process.execPath,
      [path.join(__dirname, 'adapter.js')].concat(opts.quick ? ['--quick'] : [],
        opts.repeat > 1 ? ['--repeat', String(opts.repeat)] : []), { stdio: 'inherit' });
    if (!opts.only.length) process.exit(adapterRun.status === null ? 1 : adapterRun.status);
  }
  var scenarios = plan(opts.quick);
  var started = Date.now();
  var uplinkSection = null;
  if (opts.only.indexOf('uplink') >= 0) {
    opts.only = opts.only.filter(function (name) { return name !== 'uplink'; });
    process.stderr.write('bench: uplink (bench/uplink.js)\n');
    var run = childProcess.spawnSync(process.execPath, [path.join(__dirname, 'uplink.js')]
      .concat(opts.quick ? ['--quick'] : []), { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
    uplinkSection = run.status === 0 ? run.stdout.trim() : '## Past one machine\n\nfailed (exit ' + run.status + ')';
    if (!opts.only.length) {
      process.stdout.write(uplinkSection + '\n');
      return;
    }
  }
  var results = {};
  var machine = util.machineLine();
  var queue = [];
  if (opts.cases) {
    opts.only = opts.only.filter(function (name) {
      return scenarios[name].cases.some(function (c) { return opts.cases.indexOf(c.key) >= 0; });
    });
    if (!opts.only.length) {
      process.stderr.write('no case matches --cases ' + opts.cases.join(',') + '\n');
      process.exit(2);
    }
  }
  opts.only.forEach(function (name) {
    var sc = scenarios[name];
    results[name] = {};
    sc.cases = sc.cases.filter(function (c) { return !opts.cases || opts.cases.indexOf(c.key) >= 0; });
    sc.cases.forEach(function (c) {
      results[name][c.key] = {};
      // Rounds outermost: with --repeat, the stores take turns, so a
      // slow minute of the machine does not fall on one store only.
      for (var round = 0; round < opts.repeat; round++) {
        sc.stores.filter(function (s) { return opts.stores.indexOf(s) >= 0; }).forEach(function (s) {
          queue.push({ scenario: name, c: c, store: s });
        });
      }
    });
  });
  process.stderr.write('bench: ' + queue.length + ' runs (' + (opts.quick ? 'quick' : 'full') + '); ' +
    machine + '\n');
  var redisMissing = !which('redis-server');
  (function next(i) {
    if (i >= queue.length) return done();
    var job = queue[i];
    var entry = stores.STORES[job.store];
    var slot = results[job.scenario][job.c.key];
    var tag = job.scenario + ' ' + job.c.key + ' ' + job.store;
    var t0 = Date.now();
    var skipped = entry.available();
    if (!skipped && entry.needsRedis && redisMissing) skipped = 'skipped: redis-server not installed';
    if (skipped) {
      slot[job.store] = { skipped: skipped };
      process.stderr.write('  ' + tag + ': ' + skipped + '\n');
      return next(i + 1);
    }
    function withRedis(cb) {
      if (!entry.needsRedis) return cb(null, null);
      startRedis(cb);
    }
    withRedis(function (err, redis) {
      if (err) {
        slot[job.store] = { skipped: err.message };
        process.stderr.write('  ' + tag + ': ' + err.message + '\n');
        return next(i + 1);
      }
      runOne(job.scenario, job.c, job.store, redis, opts.profile, function (err2, result) {
        if (redis) redis.stop();
        var runs = slot[job.store] = slot[job.store] || { runs: [] };
        if (err2) {
          runs.runs.push({ error: err2.message });
          process.stderr.write('  ' + tag + ': error: ' + err2.message + '\n');
        } else {
          runs.runs.push({ result: result });
          process.stderr.write('  ' + tag + ': ' + summary(job.scenario, result) + ' (' +
            ((Date.now() - t0) / 1000).toFixed(1) + ' s)\n');
        }
        // A moment for the kernel to reap the group before the next run.
        setTimeout(function () { next(i + 1); }, 200);
      });
    });
  })(0);

  function done() {
    Object.keys(results).forEach(function (name) {
      Object.keys(results[name]).forEach(function (key) {
        var slot = results[name][key];
        Object.keys(slot).forEach(function (store) {
          if (slot[store].runs) slot[store] = medianRun(name, slot[store].runs);
        });
      });
    });
    var parts = ['# socket.io-cluster-store benchmark', '',
      'Machine: ' + machine + '.  ',
      'Package: ' + packageLine() + '.  ',
      'Run: `node bench/run.js' + process.argv.slice(2).map(function (a) { return ' ' + a; }).join('') +
      '` (' + (opts.quick ? 'quick: small counts, a smoke test' : 'full') + '), ' +
      new Date().toISOString() + ', ' + ((Date.now() - started) / 1000).toFixed(0) + ' s. ' +
      'Figures from one run on a shared machine: compare the columns, not runs.' +
      (opts.repeat > 1 ? ' Every case ran ' + opts.repeat + ' times, the stores taking turns; each ' +
        'figure is from the store\'s median run (by the bold figure), the others are listed below ' +
        'the tables.' : ''), ''];
    opts.only.forEach(function (name) {
      var sc = scenarios[name];
      var storeList = sc.stores.filter(function (s) { return opts.stores.indexOf(s) >= 0; });
      if (!storeList.length) return;
      parts.push('## ' + sc.title, '');
      parts.push(RENDER[name](sc, storeList, results[name]));
      var notes = notesFor(storeList, results[name]).concat(repeatNotes(name, storeList, results[name]));
      if (notes.length) parts.push('', notes.map(function (n) { return '- ' + n; }).join('\n'));
      parts.push('');
    });
    if (uplinkSection) parts.push(uplinkSection, '');
    var t = targets(results);
    if (t) parts.push('## Engine targets', '', t, '');
    var text = parts.join('\n');
    process.stdout.write(text + '\n');
    try {
      fs.mkdirSync(path.dirname(opts.out), { recursive: true });
      fs.writeFileSync(opts.out, text + '\n');
      fs.writeFileSync(opts.out.replace(/\.md$/, '') + '.json', JSON.stringify({ machine: machine,
        quick: opts.quick, results: results }, null, 1) + '\n');
      process.stderr.write('bench: written to ' + path.relative(process.cwd(), opts.out) + '\n');
    } catch (e) {
      process.stderr.write('bench: could not write ' + opts.out + ': ' + e.message + '\n');
    }
    killAll();
  }
}

// The headline figure of a run, by which repeated runs are ordered.
function headline(scenario, r) {
  switch (scenario) {
    case 'publish': return r.deliverRate;
    case 'latency': return r.p50;
    case 'storm': return r.p99;
    case 'kv': return r.rate;
    case 'churn': return r.rate;
    case 'memory': return r.afterClients.rss - r.before.rss;
    default: return 0;
  }
}

// Of one store's runs of one case: the median successful run, with every
// run's headline figure kept in `all`; an error only when none succeeded.
function medianRun(scenario, runs) {
  var ok = runs.filter(function (r) { return r.result; });
  if (!ok.length) return runs[0];
  ok.sort(function (a, b) { return headline(scenario, a.result) - headline(scenario, b.result); });
  var chosen = ok[(ok.length - 1) >> 1];
  if (runs.length === 1) return chosen;
  return { result: chosen.result, all: runs.map(function (r) {
    return r.result ? headline(scenario, r.result) : 'error: ' + r.error;
  }) };
}

function summary(scenario, r) {
  switch (scenario) {
    case 'publish':
      return fmtInt(r.deliverRate) + ' deliveries/s, ' + fmtInt(r.publishRate) + ' published/s, ' +
        fmtNum(100 * r.delivered / r.expected, 1) + ' % delivered';
    case 'latency':
      return 'p50 ' + fmtNum(r.p50, 1) + ' µs, p99 ' + fmtNum(r.p99, 1) + ' µs (' + r.count + ')';
    case 'storm':
      return 'p50 ' + fmtNum(r.p50, 1) + ' µs, p99 ' + fmtNum(r.p99, 1) + ' µs, max ' + fmtNum(r.max, 1) +
        ' µs (' + r.count + (r.unanswered ? ', ' + r.unanswered + ' unanswered' : '') + '), storm ' +
        fmtInt(r.stormRate) + ' deliveries/s' + (r.stormUndrained ? ' (not drained: counted ' + r.stormUndrained + ' s after)' : '');
    case 'kv':
      return fmtInt(r.rate) + ' ops/s' + (r.errors ? ', ' + r.errors + ' errors: ' + r.firstError : '') +
        (r.hung ? ', ' + r.hung + ' calls never answered' : '');
    case 'churn':
      return fmtInt(r.rate) + ' connects/s, ' + r.failed + ' failed';
    case 'memory':
      return 'clients +' + fmtMiB(r.afterClients.rss - r.before.rss) + ', channels +' +
        fmtMiB(r.afterChannels.rss - r.afterClients.rss);
    default:
      return JSON.stringify(r);
  }
}

main();
