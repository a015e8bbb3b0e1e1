'use strict';
// The socket.io 4 adapter past one machine: two "machines" (cluster
// masters on loopback, 2 workers each) joined through one real
// redis-server, every worker a socket.io 4.8 server with createAdapter()
// on a port of its own, real socket.io-client 4 clients. The servers of
// every machine count each other, broadcasts and room broadcasts reach
// clients on every machine, fetchSockets and serverSideEmit with acks get
// every server's answer; while Redis is away each machine counts its own
// servers, and a machine that dies without a goodbye is no longer waited
// for. Skipped, saying why, without /usr/bin/redis-server.

var assert = require('assert');
var redisServer = require('./support/redis-server');
var machines = require('./support/machines');
var sio4 = require('./support/sio4');

// Run in each worker: a socket.io 4 server with our adapter, on a port of
// its own (exclusive: not shared round robin with the other workers).
function startServer(ctx, machineName) {
  var http = ctx.require('http');
  var Server = ctx.require('socket.io-v4').Server;
  var adapter = ctx.require(ctx.require('path').join(ctx.ROOT, 'adapter'));
  var httpServer = http.createServer();
  var io = new Server(httpServer, { adapter: adapter.createAdapter({ handoff: false }) });
  var where = machineName + '/' + ctx.workerId;
  ctx.state.io = io;
  io.on('connection', function (socket) {
    socket.data = { where: where, name: socket.handshake.query.name };
    socket.on('join', function (room, ack) { socket.join(room); ack(); });
  });
  io.on('where', function (ack) { ack(where); });
  return new Promise(function (resolve) {
    httpServer.listen({ port: 0, host: '127.0.0.1', exclusive: true }, function () {
      resolve(httpServer.address().port);
    });
  });
}

describe('past one machine: socket.io 4', function () {
  this.timeout(60000);
  var redis;
  var all = [];
  var servers = []; // { m, id, port, where }
  var sockets = [];

  before(async function () {
    if (!redisServer.available()) {
      console.log('      skipped: ' + redisServer.BINARY + ' is not installed (apt-get install redis-server)');
      this.skip();
    }
    redis = await redisServer.start();
    // A machine silent for 3 × 200 ms is taken for dead.
    var fast = { prefix: 'v4', setup: { redisPresenceMs: 200 } };
    all = [await machines.start(redis, fast), await machines.start(redis, fast)];
    await machines.waitUp(all);
    for (var m of all) {
      for (var id of m.cluster.workerIds) {
        var port = await m.cluster.run(id, startServer, m.name);
        servers.push({ m: m, id: id, port: port, where: m.name + '/' + id });
      }
    }
    await waitServerCount(servers, 4);
  });

  after(async function () {
    sockets.forEach(function (s) { s.disconnect(); });
    await Promise.all(all.map(function (m) { return m.close(); }));
    if (redis) await redis.stop();
  });

  function waitServerCount(list, n) {
    return sio4.waitServerCount(list.map(function (s) { return { cluster: s.m.cluster, id: s.id }; }), n);
  }

  function connect(server, name) {
    return sio4.connect('http://127.0.0.1:' + server.port, { name: name }, sockets);
  }

  var next = sio4.next;

  it('counts the servers of every machine', async function () {
    var counts = await Promise.all(servers.map(function (s) {
      return s.m.cluster.run(s.id, function (ctx) { return ctx.state.io.of('/').adapter.serverCount(); });
    }));
    assert.deepStrictEqual(counts, [4, 4, 4, 4]);
  });

  it('broadcasts and room broadcasts from one machine reach clients on every machine', async function () {
    var clients = [];
    for (var i = 0; i < servers.length; i++) clients.push(await connect(servers[i], 'c' + i));
    // The clients of the second machine join a room.
    await Promise.all([clients[2], clients[3]].map(function (c) {
      return new Promise(function (resolve) { c.emit('join', 'far', resolve); });
    }));
    var all4 = Promise.all(clients.map(function (c) { return next(c, 'news'); }));
    var room = Promise.all([clients[2], clients[3]].map(function (c) { return next(c, 'room'); }));
    var nearRoom = [];
    clients[0].on('room', function () { nearRoom.push(0); });
    clients[1].on('room', function () { nearRoom.push(1); });
    await servers[0].m.cluster.run(servers[0].id, function (ctx) {
      ctx.state.io.emit('news', { from: 'a', at: new Date(0) });
      ctx.state.io.to('far').emit('room', 'far');
      return true;
    });
    (await all4).forEach(function (args) { assert.deepStrictEqual(args[0], { from: 'a', at: new Date(0).toISOString() }); });
    (await room).forEach(function (args) { assert.strictEqual(args[0], 'far'); });
    // Ordered after 'room' on every client: the room's message is over.
    var done = Promise.all(clients.map(function (c) { return next(c, 'end'); }));
    await servers[0].m.cluster.run(servers[0].id, function (ctx) { ctx.state.io.emit('end'); return true; });
    await done;
    assert.deepStrictEqual(nearRoom, [], 'clients outside the room got nothing');
    clients.forEach(function (c) { c.disconnect(); });
  });

  it('fetchSockets and serverSideEmit with acks answer from every machine', async function () {
    var clients = [];
    for (var i = 0; i < servers.length; i++) clients.push(await connect(servers[i], 'f' + i));
    var found = await servers[1].m.cluster.run(servers[1].id, async function (ctx) {
      var list = await ctx.state.io.fetchSockets();
      return list.map(function (s) { return s.data.where + ':' + s.data.name; }).sort();
    });
    assert.deepStrictEqual(found, servers.map(function (s, i) { return s.where + ':f' + i; }).sort());
    var answers = await servers[3].m.cluster.run(servers[3].id, function (ctx) {
      return new Promise(function (resolve, reject) {
        ctx.state.io.serverSideEmit('where', function (err, list) {
          if (err) reject(err); else resolve(list.sort());
        });
      });
    });
    assert.deepStrictEqual(answers, servers.slice(0, 3).map(function (s) { return s.where; }).sort());
    clients.forEach(function (c) { c.disconnect(); });
  });

  it('counts only its own machine\'s servers while Redis is away, and all again once it is back', async function () {
    await redis.kill();
    await waitServerCount(servers, 2);
    // Nothing waits for a server it cannot reach.
    var machinesSeen = await servers[0].m.cluster.run(servers[0].id, async function (ctx) {
      return (await ctx.state.io.fetchSockets()).map(function (s) { return s.data.where.split('/')[0]; });
    });
    machinesSeen.forEach(function (name) { assert.strictEqual(name, servers[0].m.name); });
    await redis.restart();
    await machines.waitUp(all);
    await waitServerCount(servers, 4);
  });

  it('no longer counts or waits for a machine that died without a goodbye', async function () {
    var a = servers.filter(function (s) { return s.m === all[0]; });
    await all[1].close(); // SIGKILL: no goodbye
    await waitServerCount(a, 2);
    // A request does not wait for the dead machine's servers (nor time out).
    var answers = await a[0].m.cluster.run(a[0].id, function (ctx) {
      return new Promise(function (resolve, reject) {
        ctx.state.io.serverSideEmit('where', function (err, list) {
          if (err) reject(err); else resolve(list);
        });
      });
    });
    assert.deepStrictEqual(answers, [a[1].where]);
  });
});
