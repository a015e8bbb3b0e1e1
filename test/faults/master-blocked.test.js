'use strict';
// The master's JavaScript blocked for 2 s (a busy loop,
// started over IPC). The broker runs on a thread of its own, so during the
// block publishes and get/set between workers must keep flowing. Workers
// timestamp every delivery and reply; the test counts those that fall
// inside the block window (the master reports when it started and ended).
// Then the master not answering attaches: a worker that starts while its
// loop is busy past attachTimeout, and a master that never loaded the
// module, where the worker keeps asking, failing every call at once, with
// one 'error' per store and nothing left behind per attempt.

var assert = require('assert');
var harness = require('../support/harness');

var BLOCK_MS = 2000;
var MARGIN_MS = 200; // only what is well inside the window counts

describe('faults: the master\'s event loop blocked for 2 s', function () {
  var c;

  before(async function () {
    c = await harness.start({ runTimeout: 30000, workers: 3 });
  });

  after(async function () {
    if (c) await c.close();
  });

  it('does not stop publishes, get and set between workers', async function () {
    var ids = c.workerIds;
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

// A worker that starts while the master's loop is busy
// longer than attachTimeout. Its first attach times out; it must keep
// asking (with backoff), fail calls at once meanwhile, attach by itself
// once the master answers ('reconnect'), and close the master's late
// answers to the attempts it gave up on: each holds a channel the broker
// counts as a worker (and a region of its pool) until it is closed.
describe('faults: a worker starting while the master\'s loop is busy past attachTimeout', function () {
  var ATTACH_TIMEOUT = 1000;
  var c;

  before(async function () {
    c = await harness.start({ runTimeout: 30000, workers: 1 });
  });

  after(async function () {
    if (c) await c.close();
  });

  // Polls fn (async) until what it returns has ok set.
  async function eventually(fn, what) {
    var deadline = Date.now() + 20000;
    var last;
    for (;;) {
      last = await fn();
      if (last && last.ok) return last;
      if (Date.now() > deadline) throw new Error('timed out waiting for ' + what + '; last: ' + JSON.stringify(last));
      await harness.sleep(50);
    }
  }

  it('fails calls at once meanwhile, then attaches by itself, with no ghost channel', async function () {
    var first = c.workerIds[0];
    // A worker attached the usual way: what one channel costs in descriptors.
    var usual = await c.run(first, async function (ctx) {
      var fs = ctx.require('fs');
      var before = fs.readdirSync('/proc/self/fd').length;
      var r = await ctx.call(ctx.store(), 'stats');
      if (r.err) throw r.err;
      return { before: before, after: fs.readdirSync('/proc/self/fd').length };
    });
    await c.waitStats(function (s) { return s.workers === 1; }, 10000, 'one worker attached');

    // The master forks a worker, then keeps its loop busy until that worker
    // has failed its first attach, and for two attachTimeouts more (so the
    // worker gives up on more than one attempt).
    var fork = await c.run('master', function (ctx, arg) {
      var fs = ctx.require('fs');
      var path = ctx.require('path');
      var fdsBefore = fs.readdirSync('/proc/self/fd').length;
      var w = ctx.cluster.fork({ CS_PROBE_AT_START: JSON.stringify({ attachTimeout: arg.attachTimeout }) });
      var file = path.join(process.env.CS_NOTES_DIR, 'p' + w.process.pid + '.jsonl');
      var nap = new Int32Array(new SharedArrayBuffer(4));
      var failed = null;
      var giveUp = Date.now() + 30000;
      while (!failed && Date.now() < giveUp) {
        Atomics.wait(nap, 0, 0, 10);
        var text = '';
        try { text = fs.readFileSync(file, 'utf8'); } catch (e) { continue; }
        // Only whole lines: the worker may be writing the last one.
        text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).forEach(function (l) {
          var note = JSON.parse(l);
          if (note.attachFailed) failed = note.attachFailed;
        });
      }
      if (failed) Atomics.wait(nap, 0, 0, 2 * arg.attachTimeout);
      return { id: w.id, pid: w.process.pid, fdsBefore: fdsBefore, failed: failed };
    }, { attachTimeout: ATTACH_TIMEOUT });
    c.workers.set(fork.id, fork.pid);
    harness.track(fork.pid);
    assert.ok(fork.failed, 'the new worker\'s first attach failed while the master was busy');

    // Now the master is free: the worker must attach by itself.
    var probe = await eventually(function () {
      return c.run(fork.id, function (ctx) {
        var p = ctx.state.probe;
        var ok = p.reconnects > 0 && p.calls.some(function (x) { return x[0] && x[1] === null; });
        return { ok: ok, reconnects: p.reconnects, errors: p.errors.slice(0, 3), calls: p.calls.length };
      });
    }, 'the worker to attach after the master answered');

    // Its subscription, made while the master was busy, is live again.
    await eventually(function () {
      return c.run(first, function (ctx) {
        ctx.store().publish('news', 'after the block');
        return true;
      }).then(function () {
        return c.run(fork.id, function (ctx) { return { ok: ctx.state.probe.news.length > 0, news: ctx.state.probe.news }; });
      });
    }, 'a publish to reach the worker\'s subscription');

    // No ghost: the broker counts the two workers, nothing for the
    // attempts the worker gave up on.
    await c.waitStats(function (s) { return s.workers === 2; }, 10000,
      'the broker to count exactly the 2 live workers (a late answer left open is one more)');

    var p = await c.run(fork.id, function (ctx) {
      var probe = ctx.state.probe;
      clearInterval(probe.timer);
      return { answers: probe.answers, errors: probe.errors, reconnects: probe.reconnects, calls: probe.calls,
        fdsBefore: probe.fdsBefore, fdsAfter: ctx.require('fs').readdirSync('/proc/self/fd').length };
    });

    var duringRetry = p.calls.filter(function (x) { return x[0] && x[1] !== null; });
    var succeeded = p.calls.filter(function (x) { return x[1] === null; });
    this.test.title += ' (' + p.answers + ' answers from the master, ' + duringRetry.length +
      ' calls failed while retrying, ' + succeeded.length + ' succeeded)';

    // The clear error, and 'error' emitted.
    assert.ok(p.errors.length >= 1, 'the store emitted \'error\'');
    p.errors.forEach(function (m) {
      assert.ok(/Require socket.io-cluster-store in the master process/.test(m), 'the error says what to do: ' + m);
    });
    // While retrying, every call failed with it, at once (before the next
    // setImmediate), rather than waiting out an attempt.
    assert.ok(duringRetry.length >= 1, 'calls were made while the worker retried');
    duringRetry.forEach(function (x) {
      assert.strictEqual(x[1], 'ERR_CLUSTER_STORE_CLOSED', x[2]);
      assert.ok(/Require socket.io-cluster-store in the master process/.test(x[2]), x[2]);
      assert.strictEqual(x[3], true, 'a call made while retrying failed at once');
    });
    // Once attached, calls succeed and keep succeeding.
    var firstSuccess = p.calls.findIndex(function (x) { return x[1] === null; });
    assert.deepStrictEqual(p.calls.slice(firstSuccess).filter(function (x) { return x[1] !== null; }), [],
      'no call failed after the worker attached');
    assert.strictEqual(p.reconnects, 1, '\'reconnect\' was emitted once');
    // The master answered the attempts given up on as well: those channels
    // were closed (the broker's count above), and the worker holds the
    // descriptors of one channel, as a worker attached at once does.
    assert.ok(p.answers >= 2, 'the worker received late answers (' + p.answers + ' answers)');
    assert.strictEqual(p.fdsAfter - p.fdsBefore, usual.after - usual.before,
      'descriptors one channel costs: ' + JSON.stringify({ usual: usual, probe: [p.fdsBefore, p.fdsAfter] }));

    // The master holds no descriptor for it once it is gone.
    c.kill(fork.id, 'SIGKILL');
    await c.waitExit(fork.id);
    await c.waitStats(function (s) { return s.workers === 1; }, 10000, 'the broker to drop the killed worker');
    await eventually(function () {
      return c.run('master', function (ctx, before) {
        var now = ctx.require('fs').readdirSync('/proc/self/fd').length;
        return { ok: now === before, before: before, now: now };
      }, fork.fdsBefore);
    }, 'the master\'s descriptors to be back to what they were before the fork');
  });
});

describe('faults: a master that never loaded the module', function () {
  var cluster;

  before(async function () {
    cluster = await harness.start({ workers: 2, load: false });
  });

  after(async function () {
    if (cluster) await cluster.close();
  });

  // A worker retries a failed attach (the master may only have been
  // busy). Here nobody ever answers: it must keep failing
  // the same clear way, every call at once, one 'error' per store for the
  // outage rather than one per attempt, and attempts that leave nothing
  // behind.
  it('keeps asking, failing every call at once, one \'error\' per store, nothing left per attempt', async function () {
    this.timeout(40000);
    await cluster.run('master', function (ctx) {
      var seen = ctx.state.attempts = [];
      ctx.cluster.workers[2].process.on('internalMessage', function (m) {
        if (m && m.cmd === 'NODE_SOCKET_IO_CLUSTER_STORE_ATTACH') seen.push(m.nonce);
      });
      return true;
    });
    var before = await cluster.run(2, function (ctx) {
      var s = ctx.state;
      s.calls = [];
      s.before = {
        fds: ctx.require('fs').readdirSync('/proc/self/fd').length,
        disconnect: process.listenerCount('disconnect'),
        internalMessage: process.listenerCount('internalMessage')
      };
      var client = ctx.newStore({ attachTimeout: 200 }).client('orphan-2');
      // [made while the failure stands (the connection's own state, set
      // before 'error' is emitted and kept while it retries)?, error
      // message, failed before the next setImmediate?]
      var connection = client.store._connection;
      s.timer = setInterval(function () {
        var call = [ctx.errors.length > 0 && !!connection.failure, null, false];
        var answered = false;
        client.get('k', function (err) {
          answered = true;
          call[1] = err ? err.message : null;
          s.calls.push(call);
        });
        setImmediate(function () { call[2] = answered; });
      }, 20);
      return s.before;
    });
    async function attemptsReach(n) {
      var deadline = Date.now() + 30000;
      for (;;) {
        var seen = await cluster.run('master', function (ctx) { return ctx.state.attempts; });
        if (seen.length >= n) return seen;
        assert.ok(Date.now() < deadline, 'the worker asked the master ' + seen.length + ' time(s), then no more');
        await harness.sleep(100);
      }
    }
    // Five attempts: the first and four retries (100, 200, 400, 800 ms apart).
    var attempts = await attemptsReach(5);
    // A store made meanwhile hears of the failure too, once.
    await cluster.run(2, function (ctx) { ctx.newStore(); return true; });
    attempts = await attemptsReach(attempts.length + 2);
    var r = await cluster.run(2, function (ctx) {
      clearInterval(ctx.state.timer);
      return {
        calls: ctx.state.calls,
        errors: ctx.errors.map(function (e) { return e.message; }),
        fds: ctx.require('fs').readdirSync('/proc/self/fd').length,
        disconnect: process.listenerCount('disconnect'),
        internalMessage: process.listenerCount('internalMessage')
      };
    });
    assert.strictEqual(new Set(attempts).size, attempts.length, 'every attempt has a nonce of its own');
    r.calls.forEach(function (x) {
      assert.ok(x[1] && /require/i.test(x[1]) && /master/i.test(x[1]), 'a call failed clearly: ' + x[1]);
    });
    var whileRetrying = r.calls.filter(function (x) { return x[0]; });
    assert.ok(whileRetrying.length > 0, 'calls were made while the worker retried');
    whileRetrying.forEach(function (x) { assert.strictEqual(x[2], true, 'a call made while retrying failed at once'); });
    assert.strictEqual(r.errors.length, 2, 'one \'error\' per store for ' + attempts.length + ' attempts: ' +
      JSON.stringify(r.errors));
    // Nothing left per attempt: no descriptor (at most the channel of the
    // attempt in flight), no listener (at most the engine's own).
    assert.ok(r.fds <= before.fds + 1, 'descriptors: ' + before.fds + ' before, ' + r.fds + ' after');
    assert.ok(r.disconnect <= before.disconnect + 1,
      '\'disconnect\' listeners: ' + before.disconnect + ' before, ' + r.disconnect + ' after');
    assert.ok(r.internalMessage <= before.internalMessage + 1,
      '\'internalMessage\' listeners: ' + before.internalMessage + ' before, ' + r.internalMessage + ' after');
    assert.strictEqual(await cluster.run(2, function (ctx) { return ctx.workerId; }), 2);
    assert.deepStrictEqual(cluster.exits, []);
  });
});

// The whole master stopped (SIGSTOP: a debugger, a VM
// pause, a long collection) while readers were congested. The broker's
// stall detector must not count the time it was away itself against the
// readers: after SIGCONT nobody is cut off, and nothing is lost. With the
// stall measured in wall time, a 2.5 s stop cut a reading worker off and
// it lost ~120,000 of 250,000 messages.
describe('faults: the master stopped for 3 s (SIGSTOP) while readers are congested', function () {
  var STOP_MS = 3000;
  var TOTAL = 100000;
  var c;

  before(async function () {
    c = await harness.start({ workers: 3 });
  });

  after(async function () {
    if (c) await c.close();
  });

  it('cuts no one off and loses nothing', async function () {
    var ids = c.workerIds;
    var writer = ids[0];
    var readers = ids.slice(1);

    // Readers slower than the writer, so that their queues stay congested.
    await c.runAll(readers, function (ctx) {
      var s = ctx.store();
      var st = ctx.state;
      st.count = 0;
      st.next = 0;
      st.bad = [];
      st.errors = [];
      s.on('error', function (err) { st.errors.push(err.message); });
      return new Promise(function (resolve, reject) {
        s.subscribe('tick', function (seq, body) {
          if ((seq !== st.next || body.length !== 1024) && st.bad.length < 10) st.bad.push({ expected: st.next, got: seq });
          st.next = seq + 1;
          st.count++;
          var x = 0;
          for (var k = 0; k < 3000; k++) x += k;
          st.spin = x;
        }, function (err) { return err ? reject(err) : resolve(true); });
      });
    });
    await c.run(writer, function (ctx, total) {
      var s = ctx.store();
      var body = 'w'.repeat(1024);
      var sent = 0;
      ctx.state.errors = [];
      s.on('error', function (err) { ctx.state.errors.push(err.message); });
      (function pump() {
        for (var i = 0; i < 1000 && sent < total; i++) s.publish('tick', sent++, body);
        ctx.state.sent = sent;
        if (sent < total) setImmediate(pump);
      })();
      return true;
    }, TOTAL);

    // Stopped while a reader is congested (its queue over the 2 MiB high
    // water mark).
    await c.waitStats(function (s) { return s.queuedBytes > (2 << 20); }, 30000, 'a congested reader');
    c.kill('master', 'SIGSTOP');
    await harness.sleep(STOP_MS);
    c.kill('master', 'SIGCONT');

    var got = await c.runAll(readers, function (ctx, total) {
      return ctx.until(function () { return ctx.state.count >= total || ctx.state.errors.length > 0; }, 60000,
        function () { return total + ' messages (have ' + ctx.state.count + ')'; })
        .then(function () { return ctx.state; });
    }, TOTAL);
    var w = await c.run(writer, function (ctx) { return ctx.state; });
    var stats = await c.stats();
    this.test.title += ' (readers got ' + got.map(function (r) { return r.count; }).join(' and ') + ' of ' + TOTAL + ')';

    assert.deepStrictEqual(got.map(function (r) { return r.errors; }), [[], []], 'no reader heard of a cut');
    assert.strictEqual(stats.workersCutOff, 0, 'nobody was cut off');
    assert.deepStrictEqual([w.errors, w.sent], [[], TOTAL]);
    got.forEach(function (r) {
      assert.deepStrictEqual(r.bad, [], 'every message, in order');
      assert.strictEqual(r.count, TOTAL);
    });
  });
});
