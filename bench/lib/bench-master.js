'use strict';
// One benchmark run: a cluster master that sets up one store (or floor),
// forks the workers (bench-worker.js), drives one scenario and sends the
// figures to bench/run.js over IPC. run.js starts it in its own process
// group and kills the whole group afterwards.

var cluster = require('cluster');
var path = require('path');
var childProcess = require('child_process');
var perf = require('perf_hooks').performance;
var stores = require('./bench-stores');
var util = require('./bench-util');

var cfg = JSON.parse(process.env.BENCH_RUN);
var entry = stores.STORES[cfg.store];
var workers = [];
var handlers = Object.create(null);
var shuttingDown = false;

var reported = false;

function report(result) {
  if (reported) return;
  reported = true;
  process.send({ result: result }, function () { shutdown(0); });
}

function fail(message) {
  if (reported) return;
  reported = true;
  process.send({ error: message }, function () { shutdown(1); });
}

// Workers are asked to exit (so --cpu-prof can write its profile), and
// killed if they have not after a moment; run.js kills the group anyway.
function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  var left = workers.filter(function (w) { return !w.isDead(); });
  var wait = process.env.BENCH_PROFILE ? 5000 : 500;
  function killRest() {
    left.forEach(function (w) { try { w.process.kill('SIGKILL'); } catch (e) { /* gone */ } });
    process.exit(code);
  }
  var timer = setTimeout(killRest, wait);
  if (!left.length) return killRest();
  left.forEach(function (w) {
    w.process.once('exit', function () {
      left = left.filter(function (x) { return x !== w; });
      if (!left.length) {
        clearTimeout(timer);
        killRest();
      }
    });
    try { w.send({ bench: 'exit' }); } catch (e) { /* gone */ }
  });
}

function gc() {
  if (typeof global.gc === 'function') {
    global.gc();
    global.gc();
  }
}

// The master's main (JavaScript) thread and its other threads (our broker,
// V8's and libuv's helpers), plus how busy its event loop was.
function masterMeter() {
  var cpu0 = util.processThreadsCpuMs(process.pid);
  var elu0 = perf.eventLoopUtilization();
  var t0 = util.now();
  return function () {
    var cpu1 = util.processThreadsCpuMs(process.pid);
    var elu = perf.eventLoopUtilization(elu0);
    return {
      wall: util.now() - t0,
      mainCpu: cpu1.main - cpu0.main,
      otherCpu: cpu1.other - cpu0.other,
      elu: elu.utilization
    };
  };
}

entry.masterSetup(cfg);

cluster.setupPrimary({
  exec: path.join(__dirname, 'bench-worker.js'),
  execArgv: process.env.BENCH_PROFILE ?
    ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROFILE] : process.execArgv.filter(function (a) {
      return a !== '--expose-gc';
    }),
  // The socketpair floor gives every worker an extra AF_UNIX socketpair
  // (fd 4) whose master end is handed to worker 1.
  stdio: entry.pipes ? ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'] :
    ['ignore', 'inherit', 'inherit', 'ipc'],
  silent: false
});

cluster.on('message', function (worker, m) {
  if (!m || typeof m.bench !== 'string') return;
  if (m.bench === 'log') {
    process.stderr.write('[' + cfg.store + ' worker ' + worker.id + '] ' + m.text + '\n');
    return;
  }
  var h = handlers[m.bench];
  if (h) h(m, worker);
});

cluster.on('exit', function (worker, code, signal) {
  if (!shuttingDown) fail('worker ' + worker.id + ' exited (' + (signal || code) + ') during the run');
});

var readyCount = 0;
function forkAll(n, onReady) {
  handlers.ready = function () {
    if (++readyCount === n) link(onReady);
  };
  for (var i = 0; i < n; i++) workers.push(cluster.fork({ BENCH_RUN: JSON.stringify(cfg) }));
}

