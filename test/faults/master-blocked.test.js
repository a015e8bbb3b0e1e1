'use strict';
// The master's JavaScript blocked for 2 s (a busy loop,
// started over IPC). The broker runs on a thread of its own, so during the
// block publishes and get/set between workers must keep flowing. Workers
// timestamp every delivery and reply; the test counts those that fall
// inside the block window (the master reports when it started and ended).

var assert = require('assert');
var harness = require('./fixtures/harness');

var BLOCK_MS = 2000;
var MARGIN_MS = 200; // only what is well inside the window counts

describe('faults: the master\'s event loop blocked for 2 s', function () {
  var c;

  before(async function () {
    c = await harness.start({ workers: 3 });
  });

  after(async function () {
    if (c) await c.close();
  });

  it('does not stop publishes, get and set between workers', async function () {
    var ids = c.ids();
    var writer = ids[0];
    var reader = ids[1];
    var other = ids[2];

    // reader: subscribed to the writer's ticks; polls what the writer sets.
    await c.run(reader, function (ctx) {
      var s = ctx.store();
      ctx.state.deliveries = [];
      ctx.state.replies = [];
      ctx.state.errors = [];
      s.on('error', function (err) { ctx.state.errors.push(err.message); });
      return new Promise(function (resolve, reject) {
        s.subscribe('tick', function (seq) { ctx.state.deliveries.push([Date.now(), seq]); }, function (err) {
          if (err) return reject(err);
          var client = s.client('block-client');
          (function poll() {
            if (ctx.state.stop) return;
            client.get('seq', function (err2, v) {
              if (err2) ctx.state.errors.push(err2.message);
              else ctx.state.replies.push([Date.now(), v]);
              setTimeout(poll, 5);
            });
          })();
          resolve();
        });
      });
    });

    // other: its own set-then-get round trips on another client.
    await c.run(other, function (ctx) {
      var s = ctx.store();
      var client = s.client('block-other');
      ctx.state.trips = [];
      ctx.state.errors = [];
      var n = 0;
      (function trip() {
        if (ctx.state.stop) return;
        var mine = ++n;
        client.set('n', mine, function (err) {
          if (err) {
            ctx.state.errors.push(err.message);
            return setTimeout(trip, 5);
          }
          client.get('n', function (err2, v) {
            if (err2) ctx.state.errors.push(err2.message);
            else if (v !== mine) ctx.state.errors.push('read ' + v + ' after writing ' + mine);
            else ctx.state.trips.push(Date.now());
            setTimeout(trip, 5);
          });
        });
      })();
      return true;
    });

    // writer: a numbered tick and a set every 5 ms.
    await c.run(writer, function (ctx) {
      var s = ctx.store();
      var client = s.client('block-client');
      ctx.state.acks = [];
      ctx.state.errors = [];
      var seq = 0;
      ctx.state.timer = setInterval(function () {
        seq++;
        s.publish('tick', seq);
        client.set('seq', seq, function (err) {
          if (err) ctx.state.errors.push(err.message);
          else ctx.state.acks.push(Date.now());
        });
      }, 5);
      return true;
    });

    await harness.sleep(500);
    var block = await c.run('master', function (ctx, ms) {
      var start = Date.now();
      ctx.busy(ms);
      return { start: start, end: Date.now() };
    }, BLOCK_MS);
    await harness.sleep(500);

    var stop = function (ctx) {
      ctx.state.stop = true;
      if (ctx.state.timer) clearInterval(ctx.state.timer);
      return ctx.state;
    };
    var w = await c.run(writer, stop);
    var r = await c.run(reader, stop);
    var o = await c.run(other, stop);

    var from = block.start + MARGIN_MS;
    var to = block.end - MARGIN_MS;
    function inside(t) { return t >= from && t <= to; }
    var deliveries = r.deliveries.filter(function (d) { return inside(d[0]); });
    var replies = r.replies.filter(function (d) { return inside(d[0]); });
    var acks = w.acks.filter(inside);
    var trips = o.trips.filter(inside);
    var figures = 'in the ' + (to - from) + ' ms window: ' + deliveries.length + ' deliveries, ' +
      replies.length + ' get replies, ' + acks.length + ' set acks, ' + trips.length + ' set+get trips';
    this.test.title += ' (' + figures + ')';

    assert.ok(block.end - block.start >= BLOCK_MS, 'the master was blocked');
    assert.deepStrictEqual([w.errors, r.errors, o.errors], [[], [], []], 'no errors');
    // A 5 ms cadence gives hundreds; a stalled broker gives none.
    assert.ok(deliveries.length >= 20, 'publishes flowed during the block: ' + figures);
    assert.ok(replies.length >= 20, 'get replies flowed during the block: ' + figures);
    assert.ok(acks.length >= 20, 'set acks flowed during the block: ' + figures);
    assert.ok(trips.length >= 10, 'set+get round trips flowed during the block: ' + figures);
    // What the reader got inside the window was fresh: the writer's values moved on.
    var seen = replies.map(function (x) { return x[1]; });
    assert.ok(seen[seen.length - 1] > seen[0], 'the values read during the block changed: ' + seen.slice(0, 3) + '...' + seen.slice(-3));
    // Ticks arrived in order and without gaps across the whole run.
    var seqs = r.deliveries.map(function (d) { return d[1]; });
    for (var i = 1; i < seqs.length; i++) assert.strictEqual(seqs[i], seqs[i - 1] + 1, 'tick order at ' + i);
  });
});
