#!/usr/bin/env node
'use strict';
// socket.io 4 over long-polling without sticky sessions: this package's
// hand-off against @socket.io/sticky (the primary reads every connection's
// first bytes in JavaScript), same cluster (bench/lib/stress-v4-cluster.js),
// same load. Setups:
//
//   handoff     node's round robin (cluster.SCHED_RR) and the hand-off: the
//               primary's JavaScript accepts every TCP connection and passes
//               it to a worker (node's cost, per connection, not ours)
//   handoff-os  cluster.SCHED_NONE and the hand-off: the workers accept from
//               the shared socket themselves; nothing in the primary's
//               JavaScript
//   sticky      @socket.io/sticky in the primary (round robin by sid)
//
// Connections (--connections), how the clients use TCP:
//
//   close       socket.io-client's default in node (agent: false): a new
//               TCP connection for every poll and every POST, so most of
//               them land on a worker that does not own the session
//   keep-alive  an http.Agent({ keepAlive: true }) per client, as a browser
//               tab keeps its connections: once a connection has reached
//               the session's worker it stays there (the steady state)
//   shared      one keep-alive agent for every client, as a proxy pools
//               connections: one connection carries requests of many
//               sessions, each time for whichever needs it
//
// For each way of connecting, each setup in turn, in two phases:
//
//   connect     N polling clients connect, C at a time: connects/s, and how
//               many sessions each worker ended up with (min-max)
//   warm-up     the same M clients emit W acks each, untimed (--warm-rounds):
//               the first thousands of requests of a worker run code V8 has
//               not compiled yet, for every setup alike
//   round trip  M of them emit R acks each, one after another (M at once):
//               p50 and p99 of emit-to-ack, and "vs sticky", p99 over
//               sticky's p99 in the same repetition; "slices vs sticky" is
//               the median over the slices of R/S rounds (--slices S) of a
//               slice's p99 over sticky's same slice, which a stall of the
//               machine during one slice barely moves
//
//   paced       the same M clients emit at a fixed rate (--rate round trips
//               a second in all, --paced-rounds each, evenly spaced, whether
//               or not the last ack came back): every setup gets the same
//               load, below what sticky's cluster can serve, and each round
//               trip is timed from when it was due, so a client that falls
//               behind counts its wait (p50, p99, p99 over sticky's)
//
// then the round-trip phase alone (its requests, TCP connections and
// hand-offs per request, the server's CPU per request, and the share of a
// core the bench's client process used), and over the connect, warm-up
// and round-trip phases: TCP connections the clients opened per request
// the workers served, hand-offs per request, the primary's JavaScript
// (main thread) CPU per request and per TCP connection, and the CPU of the
// whole server (primary, all threads, and workers) per request.
//
//   node bench/handoff.js [--setups handoff,handoff-os,sticky]
//                         [--connections close,keep-alive] [--clients 400]
//                         [--concurrency 50] [--rtt-clients 50] [--rounds 40]
//                         [--slices 8] [--warm-rounds 40] [--rate 800]
//                         [--paced-rounds 80]
//                         [--workers 4] [--pin] [--repeat 1] [--json]
//   npm run bench:handoff -- --repeat 3
//
// --pin: the bench's client process on CPU 0 and the cluster (primary,
// broker, workers) on the others (taskset), as clients on other machines
// would be: the round trips then wait on the server's CPU, not on the
// load generator sharing its cores. Needs 2 CPUs or more.
//
// Figures from one run, side by side; on a busy machine only the ratios
// mean anything: repeat, and read them across repetitions.

var fs = require('fs');
var http = require('http');
var ioc = require('socket.io-client-v4');
var stressV4 = require('./stress-v4');

var CONNECTIONS = ['close', 'keep-alive', 'shared'];

