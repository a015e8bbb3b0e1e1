'use strict';
// Connection state recovery with the socket.io 4 adapter: real cluster
// workers running socket.io 4.8 with connectionStateRecovery, real
// socket.io-client 4 clients (websocket and polling), and a TCP proxy in
// front that plays the load balancer, so a test chooses which worker a
// client reaches, and when it can reach none.

var assert = require('assert');
var harness = require('./support/harness');
var proxies = require('./support/proxy');
var processes = require('./support/processes');
var ioc = require('socket.io-client-v4');

// In a worker (sent as source): a socket.io 4 server on a port of its own,
// with the cluster's adapter and connection state recovery, that tells the
// test of every connection and disconnection. A new client gets
// socket.data and joins the room its auth names; ctx.state.servers[name]
// is the server. Resolves with the port.
function serve(ctx, a) {
  var http = ctx.require('http');
  var Server = ctx.require('socket.io-v4').Server;
  var createAdapter = ctx.require(ctx.ROOT + '/adapter').createAdapter;
  var server = http.createServer();
  // A polling client cut off between two polls is noticed only when its
  // ping is late: pings come often here.
  var io = new Server(server, {
    adapter: createAdapter(),
    connectionStateRecovery: { maxDisconnectionDuration: a.ttl },
    pingInterval: 300,
    pingTimeout: 1000
  });
  io.on('connection', function (socket) {
    if (!socket.recovered) {
      socket.data = { name: socket.handshake.auth.name, first: ctx.workerId, at: new Date(0) };
      socket.join('room-' + socket.handshake.auth.name);
    }
    ctx.emit('connection', { server: a.name, worker: ctx.workerId, id: socket.id,
      recovered: socket.recovered, data: socket.data, rooms: Array.from(socket.rooms).sort() });
    socket.on('disconnect', function (reason) {
      ctx.emit('disconnect', { server: a.name, worker: ctx.workerId, id: socket.id, reason: reason });
    });
  });
  ctx.state.servers = ctx.state.servers || {};
  ctx.state.servers[a.name] = io;
  return new Promise(function (resolve) {
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, function () {
      resolve(server.address().port);
    });
  });
}

// In a worker: emits 'tick' (from this worker, each of a.ticks) to a.to (a
// room, a socket id, or everyone when null), on server a.name.
function emitTicks(ctx, a) {
  var io = ctx.state.servers[a.name];
  a.ticks.forEach(function (n) {
    var target = a.to === null ? io : a.direct ? io.sockets.sockets.get(a.to) : io.to(a.to);
    target.emit('tick', ctx.workerId, n);
  });
  return true;
}

