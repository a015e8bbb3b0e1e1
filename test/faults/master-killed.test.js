'use strict';
// The master killed (SIGKILL) while workers have requests
// in flight. Every pending callback and every later one must get a clear
// Error within a second, nothing may hang, and no worker may crash: node's
// cluster makes a worker exit (code 0) when its IPC channel to the master
// closes, and that is how they must end, without a stack trace on stderr.
//
// To see the callbacks at all, two workers outlive the IPC channel:
// setting cluster.worker.exitedAfterDisconnect (what worker.disconnect()
// sets) turns off node's exit-on-disconnect. Those must then end on their
// own once their work is done: an event loop the store keeps alive would
// hang them. Results travel through files (ctx.note): no master is left to
// carry them. The third worker keeps node's default behaviour.
//
// Then the same with the master stopped (SIGSTOP) first, so that calls
// pile up unanswered: every pending and later callback must fail with an
// Error within ~1 s of the kill.

var assert = require('assert');
var fs = require('fs');
var os = require('os');
var path = require('path');
var harness = require('../support/harness');
var readJsonLines = require('../support/jsonl').readJsonLines;

describe('faults: the master killed (SIGKILL)', function () {
  var c;

  before(async function () {
    c = await harness.start({ runTimeout: 30000, workers: 3 });
  });

  after(async function () {
    if (c) await c.close();
  });

  // Runs in a worker: a flood of requests that is in flight when the master
  // dies, then (survivors) a round of later calls, then a summary note.
  function load(ctx, arg) {
    var CS = ctx.ClusterStore;
    var s = ctx.store();
    var client = s.client('master-killed');
    var st = ctx.state;
    st.issued = 0;
    st.called = 0;
    st.ok = 0;
    st.errors = [];
    st.errorEvents = [];
    st.lastOkAt = 0;
    st.firstErrorAt = 0;
    st.latestCallbackAt = 0;
    st.badErrors = [];
    if (arg.survive) ctx.cluster.worker.exitedAfterDisconnect = true;
    s.on('error', function (err) {
      st.errorEvents.push({ t: Date.now(), message: err.message, code: err.code });
    });

    function done(err) {
      st.called++;
      var now = Date.now();
      st.latestCallbackAt = Math.max(st.latestCallbackAt, now);
      if (!err) {
        st.ok++;
        st.lastOkAt = now;
        return;
      }
      if (!st.firstErrorAt) st.firstErrorAt = now;
      if (!(err instanceof Error) || err.code !== 'ERR_CLUSTER_STORE_CLOSED') {
        if (st.badErrors.length < 5) st.badErrors.push(String(err && err.message) + ' ' + (err && err.code));
      }
      if (st.errors.length < 3) st.errors.push(err.message);
    }

    return new Promise(function (resolve, reject) {
      s.subscribe('master-killed', function () {}, function (err) {
        if (err) return reject(err);
        var k = 0;
        (function flood() {
          if (st.firstErrorAt) return laterCalls();
          for (var i = 0; i < 50; i++) {
            st.issued++;
            if (i % 2) client.get('k', done);
            else client.set('k', k++, done);
          }
          s.publish('master-killed', k);
          setImmediate(flood);
        })();
        resolve(true);
      });
    });

    // After the failure: every kind of call, on the old store and on a new
    // one, must call back with an Error soon, and publish must not throw.
    function laterCalls() {
      if (!arg.survive) return;
      st.later = [];
      var rounds = 0;
      var timer = setInterval(function () {
        if (++rounds > 10) {
          clearInterval(timer);
          return setTimeout(finish, 300);
        }
        var fresh = new CS();
        fresh.on('error', function () {});
        var calls = [
          ['get', function (cb) { client.get('k', cb); }],
          ['set', function (cb) { client.set('k', 1, cb); }],
          ['has', function (cb) { client.has('k', cb); }],
          ['del', function (cb) { client.del('k', cb); }],
          ['subscribe', function (cb) { s.subscribe('later', function () {}, cb); }],
          ['unsubscribe', function (cb) { s.unsubscribe('later', cb); }],
          ['stats', function (cb) { s.stats(cb); }],
          ['new store get', function (cb) { fresh.client('x').get('k', cb); }],
          ['new store subscribe', function (cb) { fresh.subscribe('later', function () {}, cb); }]
        ];
        calls.forEach(function (entry) {
          var start = Date.now();
          var record = { op: entry[0], called: 0, ms: -1, error: null, code: null };
          st.later.push(record);
          try {
            entry[1](function (err) {
              record.called++;
              record.ms = Date.now() - start;
              record.error = err ? err.message : null;
              record.code = err ? err.code : null;
            });
          } catch (err) {
            record.threw = err.message;
          }
        });
        try {
          s.publish('master-killed', 'after');
          fresh.publish('master-killed', 'after');
        } catch (err) {
          st.publishThrew = err.message;
        }
      }, 100);
    }

    function finish() {
      ctx.note({
        summary: true,
        worker: ctx.workerId,
        issued: st.issued,
        called: st.called,
        ok: st.ok,
        lastOkAt: st.lastOkAt,
        firstErrorAt: st.firstErrorAt,
        latestCallbackAt: st.latestCallbackAt,
        errors: st.errors,
        badErrors: st.badErrors,
        errorEvents: st.errorEvents.slice(0, 3),
        errorEventCount: st.errorEvents.length,
        later: st.later,
        publishThrew: st.publishThrew || null
      });
      // Nothing else is scheduled: the process must now exit by itself.
    }
  }

  it('fails pending and later callbacks with an Error, and workers exit cleanly', async function () {
    var ids = c.workerIds;
    var survivors = [ids[0], ids[1]];
    var plain = ids[2];
    var pids = ids.map(function (id) { return c.workerPid(id); });
    await c.run(survivors[0], load, { survive: true });
    await c.run(survivors[1], load, { survive: true });
    await c.run(plain, load, { survive: false });
    await harness.sleep(500);

    var killedAt = Date.now();
    assert.ok(c.kill('master', 'SIGKILL'));
    await harness.waitFor(function () { return c.exited; }, 10000, 'the master to die');
    // Every worker holds the master's stderr pipe: it closes when the last exits.
    await harness.waitFor(function () { return c.closedStdio; }, 15000, function () {
      return 'every worker to exit; alive: ' + pids.filter(harness.isAlive).join(', ') + c.output();
    });
    var notes = c.notes();

    var stderr = c.stderr;
    assert.ok(!/Error|\n\s+at /.test(stderr), 'nothing crashed with a stack trace:\n' + stderr);

    // Every worker exited with code 0 (a crash writes 1, a signal nothing).
    pids.forEach(function (pid, i) {
      var exits = (notes[pid] || []).filter(function (n) { return 'exit' in n; });
      assert.deepStrictEqual(exits.map(function (n) { return n.exit; }), [0],
        'worker ' + ids[i] + ' (pid ' + pid + ') exit code');
    });

    survivors.forEach(function (id) {
      var pid = c.workerPid(id);
      var summary = (notes[pid] || []).find(function (n) { return n.summary; });
      assert.ok(summary, 'worker ' + id + ' wrote its summary');
      assert.ok(summary.ok > 0, 'requests worked before the kill');
      assert.strictEqual(summary.called, summary.issued, 'worker ' + id + ': every pending callback was called (' +
        summary.called + ' of ' + summary.issued + ')');
      assert.deepStrictEqual(summary.badErrors, [], 'errors are Errors with code ERR_CLUSTER_STORE_CLOSED');
      assert.ok(summary.firstErrorAt > 0, 'callbacks got an error');
      assert.ok(summary.latestCallbackAt - killedAt < 1000, 'worker ' + id + ': the last pending callback came ' +
        (summary.latestCallbackAt - killedAt) + ' ms after the kill');
      assert.match(summary.errors[0], /master/, 'the error says what happened: ' + summary.errors[0]);
      assert.ok(summary.errorEventCount >= 1, 'the store emitted \'error\'');
      assert.strictEqual(summary.errorEvents[0].code, 'ERR_CLUSTER_STORE_CLOSED');
      assert.strictEqual(summary.publishThrew, null, 'publish after the failure does not throw');
      assert.strictEqual(summary.later.length, 90);
      summary.later.forEach(function (r) {
        assert.strictEqual(r.threw, undefined, r.op + ' threw: ' + r.threw);
        assert.strictEqual(r.called, 1, r.op + ' called back once');
        assert.ok(r.ms >= 0 && r.ms < 1000, r.op + ' called back within a second (' + r.ms + ' ms)');
        assert.ok(r.error, r.op + ' got an error');
        assert.match(r.error, /master|closed|channel/, r.op + ': ' + r.error);
      });
    });
    var s0 = notes[c.workerPid(survivors[0])].find(function (n) { return n.summary; });
    this.test.title += ' (worker ' + survivors[0] + ': ' + s0.issued + ' calls, first error ' +
      (s0.firstErrorAt - killedAt) + ' ms after the kill: "' + s0.errors[0] + '")';
  });
});

describe('faults: the master killed (SIGKILL) while workers have calls pending', function () {
  var cluster;
  var dir;

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-store-test-'));
    cluster = await harness.start({ workers: 2 });
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
        return readJsonLines(files[w]).filter(function (r) { return r.ev === 'cb' && r.err === null; }).length >= 5;
      });
    }, 10000, 'answered calls');
    // Stop the master so calls pile up unanswered, then kill it.
    assert.ok(cluster.kill('master', 'SIGSTOP'));
    var tStop = Date.now();
    await harness.sleep(300);
    assert.ok(cluster.kill('master', 'SIGKILL'));
    var tKill = Date.now();
    await cluster.waitExit('master', 5000);
    await harness.waitFor(function () {
      return [1, 2].every(function (w) { return readJsonLines(files[w]).some(function (r) { return r.ev === 'done'; }); });
    }, 10000, 'both workers to finish watching');
    [1, 2].forEach(function (w) {
      var recs = readJsonLines(files[w]);
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
