#!/usr/bin/env node
'use strict';
// Load: W cluster workers (default 8, on 2 CPUs), C
// channels (default 10k), M messages in total (default 1M) published by the
// workers, through this package's broker.
//
// Every worker subscribes to its share of the channels (channel i has two
// subscribers, workers i % W and (i + W/2) % W) and to one common channel,
// then publishes its share of the M messages: message k of worker p goes to
// the common channel when k % commonEvery == 0, else to a channel picked
// by (p, k). Each message carries (p, k, a 32-byte body). Every subscriber
// knows exactly what it must get, and checks:
//   - nothing lost or duplicated: per-publisher counts equal the expected;
//   - nothing misrouted: each (p, k) it gets is addressed to one of its channels;
//   - order per publisher: k strictly increases, whatever the channel.
// The broker must cut nobody off and its largest queue (maxQueuedBytes)
// must stay under queueLimit; the master's RSS is sampled every 50 ms.
//
// The messages go out in `rounds` (default 10): all workers publish a
// round, and the next starts when every worker got all of the round. That
// bounds what can be queued to one round; --rounds 1 is a plain fire hose.
//
//   node bench/load.js [--messages 1000000] [--workers 8] [--channels 10000]
//                      [--rounds 10] [--common-every 10] [--batch 500]
//                      [--cpus 2] [--queue-limit BYTES] [--timeout 600] [--json]
//   npm run load -- --messages 200000
//
// --cpus N pins the whole run to the first N CPUs with taskset when the
// machine has more (the figures in the issue are for 2). --timeout (seconds)
// bounds the whole run: a lost message stalls its round, and the run fails
// at the timeout saying which round. Prints a summary
// (or one JSON object with --json) and exits 0 when every check held, 1
// otherwise.

var childProcess = require('child_process');
var cluster = require('cluster');
var os = require('os');
var path = require('path');

var ROOT = path.join(__dirname, '..');
var BODY = 'b'.repeat(32);

