'use strict';
// socket.io 4 without sticky sessions (lib/handoff.js): 4 real cluster
// workers on one port with node's round robin, socket.io 4.8 and its
// client, and raw HTTP where the test must control the connection (one
// keep-alive connection for two sessions, a body split across packets).
// Each session's requests must reach the worker that owns it, whatever
// worker the connection lands on.

var assert = require('assert');
var fs = require('fs');
var http = require('http');
var https = require('https');
var net = require('net');
var os = require('os');
var path = require('path');
var childProcess = require('child_process');
var ioc = require('socket.io-client-v4');
var harness = require('./support/harness');
var processes = require('./support/processes');

var WORKERS = 4;

// Socket.io 4 with the store's adapter and no handoff(io) call:
// createAdapter() enables the hand-offs itself.
var ADAPTER_ENV = { CS_SIO4: '1', CS_HANDOFF: '0', CS_SIO4_ADAPTER: 'store' };

// In a describe: WORKERS workers started with env before its tests, closed
// after them; use(c) is given the cluster once it runs.
function withWorkers(env, use) {
  var c;
  before(async function () {
    c = await harness.start({ workers: WORKERS, env: env });
    use(c);
  });
  after(async function () {
    if (c) await c.close();
  });
}

function request(port, options) {
  return new Promise(function (resolve, reject) {
    var body = options.body;
    var headers = Object.assign({}, options.headers);
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    var req = (options.tls ? https : http).request({ host: '127.0.0.1', port: port,
      method: options.method || 'GET', path: options.path, rejectUnauthorized: false,
      agent: options.agent === undefined ? false : options.agent,
      headers: headers }, function (res) {
      var chunks = [];
      res.on('data', function (d) { chunks.push(d); });
      res.on('end', function () {
        resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(),
          socket: req.socket });
      });
    });
    req.setTimeout(10000, function () { req.destroy(new Error('no answer in 10 s: ' + options.path)); });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

var EIO = '/socket.io/?EIO=4&transport=polling';

// A new engine.io session over polling, its socket.io connection made:
// { sid, tag } (the tag names the owning worker).
async function openSession(port, tls) {
  var hs = await request(port, { path: EIO, tls: tls });
  assert.strictEqual(hs.status, 200, 'handshake: ' + hs.body);
  var sid = JSON.parse(hs.body.slice(1)).sid;
  await connectSession(port, sid, tls);
  return { sid: sid, tag: sid.split('_')[0] };
}

// Makes the socket.io connection of engine.io session sid, each request on
// a connection of its own.
async function connectSession(port, sid, tls) {
  var connect = await request(port, { method: 'POST', path: EIO + '&sid=' + sid, body: '40', tls: tls });
  assert.strictEqual(connect.status, 200, 'connect: ' + connect.body);
  var got = await request(port, { path: EIO + '&sid=' + sid, tls: tls });
  assert.match(got.body, /^40/, 'the CONNECT answer of ' + sid);
}

// Sessions owned by n different workers.
async function sessionsOfDifferentOwners(port, n, tls) {
  var byTag = new Map();
  for (var tries = 0; byTag.size < n && tries < 40; tries++) {
    var s = await openSession(port, tls);
    if (!byTag.has(s.tag)) byTag.set(s.tag, s);
  }
  assert.strictEqual(byTag.size, n, 'sessions of ' + n + ' workers');
  return Array.from(byTag.values());
}

function connectClient(port, options) {
  var socket = ioc.io((options.scheme || 'http') + '://127.0.0.1:' + port, Object.assign({
    forceNew: true, reconnection: false, timeout: 10000
  }, options));
  return new Promise(function (resolve, reject) {
    socket.once('connect', function () { resolve(socket); });
    socket.once('connect_error', function (err) {
      socket.close();
      reject(new Error('connect_error: ' + err.message));
    });
  });
}

function ask(socket, event, arg) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error('no ack to ' + event + ' in 10 s')); }, 10000);
    function done(value) {
      clearTimeout(timer);
      resolve(value);
    }
    if (arg === undefined) socket.emit(event, done); else socket.emit(event, arg, done);
  });
}

