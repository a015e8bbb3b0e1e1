'use strict';
// socket.io 0.9.19 with ClusterStore in 4 real cluster workers, driven by
// real socket.io-client 0.9.16 clients over websockets.

var assert = require('assert');
var harness = require('./support/harness');
var clients = require('./support/clients');

describe('socket.io 0.9 over the cluster (4 workers, websocket clients)', function () {
  var cluster;
  var placed; // { byWorker, all }

  before(async function () {
    cluster = await harness.start({ workers: 4, sio: true });
    placed = await clients.connectToEvery(cluster.port, cluster.workerIds);
  });

  after(async function () {
    clients.disconnectAll();
    if (cluster) await cluster.close();
  });

  function on(worker) {
    return placed.byWorker[worker];
  }

  it('places a client on every worker, each knowing its worker and id', function () {
    assert.deepStrictEqual(Object.keys(placed.byWorker).map(Number).sort(), cluster.workerIds);
    placed.all.forEach(function (c) {
      assert.ok(cluster.workerIds.indexOf(c.worker) >= 0, 'worker ' + c.worker);
      assert.strictEqual(typeof c.id, 'string');
    });
  });

  it('saves, loads, checks and deletes per-client data with socket.set/get/has/del', async function () {
    var c = on(1).socket;
    var value = { name: 'Ada', n: 36, tags: ['a', 'b'], nested: { ok: true, none: null } };
    assert.deepStrictEqual(await clients.emit(c, 'has', 'profile'), [null, false]);
    assert.deepStrictEqual(await clients.emit(c, 'get', 'profile'), [null, null]);
    assert.deepStrictEqual(await clients.emit(c, 'set', 'profile', value), [null]);
    assert.deepStrictEqual(await clients.emit(c, 'get', 'profile'), [null, value]);
    assert.deepStrictEqual(await clients.emit(c, 'has', 'profile'), [null, true]);
    assert.deepStrictEqual(await clients.emit(c, 'set', 'count', 41), [null]);
    assert.deepStrictEqual(await clients.emit(c, 'set', 'count', 42), [null]);
    var got = await clients.emit(c, 'get', 'count');
    assert.strictEqual(got[1], 42); // the number, not "42"
    assert.deepStrictEqual(await clients.emit(c, 'del', 'profile'), [null]);
    assert.deepStrictEqual(await clients.emit(c, 'has', 'profile'), [null, false]);
    assert.deepStrictEqual(await clients.emit(c, 'get', 'profile'), [null, null]);
    assert.deepStrictEqual(await clients.emit(c, 'has', 'count'), [null, true]);
  });

  it('keeps each client\'s data apart', async function () {
    var a = on(1).socket;
    var b = on(2).socket;
    await clients.emit(a, 'set', 'color', 'red');
    await clients.emit(b, 'set', 'color', 'blue');
    assert.deepStrictEqual(await clients.emit(a, 'get', 'color'), [null, 'red']);
    assert.deepStrictEqual(await clients.emit(b, 'get', 'color'), [null, 'blue']);
  });

  it('reads a client\'s data from every other worker by id (io.store.client(id).get)', async function () {
    var writer = on(1);
    var value = { room: 'lobby', since: 1234567890123, list: [1, 2, 3] };
    assert.deepStrictEqual(await clients.emit(writer.socket, 'set', 'session', value), [null]);
    for (var w = 2; w <= 4; w++) {
      var reader = on(w);
      assert.notStrictEqual(reader.worker, writer.worker);
      var got = await clients.emit(reader.socket, 'getOther', writer.id, 'session');
      assert.deepStrictEqual(got, [null, value, w], 'read through worker ' + w);
      got = await clients.emit(reader.socket, 'hasOther', writer.id, 'session');
      assert.deepStrictEqual(got, [null, true, w]);
      got = await clients.emit(reader.socket, 'getOther', writer.id, 'no-such-key');
      assert.deepStrictEqual(got, [null, null, w]);
    }
    // a write through the client's own worker is seen at once elsewhere
    await clients.emit(writer.socket, 'set', 'session', 'changed');
    assert.deepStrictEqual(await clients.emit(on(3).socket, 'getOther', writer.id, 'session'),
      [null, 'changed', 3]);
    await clients.emit(writer.socket, 'del', 'session');
    assert.deepStrictEqual(await clients.emit(on(4).socket, 'hasOther', writer.id, 'session'),
      [null, false, 4]);
  });

  it('delivers a broadcast (io.sockets.emit) from one worker to clients on every worker', async function () {
    var everyone = placed.all;
    var got = everyone.map(function (c) { return clients.record(c, 'news'); });
    var done = everyone.map(function (c) { return clients.record(c, 'news-end'); });
    var payload = { headline: 'hello from worker 3', n: 7, list: [1, 'two'] };
    await cluster.run(3, function (ctx, arg) {
      ctx.io.sockets.emit('news', arg);
      ctx.io.sockets.emit('news-end', 'end');
    }, payload);
    await harness.waitFor(function () {
      return done.every(function (d) { return d.length === 1; });
    }, 10000, 'every client to get the broadcast');
    everyone.forEach(function (c, i) {
      assert.deepStrictEqual(got[i], [[payload]], 'client on worker ' + c.worker + ' got exactly one broadcast');
    });
  });

  it('delivers a room broadcast (io.sockets.in(room).emit) to the members on every worker, only them', async function () {
    var room = 'room-' + Date.now();
    var members = [on(1), on(2), on(3), on(4)];
    var outsiders = placed.all.filter(function (c) { return members.indexOf(c) < 0; });
    // a second client on some worker stays out of the room
    if (outsiders.length === 0) {
      outsiders.push(await clients.connect(cluster.port));
      placed.all.push(outsiders[0]);
    }
    for (var i = 0; i < members.length; i++) {
      var ack = await clients.emit(members[i].socket, 'join', room);
      assert.deepStrictEqual(ack, [members[i].worker]);
    }
    var everyone = members.concat(outsiders);
    var got = everyone.map(function (c) { return clients.record(c, 'room-news'); });
    var ends = everyone.map(function (c) { return clients.record(c, 'room-end'); });
    // from each worker in turn: every member hears it, wherever it is
    for (var from = 1; from <= 4; from++) {
      await cluster.run(from, function (ctx, arg) {
        ctx.io.sockets.in(arg.room).emit('room-news', { from: ctx.workerId });
        ctx.io.sockets.emit('room-end', ctx.workerId);
      }, { room: room });
      await harness.waitFor(function () {
        return ends.every(function (e) { return e.length === from; });
      }, 10000, 'the broadcast after the room broadcast from worker ' + from);
    }
    var expected = [[{ from: 1 }], [{ from: 2 }], [{ from: 3 }], [{ from: 4 }]];
    members.forEach(function (c) {
      var i = everyone.indexOf(c);
      assert.deepStrictEqual(got[i], expected, 'member on worker ' + c.worker);
    });
    outsiders.forEach(function (c) {
      var i = everyone.indexOf(c);
      assert.deepStrictEqual(got[i], [], 'client outside the room on worker ' + c.worker);
    });
  });

  it('no worker crashed', function () {
    assert.deepStrictEqual(cluster.exits, []);
  });
});
