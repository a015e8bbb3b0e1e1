'use strict';
// The socket.io 4 adapter when the primary is killed (SIGKILL) while a
// worker's fetchSockets() and serverSideEmit() with an ack wait for another
// worker (stopped, so it cannot answer): both must fail with the channel's
// error (ERR_CLUSTER_STORE_CLOSED), not wait for their timeouts, and the
// worker must not crash. The worker outlives its IPC channel
// (exitedAfterDisconnect, as master-killed.test.js does) and writes what it
// saw to its notes (no primary is left to carry answers), then exits.

var assert = require('assert');
var harness = require('../support/harness');

describe('faults: the primary killed while socket.io 4 requests wait', function () {
  this.timeout(60000);
  var c;

  after(async function () {
    if (c) await c.close();
  });

  function startServer(ctx, arg) {
    var Server = ctx.require('socket.io-v4').Server;
    var adapter = ctx.require(ctx.require('path').join(ctx.ROOT, 'adapter'));
    var httpServer = ctx.require('http').createServer();
    var io = new Server(httpServer, { adapter: adapter.createAdapter() });
    ctx.state.io = io;
    if (arg.survive) ctx.cluster.worker.exitedAfterDisconnect = true;
    // Polled every few ms: each poll asks again, and sees the last answer.
    var n = 0;
    return ctx.until(function () {
      io.of('/').adapter.serverCount().then(function (v) { n = v; });
      return n === 2;
    }, 20000, 'two servers').then(function () { return true; });
  }

  it('fails the waiting requests with ERR_CLUSTER_STORE_CLOSED at once, and the worker lives on', async function () {
    c = await harness.start({ workers: 2, load: false, runTimeout: 30000 });
    await c.run('master', function (ctx) {
      ctx.require(ctx.require('path').join(ctx.ROOT, 'adapter')).setupPrimary();
      return true;
    });
    var ids = c.workerIds;
    await Promise.all([c.run(ids[0], startServer, { survive: true }),
      c.run(ids[1], startServer, { survive: false })]);
    var pid = c.workerPid(ids[0]);
    c.kill(ids[1], 'SIGSTOP');
    await c.run(ids[0], function (ctx) {
      var io = ctx.state.io;
      var seen = {};
      function settle(what, err) {
        seen[what] = { message: err && err.message, code: err && err.code, at: Date.now() };
        if (seen.fetch && seen.emit) {
          ctx.note({ seen: seen });
          io.close();
        }
      }
      io.timeout(600000).fetchSockets().then(function () { settle('fetch', null); },
        function (err) { settle('fetch', err); });
      io.serverSideEmit('ping', function (err) { settle('emit', err); });
      return true;
    });
    await harness.sleep(300);
    var killedAt = Date.now();
    assert.ok(c.kill('master', 'SIGKILL'));
    await harness.waitFor(function () { return c.exited; }, 10000, 'the primary to die');
    c.kill(ids[1], 'SIGKILL');
    await harness.waitFor(function () { return !harness.isAlive(pid); }, 20000, function () {
      return 'the surviving worker to exit on its own' + c.output();
    });
    var notes = c.notes()[pid] || [];
    var seen = (notes.find(function (n) { return n.seen; }) || {}).seen;
    assert.ok(seen, 'the worker wrote what it saw: ' + JSON.stringify(notes));
    // The channel's error, not a timeout's ("timeout reached: ...", no code),
    // and only after the kill.
    ['fetch', 'emit'].forEach(function (what) {
      assert.strictEqual(seen[what].code, 'ERR_CLUSTER_STORE_CLOSED', what + ': ' + JSON.stringify(seen[what]));
      assert.ok(seen[what].at >= killedAt, what + ' waited for the kill');
    });
    assert.deepStrictEqual(notes.filter(function (n) { return 'exit' in n; }).map(function (n) { return n.exit; }), [0],
      'the worker exited cleanly');
  });
});
