'use strict';
// A worker SIGKILLed in the middle of a publish burst
// (it publishes and subscribes). The master must not crash, the broker
// must drop the dead worker's subscriptions, every other worker must keep
// receiving everything addressed to it (a second publisher's sequence
// numbers, all of them, in order), and a worker forked in its place must
// attach and work. Also: workers killed at every moment of their attach
// (before asking the master, while the channel is handed over, just after)
// leave no descriptor behind in the master and no ghost in the broker.
// And a worker killed while it floods publishes and sets: the master and
// the other workers go on, and the broker stops counting it.

var assert = require('assert');
var harness = require('../support/harness');

var SEQ_TOTAL = 20000;
var VICTIM_CHANNELS = 200;

describe('faults: a worker killed mid-burst (SIGKILL)', function () {
  var c;

  before(async function () {
    c = await harness.start({ runTimeout: 30000, workers: 4 });
  });

  after(async function () {
    if (c) await c.close();
  });

  it('leaves the master, the others and a replacement worker working', async function () {
    var ids = c.workerIds;
    var victim = ids[0];
    var publisher = ids[1];
    var subscribers = [ids[2], ids[3]];

    // The survivors subscribe first: 'seq' (the second publisher's numbers)
    // and 'burst' (the victim's). The publisher listens to 'burst' too.
    await c.runAll(subscribers.concat(publisher), function (ctx, arg) {
      var s = ctx.store();
      ctx.state.seq = { count: 0, next: 0, bad: [] };
      ctx.state.burst = { count: 0, next: 0, bad: [] };
      function track(rec) {
        return function (n) {
          if (n !== rec.next && rec.bad.length < 10) rec.bad.push({ expected: rec.next, got: n });
          rec.next = n + 1;
          rec.count++;
        };
      }
      s.on('error', function (err) { ctx.state.error = err.message; });
      var subs = [['burst', track(ctx.state.burst)]];
      if (ctx.workerId !== arg.publisher) subs.push(['seq', track(ctx.state.seq)]);
      return Promise.all(subs.map(function (p) {
        return new Promise(function (resolve, reject) {
          s.subscribe(p[0], function (n, pad) { p[1](n, pad); }, function (err) { return err ? reject(err) : resolve(); });
        });
      }));
    }, { publisher: publisher });

    // The victim's channel is open before the baseline, so only its
    // subscriptions differ.
    await c.run(victim, function (ctx) {
      return ctx.call(ctx.store(), 'stats').then(function (r) { if (r.err) throw r.err; });
    });
    var base = await c.stats();
    assert.strictEqual(base.workers, 4);

    // The victim: many subscriptions, then a publish burst that never ends.
    await c.run(victim, function (ctx, n) {
      var s = ctx.store();
      var names = ['seq', 'burst'];
      for (var i = 0; i < n; i++) names.push('victim-' + i);
      return Promise.all(names.map(function (name) {
        return new Promise(function (resolve, reject) {
          s.subscribe(name, function () {}, function (err) { return err ? reject(err) : resolve(); });
        });
      })).then(function () {
        var k = 0;
        var pad = 'v'.repeat(512);
        (function burst() {
          for (var j = 0; j < 200; j++) s.publish('burst', k++, pad);
          ctx.state.published = k;
          setImmediate(burst);
        })();
        return names.length;
      });
    }, VICTIM_CHANNELS);

    var withVictim = await c.stats();
    assert.strictEqual(withVictim.subscriptions, base.subscriptions + VICTIM_CHANNELS + 2,
      'the victim\'s subscriptions are counted');

    // The second publisher: numbered messages, paced over a couple of seconds.
    await c.run(publisher, function (ctx, total) {
      var s = ctx.store();
      var k = 0;
      (function next() {
        for (var j = 0; j < 100 && k < total; j++) s.publish('seq', k++, { from: 'publisher' });
        ctx.state.sent = k;
        if (k < total) setTimeout(next, 1);
      })();
      return true;
    }, SEQ_TOTAL);

    // Kill the victim while both publish.
    await harness.sleep(300);
    var midway = await c.run(publisher, function (ctx) { return ctx.state.sent; });
    assert.ok(c.kill(victim, 'SIGKILL'), 'the victim was signalled');
    var exit = await c.waitExit(victim, 10000);
    assert.strictEqual(exit.signal, 'SIGKILL');

    // The master is alive and answers; the broker dropped the victim.
    await c.waitStats(function (s) {
      return s.workers === 3 && s.subscriptions === base.subscriptions && s.channels === base.channels;
    }, 10000, 'the broker to drop the victim\'s connection and subscriptions');

    // Everything the second publisher sent reached both subscribers, in order.
    var results = await c.runAll(subscribers, function (ctx, total) {
      return ctx.until(function () { return ctx.state.seq.count >= total; }, 30000,
        function () { return total + ' seq messages (have ' + ctx.state.seq.count + ')'; }).then(function () {
        return { seq: ctx.state.seq, burst: ctx.state.burst, error: ctx.state.error || null };
      });
    }, SEQ_TOTAL);
    results.forEach(function (r, i) {
      assert.deepStrictEqual(r.seq.bad, [], 'worker ' + subscribers[i] + ' got seq out of order');
      assert.strictEqual(r.seq.count, SEQ_TOTAL, 'worker ' + subscribers[i] + ' seq count');
      // What the victim got out before it died arrived as a gapless prefix.
      assert.deepStrictEqual(r.burst.bad, [], 'worker ' + subscribers[i] + ' burst had gaps');
      assert.ok(r.burst.count > 0, 'the victim was killed mid-burst, not before it');
      assert.strictEqual(r.error, null, 'no error on a surviving store');
    });
    this.test.title += ' (killed after ' + midway + ' of ' + SEQ_TOTAL + ' seq messages; ' +
      results[0].burst.count + ' burst messages got through)';

    // A new worker in the victim's place attaches and works both ways.
    var fresh = await c.fork();
    await c.run(fresh.id, function (ctx) {
      var s = ctx.store();
      ctx.state.got = [];
      return new Promise(function (resolve, reject) {
        s.subscribe('after', function (v) { ctx.state.got.push(v); }, function (err) { return err ? reject(err) : resolve(); });
      });
    });
    await c.run(subscribers[0], function (ctx) {
      var s = ctx.store();
      ctx.state.after = [];
      return new Promise(function (resolve, reject) {
        s.subscribe('after', function (v) { ctx.state.after.push(v); }, function (err) {
          if (err) return reject(err);
          s.publish('after', 'from-old');
          ctx.call(s.client('replacement-test'), 'set', 'old', { v: 1 }).then(resolve, reject);
        });
      });
    });
    var freshSide = await c.run(fresh.id, function (ctx) {
      var s = ctx.store();
      s.publish('after', 'from-new');
      return ctx.until(function () { return ctx.state.got.length >= 1; }, 10000, 'the message from the old worker')
        .then(function () { return ctx.call(s.client('replacement-test'), 'get', 'old'); })
        .then(function (r) {
          if (r.err) throw r.err;
          return ctx.call(s.client('replacement-test'), 'set', 'new', [2, 'two']).then(function (w) {
            if (w.err) throw w.err;
            return { got: ctx.state.got, old: r.value };
          });
        });
    });
    assert.deepStrictEqual(freshSide, { got: ['from-old'], old: { v: 1 } });
    var oldSide = await c.run(subscribers[0], function (ctx) {
      var s = ctx.store();
      return ctx.until(function () { return ctx.state.after.length >= 1; }, 10000, 'the message from the new worker')
        .then(function () { return ctx.call(s.client('replacement-test'), 'get', 'new'); })
        .then(function (r) { return { after: ctx.state.after, value: r.value, err: r.err && r.err.message }; });
    });
    assert.deepStrictEqual(oldSide, { after: ['from-new'], value: [2, 'two'], err: null });
    var final = await c.stats();
    assert.strictEqual(final.workers, 4);
    assert.strictEqual(c.exited, false, 'the master is still running');
  });
});

