'use strict';
// The socket.io 4 adapter (require('socket.io-cluster-store/adapter')) in a
// real cluster: every worker runs socket.io 4.8 on a port of its own, with
// createAdapter(); the primary calls setupPrimary() and nothing else (the
// main module is never loaded there); real socket.io-client 4 clients, over
// websocket and polling, connect each to one worker (no sticky sessions
// needed for that). Every message type of socket.io-adapter's
// ClusterAdapter, acks and their timeouts, a worker killed while a request
// or an emit with acks waits for it, values JSON cannot carry, and what
// cannot be sent at all.

var assert = require('assert');
var harness = require('./support/harness');
var processes = require('./support/processes');
var sio4 = require('./support/sio4');

// Run in each worker: a socket.io 4 server with our adapter, on a port of
// its own. ctx.state.sockets holds the server sockets, by client name.
function startServer(ctx) {
  var http = ctx.require('http');
  var Server = ctx.require('socket.io-v4').Server;
  var adapter = ctx.require(ctx.require('path').join(ctx.ROOT, 'adapter'));
  var httpServer = http.createServer();
  var io = new Server(httpServer, { adapter: adapter.createAdapter() });
  ctx.state.io = io;
  ctx.state.sockets = {};
  ctx.state.serverEvents = [];
  io.on('connection', function (socket) {
    ctx.state.sockets[socket.handshake.query.name] = socket;
    socket.data = { name: socket.handshake.query.name, worker: ctx.workerId };
  });
  io.on('note', function () {
    ctx.state.serverEvents.push(Array.prototype.slice.call(arguments));
  });
  io.of('/other').on('connection', function () {});
  return new Promise(function (resolve) {
    // exclusive: a port of this worker's own (listen(0) in a cluster worker
    // would share one port among the workers, round robin).
    httpServer.listen({ port: 0, host: '127.0.0.1', exclusive: true }, function () {
      resolve(httpServer.address().port);
    });
  });
}

