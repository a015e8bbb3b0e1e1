'use strict';
// The store outside a cluster worker: a plain process, the cluster master
// itself, and worker_threads.

var assert = require('assert');
var harness = require('./support/harness');

function lastJson(stdout) {
  var lines = stdout.trim().split('\n').filter(Boolean);
  return JSON.parse(lines[lines.length - 1]);
}

describe('outside a cluster worker', function () {
  it('works in a plain `node script.js`: stores talk to each other, and the process exits once they are destroyed', async function () {
    var r = await harness.runNode('standalone.js', [], { timeout: 15000 });
    assert.ok(!r.timedOut, 'the process did not exit by itself after destroying its stores' +
      '\nstdout: ' + r.stdout + '\nstderr: ' + r.stderr);
    assert.deepStrictEqual({ code: r.code, signal: r.signal }, { code: 0, signal: null }, r.stderr);
    assert.deepStrictEqual(lastJson(r.stdout), {
      got: { a: [['from b', [2]]], b: [['from a', { n: 1 }], ['a again']] },
      set: null,
      get: { first: 'Ada', born: 1815 },
      has: true,
      missing: null,
      afterDel: false,
      afterDestroy: null
    });
  });

  it('works in several worker_threads at once, each on its own, and survives threads exiting', async function () {
    var r = await harness.runNode('threads.js', [], { timeout: 25000 });
    assert.ok(!r.timedOut, 'the process did not finish within 25 s' + '\nstdout: ' + r.stdout.slice(-2000) +
      '\nstderr: ' + r.stderr);
    assert.deepStrictEqual({ code: r.code, signal: r.signal }, { code: 0, signal: null }, r.stderr);
    var summary = lastJson(r.stdout);
    assert.ok(summary.summary, 'no summary');
    var errors = summary.reports.filter(function (x) { return x.error; });
    assert.deepStrictEqual(errors, []);
    // first round: main + 4 threads; after one exited and one was
    // terminated: main + the 2 that stayed
    var first = summary.reports.filter(function (x) { return x.phase === 'first'; });
    var again = summary.reports.filter(function (x) { return x.phase === 'again'; });
    assert.deepStrictEqual(first.map(function (x) { return String(x.n); }).sort(), ['0', '1', '2', '3', 'main']);
    assert.deepStrictEqual(again.map(function (x) { return String(x.n); }).sort(), ['2', '3', 'main']);
    first.concat(again).forEach(function (x) {
      assert.deepStrictEqual(
        { received: x.received, foreign: x.foreign, inOrder: x.inOrder, setError: x.setError, ownerOk: x.ownerOk },
        { received: 200, foreign: 0, inOrder: true, setError: null, ownerOk: true },
        'thread ' + x.n + ', ' + x.phase + ' round (owner ' + x.owner + ')');
    });
    assert.strictEqual(summary.exits[0], 0, 'thread that called process.exit(0)');
    assert.strictEqual(summary.exits[1], 1, 'terminated thread');
    assert.strictEqual(summary.exits[2], 0);
    assert.strictEqual(summary.exits[3], 0);
  });

  describe('in the cluster master, with 2 workers', function () {
    var cluster;

    before(async function () {
      cluster = await harness.start({ workers: 2 });
    });

    after(async function () {
      if (cluster) await cluster.close();
    });

    it('a store in the master exchanges messages and data with the workers', async function () {
      var ch = 'master-' + Date.now();
      await cluster.run('master', function (ctx, ch) { return ctx.subscribe('m', ch); }, ch);
      await cluster.run(1, function (ctx, ch) { return ctx.subscribe('w', ch); }, ch);
      await cluster.run(2, function (ctx, ch) { return ctx.subscribe('w', ch); }, ch);
      await cluster.run('master', function (ctx, ch) { ctx.store('m').publish(ch, 'from master', { n: 0 }); }, ch);
      await cluster.run(1, function (ctx, ch) { ctx.store('w').publish(ch, 'from worker', 1); }, ch);
      var wait = function (ctx, a) {
        var list = ctx.got(a.store, a.ch);
        return ctx.until(function () { return list.length >= a.n; }).then(function () { return list; });
      };
      assert.deepStrictEqual(await cluster.run('master', wait, { store: 'm', ch: ch, n: 1 }), [['from worker', 1]]);
      assert.deepStrictEqual(await cluster.run(2, wait, { store: 'w', ch: ch, n: 2 }),
        [['from master', { n: 0 }], ['from worker', 1]]);
      assert.deepStrictEqual(await cluster.run(1, wait, { store: 'w', ch: ch, n: 1 }), [['from master', { n: 0 }]]);

      var kv = function (ctx, a) {
        var client = ctx.store(a.store).client('master-kv');
        return ctx.call.apply(null, [client].concat(a.args)).then(function (r) { return [ctx.errorInfo(r[0]), r[1]]; });
      };
      assert.deepStrictEqual(await cluster.run('master', kv, { store: 'm', args: ['set', 'k', { by: 'master' }] }), [null, null]);
      assert.deepStrictEqual(await cluster.run(1, kv, { store: 'w', args: ['get', 'k'] }), [null, { by: 'master' }]);
      assert.deepStrictEqual(await cluster.run(2, kv, { store: 'w', args: ['set', 'k', [2]] }), [null, null]);
      assert.deepStrictEqual(await cluster.run('master', kv, { store: 'm', args: ['get', 'k'] }), [null, [2]]);
      assert.deepStrictEqual(await cluster.run('master', kv, { store: 'm', args: ['has', 'nope'] }), [null, false]);
    });

    it('no worker crashed', function () {
      assert.deepStrictEqual(cluster.exits, []);
    });
  });
});
