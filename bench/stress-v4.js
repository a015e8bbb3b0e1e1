#!/usr/bin/env node
'use strict';
// Stress without sticky sessions, socket.io 4: the v4 twin of
// bench/stress.js. For each setup x transport, a cluster primary forks W
// socket.io 4.8 workers on one port (bench/lib/stress-v4-cluster.js), N
// socket.io-client 4.8 clients connect at once, then:
//   connect   how many connect, and what the rest got
//   refused   engine.io's refusals, counted in the workers (code 1 is
//             "Session ID unknown", answered with HTTP 400)
//   acks      every client emits one event with an ack: how many answered
//   emit      every worker does io.emit(): clients that got all W
//   room      every client joins a room, every worker emits to it: clients
//             that got all W
//   dropped   clients that disconnected during the run
//
//   node bench/stress-v4.js [--setups handoff,handoff-os,plain,sticky]
//                           [--transports polling,default,websocket]
//                           [--clients 1000] [--workers 4] [--adapter cluster]
//                           [--json] [--verbose]
//   npm run stress:v4 -- --clients 200
//
// Setups: handoff (node's round robin with this package's hand-off;
// handoff-os: the same with cluster.SCHED_NONE),
// plain (node's round robin, @socket.io/cluster-adapter alone: expected to
// fail, the table counts how), sticky (@socket.io/sticky in the primary).
// Broadcasts across workers go through this package's adapter in the
// handoff rows (socket.io-cluster-store/adapter, which enables the
// hand-off) and @socket.io/cluster-adapter in the others; --adapter
// cluster|store|none sets one for every row.
//
// Transports: polling (long-polling only), default (polling, then the
// upgrade to websocket), websocket (websocket only).
//
// File descriptors: 1000 polling clients hold up to 2000 sockets here;
// raise `ulimit -n` first if it is below 4096.

var childProcess = require('child_process');
var path = require('path');
var ioc = require('socket.io-client-v4');

var TRANSPORTS = {
  polling: ['polling'],
  default: ['polling', 'websocket'],
  websocket: ['websocket']
};
var CLUSTER = path.join(__dirname, 'lib', 'stress-v4-cluster.js');

function parseArgs(argv) {
  var out = { setups: ['handoff', 'handoff-os', 'plain', 'sticky'], transports: Object.keys(TRANSPORTS),
    clients: 1000, workers: 4, adapter: null, json: false, verbose: false };
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--verbose') out.verbose = true;
    else if (a === '--setups') out.setups = argv[++i].split(',');
    else if (a === '--transports') out.transports = argv[++i].split(',');
    else if (a === '--clients') out.clients = Number(argv[++i]);
    else if (a === '--workers') out.workers = Number(argv[++i]);
    else if (a === '--adapter') out.adapter = argv[++i];
    else throw new Error('unknown argument ' + a + ' (see the head of bench/stress-v4.js)');
  }
  out.transports.forEach(function (t) {
    if (!TRANSPORTS[t]) throw new Error('unknown transport ' + t + ': polling, default or websocket');
  });
  return out;
}

function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

// Resolves once cond() holds, or at the deadline (with false).
async function until(cond, ms) {
  var deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// The adapter of a setup's row: --adapter, else this package's for the
// hand-off and @socket.io/cluster-adapter for the others (the published
// setups it is compared with).
function adapterFor(setup, args) {
  if (args.adapter) return args.adapter;
  return setup.indexOf('handoff') === 0 ? 'store' : 'cluster';
}

// A started cluster: { port, command(name, arg) -> answers, stop() }.
function startCluster(setup, args) {
  return new Promise(function (resolve, reject) {
    var child = childProcess.fork(CLUSTER, [], {
      env: Object.assign({}, process.env, { STRESS_SETUP: setup, STRESS_ADAPTER: adapterFor(setup, args),
        STRESS_WORKERS: String(args.workers) }),
      stdio: args.verbose ? 'inherit' : ['ignore', 'ignore', 'pipe', 'ipc']
    });
    var stderr = '';
    if (child.stderr) child.stderr.on('data', function (d) { stderr = (stderr + d).slice(-4000); });
    var next = 1;
    var waiting = new Map();
    var exits = [];
    var timer = setTimeout(function () { reject(new Error('the cluster did not start in 20 s\n' + stderr)); }, 20000);
    child.on('message', function (m) {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve({
          port: m.port,
          pid: m.pid,
          exits: exits,
          stderr: function () { return stderr; },
          command: function (name, arg) {
            var id = next++;
            child.send({ type: 'command', id: id, name: name, arg: arg });
            return new Promise(function (res) {
              waiting.set(id, res);
              setTimeout(function () { if (waiting.delete(id)) res(null); }, 10000);
            });
          },
          stop: function () {
            child.kill('SIGKILL');
            return new Promise(function (res) {
              if (child.exitCode !== null || child.signalCode !== null) return res();
              child.once('exit', res);
            });
          }
        });
      } else if (m.type === 'answers') {
        var res = waiting.get(m.id);
        if (res) {
          waiting.delete(m.id);
          res(m.values);
        }
      } else if (m.type === 'exit') {
        exits.push(m);
      }
    });
    child.on('exit', function (code) {
      clearTimeout(timer);
      reject(new Error('the cluster exited (' + code + ')\n' + stderr));
    });
  });
}

