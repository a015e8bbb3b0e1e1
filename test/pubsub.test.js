'use strict';
// publish / subscribe / unsubscribe across real cluster workers (and the
// master), store instance by store instance.

var assert = require('assert');
var harness = require('./support/harness');

describe('publish and subscribe across the cluster (4 workers)', function () {
  var cluster;
  var uid = 0;
  function channel(name) {
    return name + '-' + (++uid) + '-' + Date.now();
  }

  before(async function () {
    cluster = await harness.start({ workers: 4 });
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  function subscribe(target, store, ch) {
    return cluster.run(target, function (ctx, a) { return ctx.subscribe(a.store, a.channel); },
      { store: store, channel: ch });
  }

  function publish(target, store, ch, args) {
    return cluster.run(target, function (ctx, a) {
      var s = ctx.store(a.store);
      s.publish.apply(s, [a.channel].concat(a.args));
      return true;
    }, { store: store, channel: ch, args: args });
  }

  // What store `store` in `target` got on `ch`, once `until(list)` holds.
  function got(target, store, ch, count) {
    return cluster.run(target, function (ctx, a) {
      var list = ctx.got(a.store, a.channel);
      return ctx.until(function () { return list.length >= a.count; }, 10000,
        a.count + ' messages on ' + a.channel + ' (have ' + list.length + ')').then(function () {
        return list;
      });
    }, { store: store, channel: ch, count: count || 0 });
  }

  it('reaches every other store instance in every process, never the publisher', async function () {
    var ch = channel('fanout');
    var subscribers = [[1, 'p'], [1, 'q'], [2, 's'], [3, 's'], [4, 's'], ['master', 's']];
    for (var i = 0; i < subscribers.length; i++) await subscribe(subscribers[i][0], subscribers[i][1], ch);
    await publish(1, 'p', ch, ['m1', { from: 'p' }]);
    for (i = 1; i < subscribers.length; i++) {
      assert.deepStrictEqual(await got(subscribers[i][0], subscribers[i][1], ch, 1),
        [['m1', { from: 'p' }]], 'store ' + subscribers[i].join(':'));
    }
    // Whatever reached p from its own publish would be ahead of this.
    await publish(1, 'q', ch, ['marker']);
    assert.deepStrictEqual(await got(1, 'p', ch, 1), [['marker']], 'the publisher got its own message');
    assert.deepStrictEqual(await got(1, 'q', ch, 1), [['m1', { from: 'p' }]]);
  });

  it('two stores in one process each see the other\'s publishes and not their own', async function () {
    var result = await cluster.run(2, async function (ctx, ch) {
      await ctx.subscribe('a', ch);
      await ctx.subscribe('b', ch);
      var a = ctx.store('a');
      var b = ctx.store('b');
      a.publish(ch, 'a1');
      b.publish(ch, 'b1');
      a.publish(ch, 'a2');
      b.publish(ch, 'b2');
      await ctx.until(function () { return ctx.got('a', ch).length >= 2 && ctx.got('b', ch).length >= 2; });
      // Let anything misrouted arrive: one more from each, waited for.
      a.publish(ch, 'a-end');
      b.publish(ch, 'b-end');
      await ctx.until(function () { return ctx.got('a', ch).length >= 3 && ctx.got('b', ch).length >= 3; });
      return { a: ctx.got('a', ch), b: ctx.got('b', ch) };
    }, channel('pair'));
    assert.deepStrictEqual(result.a, [['b1'], ['b2'], ['b-end']]);
    assert.deepStrictEqual(result.b, [['a1'], ['a2'], ['a-end']]);
  });

  it('keeps each publisher\'s order under a burst of 20000 messages from 2 workers at once', async function () {
    this.timeout(90000);
    var ch = channel('burst');
    var N = 20000;
    for (var w = 1; w <= 4; w++) await subscribe(w, 'burst-sub', ch);
    // Both publishers start together and interleave their bursts.
    var burst = function (ctx, a) {
      var store = ctx.store('burst-pub');
      var i = 0;
      return new Promise(function (resolve) {
        (function chunk() {
          for (var k = 0; k < 500 && i < a.n; k++, i++) {
            store.publish(a.channel, ctx.workerId, i, { pad: 'x'.repeat(i % 64), odd: i % 2 === 1 });
          }
          if (i < a.n) setImmediate(chunk);
          else resolve(i);
        })();
      });
    };
    var sent = await Promise.all([
      cluster.run(1, burst, { channel: ch, n: N }),
      cluster.run(2, burst, { channel: ch, n: N })
    ]);
    assert.deepStrictEqual(sent, [N, N]);
    var check = function (ctx, a) {
      var list = ctx.got('burst-sub', a.channel);
      return ctx.until(function () { return list.length >= 2 * a.n; }, 60000,
        'the whole burst (' + list.length + ' of ' + 2 * a.n + ')').then(function () {
        var next = {};
        var bad = [];
        list.forEach(function (args) {
          var from = args[0];
          var seq = args[1];
          var expect = next[from] || 0;
          if (seq !== expect || args[2].pad.length !== seq % 64 || args[2].odd !== (seq % 2 === 1)) {
            if (bad.length < 5) bad.push({ from: from, got: seq, expected: expect });
          }
          next[from] = seq + 1;
        });
        return { total: list.length, next: next, bad: bad };
      });
    };
    for (w = 1; w <= 4; w++) {
      var r = await cluster.run(w, check, { channel: ch, n: N }, { timeout: 70000 });
      assert.deepStrictEqual(r, { total: 2 * N, next: { 1: N, 2: N }, bad: [] }, 'subscriber in worker ' + w);
    }
  });

  it('calls subscribe\'s callback only once the subscription is live', async function () {
    this.timeout(60000);
    // Another worker publishes the moment the callback has run. The
    // subscriber first sends the broker a large value, so a callback that
    // ran before the broker had taken the subscription in would lose the race.
    for (var i = 0; i < 8; i++) {
      var ch = channel('live');
      await cluster.run(1, function (ctx, a) {
        var store = ctx.store('live-sub');
        store.client('live-ballast').set('ballast', 'b'.repeat(8 * 1024 * 1024 + a.i), function () {});
        return ctx.subscribe('live-sub', a.channel);
      }, { channel: ch, i: i });
      await publish(2 + (i % 3), 'live-pub', ch, ['now', i]);
      assert.deepStrictEqual(await got(1, 'live-sub', ch, 1), [['now', i]], 'round ' + i);
    }
  });

  it('subscribe\'s callback in one process precedes delivery of what another store publishes from it', async function () {
    var result = await cluster.run(3, async function (ctx, base) {
      var sub = ctx.store('cb-sub');
      var pub = ctx.store('cb-pub');
      var received = [];
      var rounds = 200;
      for (var i = 0; i < rounds; i++) {
        (function (ch, i) {
          sub.subscribe(ch, function (v) { received.push(v); }, function (err) {
            if (!err) pub.publish(ch, i);
          });
        })(base + '-' + i, i);
      }
      await ctx.until(function () { return received.length >= rounds; }, 10000, 'all ' + rounds + ' messages');
      return received.length;
    }, channel('cb'));
    assert.strictEqual(result, 200);
  });

  it('unsubscribe stops delivery (to that store only) and calls back', async function () {
    var ch = channel('unsub');
    var marker = channel('unsub-marker');
    await subscribe(1, 'u', ch);
    await subscribe(1, 'u', marker);
    await subscribe(3, 'other', ch);
    await publish(2, 'pub', ch, ['before']);
    assert.deepStrictEqual(await got(1, 'u', ch, 1), [['before']]);
    var unsub = await cluster.run(1, function (ctx, a) {
      return new Promise(function (resolve, reject) {
        var timer = setTimeout(function () { reject(new Error('unsubscribe did not call back')); }, 10000);
        ctx.store('u').unsubscribe(a, function (err) {
          clearTimeout(timer);
          resolve({ called: true, err: ctx.errorInfo(err) });
        });
      });
    }, ch);
    assert.deepStrictEqual(unsub, { called: true, err: null });
    await publish(2, 'pub', ch, ['after']);
    await publish(2, 'pub', marker, ['end']);
    // the marker was published after 'after', by the same publisher
    assert.deepStrictEqual(await got(1, 'u', marker, 1), [['end']]);
    assert.deepStrictEqual(await got(1, 'u', ch), [['before']], 'delivered after unsubscribe');
    assert.deepStrictEqual(await got(3, 'other', ch, 2), [['before'], ['after']]);
  });

  it('emits the RedisStore events: publish, subscribe, unsubscribe', async function () {
    var r = await cluster.run(4, async function (ctx, ch) {
      var store = ctx.newStore();
      var events = [];
      ['publish', 'subscribe', 'unsubscribe'].forEach(function (name) {
        store.on(name, function () { events.push({ name: name, args: Array.prototype.slice.call(arguments) }); });
      });
      function consumer() {}
      var out = {};
      await new Promise(function (resolve) {
        store.subscribe(ch, consumer, function subscribed() {
          out.subscribeFn = events[0] && events[0].args[2] === subscribed;
          resolve();
        });
      });
      store.publish(ch, 1, 'two', { three: [3] });
      await new Promise(function (resolve) {
        store.unsubscribe(ch, function unsubscribed() {
          out.unsubscribeFn = events[2] && events[2].args[1] === unsubscribed;
          resolve();
        });
      });
      out.names = events.map(function (e) { return e.name; });
      out.subscribe = [events[0].args[0], events[0].args[1] === consumer, typeof events[0].args[2]];
      out.publish = events[1].args;
      out.unsubscribe = [events[2].args[0], typeof events[2].args[1]];
      store.destroy();
      return out;
    }, channel('events'));
    assert.deepStrictEqual(r.names, ['subscribe', 'publish', 'unsubscribe']);
    assert.deepStrictEqual(r.subscribe, [r.subscribe[0], true, 'function']);
    assert.ok(/^events-/.test(r.subscribe[0]));
    assert.deepStrictEqual(r.publish, [r.subscribe[0], 1, 'two', { three: [3] }]);
    assert.deepStrictEqual(r.unsubscribe, [r.subscribe[0], 'function']);
    assert.strictEqual(r.subscribeFn, true);
    assert.strictEqual(r.unsubscribeFn, true);
  });

  it('several stores in one process are independent', async function () {
    var r = await cluster.run(2, async function (ctx, ch) {
      var a = ctx.newStore();
      var b = ctx.newStore();
      var c = ctx.newStore();
      var got = { a: [], b: [] };
      function sub(store, list) {
        return new Promise(function (resolve) {
          store.subscribe(ch, function (v) { list.push(v); }, resolve);
        });
      }
      await sub(a, got.a);
      await sub(b, got.b);
      // a unsubscribing leaves b subscribed
      await new Promise(function (resolve) { a.unsubscribe(ch, resolve); });
      c.publish(ch, 1);
      await ctx.until(function () { return got.b.length === 1; });
      // a destroyed leaves b and c working
      a.destroy();
      c.publish(ch, 2);
      await ctx.until(function () { return got.b.length === 2; });
      var set = await ctx.call(c.client('indep'), 'set', 'k', 'v');
      var get = await ctx.call(b.client('indep'), 'get', 'k');
      var dead = await ctx.call(a.client('indep'), 'get', 'k');
      b.destroy();
      c.destroy();
      return { a: got.a, b: got.b, set: set[0], get: get, dead: ctx.errorInfo(dead[0]) };
    }, channel('indep'));
    assert.deepStrictEqual(r.a, []);
    assert.deepStrictEqual(r.b, [1, 2]);
    assert.strictEqual(r.set, null);
    assert.deepStrictEqual(r.get, [null, 'v']);
    assert.ok(r.dead && r.dead.isError, 'a destroyed store\'s calls get an Error');
  });

  // Input reaches JavaScript without a copy, lent for one call: a consumer
  // that waits on the broker inside its callback (the catch-up socket.io's
  // handshake hook does) makes the store read more input meanwhile, and
  // values kept after the callback must still hold their bytes.
  it('a consumer that waits on the broker mid-delivery, and keeps what it got, loses nothing', async function () {
    var ch = channel('lent');
    var count = 600;
    await cluster.run(2, function (ctx, a) {
      var store = ctx.store('lent');
      var kept = ctx.got('lent', a.channel);
      return new Promise(function (resolve, reject) {
        store.subscribe(a.channel, function (seq, text, bytes) {
          kept.push([seq, text, bytes]);
          if (seq % 3 === 0) store._catchUp(); // a blocking round trip to the broker
        }, function (err) { if (err) reject(err); else resolve(true); });
      });
    }, { channel: ch });
    await cluster.run(1, function (ctx, a) {
      var s = ctx.store('lent-pub');
      for (var i = 0; i < a.count; i++) {
        var text = String(i % 10).repeat(20000 + (i % 7) * 3001);
        var bytes = Buffer.alloc(3000 + i, i & 0xff);
        s.publish(a.channel, i, text, bytes);
      }
      return true;
    }, { channel: ch, count: count });
    var report = await cluster.run(2, function (ctx, a) {
      var kept = ctx.got('lent', a.channel);
      return ctx.until(function () { return kept.length >= a.count; }, 20000,
        a.count + ' messages (have ' + kept.length + ')').then(function () {
        // Checked only now, long after each callback returned.
        var bad = [];
        kept.forEach(function (m, k) {
          var i = m[0];
          var ok = i === k && m[1] === String(i % 10).repeat(20000 + (i % 7) * 3001) &&
            Buffer.isBuffer(m[2]) && m[2].length === 3000 + i && m[2].every(function (b) { return b === (i & 0xff); });
          if (!ok) bad.push([k, i, m[2] && m[2].length]);
        });
        return { received: kept.length, bad: bad.slice(0, 5) };
      });
    }, { channel: ch, count: count });
    assert.deepStrictEqual(report, { received: count, bad: [] });
  });

  it('no worker crashed', function () {
    assert.deepStrictEqual(cluster.exits, []);
  });
});
