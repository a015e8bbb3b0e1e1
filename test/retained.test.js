'use strict';
// The engine's retention (retained publishes, reads after an offset) and
// namespaces bound to a worker's life (bind, take), across real cluster
// workers, through lib/retained.js: what connection state recovery is
// built on.

var assert = require('assert');
var harness = require('./support/harness');

// Runs in a worker (sent as source): ctx.state.kit, an endpoint of the
// process's connection that keeps every message it gets, and the calls of
// lib/retained.js as promises.
function installKit(ctx) {
  if (ctx.state.kit) return true;
  var retained = ctx.require(ctx.ROOT + '/lib/retained');
  var protocol = ctx.require(ctx.ROOT + '/lib/protocol');
  var conn = ctx.require(ctx.ROOT + '/lib/connection').forProcess();
  var got = [];
  var endpoint = conn.addEndpoint({
    onMessage: function (topic, payload, offset) {
      got.push({ topic: topic, body: payload.toString(), offset: offset });
    },
    onChannelError: function () {},
    onReconnect: function () {},
    resubscribe: function () {}
  });
  function promised(fn) {
    return function () {
      var args = Array.prototype.slice.call(arguments);
      return new Promise(function (resolve, reject) {
        fn.apply(null, [conn, endpoint].concat(args, function (err, value) {
          if (err) reject(err); else resolve(value);
        }));
      });
    };
  }
  function send(type, fields) {
    return new Promise(function (resolve, reject) {
      conn.send({ type: protocol.TYPE[type], endpoint: endpoint, topic: fields.topic,
        client: fields.client, key: fields.key, payload: fields.payload, flags: 0, now: false,
        callback: function (err, status) { if (err) reject(err); else resolve(status); } });
    });
  }
  ctx.state.kit = {
    got: got,
    STATUS: protocol.STATUS,
    subscribe: function (topic) { return send('SUBSCRIBE', { topic: topic }); },
    set: function (ns, key, value) {
      return send('KV_SET', { client: ns, key: key, payload: Buffer.from(value) });
    },
    has: function (ns, key) { return send('KV_HAS', { client: ns, key: key }); },
    publish: promised(function (conn, endpoint, topic, body, cb) {
      retained.publish(conn, endpoint, topic, Buffer.from(body), cb);
    }),
    keep: promised(function (conn, endpoint, topic, body, cb) {
      retained.keep(conn, endpoint, topic, Buffer.from(body), cb);
    }),
    read: promised(retained.read),
    bind: function (ns, ms) { retained.bind(conn, endpoint, ns, ms); },
    take: promised(retained.take)
  };
  return true;
}