async function runOne(setup, transport, args) {
  var row = { setup: setup, transport: transport, clients: args.clients };
  var started = Date.now();
  var c = await startCluster(setup, args);
  var clients = [];
  try {
    // ---- connect: all at once
    var errors = {};
    var connected = 0;
    var dropped = 0;
    for (var i = 0; i < args.clients; i++) {
      var s = ioc.io('http://127.0.0.1:' + c.port, { forceNew: true, reconnection: false,
        transports: TRANSPORTS[transport], timeout: 20000 });
      s.got = { bcast: new Set(), room: new Set() };
      s.on('connect', function () { connected++; });
      s.on('connect_error', function (err) {
        var key = err.message + (err.description && typeof err.description === 'number' ?
          ' (HTTP ' + err.description + ')' : '');
        errors[key] = (errors[key] || 0) + 1;
      });
      s.on('disconnect', function () { dropped++; });
      s.on('bcast', function (from, k) { if (k === 'e') this.got.bcast.add(from); });
      s.on('roomcast', function (from, k) { if (k === 'r') this.got.room.add(from); });
      clients.push(s);
    }
    var settled = function () {
      return connected + Object.values(errors).reduce(function (a, b) { return a + b; }, 0) >= args.clients;
    };
    await until(settled, 30000);
    row.connected = connected;
    row.connectErrors = errors;
    var live = clients.filter(function (s) { return s.connected; });
    // Upgrades settle before anything is measured.
    if (transport === 'default') {
      await until(function () {
        return live.every(function (s) { return !s.connected || s.io.engine.transport.name === 'websocket'; });
      }, 10000);
      row.upgraded = live.filter(function (s) { return s.io.engine.transport.name === 'websocket'; }).length;
    }
    // ---- acks
    var acked = 0;
    live.forEach(function (s, n) { s.emit('ack', n, function () { acked++; }); });
    await until(function () { return acked === live.length; }, 15000);
    row.acks = acked + '/' + live.length;
    // ---- io.emit from every worker
    await c.command('emit', 'e');
    await until(function () {
      return live.every(function (s) { return s.got.bcast.size === args.workers; });
    }, 10000);
    row.emit = live.filter(function (s) { return s.got.bcast.size === args.workers; }).length + '/' +
      live.length;
    // ---- a room, joined by every client, from every worker
    var joined = 0;
    live.forEach(function (s) { s.emit('join', 'stress', function () { joined++; }); });
    await until(function () { return joined === live.length; }, 15000);
    await c.command('room', { room: 'stress', k: 'r' });
    await until(function () {
      return live.every(function (s) { return s.got.room.size === args.workers; });
    }, 10000);
    row.room = live.filter(function (s) { return s.got.room.size === args.workers; }).length + '/' +
      live.length;
    row.dropped = dropped;
    var stats = (await c.command('stats')) || [];
    var refused = {};
    stats.forEach(function (w) {
      Object.keys(w.refused).forEach(function (k) { refused[k] = (refused[k] || 0) + w.refused[k]; });
    });
    row.refused = refused;
    row.sessionUnknown = refused['1 Session ID unknown'] || 0;
    if (setup.indexOf('handoff') === 0) {
      row.handedOff = stats.reduce(function (n, w) { return n + (w.handoff ? w.handoff.handedOff : 0); }, 0);
    }
    row.workerExits = c.exits.length;
  } finally {
    clients.forEach(function (s) { s.close(); });
    await c.stop();
  }
  row.seconds = Math.round((Date.now() - started) / 100) / 10;
  return row;
}

function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : s + new Array(n - s.length + 1).join(' ');
}

function printTable(rows) {
  var cols = [['setup', 10], ['transport', 10], ['connected', 10], ['sid unknown', 12],
    ['other errors', 28], ['acks', 10], ['io.emit', 10], ['room', 10], ['dropped', 8],
    ['handed off', 11], ['time s', 7]];
  console.log(cols.map(function (c) { return pad(c[0], c[1]); }).join(' '));
  rows.forEach(function (r) {
    if (r.error) {
      console.log(pad(r.setup, 10) + ' ' + pad(r.transport, 10) + ' failed: ' + r.error);
      return;
    }
    var other = Object.keys(r.connectErrors).map(function (k) { return r.connectErrors[k] + ' ' + k; }).join(', ');
    var cells = [r.setup, r.transport, r.connected + '/' + r.clients, r.sessionUnknown, other || '0',
      r.acks, r.emit, r.room, r.dropped, r.handedOff === undefined ? '-' : r.handedOff, r.seconds];
    console.log(cells.map(function (v, i) { return pad(v, cols[i][1]); }).join(' '));
  });
}

async function main() {
  var args = parseArgs(process.argv.slice(2));
  var rows = [];
  for (var t of args.transports) {
    for (var setup of args.setups) {
      try {
        rows.push(await runOne(setup, t, args));
      } catch (err) {
        rows.push({ setup: setup, transport: t, error: err.message });
      }
    }
  }
  if (args.json) console.log(JSON.stringify({ args: args, rows: rows }, null, 2));
  else {
    var names = { cluster: '@socket.io/cluster-adapter', store: 'socket.io-cluster-store/adapter',
      none: 'no adapter' };
    console.log('socket.io 4.8, ' + args.workers + ' workers, ' + args.clients +
      ' clients connecting at once; broadcasts through ' + (args.adapter ? names[args.adapter] :
      names.store + ' (handoff rows) and ' + names.cluster + ' (the others)'));
    printTable(rows);
  }
  process.exit(0);
}

if (require.main === module) {
  main().catch(function (err) {
    console.error(err.stack || err);
    process.exit(1);
  });
}

module.exports = { startCluster: startCluster, TRANSPORTS: TRANSPORTS };