// One keep-alive connection (an agent with one socket) carries POSTs and
// GETs for two sessions of two workers, in turn; every answer is right.
async function alternateOnOneConnection(c, tls) {
  var sessions = await sessionsOfDifferentOwners(c.port, 2, tls);
  var agent = new (tls ? https : http).Agent({ keepAlive: true, maxSockets: 1,
    rejectUnauthorized: false });
  var ports = new Set();
  try {
    for (var round = 0; round < 4; round++) {
      for (var s of sessions) {
        var text = 'round ' + round + ' of ' + s.sid + ' ' + 'y'.repeat(round * 30000);
        var post = await request(c.port, { method: 'POST', path: EIO + '&sid=' + s.sid,
          body: '421["echo",' + JSON.stringify(text) + ']', agent: agent, tls: tls });
        assert.strictEqual(post.status, 200, 'POST: ' + post.body);
        ports.add(post.socket.localPort);
        var get = await request(c.port, { path: EIO + '&sid=' + s.sid, agent: agent, tls: tls });
        assert.strictEqual(get.status, 200, 'GET: ' + get.body);
        assert.strictEqual(get.body, '431[' + JSON.stringify(text) + ']');
        ports.add(get.socket.localPort);
      }
    }
  } finally {
    agent.destroy();
  }
  assert.strictEqual(ports.size, 1, 'one connection carried every request');
}

function handoffStats(c, ids) {
  return c.runAll(ids || liveIds(c), function (ctx) { return ctx.handoff.stats(); });
}

// The workers that have not exited.
function liveIds(c) {
  return c.workerIds.filter(function (id) {
    return !c.exits.some(function (e) { return e.worker === id; });
  });
}

function sum(list, key) {
  return list.reduce(function (n, s) { return n + s[key]; }, 0);
}

function openFds(pid) {
  try {
    return fs.readdirSync('/proc/' + pid + '/fd').length;
  } catch (err) {
    return null;
  }
}

describe('handoff() arguments', function () {
  var handoff = require('../lib/handoff');
  var Server = require('socket.io-v4').Server;

  it('says what it needs when given something else than a socket.io 4 Server', function () {
    assert.throws(function () { handoff({}); }, function (err) {
      return err instanceof TypeError && /needs a socket\.io 4 Server/.test(err.message);
    });
    assert.throws(function () { handoff(null); }, TypeError);
  });

  it('says to attach the Server to its HTTP server first', function () {
    var io = new Server();
    try {
      assert.throws(function () { handoff(io); }, function (err) {
        return err instanceof TypeError && /attached to its HTTP server first/.test(err.message);
      });
    } finally {
      io.close();
    }
  });
});

