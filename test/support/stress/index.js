'use strict';
// Stress without sticky sessions: the library behind `npm run stress`
// (bench/stress.js, which prints its table) and test/sticky.test.js.
//
// For each store x transport: a cluster master (child process, master.js)
// forks W workers (worker.js) running socket.io 0.9.19 on one shared port
// with that store, and N clients (clients.js) connect AT ONCE with one
// forced transport, spread over the workers by node's default round-robin
// scheduling (no sticky sessions). Then, for every connected client:
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
// Stores (stores.js): cluster (this package), strong
// (strong-cluster-socket.io-store 0.1.8), redis (socket.io's RedisStore
// against a redis-server started on 127.0.0.1:26379 in a temp dir, redis.js;
// the row is skipped, saying so, when redis-server is not installed), memory
// (no shared store: the contrast). jsonp-polling uses jsonp-client.js:
// socket.io-client 0.9.16 cannot do jsonp-polling under node (it needs a
// DOM).
//
// require('./test/support/stress').run(options) -> Promise<result>; options
// and result are described at run() below; startCluster(options) starts
// just the cluster. Every phase has a deadline, and every child process
// (master, workers, clients, redis-server) is killed at the end, also when
// something fails.

var childProcess = require('child_process');
var net = require('net');
var path = require('path');
var rpc = require('./rpc');
var stores = require('./stores');
var redisServer = require('./redis');
var processes = require('../processes');

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

// Every child is tracked in test/support/processes.js's set, across runs;
// whatever is still running when this process exits is killed there.
var live = processes.live;
var track = processes.track;
var alive = processes.isAlive;
var killPid = processes.killPid;

function waitExit(child, ms) {
  return new Promise(function (resolve) {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(true);
    var t = setTimeout(function () { resolve(false); }, ms);
    child.once('exit', function () { clearTimeout(t); resolve(true); });
  });
}

function forkChild(file, env, label, output) {
  var child = childProcess.fork(path.join(__dirname, file), [], {
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
    clientsProc = forkChild('clients.js', {}, 'clients', output);
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
    master = forkChild('master.js', { STRESS_CONFIG: JSON.stringify(cfg) }, 'master', output);
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

// Kills every child still running (for a CLI interrupted by a signal).
function killAll() {
  live.forEach(function (pid) { killPid(pid, 'SIGKILL'); });
}

module.exports = { run: run, startCluster: startCluster, killAll: killAll, TRANSPORTS: TRANSPORTS, DEFAULTS: DEFAULTS };
