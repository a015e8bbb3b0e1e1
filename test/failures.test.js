'use strict';
// Bad situations: no broker in the master, the master killed under load,
// a value over the maximum frame size, a worker killed mid-traffic.

var assert = require('assert');
var fs = require('fs');
var os = require('os');
var path = require('path');
var harness = require('./support/cluster');

function sleep(ms) {
  return new Promise(function (r) { setTimeout(r, ms); });
}

describe('when the master never loaded the module', function () {
  var cluster;

  before(async function () {
    cluster = await harness.startCluster({ workers: 2, load: false });
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  it('calls back with an Error that says to require the module in the master, without hanging or crashing', async function () {
    this.timeout(20000);
    var r = await cluster.run(1, async function (ctx) {
      var t0 = Date.now();
      var store = ctx.newStore({ attachTimeout: 1000 });
      var client = store.client('orphan');
      var results = await Promise.all([
        ctx.call(client, 'set', 'k', 'v'),
        ctx.call(client, 'get', 'k'),
        ctx.call(client, 'has', 'k'),
        ctx.call(client, 'del', 'k'),
        ctx.call(store, 'subscribe', 'ch', function () {}),
        ctx.call(store, 'unsubscribe', 'ch')
      ]);
      var firstMs = Date.now() - t0;
      // later calls fail too, at once
      var t1 = Date.now();
      var later = await ctx.call(client, 'get', 'k');
      var laterMs = Date.now() - t1;
      var published = true;
      try { store.publish('ch', 1); } catch (e) { published = e.message; }
      return {
        errors: results.map(function (x) { return ctx.errorInfo(x[0]); }),
        later: ctx.errorInfo(later[0]),
        firstMs: firstMs,
        laterMs: laterMs,
        published: published,
        events: ctx.errors.length
      };
    });
    r.errors.concat([r.later]).forEach(function (e, i) {
      assert.ok(e && e.isError, 'call ' + i + ' got no Error: ' + JSON.stringify(e));
      assert.ok(/require/i.test(e.message) && /master/i.test(e.message),
        'the message says to require the module in the master: ' + e.message);
    });
    assert.ok(r.firstMs < 5000, 'the first callbacks took ' + r.firstMs + ' ms (attachTimeout 1000)');
    assert.ok(r.laterMs < 2000, 'a later call took ' + r.laterMs + ' ms');
    assert.strictEqual(r.published, true, 'publish on a store without a broker threw');
    assert.ok(r.events >= 1, 'the store emitted no \'error\'');
    // the worker is alive and responsive
    assert.strictEqual(await cluster.run(1, function (ctx) { return ctx.workerId; }), 1);
    assert.strictEqual(await cluster.run(2, function (ctx) { return ctx.workerId; }), 2);
    assert.deepStrictEqual(cluster.exits, []);
  });
});

describe('when the master is killed (SIGKILL) while workers have calls pending', function () {
  var cluster;
  var dir;

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-store-test-'));
    cluster = await harness.startCluster({ workers: 2 });
  });

  after(async function () {
    if (cluster) await cluster.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  // In the worker: keep one call going every 10 ms and write what every
  // callback got to a file, synchronously. node's cluster makes a worker
  // exit as soon as its master is gone; for this test the worker keeps
  // running 1.5 s after that so the callbacks can be watched.
  function arm(ctx, file) {
    var fs = ctx.require('fs');
    function rec(o) {
      o.t = Date.now();
      fs.appendFileSync(file, JSON.stringify(o) + '\n');
    }
    process.on('uncaughtException', function (err) {
      rec({ ev: 'uncaught', message: String(err && err.stack || err) });
      process.exit(1);
    });
    var store = ctx.newStore();
    store.on('error', function (err) { rec({ ev: 'store-error', message: err.message }); });
    var client = store.client('pending');
    var issued = 0;
    var answered = 0;
    var timer = null;
    process.removeAllListeners('disconnect');
    process.on('disconnect', function () {
      rec({ ev: 'disconnect' });
      setTimeout(function () {
        clearInterval(timer);
        rec({ ev: 'done', issued: issued, answered: answered });
        process.exit(0);
      }, 1500);
    });
    return ctx.call(store, 'subscribe', 'pending-ch', function () {}).then(function () {
      return ctx.call(client, 'set', 'k', 'v');
    }).then(function () {
      timer = setInterval(function () {
        var i = issued++;
        var sent = Date.now();
        client.get('k', function (err, v) {
          answered++;
          rec({ ev: 'cb', i: i, sent: sent, err: err ? err.message : null, isError: err instanceof Error, v: v });
        });
        if (i % 3 === 0) store.publish('pending-ch', i);
      }, 10);
      rec({ ev: 'armed' });
      return process.pid;
    });
  }

  function read(file) {
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(function (l) { return JSON.parse(l); });
  }

  it('fails every pending and later callback with an Error within ~1 s, and the workers do not crash', async function () {
    this.timeout(30000);
    var files = {};
    var pids = {};
    for (var w = 1; w <= 2; w++) {
      files[w] = path.join(dir, 'worker-' + w + '.jsonl');
      pids[w] = await cluster.run(w, arm, files[w]);
    }
    // the calls are being answered
    await harness.waitFor(function () {
      return [1, 2].every(function (w) {
        return read(files[w]).filter(function (r) { return r.ev === 'cb' && r.err === null; }).length >= 5;
      });
    }, 10000, 'answered calls');
    // Stop the master so calls pile up unanswered, then kill it.
    assert.ok(cluster.signalMaster('SIGSTOP'));
    var tStop = Date.now();
    await sleep(300);
    assert.ok(cluster.signalMaster('SIGKILL'));
    var tKill = Date.now();
    await cluster.waitExit(5000);
    await harness.waitFor(function () {
      return [1, 2].every(function (w) { return read(files[w]).some(function (r) { return r.ev === 'done'; }); });
    }, 10000, 'both workers to finish watching');
    [1, 2].forEach(function (w) {
      var recs = read(files[w]);
      var label = 'worker ' + w + ': ';
      assert.deepStrictEqual(recs.filter(function (r) { return r.ev === 'uncaught'; }), [], label + 'crashed');
      var done = recs.find(function (r) { return r.ev === 'done'; });
      assert.strictEqual(done.answered, done.issued, label + 'calls that never called back');
      var cbs = recs.filter(function (r) { return r.ev === 'cb'; });
      // calls made while the master was stopped were pending when it died
      var pending = cbs.filter(function (r) { return r.sent > tStop + 50 && r.sent < tKill; });
      assert.ok(pending.length >= 5, label + 'only ' + pending.length + ' calls were pending at the kill');
      pending.forEach(function (r) {
        assert.ok(r.isError, label + 'pending call ' + r.i + ' got ' + JSON.stringify(r));
        assert.ok(r.t - tKill < 1000, label + 'pending call ' + r.i + ' failed ' + (r.t - tKill) + ' ms after the kill');
      });
      var after = cbs.filter(function (r) { return r.sent > tKill + 50; });
      assert.ok(after.length >= 10, label + 'only ' + after.length + ' calls made after the kill');
      after.forEach(function (r) {
        assert.ok(r.isError, label + 'call ' + r.i + ' after the kill got ' + JSON.stringify(r));
        assert.ok(r.t - r.sent < 1000, label + 'call ' + r.i + ' after the kill took ' + (r.t - r.sent) + ' ms');
      });
      assert.ok(recs.some(function (r) { return r.ev === 'store-error'; }), label + 'the store emitted no \'error\'');
    });
    // and they exit normally afterwards (code 0, from the 'done' handler)
    await harness.waitFor(function () {
      return [1, 2].every(function (w) { return !harness.isAlive(pids[w]); });
    }, 10000, 'the workers to exit');
  });
});

describe('a value over the maximum frame size', function () {
  var cluster;

  before(async function () {
    cluster = await harness.startCluster({ workers: 3, setup: { maxFrameSize: 1048576, queueLimit: 8388608 } });
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  // BUG (lib/index.js + lib/engine.js): requiring the module in the master
  // already starts the broker with the default options, and setup(options)
  // then keeps the running broker (startBroker returns when started), so
  // require('socket.io-cluster-store').setup({ maxFrameSize: ... }) never
  // applies: the broker runs with 32 MiB frames and a 64 MiB queue limit.
  it('setup({ maxFrameSize, queueLimit }) after require applies to the broker', async function () {
    var stats = await cluster.run('master', function (ctx) { return ctx.require(ctx.ROOT).stats(); });
    assert.deepStrictEqual({ maxFrameSize: stats.maxFrameSize, queueLimit: stats.queueLimit },
      { maxFrameSize: 1048576, queueLimit: 8388608 });
  });

  // Sets a 2 MiB value (maxFrameSize 1 MiB) from store `name` in worker
  // `writer` (`warm`: after a round trip, so the broker's hello has
  // arrived), then checks the store still works: smaller values, a publish
  // to worker 2.
  async function overTheMaximum(name, warm, writer) {
    var ch = 'frame-' + name + '-' + Date.now();
    await cluster.run(2, function (ctx, ch) { return ctx.subscribe('f', ch); }, ch);
    var r = await cluster.run(writer, async function (ctx, a) {
      var store = ctx.store(a.name);
      var client = store.client('frame-' + a.name);
      if (a.warm) await ctx.call(client, 'has', 'warm');
      // the big value and, in the same tick, a small one right behind it
      var pendingBig = ctx.call(client, 'set', 'big', 'x'.repeat(2 * 1024 * 1024));
      var pendingNext = ctx.call(client, 'set', 'next', 'right behind');
      var big = await pendingBig;
      var next = await pendingNext;
      // a moment for a broken channel to come back, if it does
      await ctx.sleep(300);
      var under = await ctx.call(client, 'set', 'under', 'y'.repeat(512 * 1024));
      var small = await ctx.call(client, 'set', 'small', { ok: true });
      var got = await ctx.call(client, 'get', 'small');
      var bigHas = await ctx.call(client, 'has', 'big');
      store.publish(a.ch, 'still works');
      return {
        big: ctx.errorInfo(big[0]),
        next: ctx.errorInfo(next[0]),
        under: ctx.errorInfo(under[0]),
        small: ctx.errorInfo(small[0]),
        got: got[1],
        bigStored: bigHas[1]
      };
    }, { ch: ch, name: name, warm: warm });
    // all in one comparison, so a failure shows everything that went wrong
    assert.deepStrictEqual({
      bigGaveAnError: Boolean(r.big && r.big.isError),
      bigErrorSaysOverTheMaximum: Boolean(r.big && /over the (broker's )?maximum/i.test(r.big.message)),
      nextSetError: r.next && r.next.message,
      laterCalls: { under: r.under && r.under.message, small: r.small && r.small.message, got: r.got },
      bigStored: r.bigStored
    }, {
      bigGaveAnError: true,
      bigErrorSaysOverTheMaximum: true,
      nextSetError: null,
      laterCalls: { under: null, small: null, got: { ok: true } },
      bigStored: false
    }, 'the 2 MiB set\'s error: ' + (r.big && r.big.message));
    var received = await cluster.run(2, function (ctx, ch) {
      var list = ctx.got('f', ch);
      return ctx.until(function () { return list.length >= 1; }).then(function () { return list; });
    }, ch);
    assert.deepStrictEqual(received, [['still works']]);
    var under = await cluster.run(2, async function (ctx, name) {
      var r = await ctx.call(ctx.store('f').client('frame-' + name), 'get', 'under');
      return r[1] && r[1].length;
    }, name);
    assert.strictEqual(under, 512 * 1024);
  }

  it('gives the set callback an Error saying it is over the maximum, and the store keeps working', async function () {
    await overTheMaximum('warm', true, 1);
  });

  // BUG (src/channel.c / lib/engine.js): a process's channel starts with
  // the worker's default limit (32 MiB) and learns the broker's (1 MiB) only
  // from the broker's hello. A large value set before that hello arrives is
  // queued and sent; the broker refuses the oversized frame and cuts the
  // whole channel off, so every other call in flight fails too (the small
  // set right behind it, always). When the cut is seen inside
  // channelAttach (attachThroughMaster), the connection had never been
  // open and is never reopened: every later call in that process fails
  // ("the channel to the master broke", with the "socket.io-cluster-store: "
  // prefix doubled); when it is seen later, it reconnects after 100 ms.
  it('does the same for the first call of the first store in a worker', async function () {
    // worker 3 has made no store before this
    await overTheMaximum('fresh', false, 3);
  });

  it('no worker crashed', function () {
    assert.deepStrictEqual(cluster.exits, []);
  });
});

// Issue #16, item 9: maxFrameSize is the master's to set. A store in a
// worker given a smaller one used to make it its channel's limit, while
// the broker went on routing up to its own: every larger message from
// another worker broke that worker's channel, and was lost.
describe('maxFrameSize given to a store in a worker', function () {
  var cluster;

  before(async function () {
    cluster = await harness.startCluster({ workers: 2 });
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  it('is ignored: messages up to the master\'s limit arrive, in order, the channel stays up', async function () {
    var ids = cluster.workerIds;
    var ch = 'limit-' + Date.now();
    await cluster.run(ids[1], function (ctx, ch) {
      ctx.store('limited', { maxFrameSize: 1024 * 1024 });
      return ctx.subscribe('limited', ch);
    }, ch);
    await cluster.run(ids[0], function (ctx, ch) {
      var store = ctx.store('sender');
      store.publish(ch, 'first', 'a'.repeat(2 * 1024 * 1024));
      store.publish(ch, 'second', 'b'.repeat(2 * 1024 * 1024));
      store.publish(ch, 'after');
    }, ch);
    var r = await cluster.run(ids[1], function (ctx, ch) {
      var list = ctx.got('limited', ch);
      return ctx.until(function () {
        return list.some(function (m) { return m[0] === 'after'; }) || ctx.errors.length > 0;
      }).then(function () {
        return {
          received: list.map(function (m) { return [m[0], m[1] ? m[1].length : null]; }),
          errors: ctx.errors.map(function (e) { return e.message; })
        };
      });
    }, ch);
    assert.deepStrictEqual(r, {
      received: [['first', 2 * 1024 * 1024], ['second', 2 * 1024 * 1024], ['after', null]],
      errors: []
    });
  });
});

describe('when a worker is killed mid-traffic', function () {
  var cluster;

  before(async function () {
    cluster = await harness.startCluster({ workers: 3 });
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  it('the master and the other workers go on', async function () {
    var ch = 'dying-' + Date.now();
    for (var w = 1; w <= 3; w++) await cluster.run(w, function (ctx, ch) { return ctx.subscribe('d', ch); }, ch);
    // worker 3 floods the broker, then dies with calls pending
    await cluster.run(3, function (ctx, ch) {
      var store = ctx.store('d');
      (function loop() {
        for (var i = 0; i < 200; i++) {
          store.publish(ch, 'flood', i);
          store.client('dying').set('k' + (i % 10), i, function () {});
        }
        setImmediate(loop);
      })();
    }, ch);
    await sleep(200);
    harness.killPid(cluster.workerPid(3), 'SIGKILL');
    await harness.waitFor(function () { return cluster.exits.length === 1; }, 10000, 'worker 3 to exit');
    // the others still talk through the broker
    await cluster.run(1, function (ctx, ch) { ctx.store('d').publish(ch, 'after'); }, ch);
    var seen = await cluster.run(2, function (ctx, ch) {
      var list = ctx.got('d', ch);
      return ctx.until(function () {
        return list.some(function (m) { return m[0] === 'after'; });
      }, 10000, 'the message after the kill').then(function () { return true; });
    }, ch);
    assert.strictEqual(seen, true);
    var kv = await cluster.run(2, async function (ctx) {
      var c = ctx.store('d').client('survivor');
      await ctx.call(c, 'set', 'k', 'v');
      return (await ctx.call(c, 'get', 'k'))[1];
    });
    assert.strictEqual(kv, 'v');
    var stats = await cluster.run('master', function (ctx) { return ctx.require(ctx.ROOT).stats(); });
    assert.strictEqual(stats.workers, 2, 'the broker still counts the dead worker: ' + JSON.stringify(stats));
    assert.deepStrictEqual(cluster.exits.map(function (e) { return [e.worker, e.signal]; }), [[3, 'SIGKILL']]);
    assert.ok(!cluster.exited, 'the master exited');
  });
});