describe('socket.io 4 without sticky sessions: ' + WORKERS + ' workers, round robin', function () {
  this.timeout(60000);
  var c;
  withWorkers({ CS_SIO4: '1' }, function (started) { c = started; });

  [['polling'], ['polling', 'websocket'], ['websocket']].forEach(function (transports) {
    it('serves ' + transports.join(' then ') + ' clients whichever worker each request reaches',
      async function () {
        var sockets = [];
        try {
          for (var i = 0; i < 12; i++) sockets.push(connectClient(c.port, { transports: transports }));
          sockets = await Promise.all(sockets);
          var owners = new Set();
          for (var s of sockets) {
            var who = await ask(s, 'whoami');
            owners.add(who.worker);
            // Each session's worker answers, and a 100 kB message (a
            // POST of many packets) comes back whole.
            assert.strictEqual(who.sid, s.io.engine.id);
            var big = 'x'.repeat(100000) + who.sid;
            assert.strictEqual(await ask(s, 'echo', big), big);
            if (transports.length === 2) {
              await processes.waitFor(function () { return s.io.engine.transport.name === 'websocket'; },
                10000, 'the upgrade to websocket');
            }
          }
          assert.ok(owners.size > 1, 'sessions on several workers: ' + Array.from(owners));
        } finally {
          sockets.forEach(function (s) { if (s && s.close) s.close(); });
        }
      });
  });

  it('keeps every worker up through malformed and hostile requests', async function () {
    var s = (await sessionsOfDifferentOwners(c.port, 1))[0];
    var foreign = EIO + '&sid=' + s.sid;
    var inputs = [
      'GARBAGE\r\n\r\n',
      'GET ' + foreign + ' HTTP/1.1\r\nContent-Length: abc\r\n\r\n',
      'POST ' + foreign + ' HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello',
      'POST ' + foreign + ' HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      'GET /socket.io/?EIO=4&transport=polling&sid=zzzzzz_unknown HTTP/1.1\r\n\r\n',
      'GET /socket.io/?EIO=4&transport=polling&sid=%E0%A4%A HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nX: ' + 'a'.repeat(70000) + '\r\n\r\n',
      'GET ' + foreign + ' HTTP/1.1\r\n\r\nGET ' + foreign + ' HTTP/1.1\r\n\r\n' + 'x'.repeat(2 << 20)
    ];
    // Each input on one connection per worker (round robin), to the end.
    for (var input of inputs) {
      await Promise.all([0, 1, 2, 3].map(function () {
        return new Promise(function (resolve) {
          var socket = net.connect(c.port, '127.0.0.1', function () { socket.end(input); });
          socket.on('error', function () {});
          socket.on('close', resolve);
          socket.setTimeout(5000, function () { socket.destroy(); });
          socket.resume();
        });
      }));
    }
    assert.deepStrictEqual(c.exits, [], 'no worker exited');
    var client = await connectClient(c.port, { transports: ['polling'] });
    try {
      assert.strictEqual(await ask(client, 'echo', 'still here'), 'still here');
    } finally {
      client.close();
    }
  });

  it('follows one keep-alive connection that carries requests for two sessions of two workers',
    async function () {
      var before = sum(await handoffStats(c), 'handedOff');
      await alternateOnOneConnection(c, false);
      var after = sum(await handoffStats(c), 'handedOff');
      // Alternating sessions of two owners: the connection moved between them.
      assert.ok(after - before >= 7, 'hand-offs: ' + (after - before));
    });

  it('takes a POST body split across TCP packets, with Content-Length and chunked', async function () {
    var s = (await sessionsOfDifferentOwners(c.port, 1))[0];
    var text = 'split ' + 'z'.repeat(5000);
    var payload = Buffer.from('421["echo",' + JSON.stringify(text) + ']');
    function raw(chunked) {
      return new Promise(function (resolve, reject) {
        var socket = net.connect(c.port, '127.0.0.1');
        socket.setNoDelay(true);
        var reply = '';
        socket.setEncoding('latin1');
        socket.on('data', function (d) {
          reply += d;
          if (/\r\n\r\n[\s\S]*ok/.test(reply)) {
            socket.destroy();
            resolve(reply);
          }
        });
        socket.on('error', reject);
        socket.on('close', function () { resolve(reply); });
        var head = 'POST ' + EIO + '&sid=' + s.sid + ' HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          'Content-Type: text/plain;charset=UTF-8\r\n' +
          (chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : 'Content-Length: ' + payload.length + '\r\n\r\n');
        var parts = [];
        if (chunked) {
          var half = payload.length >> 1;
          parts = [head + half.toString(16) + '\r\n', payload.subarray(0, half),
            '\r\n' + (payload.length - half).toString(16) + '\r\n' + payload.subarray(half).toString('latin1'),
            '\r\n0\r\n\r\n'];
        } else {
          parts = [head.slice(0, 20), head.slice(20) + payload.subarray(0, 7).toString('latin1'),
            payload.subarray(7, 3000), payload.subarray(3000)];
        }
        // One write a turn, each after the last left: separate packets.
        (function next(i) {
          if (i === parts.length) return;
          socket.write(parts[i], 'latin1', function () { setTimeout(next, 20, i + 1); });
        })(0);
      });
    }
    var before = sum(await handoffStats(c), 'handedOff');
    // Four connections: round robin puts at least three on other workers.
    for (var i = 0; i < 4; i++) {
      var chunked = i % 2 === 1;
      var reply = await raw(chunked);
      assert.match(reply, /^HTTP\/1\.1 200/, (chunked ? 'chunked' : 'content-length') + ': ' + reply);
      var get = await request(c.port, { path: EIO + '&sid=' + s.sid });
      assert.strictEqual(get.body, '431[' + JSON.stringify(text) + ']');
    }
    var after = sum(await handoffStats(c), 'handedOff');
    assert.ok(after - before >= 3, 'hand-offs: ' + (after - before));
  });

  it("answers 'Session ID unknown' for a session whose worker is gone, and the client reconnects",
    async function () {
      var client = ioc.io('http://127.0.0.1:' + c.port, { forceNew: true, transports: ['polling'],
        reconnectionDelay: 100, reconnectionDelayMax: 200 });
      try {
        // Whichever worker owns the client's session is the one killed: a
        // pooled keep-alive connection keeps new sessions on the worker
        // that accepted it, so aiming at a given worker is left to chance.
        await new Promise(function (r) { client.once('connect', r); });
        var who = await ask(client, 'whoami');
        var oldSid = who.sid;
        var disconnected = new Promise(function (r) { client.once('disconnect', r); });
        c.kill(who.worker, 'SIGKILL');
        await c.waitExit(who.worker, 10000);
        await disconnected;
        // Its sid is refused cleanly by whichever worker gets it.
        for (var i = 0; i < WORKERS; i++) {
          var stale = await request(c.port, { path: EIO + '&sid=' + oldSid });
          assert.strictEqual(stale.status, 400);
          assert.deepStrictEqual(JSON.parse(stale.body), { code: 1, message: 'Session ID unknown' });
        }
        await processes.waitFor(function () { return client.connected; }, 15000, 'the reconnect');
        var again = await ask(client, 'whoami');
        assert.notStrictEqual(again.worker, who.worker);
        assert.notStrictEqual(again.sid, oldSid);
      } finally {
        client.close();
        await c.fork(); // back to WORKERS live workers for the next tests
      }
    });

  it('leaks no descriptor when the receiving worker is killed with connections on their way to it',
    async function () {
      var w = await c.fork();
      var sessions = [];
      for (var tries = 0; sessions.length < 1 && tries < 40; tries++) {
        var s = await openSession(c.port);
        if (s.sid.indexOf(w.pid.toString(36) + '_') === 0) sessions.push(s);
      }
      assert.strictEqual(sessions.length, 1, 'a session on the new worker');
      var others = liveIds(c).filter(function (id) { return id !== w.id; });
      await new Promise(function (r) { setTimeout(r, 200); });
      var fdsBefore = { master: openFds(c.pid) };
      others.forEach(function (id) { fdsBefore[id] = openFds(c.workerPid(id)); });
      // The receiver takes no new connections from the master (whose round
      // robin would otherwise keep some for it: node's own), then stops:
      // what is handed to it waits in the broker and in its channel's socket.
      await c.run(w.id, function (ctx) { ctx.io.httpServer.close(); });
      process.kill(w.pid, 'SIGSTOP');
      var handedBefore = sum(await handoffStats(c, others), 'handedOff');
      var ends = [];
      var closed = 0;
      // Connections for the stopped worker's session, which the other
      // workers hand on to wait for it.
      for (var i = 0; i < 8; i++) {
        var socket = net.connect(c.port, '127.0.0.1');
        socket.write('GET ' + EIO + '&sid=' + sessions[0].sid + ' HTTP/1.1\r\nHost: x\r\n\r\n');
        socket.on('error', function () {});
        socket.on('close', function () { closed++; });
        ends.push(socket);
      }
      for (var waited = 0; sum(await handoffStats(c, others), 'handedOff') - handedBefore < 8; waited++) {
        assert.ok(waited < 500, 'the connections handed on');
        await new Promise(function (r) { setTimeout(r, 20); });
      }
      process.kill(w.pid, 'SIGKILL');
      await c.waitExit(w.id, 10000);
      // Every connection is closed: no process holds it any more.
      await processes.waitFor(function () { return closed === ends.length; }, 10000,
        function () { return closed + ' of ' + ends.length + ' connections closed'; });
      await processes.waitFor(function () {
        return openFds(c.pid) <= fdsBefore.master && others.every(function (id) {
          return openFds(c.workerPid(id)) <= fdsBefore[id];
        });
      }, 10000, function () {
        var now = { master: openFds(c.pid) };
        others.forEach(function (id) { now[id] = openFds(c.workerPid(id)); });
        return 'descriptors back to where they were: before ' + JSON.stringify(fdsBefore) +
          ', now ' + JSON.stringify(now);
      });
    });
});