function parseArgs(argv) {
  var out = { setups: ['handoff', 'handoff-os', 'sticky'], connections: ['close', 'keep-alive'],
    clients: 400, concurrency: 50, rttClients: 50, rounds: 40, slices: 8, warmRounds: 40,
    rate: 800, pacedRounds: 80, workers: 4, repeat: 1, pin: false, json: false };
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--pin') out.pin = true;
    else if (a === '--setups') out.setups = argv[++i].split(',');
    else if (a === '--connections') out.connections = argv[++i].split(',');
    else if (a === '--clients') out.clients = Number(argv[++i]);
    else if (a === '--concurrency') out.concurrency = Number(argv[++i]);
    else if (a === '--rtt-clients') out.rttClients = Number(argv[++i]);
    else if (a === '--rounds') out.rounds = Number(argv[++i]);
    else if (a === '--slices') out.slices = Number(argv[++i]);
    else if (a === '--warm-rounds') out.warmRounds = Number(argv[++i]);
    else if (a === '--rate') out.rate = Number(argv[++i]);
    else if (a === '--paced-rounds') out.pacedRounds = Number(argv[++i]);
    else if (a === '--workers') out.workers = Number(argv[++i]);
    else if (a === '--repeat') out.repeat = Number(argv[++i]);
    else throw new Error('unknown argument ' + a + ' (see the head of bench/handoff.js)');
  }
  out.connections.forEach(function (c) {
    if (CONNECTIONS.indexOf(c) < 0) throw new Error('unknown --connections ' + c + ': ' + CONNECTIONS.join(', '));
  });
  return out;
}

// TCP connections the clients of this process opened, by port: every
// request goes through an http.Agent (agent: false makes a one-off Agent
// per request).
var opened = new Map();
var createConnection = http.Agent.prototype.createConnection;
http.Agent.prototype.createConnection = function (options) {
  var port = Number(options && options.port);
  opened.set(port, (opened.get(port) || 0) + 1);
  return createConnection.apply(this, arguments);
};

function openedTo(port) {
  return opened.get(port) || 0;
}

// CPU seconds of a thread (/proc/<pid>/task/<tid>/stat) or a whole process.
function cpuSeconds(pid, tid) {
  var file = tid ? '/proc/' + pid + '/task/' + tid + '/stat' : '/proc/' + pid + '/stat';
  var text = fs.readFileSync(file, 'utf8');
  var fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  var ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return ticks / 100; // USER_HZ is 100 on Linux
}

function agentFor(connections, shared) {
  if (connections === 'keep-alive') return new http.Agent({ keepAlive: true });
  if (connections === 'shared') return shared;
  return false;
}

