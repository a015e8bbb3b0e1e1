'use strict';
// Client churn: 100k clients (store-level: client ids) connected and
// disconnected one after another, as socket.io does: a couple of keys set,
// then client.destroy(1), which keeps the data one second and then drops
// it. After the expirations the broker's counters (clients, keys,
// dataBytes) must be back at their baseline, and the master's RSS must not
// keep growing (two rounds of 100k; figures in the test title).

var assert = require('assert');
var harness = require('../support/harness');

var CLIENTS = 100000;
var SANITIZED = /lib(asan|ubsan)/.test(process.env.LD_PRELOAD || '');
var WINDOW = 256; // clients in flight per worker

describe('faults: 100k clients set, destroyed with a 1 s expiration', function () {
  var c;

  before(async function () {
    c = await harness.start({ runTimeout: 30000, workers: 2 });
  });

  after(async function () {
    if (c) await c.close();
  });

  // In a worker: clients arg.from, arg.from + arg.step, ... below arg.to.
  function churn(ctx, arg) {
    var s = ctx.store();
    var st = { started: 0, done: 0, errors: [] };
    var next = arg.from;
    var t0 = Date.now();
    // The last client's data is read back right after its destroy(1), on
    // the same channel, so the read reaches the broker well within the
    // second it is kept (read after the round, it could be gone already
    // when the other worker took more than a second longer to finish).
    var checking = 0;
    return new Promise(function (resolve) {
      function finish() {
        if (next >= arg.to && st.done === st.started && checking === 0) {
          st.ms = Date.now() - t0;
          resolve(st);
        }
      }
      function one(n) {
        var client = s.client('churn-' + arg.round + '-' + n);
        var pending = 2;
        function set(err) {
          if (err && st.errors.length < 5) st.errors.push(err.message);
          if (--pending > 0) return;
          client.destroy(1);
          if (n === arg.last) {
            checking++;
            client.get('nickname', function (err, value) {
              if (err && st.errors.length < 5) st.errors.push(err.message);
              st.kept = value;
              checking--;
              finish();
            });
          }
          // socket.io forgets the Client object on disconnect.
          delete s.clients[client.id];
          st.done++;
          if (next < arg.to) {
            one(next);
            next += arg.step;
          } else {
            finish();
          }
        }
        st.started++;
        client.set('handshake', { issued: Date.now(), address: '10.0.0.' + (n % 255), query: { t: String(n) } }, set);
        client.set('nickname', 'user-' + n, set);
      }
      for (var i = 0; i < arg.window && next < arg.to; i++) {
        one(next);
        next += arg.step;
      }
    });
  }

  async function round(r) {
    var ids = c.workerIds;
    var results = await Promise.all(ids.map(function (id, i) {
      return c.run(id, churn, { round: r, from: i, to: CLIENTS, step: ids.length, window: WINDOW, last: CLIENTS - 1 },
        { timeout: 110000 });
    }));
    results.forEach(function (st) { assert.deepStrictEqual(st.errors, []); });
    assert.strictEqual(results.reduce(function (a, st) { return a + st.done; }, 0), CLIENTS);
    // Data of a client destroyed a moment before is still there (expiration 1 s).
    var kept = results[(CLIENTS - 1) % ids.length].kept;
    var peak = await c.stats();
    var after = await c.waitStats(function (s) {
      return s.clients === base.clients && s.keys === base.keys && s.dataBytes === base.dataBytes;
    }, 20000, 'clients, keys and dataBytes back at the baseline ' + JSON.stringify(base));
    var gone = await c.run(ids[1], function (ctx, arg) {
      var s = ctx.store();
      return Promise.all([0, arg.last].map(function (n) {
        return ctx.call(s.client('churn-' + arg.round + '-' + n), 'get', 'nickname').then(function (x) { return x.value; });
      }));
    }, { round: r, last: CLIENTS - 1 });
    var rss = await c.run('master', function (ctx) {
      return { now: process.memoryUsage().rss, peak: ctx.state.rss.peak, start: ctx.state.rss.start };
    });
    return { ms: Math.max.apply(null, results.map(function (st) { return st.ms; })), kept: kept, peak: peak, after: after, gone: gone, rss: rss };
  }

  var base;

  it('returns the broker to its baseline and keeps the master\'s memory bounded', async function () {
    base = await c.stats();
    var first = await round(1);
    var second = await round(2);
    var mb = function (n) { return (n / 1048576).toFixed(1) + ' MiB'; };
    this.test.title += ' (round 1: ' + first.ms + ' ms, ' + first.peak.clients + ' clients held at the end, ' +
      'broker dataBytes with them ' + mb(first.peak.dataBytes) + ', master RSS start ' + mb(first.rss.start) + ', peak ' + mb(second.rss.peak) + ', after round 1 ' + mb(first.rss.now) +
      ', after round 2 ' + mb(second.rss.now) + ')';
    [first, second].forEach(function (r) {
      assert.strictEqual(r.kept, 'user-' + (CLIENTS - 1), 'data is kept until the expiration');
      assert.deepStrictEqual(r.gone, [null, null], 'and gone after it');
      assert.strictEqual(r.after.clients, base.clients);
      assert.strictEqual(r.after.keys, base.keys);
      assert.strictEqual(r.after.dataBytes, base.dataBytes);
    });
    // Under the sanitizers (npm run test:sanitize) RSS says nothing: ASan
    // keeps freed memory in quarantine on purpose.
    if (SANITIZED) return;
    // Bounded: RSS is noisy (malloc arenas of the broker thread; across 20
    // rounds it moved between +30 and +55 MiB and levelled off), so this
    // only catches gross growth; exact leaks are valgrind's job (valgrind.sh).
    assert.ok(second.rss.peak - first.rss.start < 160 * 1048576, 'master RSS peak ' + mb(second.rss.peak) +
      ' from ' + mb(first.rss.start));
    assert.ok(second.rss.now - first.rss.now < 48 * 1048576, 'master RSS grew ' +
      mb(second.rss.now - first.rss.now) + ' in the second round');
  });
});