// Handshakes for n new sessions, one after another on one keep-alive
// connection (so that, left alone, every session would be made by the
// worker holding that connection); each session is then used through
// connections of its own. The number of sessions each worker made, by tag.
async function handshakesOnOneConnection(c, n) {
  var agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  var sids = [];
  var ports = new Set();
  try {
    for (var i = 0; i < n; i++) {
      var hs = await request(c.port, { path: EIO, agent: agent });
      assert.strictEqual(hs.status, 200, 'handshake: ' + hs.body);
      sids.push(JSON.parse(hs.body.slice(1)).sid);
      ports.add(hs.socket.localPort);
    }
  } finally {
    agent.destroy();
  }
  assert.strictEqual(ports.size, 1, 'one connection carried every handshake');
  var byTag = {};
  for (var sid of sids) {
    await connectSession(c.port, sid);
    var tag = sid.split('_')[0];
    byTag[tag] = (byTag[tag] || 0) + 1;
  }
  return byTag;
}

// Until every live worker has heard the session counts of n others (they
// come at least once a second).
async function peersHeard(c, n) {
  for (var tries = 0; ; tries++) {
    var peers = (await handoffStats(c)).map(function (x) { return x.peers; });
    if (peers.every(function (k) { return k === n; })) return;
    assert.ok(tries < 150, 'peers heard by each worker, against ' + n + ': ' + peers);
    await new Promise(function (r) { setTimeout(r, 20); });
  }
}