describe('retained messages and bound namespaces (engine)', function () {
  var cluster;
  var small; // a second master: retainMessages 10
  var uid = 0;
  function name(what) {
    return what + '-' + (++uid);
  }

  before(async function () {
    cluster = await harness.start({ workers: 4 });
    small = await harness.start({ workers: 2, setup: { retainMessages: 10 } });
    await cluster.runAll(cluster.workerIds, installKit);
    await small.runAll(small.workerIds, installKit);
  });

  after(async function () {
    if (cluster) await cluster.close();
    if (small) await small.close();
  });

  it('reaches subscribers with the offset its publisher got, and a read gives what came after one',
    async function () {
      var topic = name('news');
      await cluster.run(2, function (ctx, t) { return ctx.state.kit.subscribe(t); }, topic);
      var offsets = await cluster.run(1, async function (ctx, t) {
        var out = [];
        for (var i = 0; i < 5; i++) out.push(await ctx.state.kit.publish(t, 'm' + i));
        // Kept only: in the log, delivered to no one.
        out.push(await ctx.state.kit.keep(t, 'kept'));
        await ctx.state.kit.publish(t, 'last');
        return out;
      }, topic);
      assert.strictEqual(new Set(offsets).size, 6);
      offsets.forEach(function (o) { assert.match(o, /^[0-9a-f]{16}-[0-9a-f]{16}$/); });
      assert.deepStrictEqual(offsets.slice().sort(), offsets, 'offsets grow as strings');
      var got = await cluster.run(2, function (ctx, t) {
        var kit = ctx.state.kit;
        return ctx.until(function () {
          return kit.got.filter(function (m) { return m.topic === t; }).length >= 6;
        }).then(function () {
          return kit.got.filter(function (m) { return m.topic === t; });
        });
      }, topic);
      assert.deepStrictEqual(got.slice(0, 5), offsets.slice(0, 5).map(function (o, i) {
        return { topic: topic, body: 'm' + i, offset: o };
      }));
      assert.strictEqual(got[5].body, 'last', 'the kept one went to no one');
      var read = await cluster.run(3, async function (ctx, a) {
        var kit = ctx.state.kit;
        return {
          afterSecond: await kit.read(a.topic, a.offsets[1]),
          afterLast: await kit.read(a.topic, a.last),
          otherTopic: await kit.read(a.topic + '-never', a.offsets[1]),
          notAnOffset: await kit.read(a.topic, 'banana')
        };
      }, { topic: topic, offsets: offsets, last: got[5].offset });
      assert.deepStrictEqual(read.afterSecond.map(function (e) {
        return [e.offset, Buffer.from(e.payload.data).toString()];
      }), [[offsets[2], 'm2'], [offsets[3], 'm3'], [offsets[4], 'm4'], [offsets[5], 'kept'],
        [got[5].offset, 'last']]);
      assert.deepStrictEqual(read.afterLast, []);
      assert.deepStrictEqual(read.otherTopic, []);
      assert.strictEqual(read.notAnOffset, null);
    });

  it('keeps a large message that came through the shared pool', async function () {
    var topic = name('large');
    await cluster.run(3, function (ctx, t) { return ctx.state.kit.subscribe(t); }, topic);
    var before = await cluster.stats();
    var sent = await cluster.run(2, async function (ctx, t) {
      var kit = ctx.state.kit;
      var first = await kit.publish(t, 'small');
      var big = await kit.publish(t, 'L'.repeat(200000));
      return { first: first, big: big };
    }, topic);
    var got = await cluster.run(3, function (ctx, t) {
      var kit = ctx.state.kit;
      function mine() { return kit.got.filter(function (m) { return m.topic === t; }); }
      return ctx.until(function () { return mine().length >= 2; }).then(function () {
        return mine().map(function (m) { return [m.body.length, m.offset]; });
      });
    }, topic);
    assert.deepStrictEqual(got, [[5, sent.first], [200000, sent.big]]);
    var read = await cluster.run(1, function (ctx, a) {
      return ctx.state.kit.read(a.topic, a.from).then(function (entries) {
        return entries.map(function (e) { return [e.payload.length, e.payload[0], e.offset]; });
      });
    }, { topic: topic, from: sent.first });
    assert.deepStrictEqual(read, [[200000, 'L'.charCodeAt(0), sent.big]]);
    var after = await cluster.stats();
    assert.ok(after.sharedDeliveries === before.sharedDeliveries, 'a retained message is copied, ' +
      'not shared: ' + after.sharedDeliveries);
    assert.ok(after.retainedBytes >= before.retainedBytes + 200000);
  });

  it('reaches every reader in offset order, whoever published', async function () {
    var topic = name('storm');
    await cluster.run(4, function (ctx, t) { return ctx.state.kit.subscribe(t); }, topic);
    // The reader stops reading for a while, so the broker queues for it
    // (the place where a message could overtake another), and publishers
    // take turns: one goes quiet while the others fill the queue.
    var reader = cluster.run(4, function (ctx) {
      setTimeout(function () { ctx.busy(800); }, 50);
      return true;
    });
    var pad = 'x'.repeat(3000);
    await cluster.runAll([1, 2, 3], async function (ctx, a) {
      var pending = [];
      for (var i = 0; i < 300; i++) {
        pending.push(ctx.state.kit.publish(a.topic, ctx.workerId + ':' + i + ':' + a.pad));
        if (i % (20 * ctx.workerId) === 0) await new Promise(function (r) { setTimeout(r, 5); });
      }
      await Promise.all(pending);
      return true;
    }, { topic: topic, pad: pad });
    await reader;
    var got = await cluster.run(4, function (ctx, t) {
      var kit = ctx.state.kit;
      function mine() { return kit.got.filter(function (m) { return m.topic === t; }); }
      return ctx.until(function () { return mine().length >= 900; }).then(mine);
    }, topic);
    assert.strictEqual(got.length, 900);
    for (var i = 1; i < got.length; i++) {
      assert.ok(got[i - 1].offset < got[i].offset, 'offset ' + got[i].offset + ' came after ' +
        got[i - 1].offset);
    }
    // Each publisher's messages in its order, and the log reads back the
    // same sequence.
    [1, 2, 3].forEach(function (w) {
      var seq = got.filter(function (m) { return m.body.split(':')[0] === String(w); })
        .map(function (m) { return Number(m.body.split(':')[1]); });
      assert.deepStrictEqual(seq, Array.from({ length: 300 }, function (_, k) { return k; }));
    });
    var read = await cluster.run(1, function (ctx, a) {
      return ctx.state.kit.read(a.topic, a.from).then(function (entries) {
        return entries.map(function (e) { return e.offset; });
      });
    }, { topic: topic, from: got[0].offset });
    assert.deepStrictEqual(read, got.slice(1).map(function (m) { return m.offset; }));
  });

  it('keeps a bound namespace while its worker lives, for the time asked after it is killed, ' +
    'and gives it to one taker only', async function () {
    var ns = name('session');
    var brief = name('brief');
    await cluster.run(1, async function (ctx, a) {
      var kit = ctx.state.kit;
      await kit.set(a.ns, 's', 'state of ' + a.ns);
      kit.bind(a.ns, 60000);
      await kit.set(a.brief, 's', 'brief');
      kit.bind(a.brief, 200);
      // Past 200 ms, with its worker alive: still there.
      await new Promise(function (resolve) { setTimeout(resolve, 400); });
      return kit.has(a.brief, 's');
    }, { ns: ns, brief: brief }).then(function (status) { assert.strictEqual(status, 0); });
    cluster.kill(1, 'SIGKILL');
    await cluster.waitExit(1);
    // The long one stays; the brief one goes (200 ms after the worker).
    await cluster.run(2, function (ctx, a) {
      var kit = ctx.state.kit;
      var gone = false;
      return ctx.until(function () {
        kit.has(a.brief, 's').then(function (status) { gone = status === kit.STATUS.MISSING; });
        return gone;
      }, 10000, 'the brief namespace to go');
    }, { brief: brief });
    var takes = await cluster.runAll([2, 3], function (ctx, n) {
      return ctx.state.kit.take(n, 's').then(function (v) { return v && v.toString(); });
    }, ns);
    assert.deepStrictEqual(takes.filter(Boolean), ['state of ' + ns], 'one taker got it: ' +
      JSON.stringify(takes));
    var again = await cluster.run(4, function (ctx, n) { return ctx.state.kit.take(n, 's'); }, ns);
    assert.strictEqual(again, null);
  });

  it('refuses a read from before a message the limits dropped, and an offset of another master',
    async function () {
      var topic = name('overflow');
      var offsets = await small.run(1, async function (ctx, t) {
        var out = [];
        for (var i = 0; i < 15; i++) out.push(await ctx.state.kit.publish(t, 'm' + i));
        return out;
      }, topic);
      var before = await small.stats();
      var read = await small.run(2, async function (ctx, a) {
        var kit = ctx.state.kit;
        var whole = await kit.read(a.topic, a.offsets[4]);
        return {
          gap: await kit.read(a.topic, a.offsets[3]),
          whole: whole && whole.map(function (e) { return e.payload.toString(); })
        };
      }, { topic: topic, offsets: offsets });
      assert.strictEqual(read.gap, null);
      assert.deepStrictEqual(read.whole, ['m5', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11', 'm12',
        'm13', 'm14']);
      var stats = await small.stats();
      assert.strictEqual(stats.retainedMessages, 10);
      assert.ok(stats.retainedDropped >= 5);
      assert.strictEqual(stats.retainedReadsRefused, before.retainedReadsRefused + 1);

      // The first master's offsets mean nothing to this one, whatever
      // their numbers.
      var foreign = await cluster.run(2, function (ctx, t) {
        return ctx.state.kit.publish(t, 'elsewhere');
      }, topic);
      var refused = await small.run(2, function (ctx, a) {
        return ctx.state.kit.read(a.topic, a.offset);
      }, { topic: topic, offset: foreign });
      assert.strictEqual(refused, null);
      assert.notStrictEqual(foreign.slice(0, 16), offsets[0].slice(0, 16), 'two epochs');
    });

  it('checks the retention options', async function () {
    var result = await small.run(1, function (ctx) {
      var options = ctx.require(ctx.ROOT + '/lib/options');
      var out = {};
      [{ retainMs: 0 }, { retainMessages: -1 }, { retainBytes: 1.5 }, { retainMs: 'long' }]
        .forEach(function (o) {
          try {
            options.readOptions(o);
            out[JSON.stringify(o)] = 'accepted';
          } catch (err) {
            out[JSON.stringify(o)] = err.code + ': ' + err.message;
          }
        });
      out.defaults = options.DEFAULTS;
      return out;
    });
    assert.match(result['{"retainMs":0}'], /^ERR_CLUSTER_STORE_OPTION: .*retainMs must be an integer/);
    assert.match(result['{"retainMessages":-1}'], /retainMessages must be an integer/);
    assert.match(result['{"retainBytes":1.5}'], /retainBytes must be an integer/);
    assert.match(result['{"retainMs":"long"}'], /retainMs must be an integer/);
    assert.ok(result.defaults.retainMessages > 0 && result.defaults.retainBytes > 0 &&
      result.defaults.retainMs >= 120000, 'defaults cover socket.io\'s 2 minutes');
  });
});