describe('connection state recovery across workers (socket.io 4)', function () {
  var cluster;
  var ports = {}; // worker id -> port of its 'main' server
  var shortPorts = {}; // worker id -> port of its 'short' server (1 s to come back)
  var proxy;
  var clients = [];
  var uid = 0;

  before(async function () {
    cluster = await harness.start({ workers: 3 });
    for (var w of cluster.workerIds) {
      ports[w] = await cluster.run(w, serve, { name: 'main', ttl: 60000 });
      shortPorts[w] = await cluster.run(w, serve, { name: 'short', ttl: 1000 });
    }
    proxy = await proxies.start(ports[1]);
  });

  after(async function () {
    clients.forEach(function (c) { c.disconnect(); });
    if (proxy) await proxy.close();
    if (cluster) await cluster.close();
  });

  afterEach(function () {
    clients.forEach(function (c) { c.disconnect(); });
    clients = [];
    if (proxy) proxy.hold(false);
  });

  // A client through the proxy that keeps every tick it gets.
  function connect(transport, name) {
    var socket = ioc('http://127.0.0.1:' + proxy.port, {
      transports: [transport], reconnectionDelay: 50, reconnectionDelayMax: 100,
      auth: { name: name }, forceNew: true
    });
    socket.ticks = [];
    socket.on('tick', function () { socket.ticks.push(Array.from(arguments)); });
    clients.push(socket);
    return socket;
  }

  function until(cond, what, ms) {
    return processes.waitFor(cond, ms || 10000, what);
  }

  function serverEvent(name, pred, what) {
    return cluster.waitEvent(function (e) { return e.name === name && pred(e.data); }, 10000, what);
  }

  // Lets the client named name through again, to worker's 'main' server,
  // and checks that the session of its first connection came back there
  // as it was: the same id, rooms and data.
  async function recoveredOn(worker, name, first) {
    proxy.target = ports[worker];
    proxy.hold(false);
    var back = await serverEvent('connection', function (d) {
      return d.data.name === name && d.worker === worker;
    }, 'the connection on worker ' + worker);
    assert.strictEqual(back.data.recovered, true);
    assert.strictEqual(back.data.id, first.data.id);
    assert.deepStrictEqual(back.data.rooms, first.data.rooms);
    assert.deepStrictEqual(back.data.data, first.data.data);
  }

  // Checks the ticks a client got: every one expected, none twice, none
  // unexpected, and in offset order (the offset is their last argument).
  function checkTicks(ticks, expected) {
    var seen = ticks.map(function (t) { return t[0] + ':' + t[1]; });
    assert.deepStrictEqual(seen.slice().sort(), expected.slice().sort(), 'ticks received: ' +
      JSON.stringify(seen));
    var previous = '';
    for (var i = 0; i < ticks.length; i++) {
      var offset = ticks[i][ticks[i].length - 1];
      assert.match(offset, /^[0-9a-f]{16}-[0-9a-f]{16}$/, 'tick ' + seen[i] + ' has an offset');
      assert.ok(previous < offset, 'tick ' + seen[i] + ' came after ' + seen[i - 1]);
      previous = offset;
    }
  }

  ['websocket', 'polling'].forEach(function (transport) {
    it('recovers a client that comes back to another worker, with every missed packet in order (' +
      transport + ')', async function () {
      var name = 'a' + (++uid);
      proxy.target = ports[1];
      var client = connect(transport, name);
      var first = await serverEvent('connection', function (d) { return d.data.name === name; },
        'the first connection');
      assert.strictEqual(first.data.worker, 1);
      assert.strictEqual(first.data.recovered, false);
      // Before: from everyone, to the room, straight to the socket.
      await cluster.run(3, emitTicks, { name: 'main', to: null, ticks: ['b0', 'b1'] });
      await cluster.run(2, emitTicks, { name: 'main', to: 'room-' + name, ticks: ['b2'] });
      await cluster.run(1, emitTicks, { name: 'main', to: first.data.id, direct: true, ticks: ['b3'] });
      await until(function () { return client.ticks.length === 4; }, '4 ticks before');

      // Gone: nothing reaches any worker until released.
      var stats = await cluster.stats();
      proxy.hold(true);
      proxy.cut();
      await until(function () { return !client.connected; }, 'the client to notice');
      await serverEvent('disconnect', function (d) { return d.id === first.data.id; },
        'worker 1 to notice');
      await cluster.run(3, emitTicks, { name: 'main', to: null, ticks: ['m0', 'm1'] });
      await cluster.run(2, emitTicks, { name: 'main', to: 'room-' + name, ticks: ['m2', 'm3'] });
      await cluster.run(2, emitTicks, { name: 'main', to: 'room-elsewhere', ticks: ['other'] });
      await cluster.run(1, emitTicks, { name: 'main', to: null, ticks: ['m4'] });
      await cluster.waitStats(function (s) {
        return s.retainedMessages >= stats.retainedMessages + 6;
      }, 10000, 'the missed packets in the log');

      // Back, on worker 2.
      await recoveredOn(2, name, first);
      await until(function () { return client.connected; }, 'the client to reconnect');
      assert.strictEqual(client.recovered, true);
      await cluster.run(3, emitTicks, { name: 'main', to: 'room-' + name, ticks: ['a0'] });
      await until(function () { return client.ticks.length === 10; }, 'every tick: ' +
        JSON.stringify(client.ticks));
      checkTicks(client.ticks, ['3:b0', '3:b1', '2:b2', '1:b3', '3:m0', '3:m1', '2:m2', '2:m3',
        '1:m4', '3:a0']);
    });
  });

  it('adds an offset to recoverable events only, and nothing else to any event', async function () {
    var name = 'x' + (++uid);
    proxy.target = ports[2];
    var client = connect('websocket', name);
    var first = await serverEvent('connection', function (d) {
      return d.data.name === name && d.server === 'main';
    }, 'the connection');
    var got = {};
    client.onAny(function (ev) {
      var args = Array.from(arguments).slice(1);
      got[ev] = args.map(function (a) { return typeof a === 'function' ? 'ack' : a; });
      if (typeof args[args.length - 1] === 'function') args[args.length - 1]('thanks');
    });
    // From another worker, and from the client's own.
    await cluster.run(1, function (ctx) { ctx.state.servers.main.emit('remote', 1); return true; });
    var acked = cluster.run(2, function (ctx, id) {
      var io = ctx.state.servers.main;
      io.emit('here', 2);
      io.volatile.emit('volatile', 3);
      return new Promise(function (resolve) {
        io.sockets.sockets.get(id).emit('ack', 4, function (answer) { resolve(answer); });
      });
    }, first.data.id);
    // From the primary, which keeps no log: no offset, and nothing in its place.
    await cluster.run('master', function (ctx) {
      var emitter = ctx.require(ctx.ROOT + '/adapter').createEmitter();
      emitter.emit('primary', 5);
      emitter.close();
      return true;
    });
    assert.strictEqual(await acked, 'thanks');
    await until(function () { return Object.keys(got).length === 5; }, 'five events: ' +
      JSON.stringify(got));
    var offset = /^[0-9a-f]{16}-[0-9a-f]{16}$/;
    assert.strictEqual(got.remote.length, 2);
    assert.strictEqual(got.remote[0], 1);
    assert.match(got.remote[1], offset);
    assert.strictEqual(got.here.length, 2);
    assert.strictEqual(got.here[0], 2);
    assert.match(got.here[1], offset);
    assert.deepStrictEqual(got.volatile, [3]);
    assert.deepStrictEqual(got.ack, [4, 'ack']);
    assert.deepStrictEqual(got.primary, [5]);

    // socket.emit on the socket's own worker: kept, with an offset, and
    // sent to no other worker.
    var before = await cluster.stats();
    await cluster.run(2, function (ctx, id) {
      ctx.state.servers.main.sockets.sockets.get(id).emit('own', 6);
      return true;
    }, first.data.id);
    await until(function () { return got.own !== undefined; }, 'the socket.emit');
    assert.strictEqual(got.own[0], 6);
    assert.match(got.own[1], offset);
    var after = await cluster.stats();
    assert.strictEqual(after.retainedMessages, before.retainedMessages + 1);
    assert.strictEqual(after.messagesDelivered, before.messagesDelivered, 'delivered to no worker');
  });

  it('recovers a client whose worker was killed', async function () {
    var name = 'k' + (++uid);
    var victim = cluster.workerIds.filter(function (w) { return w !== 2; }).pop(); // the last one
    proxy.target = ports[victim];
    var client = connect('websocket', name);
    var first = await serverEvent('connection', function (d) { return d.data.name === name; },
      'the first connection');
    await cluster.run(2, emitTicks, { name: 'main', to: 'room-' + name, ticks: ['b0'] });
    await until(function () { return client.ticks.length === 1; }, 'a tick before');
    // Its session is in the broker, bound to its worker.
    await cluster.waitStats(function (s) { return s.boundClients >= 1; }, 10000, 'the live session');
    var stats = await cluster.stats();
    proxy.hold(true);
    cluster.kill(victim, 'SIGKILL');
    await cluster.waitExit(victim);
    await until(function () { return !client.connected; }, 'the client to notice');
    await cluster.run(2, emitTicks, { name: 'main', to: null, ticks: ['m0'] });
    await cluster.run(2, emitTicks, { name: 'main', to: 'room-' + name, ticks: ['m1', 'm2'] });
    await cluster.waitStats(function (s) {
      return s.retainedMessages >= stats.retainedMessages + 3;
    }, 10000, 'the missed packets in the log');
    await recoveredOn(2, name, first);
    await until(function () { return client.connected && client.ticks.length === 4; },
      'every tick: ' + JSON.stringify(client.ticks));
    assert.strictEqual(client.recovered, true);
    checkTicks(client.ticks, ['2:b0', '2:m0', '2:m1', '2:m2']);
  });

  it('does not recover a client that comes back after maxDisconnectionDuration', async function () {
    var name = 'e' + (++uid);
    proxy.target = shortPorts[2];
    var client = connect('websocket', name);
    var first = await serverEvent('connection', function (d) {
      return d.data.name === name && d.server === 'short';
    }, 'the first connection');
    await cluster.run(2, emitTicks, { name: 'short', to: 'room-' + name, ticks: ['b0'] });
    await until(function () { return client.ticks.length === 1; }, 'a tick before');
    proxy.hold(true);
    proxy.cut();
    await serverEvent('disconnect', function (d) { return d.id === first.data.id; },
      'the server to notice');
    await cluster.run(2, emitTicks, { name: 'short', to: 'room-' + name, ticks: ['m0'] });
    // Well past the 1 s it had to come back.
    await processes.sleep(2500);
    proxy.hold(false);
    var back = await serverEvent('connection', function (d) {
      return d.data.name === name && d.id !== first.data.id;
    }, 'a new connection');
    assert.strictEqual(back.data.recovered, false);
    await until(function () { return client.connected; }, 'the client to reconnect');
    assert.strictEqual(client.recovered, false);
    assert.deepStrictEqual(client.ticks.map(function (t) { return t[1]; }), ['b0']);
  });
});