function sessionCounts(c) {
  return c.runAll(liveIds(c), function (ctx) {
    return { tag: process.pid.toString(36), sessions: ctx.io.engine.clientsCount };
  });
}

describe('socket.io 4 without sticky sessions: new sessions placed by load', function () {
  this.timeout(60000);
  var c;
  withWorkers({ CS_SIO4: '1' }, function (started) { c = started; });

  it('spreads handshakes that all reach one worker over every worker', async function () {
    var byTag = await handshakesOnOneConnection(c, 40);
    var counts = (await sessionCounts(c)).map(function (w) { return w.sessions; });
    // Each worker holds what its tag says, and about a quarter of the 40.
    assert.deepStrictEqual((await sessionCounts(c)).map(function (w) { return byTag[w.tag] || 0; }),
      counts, 'sessions by tag against each engine\'s count');
    assert.strictEqual(counts.reduce(function (a, b) { return a + b; }), 40);
    assert.ok(Math.min.apply(null, counts) >= 6 && Math.max.apply(null, counts) <= 14,
      'sessions on each worker: ' + counts.join(', '));
    // The one connection went from worker to worker with the handshakes.
    var placed = sum(await handoffStats(c), 'placed');
    assert.ok(placed >= WORKERS - 1, 'handshakes placed: ' + placed);
  });

  it('gives new sessions to a worker that joins later until it holds its share', async function () {
    var sockets = [];
    try {
      // 40 live clients (socket.io's own, polling), about 10 on each worker.
      for (var i = 0; i < 40; i++) sockets.push(connectClient(c.port, { transports: ['polling'] }));
      sockets = await Promise.all(sockets);
      var w = await c.fork();
      var tag = w.pid.toString(36);
      // Every worker knows the new one's count (and the others').
      await peersHeard(c, WORKERS);
      // Round robin would give it 4 of 20; by load it gets about 10.
      var byTag = await handshakesOnOneConnection(c, 20);
      assert.ok((byTag[tag] || 0) >= 8, 'new sessions on the new worker (' + tag + '): ' +
        JSON.stringify(byTag));
    } finally {
      sockets.forEach(function (s) { if (s && s.close) s.close(); });
    }
  });
});

