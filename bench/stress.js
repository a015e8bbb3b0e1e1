#!/usr/bin/env node
'use strict';
// Stress without sticky sessions.
//
// For each store x transport: a cluster master (child process) forks W
// workers running socket.io 0.9.19 on one shared port with that store, and
// N clients connect AT ONCE with one forced transport, spread over the
// workers by node's default round-robin scheduling (no sticky sessions).
// Then, for every connected client:
//   - it emits an event with an ack and checks the answer;
//   - it receives io.sockets.emit() broadcasts triggered on every worker in
//     turn (so at least W-1 of them come from a worker other than its own);
//   - it joins room-(i % 4) and receives that room's broadcast triggered on
//     every worker in turn;
//   - for the polling transports, the workers that served each session's
//     HTTP requests are recorded (X-Stress-Worker header, counted server
//     side), to show successive polls landing on different workers;
//   - after the clients disconnect, io.sockets.clients(room) must be empty
//     on every worker (checked every 250 ms up to the clean timeout).
//
//   node bench/stress.js [--stores cluster,strong,redis,memory]
//                        [--transports websocket,xhr-polling,jsonp-polling]
//                        [--clients 1000] [--workers 4] [--json] [--save FILE]
//                        [--verbose]
//   --json prints the raw result instead of the table, --save FILE also
//   writes it to FILE, --verbose echoes what the children print.
//   npm run stress -- --clients 500
//
// Stores: cluster (this package), strong (strong-cluster-socket.io-store
// 0.1.8), redis (socket.io's RedisStore against a redis-server the script
// starts on 127.0.0.1:26379 in a temp dir; the row is skipped, saying so,
// when redis-server is not installed), memory (no shared store: the
// contrast). jsonp-polling uses bench/lib/jsonp-client.js: socket.io-client
// 0.9.16 cannot do jsonp-polling under node (it needs a DOM).
//
// File descriptors: the client process holds one socket per websocket
// client and up to two per polling client, each worker its share; 1000
// clients need about 2500 descriptors in the client process. If `ulimit -n`
// is below 4096, raise it first (`ulimit -n 8192`).
//
// As a module: require('./bench/stress').run(options) -> Promise<result>;
// options and result are described at run() below. Every phase has a
// deadline, and every child process (master, workers, clients,
// redis-server) is killed at the end, also when something fails.

var childProcess = require('child_process');
var net = require('net');
var path = require('path');
var rpc = require('./lib/stress-rpc');
var stores = require('./lib/stress-stores');
var redisServer = require('./lib/stress-redis');

var TRANSPORTS = ['websocket', 'xhr-polling', 'jsonp-polling'];
var POLLING = ['xhr-polling', 'jsonp-polling'];
var PORT_MIN = 25000;
var PORT_MAX = 29999;
var REDIS_PORT = 26379;
var ROOMS = 4;

var DEFAULTS = {
  stores: ['cluster', 'strong', 'redis', 'memory'],
  transports: TRANSPORTS,
  clients: 1000,
  workers: 4,
  host: '127.0.0.1',
  port: 0, // 0: a free port in 25000-29999
  redisPort: REDIS_PORT,
  rooms: ROOMS,
  pollingDuration: 20, // socket.io's 'polling duration' (s)
  timeouts: {
    start: 20000, // master + workers listening
    connect: 30000, // every client connected or failed
    ack: 15000,
    join: 15000,
    settle: 250, // after the joins, before the room broadcasts
    expect: 15000, // every broadcast and room broadcast arrived
    clean: 10000 // rooms empty on every worker after the disconnects
  },
  log: null // function (line) for progress, e.g. console.error
};

// ---- child processes ----------------------------------------------------

var live = new Set(); // pids of every child still running, across runs