// socketpair floor: hand worker 1 the master's end of every other
// worker's pipe, so it holds a direct socketpair to each.
function link(then) {
  if (!entry.pipes) return then();
  var expected = workers.length - 1;
  var linked = 0;
  handlers.linked = function () {
    if (++linked === expected) then();
  };
  for (var i = 1; i < workers.length; i++) {
    workers[0].send({ bench: 'link' }, workers[i].process.stdio[4]);
  }
}

function broadcast(m) {
  workers.forEach(function (w) { w.send(m); });
}

// ---- scenarios ----------------------------------------------------------

function publishRun() {
  var p = cfg.params;
  var consumers = workers.length - 1;
  var progress = Object.create(null);
  var finals = Object.create(null);
  var published = null;
  var meter = null;
  var drainTimer = null;
  var finished = false;
  function delivered() {
    var sum = 0;
    for (var k in progress) sum += progress[k].count;
    return sum;
  }
  function maybeDone() {
    if (finished || !published) return;
    if (delivered() >= published.count * consumers) collect();
  }
  function collect() {
    if (finished) return;
    finished = true;
    clearTimeout(drainTimer);
    var master = meter();
    var got = 0;
    handlers.final = function (m) {
      finals[m.index] = m;
      if (++got < consumers) return;
      var total = 0;
      var lastAt = 0;
      var consumerCpu = 0;
      for (var k in finals) {
        total += finals[k].count;
        lastAt = Math.max(lastAt, finals[k].lastAt);
        consumerCpu += finals[k].cpu;
      }
      var t0 = published.t0;
      report({
        published: published.count,
        publishMs: published.t1 - published.t0,
        publishRate: published.count / ((published.t1 - published.t0) / 1000),
        delivered: total,
        expected: published.count * consumers,
        deliverMs: lastAt - t0,
        deliverRate: lastAt > t0 ? total / ((lastAt - t0) / 1000) : 0,
        publisherCpu: published.cpu,
        consumerCpu: consumerCpu,
        master: master
      });
    };
    workers.slice(1).forEach(function (w) { w.send({ bench: 'report' }); });
  }
  handlers.progress = function (m) {
    progress[m.index] = m;
    maybeDone();
  };
  handlers.published = function (m) {
    published = m;
    drainTimer = setTimeout(collect, p.drain);
    maybeDone();
  };
  meter = masterMeter();
  broadcast({ bench: 'go' });
}

function latencyRun() {
  handlers.latency = function (m) {
    m.master = meter();
    delete m.bench;
    report(m);
  };
  var meter = masterMeter();
  workers[0].send({ bench: 'go' });
}

// The storm starts, settles for params.settle ms, then worker 1 pings;
// when it is done, every worker says how many storm messages it took.
function stormRun() {
  var p = cfg.params;
  var latency = null;
  var counts = [];
  var t0 = 0;
  var meter = null;
  handlers['storm-latency'] = function (m) {
    latency = m;
    broadcast({ bench: 'report' });
    // A store that queued the storm without bound (in its master's
    // memory, say) may need minutes to drain it before the readers can
    // count; its latency is known, its storm rate is not.
    setTimeout(function () {
      var delivered = util.takeStormCounts(process.pid, readerIndexes());
      report({ count: latency.count, unanswered: latency.unanswered, p50: latency.p50, p99: latency.p99,
        max: latency.max, stormUndrained: p.drainLimit / 1000, stormDelivered: delivered,
        stormRate: delivered / ((Date.now() - t0) / 1000), master: meter() });
    }, p.drainLimit);
  };
  function readerIndexes() {
    return p.slow ? [4] : workers.map(function (w, i) { return i + 1; }).filter(function (i) { return i !== 3; });
  }
  handlers['storm-count'] = function (m) {
    counts.push(m);
    if (counts.length < workers.length) return;
    util.takeStormCounts(process.pid, readerIndexes());
    var delivered = 0;
    var published = 0;
    counts.forEach(function (c) {
      delivered += c.count;
      published += c.published || 0;
    });
    // Until the last count came: a slow reader answers only once it has
    // handled what it had taken in.
    var seconds = (Date.now() - t0) / 1000;
    report({ count: latency.count, unanswered: latency.unanswered, p50: latency.p50, p99: latency.p99, max: latency.max,
      stormDelivered: delivered, stormPublished: published, stormRate: delivered / seconds,
      master: meter() });
  };
  meter = masterMeter();
  t0 = Date.now();
  broadcast({ bench: 'storm' });
  setTimeout(function () { workers[0].send({ bench: 'go' }); }, p.settle);
}