describe('socket.io 4 without sticky sessions: placement past a stopped worker, SCHED_NONE',
  function () {
    this.timeout(60000);
    var c;
    withWorkers({ CS_SIO4: '1', CS_SCHED: 'none' }, function (started) { c = started; });

    it('places no new session on a worker that has stopped', async function () {
      var ids = liveIds(c);
      var stopped = ids[0];
      var tag = c.workerPid(stopped).toString(36);
      // Every worker has heard the others (no session anywhere: the
      // stopped one looks the least loaded of all, tied).
      await peersHeard(c, WORKERS - 1);
      process.kill(c.workerPid(stopped), 'SIGSTOP');
      try {
        // Silent for longer than a count may be old (3.5 s): the others
        // leave it out (it accepts nothing itself under SCHED_NONE).
        await new Promise(function (r) { setTimeout(r, 4000); });
        var others = ids.slice(1);
        var peersNow = (await handoffStats(c, others)).map(function (x) { return x.peers; });
        assert.deepStrictEqual(peersNow, others.map(function () { return WORKERS - 2; }),
          'the others no longer count the stopped worker');
        var byTag = {};
        for (var i = 0; i < 24; i++) {
          var hs = await request(c.port, { path: EIO }); // a new connection each
          assert.strictEqual(hs.status, 200, 'handshake: ' + hs.body);
          var t = JSON.parse(hs.body.slice(1)).sid.split('_')[0];
          byTag[t] = (byTag[t] || 0) + 1;
        }
        assert.ok(!byTag[tag], 'sessions on the stopped worker: ' + JSON.stringify(byTag));
      } finally {
        process.kill(c.workerPid(stopped), 'SIGCONT');
      }
      // Back: its counts come again, and it is placed at again.
      await peersHeard(c, WORKERS - 1);
      var back = await handshakesOnOneConnection(c, 12);
      assert.ok((back[tag] || 0) >= 3, 'new sessions on the worker that came back: ' + JSON.stringify(back));
    });
  });

describe('socket.io 4 without sticky sessions, { balance: false }', function () {
  this.timeout(60000);
  var c;
  withWorkers({ CS_SIO4: '1', CS_HANDOFF: 'stay' }, function (started) { c = started; });

  it('keeps each new session on the worker its handshake reached', async function () {
    var byTag = await handshakesOnOneConnection(c, 20);
    assert.deepStrictEqual(Object.keys(byTag).map(function (t) { return byTag[t]; }), [20],
      'sessions by worker: ' + JSON.stringify(byTag));
    assert.strictEqual(sum(await handoffStats(c), 'placed'), 0);
  });

  it('says what balance must be', function () {
    var enable = require('../lib/handoff');
    var http2 = http.createServer();
    var Server = require('socket.io-v4').Server;
    var io = new Server(http2);
    try {
      assert.throws(function () { enable(io, { balance: 'yes' }); },
        /handoff\(io, \{ balance \}\) must be true or false, got yes/);
    } finally {
      io.close();
    }
    var createAdapter = require('../adapter').createAdapter;
    assert.throws(function () { createAdapter({ handoff: 'yes' }); },
      /handoff must be true, false or \{ balance \}, got yes/);
    assert.throws(function () { createAdapter({ handoff: { balance: 1 } }); },
      /handoff.balance must be true or false, got 1/);
    assert.throws(function () { createAdapter({ handoff: { balanse: false } }); },
      /handoff takes \{ balance \} only, got "balanse"/);
  });
});