function track(pid) {
  if (pid) live.add(pid);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

function killPid(pid, signal) {
  try { process.kill(pid, signal || 'SIGKILL'); } catch (e) { /* gone */ }
}

// Last resort, synchronous: whatever is still running when this process
// exits is killed by pid.
process.on('exit', function () {
  live.forEach(function (pid) { killPid(pid, 'SIGKILL'); });
});

function waitExit(child, ms) {
  return new Promise(function (resolve) {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(true);
    var t = setTimeout(function () { resolve(false); }, ms);
    child.once('exit', function () { clearTimeout(t); resolve(true); });
  });
}

function forkChild(file, env, label, output) {
  var child = childProcess.fork(path.join(__dirname, 'lib', file), [], {
    env: Object.assign({}, process.env, env),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  });
  track(child.pid);
  child.on('exit', function () { live.delete(child.pid); });
  function keep(d) {
    output.text = (output.text + String(d)).slice(-8000);
    if (output.echo) process.stderr.write('[' + label + '] ' + d);
  }
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('error', function (err) { keep('spawn error: ' + err.message + '\n'); });
  return child;
}

function waitNotice(child, event, ms, label) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () {
      reject(new Error(label + ' was not ' + event + ' within ' + ms + ' ms'));
    }, ms);
    rpc.onNotice(child, function (ev, data) {
      if (ev === event) { clearTimeout(timer); resolve(data); }
    });
    child.once('exit', function (code, signal) {
      clearTimeout(timer);
      reject(new Error(label + ' exited (' + (signal || code) + ') before it was ' + event));
    });
  });
}

function freePort(host) {
  function tryPort(n) {
    var port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1));
    if (port === REDIS_PORT) return tryPort(n);
    return new Promise(function (resolve, reject) {
      var srv = net.createServer();
      srv.once('error', function () {
        if (n > 50) reject(new Error('no free port in ' + PORT_MIN + '-' + PORT_MAX));
        else resolve(tryPort(n + 1));
      });
      srv.listen(port, host, function () { srv.close(function () { resolve(port); }); });
    });
  }
  return tryPort(0);
}

// ---- one store x transport ----------------------------------------------

function sum(list, fn) {
  return list.reduce(function (s, x) { return s + fn(x); }, 0);
}