function parseArgs(argv) {
  var out = {
    messages: 1000000,
    workers: 8,
    channels: 10000,
    rounds: 10,
    commonEvery: 10,
    batch: 500,
    cpus: 2,
    queueLimit: 0,
    json: false,
    timeout: 600
  };
  var names = {
    '--messages': 'messages', '--workers': 'workers', '--channels': 'channels', '--rounds': 'rounds',
    '--common-every': 'commonEvery', '--batch': 'batch', '--cpus': 'cpus', '--queue-limit': 'queueLimit',
    '--timeout': 'timeout'
  };
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    var eq = a.indexOf('=');
    var key = eq === -1 ? a : a.slice(0, eq);
    if (key === '--json') {
      out.json = true;
      continue;
    }
    if (key === '--help' || key === '-h') {
      var lines = require('fs').readFileSync(__filename, 'utf8').split('\n').slice(2);
      var end = lines.findIndex(function (l) { return !/^\/\//.test(l); });
      process.stdout.write(lines.slice(0, end).map(function (l) { return l.replace(/^\/\/ ?/, ''); }).join('\n') + '\n');
      process.exit(0);
    }
    if (!names[key]) throw new Error('unknown option ' + a + ' (see --help)');
    var v = Number(eq === -1 ? argv[++i] : a.slice(eq + 1));
    if (!Number.isInteger(v) || v < 0) throw new Error(key + ' needs a whole number');
    out[names[key]] = v;
  }
  if (out.workers < 2) throw new Error('--workers must be at least 2');
  if (out.channels < out.workers) throw new Error('--channels must be at least --workers');
  if (out.rounds < 1) out.rounds = 1;
  if (out.commonEvery < 1) throw new Error('--common-every must be at least 1');
  if (out.batch < 1) out.batch = 1;
  return out;
}

// ---- the traffic, the same in every process -------------------------------

function Plan(o) {
  this.o = o;
  this.half = Math.floor(o.workers / 2);
}

// Worker slots are 0 .. workers-1 (cluster ids minus one).
Plan.prototype.share = function (p) {
  var base = Math.floor(this.o.messages / this.o.workers);
  return base + (p < this.o.messages % this.o.workers ? 1 : 0);
};

// Messages p publishes in round r: [from, to).
Plan.prototype.roundRange = function (p, r) {
  var n = this.share(p);
  return [Math.floor(n * r / this.o.rounds), Math.floor(n * (r + 1) / this.o.rounds)];
};

// -1: the common channel; else the channel index.
Plan.prototype.channelOf = function (p, k) {
  if (k % this.o.commonEvery === 0) return -1;
  return (p * 7919 + k * 104729) % this.o.channels;
};

Plan.prototype.channelName = function (c) {
  return c === -1 ? 'load-common' : 'load-' + c;
};

Plan.prototype.subscribes = function (w, c) {
  if (c === -1) return true;
  return c % this.o.workers === w || (c + this.half) % this.o.workers === w;
};

Plan.prototype.channelsOf = function (w) {
  var out = [-1];
  for (var c = 0; c < this.o.channels; c++) if (this.subscribes(w, c)) out.push(c);
  return out;
};

// What w must get from each publisher in round r.
Plan.prototype.expected = function (w, r) {
  var per = new Array(this.o.workers).fill(0);
  for (var p = 0; p < this.o.workers; p++) {
    if (p === w) continue;
    var range = this.roundRange(p, r);
    for (var k = range[0]; k < range[1]; k++) if (this.subscribes(w, this.channelOf(p, k))) per[p]++;
  }
  return per;
};

// ---- worker ---------------------------------------------------------------

function worker() {
  var o = JSON.parse(process.env.LOAD_OPTIONS);
  var plan = new Plan(o);
  var me = cluster.worker.id - 1;
  var CS = require(ROOT)(require('socket.io'));
  var store = new CS();
  var last = new Array(o.workers).fill(-1); // last k per publisher
  var got = []; // got[round][publisher]
  var counts = []; // counts[round]
  for (var r = 0; r < o.rounds; r++) {
    got.push(new Array(o.workers).fill(0));
    counts.push(0);
  }
  var problems = [];
  var received = 0;
  var round = -1;
  var expected = null;
  var expectedTotal = 0;
  var reported = true;
  var errors = [];

  function problem(text) {
    if (problems.length < 20) problems.push(text);
  }

  store.on('error', function (err) { errors.push(err.message); });

  // The round message k of publisher p belongs to (a worker can get the
  // first messages of a round before it hears that the round started).
  function roundOf(p, k) {
    var n = plan.share(p);
    var r = Math.min(o.rounds - 1, Math.floor(k * o.rounds / n));
    while (r > 0 && k < plan.roundRange(p, r)[0]) r--;
    while (r < o.rounds - 1 && k >= plan.roundRange(p, r)[1]) r++;
    return r;
  }

  function onMessage(p, k, body) {
    received++;
    if (typeof p !== 'number' || p < 0 || p >= o.workers || p === me) return problem('bad publisher ' + p);
    if (k <= last[p]) problem('order: from ' + p + ' got ' + k + ' after ' + last[p]);
    last[p] = k;
    if (!plan.subscribes(me, plan.channelOf(p, k))) problem('misrouted: ' + p + ':' + k);
    if (body !== BODY) problem('body of ' + p + ':' + k);
    var r = roundOf(p, k);
    got[r][p]++;
    counts[r]++;
    if (r === round) checkRound();
  }

  function checkRound() {
    if (reported || counts[round] < expectedTotal) return;
    reported = true;
    for (var p = 0; p < o.workers; p++) {
      if (got[round][p] !== expected[p]) {
        problem('round ' + round + ': from ' + p + ' got ' + got[round][p] + ', expected ' + expected[p]);
      }
    }
    process.send({ type: 'received', round: round, got: counts[round] });
  }

  function startRound(r) {
    round = r;
    expected = plan.expected(me, r);
    expectedTotal = expected.reduce(function (a, b) { return a + b; }, 0);
    reported = false;
    var range = plan.roundRange(me, r);
    var k = range[0];
    (function pump() {
      var end = Math.min(range[1], k + o.batch);
      for (; k < end; k++) store.publish(plan.channelName(plan.channelOf(me, k)), me, k, BODY);
      if (k < range[1]) return setImmediate(pump);
      process.send({ type: 'published', round: r });
    })();
    checkRound();
  }

  process.on('message', function (m) {
    if (!m || typeof m !== 'object') return;
    if (m.type === 'round') {
      startRound(m.round);
    } else if (m.type === 'finish') {
      process.send({
        type: 'finished',
        slot: me,
        received: received,
        problems: problems,
        errors: errors,
        rss: process.memoryUsage().rss
      });
    }
  });

  var names = plan.channelsOf(me);
  var left = names.length;
  names.forEach(function (c) {
    store.subscribe(plan.channelName(c), onMessage, function (err) {
      if (err) errors.push('subscribe: ' + err.message);
      if (--left === 0) process.send({ type: 'subscribed', channels: names.length });
    });
  });
}

// ---- master ---------------------------------------------------------------

function master(o) {
  var lib = require(ROOT);
  var setup = {};
  if (o.queueLimit) setup.queueLimit = o.queueLimit;
  lib.setup(setup);
  var plan = new Plan(o);
  var rss = { start: process.memoryUsage().rss, peak: 0 };
  var sampler = setInterval(function () {
    var v = process.memoryUsage().rss;
    if (v > rss.peak) rss.peak = v;
  }, 50);
  (cluster.setupPrimary || cluster.setupMaster).call(cluster, { exec: __filename });

  var workers = [];
  var subscribed = 0;
  var finished = [];
  var round = -1;
  var roundReceived = 0;
  var roundPublished = 0;
  var t0 = 0;
  var tSubscribe = Date.now();
  var subscribeMs = 0;
  var roundMs = [];
  var roundStart = 0;
  var receivedBy = new Set();
  var deadline = setTimeout(function () {
    var missing = workers.filter(function (w) { return !receivedBy.has(w.id); }).map(function (w) { return w.id; });
    fail('timed out after ' + o.timeout + ' s in round ' + round + ' (' + roundPublished + ' of ' + o.workers +
      ' workers done publishing; still waiting for all of the round at workers ' + missing.join(', ') + ')');
  }, o.timeout * 1000);

  function fail(why) {
    clearTimeout(deadline);
    process.stderr.write('load: ' + why + '\n');
    workers.forEach(function (w) { w.process.kill('SIGKILL'); });
    process.exit(1);
  }

  function nextRound() {
    round++;
    roundReceived = 0;
    roundPublished = 0;
    receivedBy.clear();
    roundStart = Date.now();
    workers.forEach(function (w) { w.send({ type: 'round', round: round }); });
  }

  function onMessage(w, m) {
    if (!m || typeof m !== 'object') return;
    if (m.type === 'subscribed') {
      if (++subscribed === o.workers) {
        subscribeMs = Date.now() - tSubscribe;
        t0 = Date.now();
        nextRound();
      }
    } else if (m.type === 'published' || m.type === 'received') {
      if (m.round !== round) return fail('worker ' + w.id + ' reported round ' + m.round + ' during ' + round);
      if (m.type === 'published') roundPublished++;
      else {
        roundReceived++;
        receivedBy.add(w.id);
      }
      if (roundPublished === o.workers && roundReceived === o.workers) {
        roundMs.push(Date.now() - roundStart);
        if (round + 1 < o.rounds) return nextRound();
        var elapsed = Date.now() - t0;
        var stats = lib.stats();
        workers.forEach(function (x) { x.send({ type: 'finish' }); });
        onMessage.done = { elapsed: elapsed, stats: stats };
      }
    } else if (m.type === 'finished') {
      finished.push(m);
      if (finished.length === o.workers) report(onMessage.done.elapsed, onMessage.done.stats);
    }
  }

  function report(elapsed, stats) {
    clearTimeout(deadline);
    clearInterval(sampler);
    var end = process.memoryUsage().rss;
    if (end > rss.peak) rss.peak = end;
    var problems = [];
    var received = 0;
    finished.sort(function (a, b) { return a.slot - b.slot; }).forEach(function (f) {
      received += f.received;
      f.problems.forEach(function (p) { problems.push('worker ' + (f.slot + 1) + ': ' + p); });
      f.errors.forEach(function (e) { problems.push('worker ' + (f.slot + 1) + ' error: ' + e); });
    });
    var expectedDeliveries = 0;
    for (var w = 0; w < o.workers; w++) {
      for (var r = 0; r < o.rounds; r++) expectedDeliveries += plan.expected(w, r).reduce(function (a, b) { return a + b; }, 0);
    }
    if (received !== expectedDeliveries) problems.push('deliveries ' + received + ', expected ' + expectedDeliveries);
    if (stats.messagesPublished < o.messages) problems.push('the broker saw ' + stats.messagesPublished + ' publishes');
    if (stats.workersCutOff !== 0) problems.push(stats.workersCutOff + ' workers were cut off');
    if (stats.maxQueuedBytes > stats.queueLimit) problems.push('maxQueuedBytes ' + stats.maxQueuedBytes + ' over queueLimit');
    var result = {
      ok: problems.length === 0,
      problems: problems.slice(0, 50),
      options: o,
      cpus: os.cpus().length,
      node: process.version,
      elapsedMs: elapsed,
      subscribeMs: subscribeMs,
      roundMs: roundMs,
      messages: o.messages,
      deliveries: received,
      expectedDeliveries: expectedDeliveries,
      messagesPerSecond: Math.round(o.messages / (elapsed / 1000)),
      deliveriesPerSecond: Math.round(received / (elapsed / 1000)),
      masterRss: { start: rss.start, peak: rss.peak, end: end },
      workerRssMax: Math.max.apply(null, finished.map(function (f) { return f.rss; })),
      broker: stats
    };
    if (o.json) {
      process.stdout.write(JSON.stringify(result) + '\n');
    } else {
      var mb = function (n) { return (n / 1048576).toFixed(1) + ' MiB'; };
      console.log('load: %d workers on %d CPUs, %d channels (+1 common), %d messages in %d rounds (node %s)',
        o.workers, result.cpus, o.channels, o.messages, o.rounds, process.version);
      console.log('  subscribed %d channels per worker in %d ms', finished[0] ? plan.channelsOf(0).length : 0, subscribeMs);
      console.log('  %d messages, %d deliveries in %d ms: %d msgs/s published, %d deliveries/s',
        o.messages, received, elapsed, result.messagesPerSecond, result.deliveriesPerSecond);
      console.log('  broker: maxQueuedBytes %s (queueLimit %s), workersCutOff %d, messagesDelivered %d',
        mb(stats.maxQueuedBytes), mb(stats.queueLimit), stats.workersCutOff, stats.messagesDelivered);
      console.log('  master RSS: start %s, peak %s, end %s; largest worker RSS %s',
        mb(rss.start), mb(rss.peak), mb(end), mb(result.workerRssMax));
      console.log('  checks: %s', result.ok ? 'every count exact, order per publisher kept, nobody cut off' :
        'FAILED\n    ' + problems.slice(0, 20).join('\n    '));
    }
    workers.forEach(function (x) { x.process.kill(); });
    process.exitCode = result.ok ? 0 : 1;
    setTimeout(function () { process.exit(process.exitCode); }, 200).unref();
  }

  cluster.on('exit', function (w, code, signal) {
    if (finished.length < o.workers) fail('worker ' + w.id + ' exited (code ' + code + ', signal ' + signal + ')');
  });
  for (var i = 0; i < o.workers; i++) {
    var w = cluster.fork({ LOAD_OPTIONS: JSON.stringify(o) });
    w.on('message', onMessage.bind(null, w));
    workers.push(w);
  }
}

// ---- entry ----------------------------------------------------------------

if (cluster.isWorker) {
  worker();
} else {
  var options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write('load: ' + err.message + '\n');
    process.exit(2);
  }
  var cpus = os.cpus().length;
  if (options.cpus && cpus > options.cpus && !process.env.LOAD_PINNED) {
    // Re-run pinned to the first N CPUs, when taskset is there.
    var pinned = childProcess.spawnSync('taskset', ['-c', '0-' + (options.cpus - 1), process.execPath,
      __filename].concat(process.argv.slice(2)), { stdio: 'inherit', env: Object.assign({}, process.env, { LOAD_PINNED: '1' }) });
    if (!pinned.error) process.exit(pinned.status === null ? 1 : pinned.status);
    process.stderr.write('load: taskset not available, running on all ' + cpus + ' CPUs\n');
  }
  master(options);
}