describe('socket.io 4 adapter across cluster workers', function () {
  this.timeout(60000);
  var cluster;
  var ports = {}; // worker id -> port
  var clients = []; // every client opened, closed after each test
  var ids;

  before(async function () {
    cluster = await harness.start({ workers: 3, load: false });
    await cluster.run('master', function (ctx) {
      ctx.require(ctx.require('path').join(ctx.ROOT, 'adapter')).setupPrimary();
      return true;
    });
    ids = cluster.workerIds.slice();
    for (var i = 0; i < ids.length; i++) ports[ids[i]] = await cluster.run(ids[i], startServer);
    // Every server knows the others once each has joined its namespace.
    await waitServerCount(ids, 3);
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  afterEach(function () {
    clients.forEach(function (c) { c.disconnect(); });
    clients = [];
  });

  function waitServerCount(workers, n) {
    return sio4.waitServerCount(workers.map(function (id) { return { cluster: cluster, id: id }; }), n);
  }

  // A client named name on worker id; resolves once connected.
  function connect(id, name, transport, nsp) {
    return sio4.connect('http://127.0.0.1:' + ports[id] + (nsp || ''), { name: name, transport: transport },
      clients);
  }

  var next = sio4.next;

  function run(id, fn, arg) {
    return cluster.run(id, fn, arg);
  }

  it('serverCount() is the number of servers the broker has in the namespace', async function () {
    var counts = await cluster.runAll(ids, function (ctx) { return ctx.state.io.of('/').adapter.serverCount(); });
    assert.deepStrictEqual(counts, [3, 3, 3]);
  });

  it('io.emit reaches clients on every worker, over websocket and polling, binary included', async function () {
    var a = await connect(ids[0], 'a', 'websocket');
    var b = await connect(ids[1], 'b', 'polling');
    var c = await connect(ids[2], 'c', 'websocket');
    var got = Promise.all([a, b, c].map(function (s) { return next(s, 'news'); }));
    await run(ids[0], function (ctx) {
      ctx.state.io.emit('news', 1, 'two', Buffer.from([3, 4]), { nested: [null, true] });
      return true;
    });
    (await got).forEach(function (args) {
      assert.strictEqual(args[0], 1);
      assert.strictEqual(args[1], 'two');
      assert.ok(Buffer.isBuffer(args[2]) && args[2].equals(Buffer.from([3, 4])), 'binary arrives as binary');
      assert.deepStrictEqual(args[3], { nested: [null, true] });
    });
  });

  it('to(room) and except(room) follow the rooms on other workers; local stays local', async function () {
    var a = await connect(ids[0], 'a');
    var b = await connect(ids[1], 'b', 'polling');
    var c = await connect(ids[2], 'c');
    await run(ids[1], function (ctx) { ctx.state.sockets.b.join('blue'); return true; });
    var seen = { a: [], b: [], c: [] };
    [[a, 'a'], [b, 'b'], [c, 'c']].forEach(function (p) {
      p[0].on('tick', function (what) { seen[p[1]].push(what); });
    });
    var done = Promise.all([next(a, 'end'), next(b, 'end'), next(c, 'end')]);
    await run(ids[0], function (ctx) {
      var io = ctx.state.io;
      io.to('blue').emit('tick', 'room');
      io.except('blue').emit('tick', 'except');
      io.local.emit('tick', 'local');
      io.emit('end');
      return true;
    });
    await done;
    assert.deepStrictEqual(seen, { a: ['except', 'local'], b: ['room'], c: ['except'] });
  });

  it('socketsJoin, socketsLeave and disconnectSockets act on sockets of every worker', async function () {
    var a = await connect(ids[0], 'a');
    var b = await connect(ids[1], 'b');
    var c = await connect(ids[2], 'c', 'polling');
    await run(ids[2], function (ctx) { ctx.state.sockets.c.join('red'); return true; });
    await run(ids[0], function (ctx) { ctx.state.io.socketsJoin('all'); ctx.state.io.in('red').socketsJoin('redder'); return true; });
    function rooms(id, name) {
      return run(id, function (ctx, name) {
        return ctx.until(function () { return ctx.state.sockets[name].rooms.has('all'); }, 10000, 'room all')
          .then(function () { return Array.from(ctx.state.sockets[name].rooms).filter(function (r) { return r.length < 10; }).sort(); });
      }, name);
    }
    assert.deepStrictEqual(await rooms(ids[1], 'b'), ['all']);
    assert.deepStrictEqual(await run(ids[2], function (ctx) {
      return ctx.until(function () { return ctx.state.sockets.c.rooms.has('redder'); }, 10000, 'redder')
        .then(function () { return Array.from(ctx.state.sockets.c.rooms).filter(function (r) { return r.length < 10; }).sort(); });
    }), ['all', 'red', 'redder']);
    await run(ids[0], function (ctx) { ctx.state.io.socketsLeave('all'); return true; });
    assert.strictEqual(await run(ids[1], function (ctx) {
      return ctx.until(function () { return !ctx.state.sockets.b.rooms.has('all'); }, 10000, 'left all').then(function () { return true; });
    }), true);
    await run(ids[1], function (ctx) { ctx.state.sockets.b.join('doomed'); return true; });
    var gone = Promise.all([next(b, 'disconnect'), next(c, 'disconnect')]);
    await run(ids[0], function (ctx) { ctx.state.io.in('doomed').disconnectSockets(); ctx.state.io.in('red').disconnectSockets(true); return true; });
    var reasons = await gone;
    assert.deepStrictEqual(reasons.map(function (r) { return r[0]; }), ['io server disconnect', 'io server disconnect']);
    assert.ok(a.connected, 'a socket in neither room stays');
  });

  it('fetchSockets() gathers every worker\'s sockets with data JSON cannot carry', async function () {
    await connect(ids[0], 'a');
    await connect(ids[1], 'b', 'polling');
    await connect(ids[2], 'c');
    await run(ids[1], function (ctx) {
      var cyc = { label: 'loop' };
      cyc.self = cyc;
      var key = { k: 1 };
      ctx.state.sockets.b.data = { name: 'b', big: 2n ** 70n, map: new Map([[key, 'object key']]),
        when: new Date(86400000), cyc: cyc, set: new Set([1, 'x']), bytes: Buffer.from([9, 8]) };
      ctx.state.sockets.b.join('green');
      return true;
    });
    // As with cluster-adapter, a handshake's sessionStore (an
    // express-session store: cycles, functions) stays home.
    await run(ids[2], function (ctx) {
      var store = { sessions: {}, get: function () {} };
      store.self = store;
      ctx.state.sockets.c.handshake.sessionStore = store;
      return true;
    });
    var result = await run(ids[0], function (ctx) {
      return ctx.state.io.fetchSockets().then(function (sockets) {
        var b = sockets.find(function (s) { return s.data.name === 'b'; });
        var d = b.data;
        var entry = Array.from(d.map)[0];
        return {
          names: sockets.map(function (s) { return s.data.name; }).sort(),
          remote: sockets.filter(function (s) { return s.constructor.name === 'RemoteSocket'; }).length,
          bRooms: Array.from(b.rooms).filter(function (r) { return r.length < 10; }),
          big: d.big === 2n ** 70n, mapKey: entry[0].k === 1 && entry[1] === 'object key',
          when: d.when instanceof Date && d.when.getTime() === 86400000,
          cyc: d.cyc.self === d.cyc, set: d.set instanceof Set && d.set.has('x'),
          bytes: Buffer.from(d.bytes).equals(Buffer.from([9, 8])),
          handshake: typeof b.handshake.headers === 'object' && b.handshake.query.name === 'b',
          cHandshake: sockets.filter(function (s) { return s.data.name === 'c'; }).map(function (c) {
            return [c.handshake.query.name, 'sessionStore' in c.handshake, typeof c.handshake.headers.host];
          })
        };
      });
    });
    assert.deepStrictEqual(result, { names: ['a', 'b', 'c'], remote: 2, bRooms: ['green'], big: true,
      mapKey: true, when: true, cyc: true, set: true, bytes: true, handshake: true,
      cHandshake: [['c', false, 'string']] });
    // A room that only one remote worker has.
    var green = await run(ids[2], function (ctx) {
      return ctx.state.io.in('green').fetchSockets().then(function (s) { return s.map(function (x) { return x.id; }); });
    });
    assert.strictEqual(green.length, 1);
  });

  it('a socket whose data cannot be sent fails fetchSockets() with an error that says so', async function () {
    await connect(ids[1], 'b');
    await run(ids[1], function (ctx) { ctx.state.sockets.b.data = { name: 'b', fn: function () {} }; return true; });
    var err = await run(ids[0], function (ctx) {
      return ctx.state.io.fetchSockets().then(function () { return null; }, function (e) { return e.message; });
    });
    assert.ok(/could not send its response/.test(err) && /could not be cloned|function/.test(err), err);
    // The worker goes on: its next answer is fine.
    await run(ids[1], function (ctx) { ctx.state.sockets.b.data = { name: 'b' }; return true; });
    var names = await run(ids[0], function (ctx) {
      return ctx.state.io.fetchSockets().then(function (s) { return s.map(function (x) { return x.data.name; }); });
    });
    assert.deepStrictEqual(names, ['b']);
  });

  it('serverSideEmit reaches the other workers, never the sender, with its values intact', async function () {
    await cluster.runAll(ids, function (ctx) { ctx.state.serverEvents = []; return true; });
    await run(ids[0], function (ctx) {
      var cyc = [1];
      cyc.push(cyc);
      ctx.state.io.serverSideEmit('note', 7n, new Map([[{ o: 1 }, 'v']]), cyc);
      return true;
    });
    var others = await cluster.runAll([ids[1], ids[2]], function (ctx) {
      return ctx.until(function () { return ctx.state.serverEvents.length > 0; }, 10000, 'the event').then(function () {
        var e = ctx.state.serverEvents[0];
        return [e[0] === 7n, Array.from(e[1])[0][0].o === 1, e[2][1] === e[2]];
      });
    });
    assert.deepStrictEqual(others, [[true, true, true], [true, true, true]]);
    await processes.sleep(100);
    assert.strictEqual(await run(ids[0], function (ctx) { return ctx.state.serverEvents.length; }), 0);
  });

  it('large messages (shared pool and sockets alike) arrive whole', async function () {
    await cluster.runAll(ids, function (ctx) { ctx.state.serverEvents = []; return true; });
    await run(ids[0], function (ctx) {
      var big = Buffer.alloc(300 * 1024);
      for (var i = 0; i < big.length; i++) big[i] = i % 251;
      ctx.state.io.serverSideEmit('note', big, 'x'.repeat(3 * 1024 * 1024));
      return true;
    });
    var got = await cluster.runAll([ids[1], ids[2]], function (ctx) {
      return ctx.until(function () { return ctx.state.serverEvents.length > 0; }, 10000, 'the event').then(function () {
        var e = ctx.state.serverEvents[0];
        var ok = e[0].length === 300 * 1024;
        for (var i = 0; ok && i < e[0].length; i++) ok = e[0][i] === i % 251;
        return [ok, e[1].length];
      });
    });
    assert.deepStrictEqual(got, [[true, 3 * 1024 * 1024], [true, 3 * 1024 * 1024]]);
  });

  // A process's small publishes of one turn reach the engine in batches;
  // larger ones, and anything else it sends, go on their own. Order holds
  // across all of them.
  it('thousands of emits of one turn, of every size, arrive in order', async function () {
    await cluster.runAll(ids, function (ctx) { ctx.state.serverEvents = []; return true; });
    var COUNT = 3000;
    var sizes = [1, 100, 3000, 20 * 1024, 40];
    await run(ids[0], function (ctx, arg) {
      for (var i = 0; i < arg.count; i++) {
        var size = arg.sizes[i % arg.sizes.length];
        ctx.state.io.serverSideEmit('note', i, 'y'.repeat(size));
        // A room change (a request of another kind) in between, now and then.
        if (i % 700 === 0) ctx.state.io.socketsJoin('order-' + i);
      }
      return true;
    }, { count: COUNT, sizes: sizes });
    var got = await cluster.runAll([ids[1], ids[2]], function (ctx, arg) {
      return ctx.until(function () { return ctx.state.serverEvents.length >= arg.count; }, 20000, 'every event')
        .then(function () {
          var bad = ctx.state.serverEvents.filter(function (e, i) {
            return e[0] !== i || e[1].length !== arg.sizes[i % arg.sizes.length];
          });
          return [ctx.state.serverEvents.length, bad.length];
        });
    }, { count: COUNT, sizes: sizes });
    assert.deepStrictEqual(got, [[COUNT, 0], [COUNT, 0]]);
  });

  it('serverSideEmit with an ack collects one answer per other worker; a silent one times out', async function () {
    await cluster.runAll(ids, function (ctx) {
      ctx.state.io.removeAllListeners('ping');
      if (ctx.workerId !== ctx.state.silent) {
        ctx.state.io.on('ping', function (x, cb) { cb({ from: ctx.workerId, x: x }); });
      }
      return true;
    });
    var answers = await run(ids[0], function (ctx) {
      return new Promise(function (resolve) {
        ctx.state.io.serverSideEmit('ping', 5, function (err, responses) {
          resolve([err && err.message, responses.map(function (r) { return r.from; }).sort(), responses[0].x]);
        });
      });
    });
    assert.deepStrictEqual(answers, [null, [ids[1], ids[2]].sort(), 5]);
    // One worker that does not answer: the others' answers come with the error.
    await run(ids[2], function (ctx) { ctx.state.io.removeAllListeners('ping'); ctx.state.io.on('ping', function () {}); return true; });
    var partial = await run(ids[0], function (ctx) {
      return ctx.state.io.serverSideEmitWithAck('ping', 6).then(function () { return 'resolved'; }, function (e) { return e.message; });
    });
    assert.strictEqual(partial, 'timeout reached: missing 1 responses');
  });

  it('what cannot be sent throws at the emitter, and nothing is sent', async function () {
    var c = await connect(ids[2], 'c');
    var got = [];
    c.on('bad', function () { got.push('bad'); });
    var thrown = await run(ids[0], function (ctx) {
      var out = [];
      try { ctx.state.io.serverSideEmit('note', Symbol('s')); } catch (e) { out.push(e instanceof TypeError && /could not be cloned|symbol/i.test(e.message)); }
      try { ctx.state.io.emit('bad', Symbol('s')); } catch (e) { out.push(e instanceof TypeError); }
      try { ctx.state.io.serverSideEmit('note', { f: function () {} }, function () {}); } catch (e) { out.push(e instanceof TypeError); }
      return out;
    });
    assert.deepStrictEqual(thrown, [true, true, true]);
    var marker = next(c, 'after');
    await run(ids[0], function (ctx) { ctx.state.io.emit('after'); return true; });
    await marker;
    assert.deepStrictEqual(got, []);
  });

  it('emit with acks gathers every client\'s ack, across workers and transports', async function () {
    var a = await connect(ids[0], 'a');
    var b = await connect(ids[1], 'b', 'polling');
    var c = await connect(ids[2], 'c');
    a.on('q', function (cb) { cb('a'); });
    b.on('q', function (cb) { cb(Buffer.from('b')); });
    c.on('q', function (cb) { cb({ c: [1] }); });
    var out = await run(ids[0], function (ctx) {
      return ctx.state.io.timeout(10000).emitWithAck('q').then(function (responses) {
        return responses.map(function (r) { return Buffer.isBuffer(r) ? 'buffer:' + r.toString() : JSON.stringify(r); }).sort();
      });
    });
    assert.deepStrictEqual(out, ['"a"', 'buffer:b', '{"c":[1]}']);
    // A client that never answers: the emit times out with the others' acks.
    c.off('q');
    c.on('q', function () {});
    var late = await run(ids[0], function (ctx) {
      return new Promise(function (resolve) {
        ctx.state.io.timeout(4000).emit('q', function (err, responses) { resolve([err && err.message, responses.length]); });
      });
    });
    assert.deepStrictEqual(late, ['operation has timed out', 2]);
  });

  // Requests are sent once the adapter has joined, a turn later: each must
  // still carry its own bytes when the next message was encoded meanwhile.
  it('several requests with acks made in one turn each get their own answers', async function () {
    var b = await connect(ids[1], 'b');
    b.on('q', function (x, cb) { cb('b:' + x); });
    await cluster.runAll([ids[1], ids[2]], function (ctx) {
      ctx.state.io.removeAllListeners('twice');
      ctx.state.io.on('twice', function (x, cb) { cb(ctx.workerId + ':' + x); });
      return true;
    });
    var out = await run(ids[0], function (ctx) {
      var io = ctx.state.io;
      var sse = [io.serverSideEmitWithAck('twice', 'one'), io.serverSideEmitWithAck('twice', 'two')];
      var acks = [io.timeout(10000).emitWithAck('q', 'three'), io.timeout(10000).emitWithAck('q', 'four')];
      return Promise.all(sse.concat(acks)).then(function (all) {
        return all.map(function (answers) {
          return answers.map(function (a) { return String(a).replace(/^\d+:/, 'w:'); }).sort();
        });
      });
    });
    assert.deepStrictEqual(out, [['w:one', 'w:one'], ['w:two', 'w:two'], ['b:three'], ['b:four']]);
  });

  // An answer that comes in the middle of a batch of another worker's
  // messages ends that batch early (the rest waits for the requester's
  // promise callbacks): the rest must still arrive, whole and in order.
  it('answers that come among another worker\'s emits leave none of them out or out of order', async function () {
    await cluster.runAll(ids, function (ctx) { ctx.state.serverEvents = []; return true; });
    var COUNT = 20000;
    var flood = run(ids[2], function (ctx, arg) {
      var sent = 0;
      return new Promise(function (resolve) {
        (function turn() {
          for (var i = 0; i < 500 && sent < arg.count; i++) ctx.state.io.serverSideEmit('note', sent++);
          if (sent < arg.count) setImmediate(turn);
          else resolve(true);
        })();
      });
    }, { count: COUNT });
    var answers = await run(ids[0], async function (ctx) {
      var counts = [];
      for (var i = 0; i < 30; i++) counts.push((await ctx.state.io.fetchSockets()).length);
      return counts;
    });
    await flood;
    var got = await run(ids[0], function (ctx, arg) {
      return ctx.until(function () { return ctx.state.serverEvents.length >= arg.count; }, 20000, 'every event')
        .then(function () {
          var events = ctx.state.serverEvents;
          return [events.length, events.filter(function (e, i) { return e[0] !== i; }).length];
        });
    }, { count: COUNT });
    assert.strictEqual(answers.length, 30);
    assert.deepStrictEqual(got, [COUNT, 0]);
  });

  it('the primary emits to clients of every worker (createEmitter)', async function () {
    var a = await connect(ids[0], 'a');
    var b = await connect(ids[1], 'b', 'polling');
    var o = await connect(ids[2], 'o', 'websocket', '/other');
    await run(ids[1], function (ctx) { ctx.state.sockets.b.join('vip'); return true; });
    var seen = [];
    a.on('from-primary', function (x) { seen.push(['a', x]); });
    b.on('from-primary', function (x) { seen.push(['b', x]); });
    var end = Promise.all([next(a, 'end'), next(b, 'end')]);
    var other = next(o, 'from-primary');
    await run('master', function (ctx) {
      var emitter = ctx.require(ctx.require('path').join(ctx.ROOT, 'adapter')).createEmitter();
      emitter.emit('from-primary', 'all');
      emitter.to('vip').emit('from-primary', 'vip');
      emitter.of('/other').emit('from-primary', 'other');
      emitter.emit('end');
      emitter.close();
      return true;
    });
    await end;
    assert.deepStrictEqual(await other, ['other']);
    assert.deepStrictEqual(seen.sort(), [['a', 'all'], ['b', 'all'], ['b', 'vip']]);
  });
});

// Separate cluster: these kill workers.
describe('socket.io 4 adapter when a worker dies', function () {
  this.timeout(60000);
  var cluster;
  var ports = {};
  var clients = [];

  beforeEach(async function () {
    cluster = await harness.start({ workers: 3, load: false });
    await cluster.run('master', function (ctx) {
      ctx.require(ctx.require('path').join(ctx.ROOT, 'adapter')).setupPrimary();
      return true;
    });
    var ids = cluster.workerIds;
    for (var i = 0; i < ids.length; i++) ports[ids[i]] = await cluster.run(ids[i], startServer);
    await Promise.all(ids.map(function (id) {
      return cluster.run(id, function (ctx) {
        var got = 0;
        return ctx.until(function () {
          ctx.state.io.of('/').adapter.serverCount().then(function (c) { got = c; });
          return got === 3;
        }, 20000, '3 servers');
      });
    }));
  });

  afterEach(async function () {
    clients.forEach(function (c) { c.disconnect(); });
    clients = [];
    if (cluster) await cluster.close();
  });

  function connect(id, name) {
    return sio4.connect('http://127.0.0.1:' + ports[id], { name: name }, clients);
  }

  it('fetchSockets() waiting on a worker that dies completes with the others\' sockets', async function () {
    var ids = cluster.workerIds;
    await connect(ids[0], 'a');
    await connect(ids[1], 'b');
    await connect(ids[2], 'c');
    // Worker 3 is stopped: it cannot answer. Then it is killed.
    cluster.kill(ids[2], 'SIGSTOP');
    var pending = cluster.run(ids[0], function (ctx) {
      // A timeout far beyond the test's: only the death can end the wait.
      return ctx.state.io.timeout(600000).fetchSockets().then(function (s) {
        return s.map(function (x) { return x.data.name; }).sort();
      });
    });
    await processes.sleep(200);
    cluster.kill(ids[2], 'SIGKILL');
    assert.deepStrictEqual(await pending, ['a', 'b']);
    var counts = await cluster.runAll([ids[0], ids[1]], function (ctx) { return ctx.state.io.of('/').adapter.serverCount(); });
    assert.deepStrictEqual(counts, [2, 2]);
  });

  it('fetchSockets() with a timeout fails naming how many answers are missing', async function () {
    var ids = cluster.workerIds;
    await connect(ids[1], 'b');
    cluster.kill(ids[2], 'SIGSTOP');
    var out = await cluster.run(ids[0], function (ctx) {
      return ctx.state.io.timeout(3000).fetchSockets().then(function () { return 'resolved'; },
        function (e) { return e.message; });
    });
    cluster.kill(ids[2], 'SIGCONT');
    assert.strictEqual(out, 'timeout reached: missing 1 responses');
    // The stopped worker answers again once it runs.
    var names = await cluster.run(ids[0], function (ctx) {
      return ctx.state.io.fetchSockets().then(function (s) { return s.map(function (x) { return x.data.name; }); });
    });
    assert.deepStrictEqual(names, ['b']);
  });

  it('an emit with acks whose worker dies completes with the acks of the living', async function () {
    var ids = cluster.workerIds;
    var a = await connect(ids[0], 'a');
    var b = await connect(ids[1], 'b');
    var c = await connect(ids[2], 'c');
    a.on('q', function (cb) { cb('a'); });
    b.on('q', function (cb) { cb('b'); });
    var reached = new Promise(function (resolve) { c.on('q', function () { resolve(); }); }); // never acks
    var pending = cluster.run(ids[0], function (ctx) {
      return new Promise(function (resolve) {
        ctx.state.io.timeout(600000).emit('q', function (err, responses) {
          resolve([err && err.message, responses.slice().sort()]);
        });
      });
    });
    await reached;
    cluster.kill(ids[2], 'SIGKILL');
    assert.deepStrictEqual(await pending, [null, ['a', 'b']]);
  });

  it('serverSideEmit with an ack stops waiting for a worker that dies', async function () {
    var ids = cluster.workerIds;
    await cluster.runAll([ids[1]], function (ctx) {
      ctx.state.io.on('ping', function (cb) { cb(ctx.workerId); });
      return true;
    });
    cluster.kill(ids[2], 'SIGSTOP');
    var pending = cluster.run(ids[0], function (ctx) {
      return new Promise(function (resolve) {
        ctx.state.io.serverSideEmit('ping', function (err, responses) { resolve([err && err.message, responses]); });
      });
    });
    await processes.sleep(200);
    cluster.kill(ids[2], 'SIGKILL');
    assert.deepStrictEqual(await pending, [null, [ids[1]]]);
  });
});

describe('socket.io 4 adapter in a plain process', function () {
  it('servers in one process without a cluster work together, and the process exits', async function () {
    var r = await harness.runNode('adapter-plain.js', [], { timeout: 20000 });
    assert.strictEqual(r.timedOut, false, 'the process exits by itself' + r.stderr);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.deepStrictEqual(JSON.parse(r.stdout.trim()), { count: [2, 2], sync: true, answers: [42], sockets: 0,
      afterClose: 1 });
  });
});