describe("socket.io 4 without sticky sessions, the adapter's { handoff: { balance: false } }",
  function () {
    this.timeout(60000);
    var c;
    withWorkers(Object.assign({}, ADAPTER_ENV, { CS_SIO4_ADAPTER_HANDOFF: 'stay' }),
      function (started) { c = started; });

    it('hands requests to their session\'s worker and keeps new sessions where they land',
      async function () {
        var byTag = await handshakesOnOneConnection(c, 12);
        assert.deepStrictEqual(Object.keys(byTag).map(function (t) { return byTag[t]; }), [12],
          'sessions by worker: ' + JSON.stringify(byTag));
        var stats = await handoffStats(c);
        assert.strictEqual(sum(stats, 'placed'), 0);
        // Each session was used through new connections (round robin): the
        // ones that reached another worker were handed to the owner.
        assert.ok(sum(stats, 'handedOff') > 0, 'hand-offs: ' + sum(stats, 'handedOff'));
      });
  });

describe('socket.io 4 without sticky sessions, enabled by socket.io-cluster-store/adapter',
  function () {
    this.timeout(60000);
    var c;
    withWorkers(ADAPTER_ENV, function (started) { c = started; });

    it('serves polling clients on every worker, and io.emit reaches them all', async function () {
      var sockets = [];
      try {
        for (var i = 0; i < 8; i++) sockets.push(connectClient(c.port, { transports: ['polling'] }));
        sockets = await Promise.all(sockets);
        var owners = new Set();
        for (var s of sockets) {
          var who = await ask(s, 'whoami');
          owners.add(who.worker);
          assert.strictEqual(await ask(s, 'echo', 'x'.repeat(20000)), 'x'.repeat(20000));
        }
        assert.ok(owners.size > 1, 'sessions on several workers');
        var heard = sockets.map(function (s) {
          return new Promise(function (resolve) { s.once('news', resolve); });
        });
        await c.run(liveIds(c)[0], function (ctx) { ctx.io.emit('news', 'from one worker'); });
        assert.deepStrictEqual(await Promise.all(heard), sockets.map(function () { return 'from one worker'; }));
        assert.ok(sum(await handoffStats(c), 'handedOff') > 0, 'requests handed to their owner');
      } finally {
        sockets.forEach(function (s) { if (s && s.close) s.close(); });
      }
    });
  });

describe('socket.io 4 without sticky sessions, with connection state recovery', function () {
  this.timeout(60000);
  var c;
  withWorkers(ADAPTER_ENV, function (started) { c = started; });

  it('brings a polling client whose worker was killed back on another, recovered', async function () {
    var client = ioc.io('http://127.0.0.1:' + c.port, { forceNew: true, transports: ['polling'],
      reconnectionDelay: 100, reconnectionDelayMax: 200 });
    try {
      // The worker that owns the client's session is the one killed.
      await new Promise(function (r) { client.once('connect', r); });
      var who = await ask(client, 'whoami');
      var news = new Promise(function (r) { client.once('news', r); });
      await c.run(who.worker, function (ctx) { ctx.io.emit('news', 'before'); });
      assert.strictEqual(await news, 'before');
      var disconnected = new Promise(function (r) { client.once('disconnect', r); });
      c.kill(who.worker, 'SIGKILL');
      await c.waitExit(who.worker, 10000);
      await disconnected;
      // Sent while the client is away: it must get it on recovery.
      var missed = new Promise(function (r) { client.once('news', r); });
      await c.run(liveIds(c)[0], function (ctx) { ctx.io.emit('news', 'while away'); });
      await processes.waitFor(function () { return client.connected; }, 15000, 'the reconnect');
      assert.strictEqual(client.recovered, true, 'the session recovered');
      assert.strictEqual(await missed, 'while away');
      var again = await ask(client, 'whoami');
      assert.notStrictEqual(again.worker, who.worker);
    } finally {
      client.close();
    }
  });
});

