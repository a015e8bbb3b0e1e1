'use strict';
// Connection churn driver: real socket.io-client 0.9.16 clients (websocket
// transport) connect to the cluster and disconnect as soon as they are
// connected, `concurrency` at a time, for `duration` ms. Without sticky
// sessions the handshake (HTTP) and the websocket usually reach different
// workers. Sends {connected, failed, reasons, elapsed} to its parent.

var stores = require('./bench-stores');
var util = require('./bench-util');

var cfg = JSON.parse(process.env.BENCH_CLIENT);
var ioc = stores.fromRoot('socket.io-client');
var url = 'http://127.0.0.1:' + cfg.port;

var connected = 0;
var failed = 0;
var reasons = Object.create(null);
var inflight = 0;
var t0 = util.now();
var deadline = t0 + cfg.duration;
var finished = false;
var latencies = [];

function fail(reason) {
  failed++;
  reason = String(reason || 'unknown').slice(0, 80);
  reasons[reason] = (reasons[reason] || 0) + 1;
}

function one() {
  inflight++;
  var start = util.now();
  var done = false;
  var socket = ioc.connect(url, {
    'force new connection': true,
    transports: ['websocket'],
    'try multiple transports': false,
    reconnect: false,
    'connect timeout': cfg.timeout
  });
  var timer = setTimeout(function () { end(false, 'timeout after ' + cfg.timeout + ' ms'); }, cfg.timeout);
  function end(ok, reason) {
    if (done) return;
    done = true;
    clearTimeout(timer);
    if (ok) {
      connected++;
      latencies.push(util.now() - start);
    } else {
      fail(reason);
    }
    try { socket.disconnect(); } catch (e) { /* already gone */ }
    inflight--;
    setImmediate(pump);
  }
  socket.on('connect', function () { end(true); });
  socket.on('error', function (err) { end(false, 'error: ' + (err && err.message || err)); });
  socket.on('connect_failed', function () { end(false, 'connect_failed'); });
}

function pump() {
  if (finished) return;
  var now = util.now();
  while (inflight < cfg.concurrency && now < deadline) one();
  if (now >= deadline && inflight === 0) {
    finished = true;
    latencies.sort(function (a, b) { return a - b; });
    process.send({
      bench: 'churn', connected: connected, failed: failed, reasons: reasons,
      elapsed: util.now() - t0,
      p50: util.percentile(latencies, 50), p99: util.percentile(latencies, 99)
    }, function () { process.exit(0); });
  }
}

// A client stuck past the deadline + timeout must not hold the run.
setTimeout(function () {
  for (var k = 0; k < inflight; k++) fail('still connecting at the end');
  inflight = 0;
  pump();
}, cfg.duration + cfg.timeout + 1000).unref();

pump();