function runOne(opts, store, transport, redis) {
  var t0 = Date.now();
  var log = opts.log || function () {};
  var row = {
    store: store, transport: transport, clients: opts.clients, workers: opts.workers,
    skipped: null, fatal: null
  };
  if (store === 'redis' && (!redis || redis.unavailable)) {
    row.skipped = redis ? redis.unavailable : 'redis-server is not available';
    return Promise.resolve(row);
  }
  var T = opts.timeouts;
  var output = { text: '', echo: !!opts.verbose };
  var clientsProc = null;
  var masterCall = null;
  var clientsCall = null;
  var port;

  function diagnose() {
    return Promise.all([clientsCall('sessions', {}, 15000), masterCall('records', {}, 30000)])
      .then(function (both) {
        var records = both[1].filter(function (rec) { return !rec.dead; });
        row.spread = spread(both[0], records, transport);
        row.ackLoss = ackLoss(row.ack, records);
      });
  }

  // With opts.bail, a row stops at the first phase that fell short (the
  // tests use it: they fail there anyway, and sooner).
  function bail(ok, why) {
    if (ok || !opts.bail) return;
    var err = new Error(why);
    err.bailed = why;
    throw err;
  }

  function step(name, fn) {
    log('  ' + store + ' / ' + transport + ': ' + name);
    return fn();
  }

  var cl = null;
  return startCluster({
    store: store, workers: opts.workers, host: opts.host, redisPort: redis && redis.port,
    pollingDuration: opts.pollingDuration, startTimeout: T.start, output: output
  }).then(function (c) {
    cl = c;
    port = c.port;
    masterCall = c.call;
    row.workerExits = c.workerExits;
    clientsProc = forkChild('stress-clients.js', {}, 'clients', output);
    clientsCall = rpc.caller(clientsProc, 'the client process');
    return waitNotice(clientsProc, 'ready', T.start, 'the client process');
  }).then(function () {
    return step('connect ' + opts.clients + ' clients at once', function () {
      return clientsCall('connect', {
        url: 'http://' + opts.host + ':' + port, transport: transport, n: opts.clients,
        timeout: T.connect
      }, T.connect + 15000);
    });
  }).then(function (r) {
    row.connect = r;
    bail(r.connected === opts.clients, 'not every client connected');
    return step('acks', function () { return clientsCall('ack', { timeout: T.ack }, T.ack + 15000); });
  }).then(function (r) {
    row.ack = r;
    bail(r.ok === r.asked, 'acks missing or wrong');
    return step('join rooms', function () {
      return clientsCall('join', { rooms: opts.rooms, timeout: T.join }, T.join + 15000);
    });
  }).then(function (r) {
    row.join = r;
    bail(r.missing === 0, 'join acks missing');
    return rpc.sleep(T.settle);
  }).then(function () {
    var rooms = roomNames(opts.rooms);
    return masterCall('inspect', { rooms: rooms }, 15000).then(function (workers) {
      // What every worker's io.sockets.clients(room) says after the joins.
      row.roomsJoined = workers.map(function (w) {
        return w.dead ? 'dead' : sum(rooms, function (r) { return w.rooms[r]; });
      });
    });
  }).then(function () {
    return step('broadcasts from every worker', function () {
      var ids = workerIds(opts.workers);
      var sends = [];
      row.sendFailures = [];
      function send(cmd, args) {
        return function () {
          return masterCall(cmd, args, 10000).catch(function (err) { row.sendFailures.push(err.message); });
        };
      }
      ids.forEach(function (id) {
        sends.push(send('broadcast', { from: id, tag: 'b' }));
        roomNames(opts.rooms).forEach(function (room) {
          sends.push(send('room', { from: id, room: room, tag: 'r' }));
        });
      });
      return sends.reduce(function (p, f) { return p.then(f); }, Promise.resolve()).then(function () {
        return clientsCall('expect', {
          bcast: ids.map(function (id) { return 'b@' + id; }),
          room: ids.map(function (id) { return 'r@' + id; }),
          timeout: T.expect
        }, T.expect + 15000);
      });
    });
  }).then(function (r) {
    row.expect = r;
    return diagnose();
  }).then(function () {
    bail(row.expect.bcastAll === row.expect.clients && row.expect.roomAll === row.expect.clients,
      'broadcasts missing');
    return step('disconnect', function () { return clientsCall('disconnect', {}, 15000); });
  }).then(function (r) {
    row.disconnected = r.disconnected;
    return step('wait for clean rooms', function () { return waitClean(masterCall, opts, T.clean); });
  }).then(function (clean) {
    row.clean = clean;
    return masterCall('inspect', { rooms: [] }, 15000);
  }).then(function (workers) {
    row.storeErrors = {};
    workers.forEach(function (w) {
      if (w.dead) return;
      Object.keys(w.storeErrors || {}).forEach(function (k) {
        row.storeErrors[k] = (row.storeErrors[k] || 0) + w.storeErrors[k];
      });
    });
  }).catch(function (err) {
    if (!err || !err.bailed) {
      row.fatal = err && err.message;
      return;
    }
    row.bailed = err.bailed;
    // Where the sessions were served, and why acks went missing, are
    // still worth knowing.
    if (!row.spread) return diagnose().catch(function () {});
  }).then(function () {
    row.crashes = crashLines(output.text);
    if (row.fatal || row.crashes.length) row.output = output.text.slice(-3000);
    return stopClients(clientsProc, clientsCall);
  }).then(function () {
    return cl && cl.stop();
  }).then(function () {
    row.ms = Date.now() - t0;
    return row;
  });
}