function connectOne(port, agent) {
  return new Promise(function (resolve, reject) {
    var s = ioc.io('http://127.0.0.1:' + port, { forceNew: true, reconnection: false,
      transports: ['polling'], timeout: 20000, agent: agent });
    s.once('connect', function () {
      s.on('disconnect', function (reason, details) {
        var why = details && details.description;
        if (why && typeof why === 'object') why = why.code || why.message || (why.target && why.target.status) || 'error';
        var key = reason + (why !== undefined ? ' (' + why + ')' : '');
        s.dropped = key;
      });
      resolve(s);
    });
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

// What the workers say: requests served, hand-offs, sessions, CPU.
async function workerStats(c) {
  var stats = (await c.command('stats')) || [];
  var out = { requests: 0, handedOff: 0, cpuUs: 0, sessions: [], closed: {}, refused: {} };
  stats.forEach(function (w) {
    if (!w) return;
    out.requests += w.requests || 0;
    out.handedOff += w.handoff ? w.handoff.handedOff : 0;
    out.cpuUs += w.cpu ? w.cpu.user + w.cpu.system : 0;
    out.sessions.push(w.clients);
    [['closed', w.closed], ['refused', w.refused]].forEach(function (pair) {
      Object.keys(pair[1] || {}).forEach(function (k) { out[pair[0]][k] = (out[pair[0]][k] || 0) + pair[1][k]; });
    });
  });
  return out;
}

// The whole server's CPU (the primary, all its threads, and the workers)
// per request the workers served between two snapshots, in µs.
function serverUsPerRequest(from, to) {
  var requests = to.w.requests - from.w.requests;
  return requests ? ((to.all - from.all) * 1e6 + to.w.cpuUs - from.w.cpuUs) / requests : null;
}

// What the counters say at one moment: the workers' stats, the primary's
// main thread and whole process CPU seconds, TCP connections opened to
// the cluster, this (client) process's CPU, and the time.
async function snapshot(c) {
  var w = await workerStats(c);
  return { w: w, main: cpuSeconds(c.pid, c.pid), all: cpuSeconds(c.pid), opened: openedTo(c.port),
    client: process.cpuUsage(), at: process.hrtime.bigint() };
}

// A setup's cluster, its clients, and what its row says so far.
async function start(setup, connections, args) {
  var c = await stressV4.startCluster(setup, { adapter: 'none', workers: args.workers });
  var state = { c: c, row: { setup: setup, connections: connections }, clients: [], agents: [],
    shared: new http.Agent({ keepAlive: true }), rtts: [], slices: [] };
  try {
    state.begin = await snapshot(c);
  } catch (err) {
    await stop(state);
    throw err;
  }
  return state;
}

async function connectPhase(state, args) {
  var row = state.row;
  var failed = 0;
  var errors = {};
  var began = process.hrtime.bigint();
  var next = 0;
  async function lane() {
    while (next < args.clients) {
      next++;
      var agent = agentFor(row.connections, state.shared);
      if (agent && agent !== state.shared) state.agents.push(agent);
      try {
        state.clients.push(await connectOne(state.c.port, agent));
      } catch (err) {
        failed++;
        var key = err.message + (typeof err.description === 'number' ? ' (HTTP ' + err.description + ')' : '');
        errors[key] = (errors[key] || 0) + 1;
      }
    }
  }
  var lanes = [];
  for (var i = 0; i < args.concurrency; i++) lanes.push(lane());
  await Promise.all(lanes);
  var seconds = Number(process.hrtime.bigint() - began) / 1e9;
  row.connected = state.clients.length;
  row.failed = failed;
  row.connectErrors = errors;
  row.connectsPerSecond = Math.round(state.clients.length / seconds);
  var sessions = (await workerStats(state.c)).sessions;
  row.sessionsMin = Math.min.apply(null, sessions);
  row.sessionsMax = Math.max.apply(null, sessions);
}

// Rounds [from, to) of round trips: each round-trip client emits and waits
// for the ack, then emits again.
async function roundTrips(state, args, from, to, untimed) {
  var row = state.row;
  var slice = [];
  if (!untimed) state.slices.push(slice);
  await Promise.all(state.clients.slice(0, args.rttClients).map(async function (s) {
    for (var r = from; r < to; r++) {
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
      if (untimed) continue;
      var ms = Number(process.hrtime.bigint() - t0) / 1e6;
      state.rtts.push(ms);
      slice.push(ms);
    }
  }));
}

// The paced phase: each round-trip client emits every M / rate seconds
// (the clients' starts spread over one interval), and each round trip is
// timed from when it was due.
async function pacedTrips(state, args) {
  var row = state.row;
  var clients = state.clients.slice(0, args.rttClients);
  if (!args.rate || !args.pacedRounds || !clients.length) return;
  var n = clients.length;
  var interval = n * 1000 / args.rate; // ms between one client's emits
  var times = [];
  var timeouts = 0;
  var before = await snapshot(state.c);
  var start = performance.now() + 20;
  await Promise.all(clients.map(function (s, i) {
    return new Promise(function (resolve) {
      var k = 0;
      var open = 0;
      function next() {
        var due = start + (i / n + k) * interval;
        var wait = due - performance.now();
        if (wait > 0) {
          setTimeout(next, wait);
          return;
        }
        k++;
        open++;
        var settled = false;
        var timer = setTimeout(function () { settle(false); }, 10000);
        function settle(ok) {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (ok) times.push(performance.now() - due); else timeouts++;
          if (--open === 0 && k === args.pacedRounds) resolve();
        }
        s.emit('rtt', k, function () { settle(true); });
        if (k < args.pacedRounds) next();
      }
      next();
    });
  }));
  var after = await snapshot(state.c);
  times.sort(function (a, b) { return a - b; });
  row.pacedRoundTrips = times.length;
  row.pacedTimeouts = timeouts;
  row.pacedRate = times.length / (Number(after.at - before.at) / 1e9);
  row.pacedP50 = percentile(times, 0.5);
  row.pacedP99 = percentile(times, 0.99);
  row.pacedServerUsPerRequest = serverUsPerRequest(before, after);
}

// Per request and per connection, over the connect, warm-up and round-trip
// phases.
async function finish(state) {
  var row = state.row;
  var c = state.c;
  var rtts = state.rtts.sort(function (a, b) { return a - b; });
  row.rttP50 = percentile(rtts, 0.5);
  row.rttP99 = percentile(rtts, 0.99);
  row.roundTrips = rtts.length;
  row.dropped = {};
  state.clients.forEach(function (s) {
    if (s.dropped) row.dropped[s.dropped] = (row.dropped[s.dropped] || 0) + 1;
  });
  row.sliceP99 = state.slices.map(function (a) {
    return percentile(a.sort(function (x, y) { return x - y; }), 0.99);
  });
  var end = await snapshot(c);
  var begin = state.begin;
  var rtt = state.rttBegin;
  var w1 = end.w;
  var requests = w1.requests - begin.w.requests;
  var tcp = end.opened - begin.opened;
  var main = (end.main - begin.main) * 1e6;
  var all = (end.all - begin.all) * 1e6;
  row.requests = requests;
  row.serverClosed = w1.closed;
  row.serverRefused = w1.refused;
  row.connectionsOpened = tcp;
  row.connectionsPerRequest = requests ? tcp / requests : null;
  row.handoffsPerRequest = requests ? (w1.handedOff - begin.w.handedOff) / requests : null;
  var rttRequests = w1.requests - rtt.w.requests;
  row.rttRequests = rttRequests;
  row.rttConnectionsOpened = end.opened - rtt.opened;
  row.rttHandoffs = w1.handedOff - rtt.w.handedOff;
  var rttClientUs = end.client.user + end.client.system - rtt.client.user - rtt.client.system;
  row.rttClientBusy = rttClientUs / 1e6 / (Number(end.at - rtt.at) / 1e9);
  row.rttServerUsPerRequest = serverUsPerRequest(rtt, end);
  row.primaryMainUsPerRequest = requests ? main / requests : null;
  row.primaryMainUsPerConnection = tcp ? main / tcp : null;
  row.primaryAllUsPerRequest = requests ? all / requests : null;
  row.serverUsPerRequest = serverUsPerRequest(begin, end);
  return row;
}

async function stop(state) {
  state.clients.forEach(function (s) { s.close(); });
  state.agents.forEach(function (a) { a.destroy(); });
  state.shared.destroy();
  await state.c.stop();
}

// One repetition for one way of connecting: the setups one after the
// other, each alone on the machine (with several clusters at once, one
// setup's idle sessions sat through another's connect storm, and under
// heavy load that, not the setup, decided which sessions timed out).
async function runGroup(connections, args) {
  var rows = [];
  for (var setup of args.setups) {
    var state = await start(setup, connections, args);
    try {
      await connectPhase(state, args);
      if (args.warmRounds > 0) await roundTrips(state, args, -args.warmRounds, 0, true);
      state.rttBegin = await snapshot(state.c);
      var per = Math.max(1, Math.ceil(args.rounds / args.slices));
      for (var from = 0; from < args.rounds; from += per) {
        await roundTrips(state, args, from, Math.min(args.rounds, from + per));
      }
      var row = await finish(state);
      await pacedTrips(state, args);
      rows.push(row);
    } finally {
      await stop(state);
    }
  }
  return rows;
}

// The median over slices of a slice's p99 over sticky's in the same turn:
// a stall of the machine that falls on one slice moves it by one place.
function medianRatio(ours, theirs) {
  var ratios = [];
  for (var i = 0; i < ours.length && i < theirs.length; i++) {
    if (ours[i] !== null && theirs[i]) ratios.push(ours[i] / theirs[i]);
  }
  ratios.sort(function (a, b) { return a - b; });
  if (!ratios.length) return undefined;
  var mid = ratios.length >> 1;
  return ratios.length % 2 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return '-';
  return typeof v === 'number' ? v.toFixed(digits === undefined ? 1 : digits) : String(v);
}

var COLUMNS = [
  ['setup', 10, function (r) { return r.setup; }],
  ['conns', 10, function (r) { return r.connections; }],
  ['connected', 9, function (r) { return r.connected + '/' + (r.connected + r.failed); }],
  ['conn/s', 6, function (r) { return String(r.connectsPerSecond); }],
  ['sessions', 8, function (r) { return r.sessionsMin + '-' + r.sessionsMax; }],
  ['tcp/req', 7, function (r) { return fmt(r.connectionsPerRequest, 2); }],
  ['hand/req', 8, function (r) { return fmt(r.handoffsPerRequest, 2); }],
  ['pJS us/req', 10, function (r) { return fmt(r.primaryMainUsPerRequest); }],
  ['pJS us/tcp', 10, function (r) { return fmt(r.primaryMainUsPerConnection); }],
  ['server us/req', 13, function (r) { return fmt(r.serverUsPerRequest, 0); }],
  ['p50 ms', 7, function (r) { return fmt(r.rttP50, 1); }],
  ['p99 ms', 7, function (r) { return fmt(r.rttP99, 1); }],
  ['vs sticky', 9, function (r) { return r.vsSticky === undefined ? '-' : fmt(r.vsSticky, 2); }],
  ['slices vs sticky', 16, function (r) { return r.slicesVsSticky === undefined ? '-' : fmt(r.slicesVsSticky, 2); }]
];

// The round-trip phase on its own: how many of its requests were handed
// off or came on a new connection, the server's CPU per request, and how
// busy the bench's own client process was (one process drives every
// client: near 1, it is what the round trips wait on).
var RTT_COLUMNS = [
  ['setup', 10, function (r) { return r.setup; }],
  ['conns', 10, function (r) { return r.connections; }],
  ['requests', 8, function (r) { return String(r.rttRequests); }],
  ['tcp/req', 7, function (r) { return fmt(r.rttRequests ? r.rttConnectionsOpened / r.rttRequests : null, 2); }],
  ['hand/req', 8, function (r) { return fmt(r.rttRequests ? r.rttHandoffs / r.rttRequests : null, 2); }],
  ['server us/req', 13, function (r) { return fmt(r.rttServerUsPerRequest, 0); }],
  ['client busy', 11, function (r) { return fmt(r.rttClientBusy, 2); }]
];

// The paced phase: the same load for every setup.
var PACED_COLUMNS = [
  ['setup', 10, function (r) { return r.setup; }],
  ['conns', 10, function (r) { return r.connections; }],
  ['round trips', 11, function (r) { return String(r.pacedRoundTrips); }],
  ['per s', 6, function (r) { return fmt(r.pacedRate, 0); }],
  ['server us/req', 13, function (r) { return fmt(r.pacedServerUsPerRequest, 0); }],
  ['p50 ms', 7, function (r) { return fmt(r.pacedP50, 1); }],
  ['p99 ms', 7, function (r) { return fmt(r.pacedP99, 1); }],
  ['vs sticky', 9, function (r) { return r.pacedVsSticky === undefined ? '-' : fmt(r.pacedVsSticky, 2); }]
];

function pin() {
  var cpus = require('os').availableParallelism();
  if (cpus < 2) throw new Error('--pin needs 2 CPUs or more, this machine has ' + cpus);
  require('child_process').execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)],
    { stdio: 'ignore' });
  process.env.STRESS_CPUS = cpus === 2 ? '1' : '1-' + (cpus - 1);
}