describe('socket.io 4 without sticky sessions over HTTPS', function () {
  this.timeout(60000);
  var c;
  var dir;

  before(async function () {
    try {
      childProcess.execFileSync('openssl', ['version'], { stdio: 'ignore' });
    } catch (err) {
      this.skip(); // no openssl to make a test certificate with
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cs-tls-'));
    childProcess.execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
    { stdio: 'ignore' });
    c = await harness.start({ workers: WORKERS, env: { CS_SIO4: '1', CS_TLS: dir } });
  });

  after(async function () {
    if (c) await c.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  [['polling'], ['polling', 'websocket']].forEach(function (transports) {
    it('serves ' + transports.join(' then ') + ' clients, relaying what cannot move', async function () {
      var sockets = [];
      var before = sum(await handoffStats(c), 'relayed');
      try {
        for (var i = 0; i < 8; i++) {
          sockets.push(connectClient(c.port, { scheme: 'https', transports: transports,
            rejectUnauthorized: false }));
        }
        sockets = await Promise.all(sockets);
        for (var s of sockets) {
          var who = await ask(s, 'whoami');
          assert.strictEqual(who.sid, s.io.engine.id);
          var big = 'x'.repeat(50000) + who.sid;
          assert.strictEqual(await ask(s, 'echo', big), big);
        }
      } finally {
        sockets.forEach(function (s) { if (s && s.close) s.close(); });
      }
      var after = sum(await handoffStats(c), 'relayed');
      assert.ok(after > before, 'requests relayed to their owner');
    });
  });

  it('follows one keep-alive TLS connection that carries requests for two sessions of two workers',
    async function () {
      var before = sum(await handoffStats(c), 'relayed');
      await alternateOnOneConnection(c, true);
      var after = sum(await handoffStats(c), 'relayed');
      assert.ok(after > before, 'relayed: ' + (after - before));
    });

  it('ends a relayed connection as soon as the worker it is relayed to is gone', async function () {
    var w = await c.fork();
    // A session of the new worker.
    var session = null;
    for (var tries = 0; tries < 40 && !session; tries++) {
      var s = await openSession(c.port, true);
      if (s.tag === w.pid.toString(36)) session = s;
    }
    assert.ok(session, 'a session on the worker to kill');
    // A long poll for it (the server answers it within pingInterval, 2 s)
    // on a connection another worker accepted, so relayed to the owner.
    var others = function () { return liveIds(c).filter(function (id) { return id !== w.id; }); };
    var poll = null;
    for (tries = 0; tries < 40 && !poll; tries++) {
      var before = sum(await handoffStats(c, others()), 'relayed');
      var settled = false;
      var pending = request(c.port, { path: EIO + '&sid=' + session.sid, tls: true })
        .then(function (r) { return { answer: r }; }, function (err) { return { error: err }; })
        .then(function (outcome) { settled = true; return outcome; });
      // Relayed (another worker's count grows) or served by the owner
      // itself (it answers, at the latest with a ping).
      while (!settled && !poll) {
        if (sum(await handoffStats(c, others()), 'relayed') > before) poll = pending;
        else await new Promise(function (r) { setTimeout(r, 20); });
      }
      if (!poll) await pending;
    }
    assert.ok(poll, 'a poll relayed to the owner');
    c.kill(w.id, 'SIGKILL');
    await c.waitExit(w.id, 10000);
    var outcome = await poll;
    // Either the owner answered just before it died, or the connection
    // ended with it: never the request's own 10 s timeout.
    if (outcome.error) assert.doesNotMatch(outcome.error.message, /no answer in 10 s/);
    else assert.strictEqual(outcome.answer.status, 200);
  });
});
