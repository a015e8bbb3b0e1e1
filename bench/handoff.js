#!/usr/bin/env node
'use strict';
// socket.io 4 over long-polling without sticky sessions: this package's
// hand-off (node's round robin, sessions handed to their owner) against
// @socket.io/sticky (the primary reads every connection's first bytes in
// JavaScript), same cluster (bench/lib/stress-v4-cluster.js), same load:
//
//   connects/s   N polling clients connecting, C at a time
//   primary CPU  the primary's CPU time per HTTP request the workers
//                served, for its main (JavaScript) thread and in all
//                (ours adds the broker's thread). Under node's round robin
//                (handoff) the primary's JavaScript accepts every TCP
//                connection and passes it to a worker: node's cost, per
//                connection; handoff-os (cluster.SCHED_NONE) shows the
//                hand-off without it
//   round trip   M connected polling clients each emitting R acks in turn:
//                p50 and p99 of emit-to-ack
//
//   node bench/handoff.js [--setups handoff,handoff-os,sticky] [--clients 400]
//                         [--concurrency 50] [--rtt-clients 50] [--rounds 40]
//                         [--workers 4] [--json]
//   npm run bench:handoff -- --clients 100
//
// Figures from one run, side by side; on a busy machine only the ratios
// mean anything.

var fs = require('fs');
var ioc = require('socket.io-client-v4');
var stressV4 = require('./stress-v4');

function parseArgs(argv) {
  var out = { setups: ['handoff', 'handoff-os', 'sticky'], clients: 400, concurrency: 50, rttClients: 50,
    rounds: 40, workers: 4, json: false };
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--setups') out.setups = argv[++i].split(',');
    else if (a === '--clients') out.clients = Number(argv[++i]);
    else if (a === '--concurrency') out.concurrency = Number(argv[++i]);
    else if (a === '--rtt-clients') out.rttClients = Number(argv[++i]);
    else if (a === '--rounds') out.rounds = Number(argv[++i]);
    else if (a === '--workers') out.workers = Number(argv[++i]);
    else throw new Error('unknown argument ' + a + ' (see the head of bench/handoff.js)');
  }
  return out;
}

// CPU seconds of a thread (/proc/<pid>/task/<tid>/stat) or a whole process.
function cpuSeconds(pid, tid) {
  var file = tid ? '/proc/' + pid + '/task/' + tid + '/stat' : '/proc/' + pid + '/stat';
  var text = fs.readFileSync(file, 'utf8');
  var fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  var ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return ticks / 100; // USER_HZ is 100 on Linux
}

function connectOne(port) {
  return new Promise(function (resolve, reject) {
    var s = ioc.io('http://127.0.0.1:' + port, { forceNew: true, reconnection: false,
      transports: ['polling'], timeout: 20000 });
    s.once('connect', function () { resolve(s); });
    s.once('connect_error', function (err) {
      s.close();
      reject(err);
    });
  });
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function requestsServed(c) {
  var stats = (await c.command('stats')) || [];
  return stats.reduce(function (n, w) { return n + (w.requests || 0); }, 0);
}

async function runOne(setup, args) {
  var c = await stressV4.startCluster(setup, { adapter: 'none', workers: args.workers });
  var row = { setup: setup };
  var clients = [];
  try {
    var requests0 = await requestsServed(c);
    var main0 = cpuSeconds(c.pid, c.pid);
    var all0 = cpuSeconds(c.pid);
    // ---- connects/s
    var failed = 0;
    var started = process.hrtime.bigint();
    var next = 0;
    async function lane() {
      while (next < args.clients) {
        next++;
        try {
          clients.push(await connectOne(c.port));
        } catch (err) {
          failed++;
        }
      }
    }
    var lanes = [];
    for (var i = 0; i < args.concurrency; i++) lanes.push(lane());
    await Promise.all(lanes);
    var seconds = Number(process.hrtime.bigint() - started) / 1e9;
    row.connected = clients.length;
    row.failed = failed;
    row.connectsPerSecond = Math.round(clients.length / seconds);
    // ---- round trips
    var rtts = [];
    var rttClients = clients.slice(0, args.rttClients);
    await Promise.all(rttClients.map(async function (s) {
      for (var r = 0; r < args.rounds; r++) {
        var t0 = process.hrtime.bigint();
        var ok = await new Promise(function (resolve) {
          var timer = setTimeout(function () { resolve(false); }, 10000);
          s.emit('rtt', r, function () {
            clearTimeout(timer);
            resolve(true);
          });
        });
        if (!ok) {
          row.rttTimeouts = (row.rttTimeouts || 0) + 1;
          continue;
        }
        rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }));
    rtts.sort(function (a, b) { return a - b; });
    row.rttP50 = percentile(rtts, 0.5);
    row.rttP99 = percentile(rtts, 0.99);
    row.roundTrips = rtts.length;
    // ---- the primary's CPU per request served
    var requests = (await requestsServed(c)) - requests0;
    row.requests = requests;
    row.primaryMainUsPerRequest = requests ? (cpuSeconds(c.pid, c.pid) - main0) * 1e6 / requests : null;
    row.primaryAllUsPerRequest = requests ? (cpuSeconds(c.pid) - all0) * 1e6 / requests : null;
  } finally {
    clients.forEach(function (s) { s.close(); });
    await c.stop();
  }
  return row;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return '-';
  return typeof v === 'number' ? v.toFixed(digits === undefined ? 1 : digits) : String(v);
}

async function main() {
  var args = parseArgs(process.argv.slice(2));
  var rows = [];
  for (var setup of args.setups) rows.push(await runOne(setup, args));
  if (args.json) {
    console.log(JSON.stringify({ args: args, rows: rows }, null, 2));
  } else {
    console.log('socket.io 4.8 long-polling, ' + args.workers + ' workers; ' + args.clients +
      ' clients connecting ' + args.concurrency + ' at a time; ' + args.rttClients + ' x ' +
      args.rounds + ' round trips');
    console.log('setup      connected  connects/s  primary JS us/req  primary all us/req  rtt p50 ms  rtt p99 ms');
    rows.forEach(function (r) {
      console.log([r.setup.padEnd(10), (r.connected + '/' + (r.connected + r.failed)).padEnd(10),
        String(r.connectsPerSecond).padEnd(11), fmt(r.primaryMainUsPerRequest).padEnd(18),
        fmt(r.primaryAllUsPerRequest).padEnd(19), fmt(r.rttP50, 2).padEnd(11), fmt(r.rttP99, 2)].join(' '));
    });
  }
  process.exit(0);
}

main().catch(function (err) {
  console.error(err.stack || err);
  process.exit(1);
});
