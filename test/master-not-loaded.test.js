'use strict';
// A worker whose master never required the module (so no broker answers
// its attach): every call gets an Error that says to require the module in
// the master, without hanging or crashing. What the worker does next (it
// keeps asking) is in test/faults/master-blocked.test.js.

var assert = require('assert');
var harness = require('./support/harness');

describe('when the master never loaded the module', function () {
  var cluster;

  before(async function () {
    cluster = await harness.start({ workers: 2, load: false });
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