describe('faults: workers killed while they attach', function () {
  var c;

  before(async function () {
    c = await harness.start({ runTimeout: 30000, workers: 1 });
  });

  after(async function () {
    if (c) await c.close();
  });

  // Workers that ask for a channel as they start, SIGKILLed at moments
  // spread over their start-up: before asking, while the master answers,
  // while the channel is in flight, just after attaching. The master must
  // survive, leak no descriptor, and its broker must forget them all.
  it('leaves the master without leaked descriptors and the broker without ghosts', async function () {
    var first = c.workerIds[0];
    await c.run(first, function (ctx) { return ctx.call(ctx.store(), 'stats').then(function () {}); });
    function fds() {
      return c.run('master', function (ctx) { return ctx.require('fs').readdirSync('/proc/self/fd').length; });
    }
    var baseFds = await fds();
    var base = await c.stats();
    var exits = 0;
    for (var round = 0; round < 4; round++) {
      exits += await c.run('master', function (ctx, r) {
        var n = 8;
        var gone = 0;
        return new Promise(function (resolve) {
          for (var i = 0; i < n; i++) {
            (function (i) {
              var w = ctx.cluster.fork({ CS_ATTACH_AT_START: '1' });
              w.on('exit', function () { if (++gone === n) resolve(gone); });
              setTimeout(function () { w.process.kill('SIGKILL'); }, i * 25 + r * 6);
            })(i);
          }
        });
      }, round);
    }
    assert.strictEqual(exits, 32);
    await c.waitStats(function (s) { return s.workers === base.workers && s.subscriptions === base.subscriptions; },
      10000, 'the broker to forget the killed workers');
    var now = await fds();
    for (var deadline = Date.now() + 10000; now !== baseFds && Date.now() < deadline; now = await fds()) {
      await harness.sleep(50);
    }
    assert.strictEqual(now, baseFds, 'the master\'s open descriptors are back at the baseline');
    var works = await c.run(first, function (ctx) {
      return ctx.call(ctx.store().client('attach-kill'), 'set', 'k', 1).then(function (r) { return r.err ? r.err.message : true; });
    });
    assert.strictEqual(works, true);
    assert.strictEqual(c.exited, false);
  });
});

describe('faults: a worker killed (SIGKILL) mid-traffic', function () {
  var cluster;

  before(async function () {
    cluster = await harness.start({ workers: 3 });
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
    await harness.sleep(200);
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