// The first line and the top frames of each uncaught exception the
// children died of (node prints the error, its stack, then "Node.js vX").
function crashLines(text) {
  var out = [];
  var lines = text.split('\n');
  for (var k = 0; k < lines.length; k++) {
    if (!/^Node\.js v\d/.test(lines[k])) continue;
    for (var i = k - 1; i >= 0 && i >= k - 60; i--) {
      if (!/^(\w*Error\b|Error \[|\w+Exception\b)/.test(lines[i])) continue;
      var frames = [];
      for (var j = i + 1; j < k && frames.length < 4; j++) {
        if (/^\s+at /.test(lines[j])) frames.push(lines[j].trim());
      }
      out.push(lines[i].trim() + (frames.length ? ' | ' + frames.join(' | ') : ''));
      break;
    }
  }
  return out;
}

function roomNames(n) {
  var out = [];
  for (var i = 0; i < n; i++) out.push('room-' + i);
  return out;
}

function workerIds(n) {
  var out = [];
  for (var i = 1; i <= n; i++) out.push(i);
  return out;
}

// Which workers served each connected session, from the workers' records.
function spread(sessions, records, transport) {
  var served = {};
  var handshake = {};
  var connections = {};
  records.forEach(function (rec) {
    Object.keys(rec.served).forEach(function (sid) {
      var s = served[sid] || (served[sid] = {});
      Object.keys(rec.served[sid]).forEach(function (w) { s[w] = (s[w] || 0) + rec.served[sid][w]; });
    });
    Object.keys(rec.handshakes).forEach(function (sid) { handshake[sid] = Number(rec.handshakes[sid]); });
    Object.keys(rec.connections).forEach(function (sid) {
      connections[sid] = (connections[sid] || 0) + rec.connections[sid];
    });
  });
  var out = {
    sessions: sessions.length, multiWorker: 0, workersPerSession: 0, requestsPerSession: 0,
    crossHandshake: 0, dupConnection: 0, noConnection: 0, examples: []
  };
  sessions.forEach(function (s) {
    var byWorker = served[s.sid] || {};
    var ws = Object.keys(byWorker).map(Number).sort();
    if (ws.length > 1) out.multiWorker++;
    out.workersPerSession += ws.length;
    out.requestsPerSession += sum(ws, function (w) { return byWorker[w]; });
    if (handshake[s.sid] && ws.some(function (w) { return w !== handshake[s.sid]; })) out.crossHandshake++;
    var c = connections[s.sid] || 0;
    if (c > 1) out.dupConnection++;
    if (c === 0) out.noConnection++;
    if (out.examples.length < 3) {
      out.examples.push({ sid: s.sid, handshake: handshake[s.sid], served: byWorker });
    }
  });
  if (sessions.length) {
    out.workersPerSession = +(out.workersPerSession / sessions.length).toFixed(2);
    out.requestsPerSession = +(out.requestsPerSession / sessions.length).toFixed(1);
  }
  out.polling = POLLING.indexOf(transport) >= 0;
  return out;
}

// For the acks that did not come back: did the 'ping' handler run on some
// worker (the answer was lost on the way back), or did the event only reach
// workers where 'connection' never fired, so no handler saw it?
function ackLoss(ack, records) {
  if (!ack || !ack.missingIds || !ack.missingIds.length) return null;
  var out = { missing: ack.missingIds.length, handledAnswerLost: 0, onlyOrphanWorkers: 0, nowhere: 0 };
  ack.missingIds.forEach(function (i) {
    var handled = records.some(function (r) { return r.pings && r.pings[i]; });
    var orphan = records.some(function (r) { return r.orphanPings && r.orphanPings[i]; });
    if (handled) out.handledAnswerLost++;
    else if (orphan) out.onlyOrphanWorkers++;
    else out.nowhere++;
  });
  return out;
}

function waitClean(masterCall, opts, timeout) {
  var t0 = Date.now();
  var rooms = roomNames(opts.rooms);
  function check() {
    return masterCall('inspect', { rooms: rooms }, 15000).then(function (workers) {
      var left = workers.map(function (w) {
        return w.dead ? 'dead' : sum(rooms, function (r) { return w.rooms[r]; });
      });
      var clients = workers.map(function (w) { return w.dead ? 'dead' : w.clients; });
      var clean = left.every(function (n) { return n === 0; }) && clients.every(function (n) { return n === 0; });
      if (clean || Date.now() - t0 >= timeout) {
        return { clean: clean, ms: Date.now() - t0, roomsLeft: left, clientsLeft: clients };
      }
      return rpc.sleep(250).then(check);
    });
  }
  return check();
}

function stopClients(clientsProc, clientsCall) {
  if (!clientsProc) return Promise.resolve();
  if (clientsCall) clientsCall.close();
  killPid(clientsProc.pid, 'SIGKILL');
  return waitExit(clientsProc, 3000);
}

// startCluster(options) -> Promise<cluster>: a cluster master (child
// process) with `workers` socket.io 0.9 workers on one shared port with
// `store`, ready (every worker listening). options: store ('cluster'),
// workers (4), host, redisPort (for store 'redis'), pollingDuration,
// startTimeout, verbose. cluster: { port, pid, workers: [{id, pid}],
// workerExits, call(cmd, args, timeoutMs) (the master's commands:
// broadcast, room, inspect {rooms}, records, reset), output() (what the
// master and workers printed), stop() -> Promise (kills master and workers) }.
function startCluster(options) {
  var o = Object.assign({
    store: 'cluster', workers: 4, host: '127.0.0.1', redisPort: null, pollingDuration: 20,
    startTimeout: 20000, verbose: false
  }, options || {});
  var output = o.output || { text: '', echo: !!o.verbose };
  var master = null;
  var h = {
    port: null, pid: null, workers: [], workerExits: [], call: null,
    output: function () { return output.text; },
    stop: function () {
      if (!master) return Promise.resolve();
      if (h.call) h.call.close();
      // The master kills its workers on SIGTERM; then make sure of both.
      killPid(master.pid, 'SIGTERM');
      return waitExit(master, 2000).then(function (gone) {
        if (!gone) killPid(master.pid, 'SIGKILL');
        return waitExit(master, 2000);
      }).then(function () {
        h.workers.forEach(function (w) {
          if (alive(w.pid)) killPid(w.pid, 'SIGKILL');
          live.delete(w.pid);
        });
      });
    }
  };
  return freePort(o.host).then(function (port) {
    h.port = port;
    var cfg = {
      store: o.store, workers: o.workers, port: port, host: o.host,
      redisPort: o.redisPort, pollingDuration: o.pollingDuration
    };
    master = forkChild('stress-master.js', { STRESS_CONFIG: JSON.stringify(cfg) }, 'master', output);
    h.pid = master.pid;
    h.call = rpc.caller(master, 'the cluster master');
    rpc.onNotice(master, function (ev, data) {
      if (ev === 'worker-exit') h.workerExits.push(data);
    });
    return waitNotice(master, 'ready', o.startTimeout, 'the cluster master');
  }).then(function (info) {
    h.workers = info.workers;
    h.workers.forEach(function (w) { track(w.pid); });
    return h;
  }, function (err) {
    return h.stop().then(function () { throw err; });
  });
}

// ---- the whole run --------------------------------------------------------

function normalize(options) {
  var o = Object.assign({}, DEFAULTS, options || {});
  o.timeouts = Object.assign({}, DEFAULTS.timeouts, (options && options.timeouts) || {});
  ['stores', 'transports'].forEach(function (k) {
    if (typeof o[k] === 'string') o[k] = o[k].split(',').map(function (s) { return s.trim(); }).filter(Boolean);
  });
  o.stores.forEach(function (s) {
    if (stores.KINDS.indexOf(s) < 0) throw new Error('unknown store "' + s + '" (one of ' + stores.KINDS.join(', ') + ')');
  });
  o.transports.forEach(function (t) {
    if (TRANSPORTS.indexOf(t) < 0) throw new Error('unknown transport "' + t + '" (one of ' + TRANSPORTS.join(', ') + ')');
  });
  ['clients', 'workers', 'rooms'].forEach(function (k) {
    o[k] = Number(o[k]);
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(k + ' must be a positive integer');
  });
  if (o.redisPort < PORT_MIN || o.redisPort > PORT_MAX) throw new Error('redisPort must be in ' + PORT_MIN + '-' + PORT_MAX);
  return o;
}

// run(options) -> Promise<{ options, rows, redis }>
//   options: stores, transports (arrays or comma lists), clients, workers,
//     rooms, timeouts {start, connect, ack, join, settle, expect, clean}
//     in ms, pollingDuration (s), redisPort, log (progress lines), verbose
//     (echo the children's output), bail (stop a row at its first phase
//     that falls short).
//   rows: one per store x transport, in order (see runOne and format()):
//     connect {connected, errors{message: n}, timedOut}, ack {ok, wrong,
//     missing}, join, roomsJoined [per worker], expect {bcastAll, roomAll,
//     ... Missing, ... Dup, wrongRoom, dropped}, spread {multiWorker,
//     workersPerSession, crossHandshake, dupConnection}, clean {clean, ms,
//     roomsLeft [per worker], clientsLeft [per worker]}, skipped (why),
//     fatal (what broke the row), bailed (with options.bail: the first
//     phase that fell short; the later phases were not run).
function run(options) {
  var o;
  try {
    o = normalize(options);
  } catch (err) {
    return Promise.reject(err);
  }
  var redis = null;
  var rows = [];
  var start = o.stores.indexOf('redis') >= 0 ?
    redisServer.start(o.redisPort).then(function (r) { redis = r; if (r.pid) track(r.pid); }) :
    Promise.resolve();
  return start.then(function () {
    var chain = Promise.resolve();
    o.transports.forEach(function (transport) {
      o.stores.forEach(function (store) {
        chain = chain.then(function () {
          if (o.log) o.log(store + ' / ' + transport + ' ...');
          return runOne(o, store, transport, redis).then(function (row) { rows.push(row); });
        });
      });
    });
    return chain;
  }).finally(function () {
    if (redis && redis.stop) {
      return redis.stop().then(function () { live.delete(redis.pid); });
    }
  }).then(function () {
    return {
      options: { stores: o.stores, transports: o.transports, clients: o.clients, workers: o.workers },
      rows: rows,
      redis: redis ? (redis.unavailable ? { unavailable: redis.unavailable } : { port: redis.port }) : null
    };
  });
}

// ---- output ---------------------------------------------------------------

function pad(s, n, left) {
  s = String(s);
  if (s.length >= n) return s;
  var fill = new Array(n - s.length + 1).join(' ');
  return left ? s + fill : fill + s;
}

var COLUMNS = [
  ['store', 8, true], ['transport', 13, true], ['clients', 7], ['connected', 9],
  ['not hs', 6], ['other err', 9], ['timed out', 9], ['acks ok', 7], ['bcast ok', 8],
  ['room ok', 7], ['>1 worker', 9], ['cross hs', 8], ['rooms clean', 14], ['time', 6]
];

function cells(row) {
  if (row.skipped) {
    return [row.store, row.transport, row.clients, 'skipped: ' + row.skipped];
  }
  var c = row.connect || {};
  var errs = c.errors || {};
  var nh = errs['client not handshaken'] || 0;
  var other = sum(Object.keys(errs), function (k) { return errs[k]; }) - nh;
  var out = [
    row.store, row.transport, row.clients,
    c.connected !== undefined ? c.connected : '-',
    c.errors ? nh : '-',
    c.errors ? other : '-',
    c.timedOut !== undefined ? c.timedOut : '-',
    row.ack ? row.ack.ok : '-',
    row.expect ? row.expect.bcastAll : '-',
    row.expect ? row.expect.roomAll : '-',
    row.spread ? (row.spread.polling ? row.spread.multiWorker : 'n/a') : '-',
    row.spread ? row.spread.crossHandshake : '-',
    row.clean ? (row.clean.clean ? 'yes ' + (row.clean.ms / 1000).toFixed(1) + 's' : notClean(row.clean)) : '-',
    (row.ms / 1000).toFixed(0) + 's'
  ];
  if (row.fatal) out[out.length - 1] += ' !';
  return out;
}

function notClean(clean) {
  var left = sum(clean.roomsLeft, function (n) { return typeof n === 'number' ? n : 0; });
  var dead = clean.roomsLeft.filter(function (n) { return n === 'dead'; }).length;
  return 'NO ' + left + ' left' + (dead ? ', ' + dead + ' dead' : '');
}

function format(result) {
  var lines = [];
  var o = result.options;
  lines.push('socket.io 0.9.19, ' + o.workers + ' workers, round-robin (no sticky sessions), ' +
    o.clients + ' clients connecting at once per row; node ' + process.version + ', ' +
    require('os').cpus().length + ' CPUs');
  lines.push(COLUMNS.map(function (c) { return pad(c[0], c[1], c[2]); }).join(' | '));
  lines.push(COLUMNS.map(function (c) { return new Array(c[1] + 1).join('-'); }).join('-|-'));
  result.rows.forEach(function (row) {
    var cs = cells(row);
    if (row.skipped) {
      lines.push(pad(cs[0], 8, true) + ' | ' + pad(cs[1], 13, true) + ' | ' + pad(cs[2], 7) + ' | ' + cs[3]);
      return;
    }
    lines.push(cs.map(function (v, i) { return pad(v, COLUMNS[i][1], COLUMNS[i][2]); }).join(' | '));
  });
  lines.push('');
  lines.push('not hs: \'client not handshaken\'. acks ok: ack answered with the right payload. bcast ok / room ok:');
  lines.push('clients that got the io.sockets.emit / room broadcast sent from each of the ' + o.workers + ' workers.');
  lines.push('>1 worker: polling sessions whose requests were served by more than one worker. cross hs:');
  lines.push('sessions whose transport requests reached a worker other than the one that answered the handshake.');
  lines.push('rooms clean: io.sockets.clients(room) empty on every worker after the clients disconnected.');
  var notes = [];
  result.rows.forEach(function (row) {
    if (row.skipped) return;
    var name = row.store + ' / ' + row.transport + ': ';
    var bits = [];
    var errs = (row.connect && row.connect.errors) || {};
    var keys = Object.keys(errs);
    if (keys.length) bits.push('errors ' + keys.map(function (k) { return JSON.stringify(k) + ' x' + errs[k]; }).join(', '));
    var ot = (row.connect && row.connect.otherTransport) || {};
    if (Object.keys(ot).length) bits.push('CONNECTED OVER ANOTHER TRANSPORT ' + JSON.stringify(ot));
    if (row.connect && row.connect.connected) bits.push('connect p50/max ' + row.connect.connectP50 + '/' + row.connect.connectMax + ' ms');
    if (row.ack && (row.ack.wrong || row.ack.missing)) bits.push('acks wrong ' + row.ack.wrong + ', missing ' + row.ack.missing);
    if (row.ackLoss) {
      bits.push('of the missing acks: handler ran but the answer was lost ' + row.ackLoss.handledAnswerLost +
        ', the event reached only workers without its connection handlers ' + row.ackLoss.onlyOrphanWorkers +
        ', reached no worker ' + row.ackLoss.nowhere);
    }
    if (row.join && row.join.missing) bits.push('join acks missing ' + row.join.missing);
    if (row.roomsJoined) bits.push('room members seen per worker after the joins [' + row.roomsJoined.join(', ') + '] of ' + (row.join ? row.join.acked : '?'));
    var e = row.expect;
    if (e) {
      if (e.bcastMissing || e.roomMissing) bits.push('missing broadcasts ' + e.bcastMissing + ', room broadcasts ' + e.roomMissing);
      if (e.bcastDup || e.roomDup) bits.push('duplicates: broadcasts ' + e.bcastDup + ', room broadcasts ' + e.roomDup);
      if (e.wrongRoom) bits.push('room broadcasts to the wrong room ' + e.wrongRoom);
      if (e.dropped) bits.push('dropped ' + e.dropped + ' ' + JSON.stringify(e.droppedReasons));
    }
    var s = row.spread;
    if (s) {
      bits.push('workers per session ' + s.workersPerSession + ' (' + s.requestsPerSession + ' requests)');
      if (s.dupConnection) bits.push("'connection' fired on more than one worker for " + s.dupConnection);
      if (s.noConnection) bits.push("no 'connection' recorded for " + s.noConnection);
    }
    if (row.clean && !row.clean.clean) bits.push('left after ' + row.clean.ms + ' ms: room members per worker [' + row.clean.roomsLeft.join(', ') + '], clients [' + row.clean.clientsLeft.join(', ') + ']');
    if (row.workerExits && row.workerExits.length) {
      bits.push('WORKERS DIED: ' + row.workerExits.map(function (x) {
        return 'worker ' + x.worker + ' (' + (x.signal || 'exit ' + x.code) + ')';
      }).join(', '));
    }
    if (row.crashes && row.crashes.length) {
      var uniq = {};
      row.crashes.forEach(function (c) { uniq[c] = (uniq[c] || 0) + 1; });
      Object.keys(uniq).forEach(function (c) { bits.push('uncaught x' + uniq[c] + ': ' + c); });
    }
    if (row.storeErrors && Object.keys(row.storeErrors).length) bits.push('store errors ' + JSON.stringify(row.storeErrors));
    if (row.sendFailures && row.sendFailures.length) bits.push('broadcasts that could not be sent: ' + row.sendFailures.length + ' (' + row.sendFailures[0] + ')');
    if (row.bailed) bits.push('stopped early (bail): ' + row.bailed);
    if (row.fatal) bits.push('FAILED: ' + row.fatal);
    notes.push(name + bits.join('; '));
  });
  if (notes.length) {
    lines.push('');
    notes.forEach(function (n) { lines.push(n); });
  }
  if (result.redis && result.redis.unavailable) {
    lines.push('');
    lines.push('redis: ' + result.redis.unavailable);
  }
  return lines.join('\n');
}

// ---- CLI ------------------------------------------------------------------

function parseArgs(argv) {
  var out = {};
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    var m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error('unexpected argument ' + a);
    var key = m[1];
    var value = m[2];
    if (key === 'json' || key === 'verbose' || key === 'help') { out[key] = true; continue; }
    if (value === undefined) value = argv[++i];
    if (value === undefined) throw new Error('--' + key + ' needs a value');
    if (key === 'stores' || key === 'transports' || key === 'save') out[key] = value;
    else if (key === 'clients' || key === 'workers' || key === 'rooms') out[key] = Number(value);
    else throw new Error('unknown option --' + key);
  }
  return out;
}

function main() {
  var args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
  if (args.help) {
    console.log('node bench/stress.js [--stores cluster,strong,redis,memory] ' +
      '[--transports websocket,xhr-polling,jsonp-polling] [--clients 1000] [--workers 4] [--json] [--save FILE] [--verbose]');
    return;
  }
  var json = args.json;
  var save = args.save;
  delete args.json;
  delete args.save;
  args.log = function (line) { console.error(line); };
  function bail() {
    live.forEach(function (pid) { killPid(pid, 'SIGKILL'); });
    process.exit(130);
  }
  process.on('SIGINT', bail);
  process.on('SIGTERM', bail);
  run(args).then(function (result) {
    if (save) require('fs').writeFileSync(save, JSON.stringify(result, null, 2) + '\n');
    console.log(json ? JSON.stringify(result, null, 2) : format(result));
  }, function (err) {
    console.error('stress failed: ' + (err && err.stack || err));
    process.exitCode = 1;
  });
}

module.exports = { run: run, format: format, startCluster: startCluster, TRANSPORTS: TRANSPORTS, DEFAULTS: DEFAULTS };

if (require.main === module) main();
