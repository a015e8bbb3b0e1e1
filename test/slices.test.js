'use strict';
// A reader with a backlog from a busy publisher: its input is handed to
// JavaScript in slices, publishers interleaved fairly (src/channel_input.c).
// What users rely on: every message arrives once, each publisher's in the
// order it published them, also across a blocking catch-up made mid-slice;
// and a quiet publisher's message is not kept behind the whole backlog.

var assert = require('assert');
var harness = require('./support/harness');

describe('a reader behind a busy publisher (4 workers)', function () {
  var cluster;

  before(async function () {
    cluster = await harness.start({ workers: 4 });
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  it('gets every message once, in order per publisher, and a quiet one before the backlog ends', async function () {
    this.timeout(60000);
    var topic = 'slices-' + Date.now();
    var COUNT = 20000;
    // Worker 3 reads slowly (50 µs a message) and waits on the broker
    // (catchUp) once, in the middle of a slice.
    await cluster.run(3, function (ctx, a) {
      var store = ctx.store('r');
      var st = ctx.state.slices = { seen: {}, bad: [], total: 0, quietAt: -1 };
      function burn(us) {
        var end = process.hrtime.bigint() + BigInt(us * 1000);
        while (process.hrtime.bigint() < end) { /* a slow handler */ }
      }
      return Promise.all([
        new Promise(function (resolve) {
          store.subscribe(a.topic, function (from, seq) {
            var next = st.seen[from] || 0;
            if (seq !== next) st.bad.push(from + ': ' + seq + ' after ' + (next - 1));
            st.seen[from] = seq + 1;
            st.total++;
            if (st.total === 1000) store.publish(a.topic + '-started', 'go');
            // A blocking round trip to the broker: what it brings in is
            // delivered in arrival order, behind the rest of the slice.
            if (st.total === 30000) store._catchUp();
            burn(50);
          }, resolve);
        }),
        new Promise(function (resolve) {
          store.subscribe(a.topic + '-quiet', function () {
            st.quietAt = st.total;
          }, resolve);
        })
      ]).then(function () { return true; });
    }, { topic: topic, count: COUNT });
    // Worker 4 publishes one message once the reader is under way.
    await cluster.run(4, function (ctx, a) {
      var store = ctx.store('q');
      return new Promise(function (resolve) {
        store.subscribe(a.topic + '-started', function () { store.publish(a.topic + '-quiet', 'hello'); },
          resolve);
      }).then(function () { return true; });
    }, { topic: topic });
    // Workers 1 and 2 publish their backlogs as fast as they can.
    await Promise.all([1, 2].map(function (w) {
      return cluster.run(w, function (ctx, a) {
        var store = ctx.store('p');
        for (var i = 0; i < a.count; i++) store.publish(a.topic, 'w' + a.w, i);
        return true;
      }, { topic: topic, count: COUNT, w: w });
    }));
    var result = await cluster.run(3, function (ctx) {
      var st = ctx.state.slices;
      return ctx.until(function () { return st.total >= 2 * 20000 && st.quietAt >= 0; }, 50000,
        'every message').then(function () {
        return { seen: st.seen, bad: st.bad.slice(0, 5), total: st.total, quietAt: st.quietAt };
      });
    });
    assert.deepStrictEqual(result.bad, [], 'out of order per publisher');
    assert.deepStrictEqual(result.seen, { w1: COUNT, w2: COUNT });
    assert.strictEqual(result.total, 2 * COUNT, 'each message once');
    // The quiet message was published after the reader's 1000th message.
    // What is ahead of it is what the reader holds and the kernel's buffer
    // (some 3,000 messages this size), not the backlog (40,000, 2 s of
    // work); before slices, it came after most of the backlog.
    assert.ok(result.quietAt >= 1000 && result.quietAt < 15000,
      'quiet message delivered after ' + result.quietAt + ' of the backlog');
  });
});