describe('connection state recovery in a plain process (socket.io 4)', function () {
  it('recovers a client on another server of the process, with what both sent meanwhile',
    async function () {
      var r = await harness.runNode('recovery-plain.js', [], { timeout: 20000 });
      assert.strictEqual(r.timedOut, false, 'the process exits by itself' + r.stderr);
      assert.strictEqual(r.code, 0, r.stderr + r.stdout);
      assert.deepStrictEqual(JSON.parse(r.stdout.trim()), {
        connections: [[1, true, false], [2, true, true]],
        recovered: true,
        ticks: [['one', 0], ['two', 0], ['one', 1], ['two', 1]],
        ordered: true
      });
    });
});

describe('connection state recovery when the log overflowed (socket.io 4)', function () {
  var cluster;
  var proxy;
  var client;

  before(async function () {
    cluster = await harness.start({ workers: 2, setup: { retainMessages: 20 } });
    var port = await cluster.run(1, serve, { name: 'main', ttl: 60000 });
    await cluster.run(2, serve, { name: 'main', ttl: 60000 });
    proxy = await proxies.start(port);
  });

  after(async function () {
    if (client) client.disconnect();
    if (proxy) await proxy.close();
    if (cluster) await cluster.close();
  });

  it('starts a new session rather than one with a gap', async function () {
    client = ioc('http://127.0.0.1:' + proxy.port, {
      transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 100,
      auth: { name: 'o' }, forceNew: true
    });
    var ticks = [];
    client.on('tick', function (from, n) { ticks.push(n); });
    var first = await cluster.waitEvent(function (e) { return e.name === 'connection'; }, 10000);
    await cluster.run(2, emitTicks, { name: 'main', to: 'room-o', ticks: ['b0'] });
    await processes.waitFor(function () { return ticks.length === 1; }, 10000, 'a tick before');
    proxy.hold(true);
    proxy.cut();
    await cluster.waitEvent(function (e) {
      return e.name === 'disconnect' && e.data.id === first.data.id;
    }, 10000, 'the server to notice');
    var missed = [];
    for (var i = 0; i < 30; i++) missed.push('m' + i);
    await cluster.run(2, emitTicks, { name: 'main', to: 'room-o', ticks: missed });
    var before = await cluster.waitStats(function (s) { return s.retainedDropped >= 11; }, 10000,
      'the log to drop the oldest');
    proxy.hold(false);
    var back = await cluster.waitEvent(function (e) {
      return e.name === 'connection' && e.data.id !== first.data.id;
    }, 10000, 'a new connection');
    assert.strictEqual(back.data.recovered, false);
    await processes.waitFor(function () { return client.connected; }, 10000, 'the client');
    assert.strictEqual(client.recovered, false);
    assert.deepStrictEqual(ticks, ['b0'], 'no missed packet delivered without the others');
    var after = await cluster.stats();
    assert.strictEqual(after.retainedReadsRefused, before.retainedReadsRefused + 1);
  });
});