function kvRun() {
  var results = [];
  handlers.kv = function (m) {
    results.push(m);
    if (results.length < workers.length) return;
    var ops = 0;
    var errors = 0;
    var hung = 0;
    var elapsed = 0;
    var cpu = 0;
    var firstError = null;
    results.forEach(function (r) {
      ops += r.ops;
      errors += r.errors;
      hung += r.hung;
      elapsed = Math.max(elapsed, r.elapsed);
      cpu += r.cpu;
      firstError = firstError || r.firstError;
    });
    report({ ops: ops, errors: errors, hung: hung, firstError: firstError, elapsed: elapsed,
      rate: ops / (elapsed / 1000), workerCpu: cpu, master: meter() });
  };
  var meter = masterMeter();
  broadcast({ bench: 'go' });
}

function churnRun() {
  var meter = masterMeter();
  var child = childProcess.fork(path.join(__dirname, 'bench-client.js'), [], {
    env: Object.assign({}, process.env, {
      BENCH_CLIENT: JSON.stringify({ port: cfg.params.port, duration: cfg.params.duration,
        concurrency: cfg.params.concurrency, timeout: cfg.params.timeout })
    }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  });
  child.on('exit', function (code) {
    if (!clientResult) fail('the client driver exited (' + code + ') without a result');
  });
  var clientResult = null;
  child.on('message', function (m) {
    if (!m || m.bench !== 'churn') return;
    clientResult = m;
    var master = meter();
    var seen = [];
    handlers['churn-worker'] = function (w) {
      seen.push(w.connections);
      if (seen.length < workers.length) return;
      delete m.bench;
      m.rate = m.connected / (m.elapsed / 1000);
      m.perWorker = seen;
      m.master = master;
      report(m);
    };
    broadcast({ bench: 'report' });
  });
}

function memoryRun() {
  var statsOf = entry.statsInMaster || function () { return null; };
  // Where the state lives: the master, or redis-server for RedisStore.
  var holder = cfg.redisPid ? cfg.redisPid : process.pid;
  function rss() {
    gc();
    return util.rssOf(holder);
  }
  var before = { rss: rss(), stats: statsOf() };
  var afterClients = null;
  var clientsPhase = null;
  handlers['mem-clients-done'] = function (m) {
    clientsPhase = m;
    setTimeout(function () {
      afterClients = { rss: rss(), stats: statsOf() };
      workers[0].send({ bench: 'mem-channels' });
    }, 200);
  };
  handlers['mem-channels-done'] = function (m) {
    setTimeout(function () {
      var afterChannels = { rss: rss(), stats: statsOf() };
      report({
        holder: cfg.redisPid ? 'redis-server' : 'master',
        clients: cfg.params.clients,
        channels: cfg.params.channels,
        before: before,
        afterClients: afterClients,
        afterChannels: afterChannels,
        clientsPhase: clientsPhase,
        channelsPhase: m
      });
    }, 200);
  };
  workers[0].send({ bench: 'mem-clients' });
}

var RUNS = {
  publish: publishRun,
  latency: latencyRun,
  storm: stormRun,
  kv: kvRun,
  churn: churnRun,
  memory: memoryRun
};

process.on('disconnect', function () { shutdown(1); });
forkAll(cfg.workers, function () { setTimeout(RUNS[cfg.scenario], cfg.settle || 100); });