async function main() {
  var args = parseArgs(process.argv.slice(2));
  if (args.pin) pin();
  var rows = [];
  for (var rep = 1; rep <= args.repeat; rep++) {
    for (var connections of args.connections) {
      var group = await runGroup(connections, args);
      group.forEach(function (row) { row.repetition = rep; });
      var sticky = group.find(function (r) { return r.setup === 'sticky'; });
      if (sticky && sticky.rttP99) group.forEach(function (r) { r.vsSticky = r.rttP99 / sticky.rttP99; });
      if (sticky) group.forEach(function (r) { r.slicesVsSticky = medianRatio(r.sliceP99, sticky.sliceP99); });
      if (sticky && sticky.pacedP99) group.forEach(function (r) { r.pacedVsSticky = r.pacedP99 / sticky.pacedP99; });
      rows = rows.concat(group);
    }
  }
  if (args.json) {
    console.log(JSON.stringify({ args: args, rows: rows }, null, 2));
  } else {
    console.log('socket.io 4.8 long-polling, ' + args.workers + ' workers; ' + args.clients +
      ' clients connecting ' + args.concurrency + ' at a time; ' + args.rttClients + ' x ' +
      args.rounds + ' round trips after ' + args.warmRounds + ' untimed' +
      (args.pin ? '; clients on CPU 0, the cluster on CPUs ' + process.env.STRESS_CPUS : '') +
      (args.repeat > 1 ? '; ' + args.repeat + ' repetitions' : ''));
    console.log(COLUMNS.map(function (c) { return c[0].padEnd(c[1]); }).join(' '));
    rows.forEach(function (r) {
      console.log(COLUMNS.map(function (c) { return c[2](r).padEnd(c[1]); }).join(' '));
    });
    console.log('round trips alone:');
    console.log(RTT_COLUMNS.map(function (c) { return c[0].padEnd(c[1]); }).join(' '));
    rows.forEach(function (r) {
      console.log(RTT_COLUMNS.map(function (c) { return c[2](r).padEnd(c[1]); }).join(' '));
    });
    if (args.rate && args.pacedRounds) {
      console.log('paced round trips (' + args.rate + ' a second offered, ' + args.rttClients + ' x ' +
        args.pacedRounds + '):');
      console.log(PACED_COLUMNS.map(function (c) { return c[0].padEnd(c[1]); }).join(' '));
      rows.forEach(function (r) {
        console.log(PACED_COLUMNS.map(function (c) { return c[2](r).padEnd(c[1]); }).join(' '));
      });
    }
    rows.forEach(function (r) {
      var errors = Object.keys(r.connectErrors).map(function (k) { return r.connectErrors[k] + ' ' + k; });
      var where = r.setup + ' ' + r.connections + ' (repetition ' + r.repetition + ')';
      if (errors.length) console.log(where + ' failed to connect: ' + errors.join(', '));
      if (r.rttTimeouts) console.log(where + ': ' + r.rttTimeouts + ' round trips had no ack in 10 s');
      if (r.pacedTimeouts) console.log(where + ': ' + r.pacedTimeouts + ' paced round trips had no ack in 10 s');
      var dropped = Object.keys(r.dropped).map(function (k) { return r.dropped[k] + ' ' + k; });
      if (dropped.length) console.log(where + ' clients disconnected: ' + dropped.join(', '));
      [['server closed sessions', r.serverClosed], ['server refused', r.serverRefused]].forEach(function (pair) {
        var list = Object.keys(pair[1] || {}).map(function (k) { return pair[1][k] + ' ' + k; });
        if (list.length) console.log(where + ' ' + pair[0] + ': ' + list.join(', '));
      });
    });
  }
  process.exit(0);
}

main().catch(function (err) {
  console.error(err.stack || err);
  process.exit(1);
});
