'use strict';
// A process the broker cut off, but which is
// still alive, keeps what it holds in the shared pool. Its region is not
// given to another process while it can still write into it, and the slots
// of what it was handed and has not read are not reused while it can still
// read them, however long it is stuck (the grace period of the old books
// was 10 s; these tests wait past it, so that they failed before).
//
// A stuck process here waits on a flag file the test creates (Atomics.wait
// in a loop, not a busy loop), so the order of events is the test's, not
// the clock's.

var assert = require('assert');
var fs = require('fs');
var path = require('path');
var harness = require('../support/harness');

var PAST_GRACE_MS = 12000; // the old grace period (10 s), and some

// Run in a worker (as source): blocks its loop until the file exists, after
// creating `blocked` to say it is stuck.
function stuckUntilSource() {
  return 'function stuckUntil(ctx, flag, blocked) {' +
    '  var fs = ctx.require("fs");' +
    '  if (blocked) fs.writeFileSync(blocked, "");' +
    '  var word = new Int32Array(new SharedArrayBuffer(4));' +
    '  while (!fs.existsSync(flag)) Atomics.wait(word, 0, 0, 5);' +
    '}';
}

function body(tag, seq, size) {
  var unit = '<' + tag + ':' + seq + '>';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}
var BODY_SOURCE = body.toString();

describe('faults: a live process the broker cut off keeps its share of the pool', function () {
  var c;
  var dir;

  beforeEach(async function () {
    c = await harness.start({ workers: 3 });
    dir = c.notesDir;
  });

  afterEach(async function () {
    if (c) await c.close();
    c = null;
  });

  function flag(name) { return path.join(dir, name); }

  async function waitFile(name, what) {
    await harness.waitFor(function () { return fs.existsSync(flag(name)); }, 30000, what);
  }

  // Floods `topic` from worker `from` until a worker is cut off.
  async function floodUntilCut(from, topic) {
    await c.run(from, function (ctx, topic) {
      var s = ctx.store();
      var chunk = 'f'.repeat(8192);
      ctx.state.flood = setInterval(function () {
        for (var i = 0; i < 64; i++) s.publish(topic, 'flood', chunk);
      }, 2);
      return true;
    }, topic);
    await c.waitStats(function (s) { return s.workersCutOff >= 1; }, 30000, 'a stuck worker to be cut off');
    await c.run(from, function (ctx) { clearInterval(ctx.state.flood); return true; });
  }

  it('a cut-off writer that wakes never writes into another process\'s region', async function () {
    var ids = c.workerIds;
    var old = ids[0];
    var flooder = ids[1];
    var reader = ids[2];
    var COUNT = 60;
    var SIZE = 60 * 1024;

    // The old worker subscribes to the flood, the reader to what is checked.
    await c.run(old, function (ctx) {
      var s = ctx.store();
      s.on('error', function () {});
      return new Promise(function (resolve, reject) {
        s.subscribe('flood', function () {}, function (err) { return err ? reject(err) : resolve(true); });
      });
    });
    await c.run(flooder, function (ctx) {
      return ctx.call(ctx.store().client('x'), 'get', 'k').then(function () { return true; });
    });
    await c.run(reader, function (ctx, src) {
      var body = eval('(' + src + ')'); // eslint-disable-line no-eval
      var s = ctx.store();
      ctx.state.got = [];
      s.on('error', function () {});
      return new Promise(function (resolve, reject) {
        s.subscribe('check', function (seq, b) {
          ctx.state.got.push({ seq: seq, ok: b === body('b', seq, b.length), head: b.slice(0, 12) });
        }, function (err) { return err ? reject(err) : resolve(true); });
      });
    }, BODY_SOURCE);

    // The old worker gets stuck; when it wakes, before its loop turns (so
    // before it can notice the hang-up), it publishes COUNT large messages.
    await c.run(old, function (ctx, arg) {
      var stuckUntil = eval('(' + arg.stuck + ')'); // eslint-disable-line no-eval
      var body = eval('(' + arg.body + ')'); // eslint-disable-line no-eval
      var s = ctx.store();
      setTimeout(function () {
        stuckUntil(ctx, arg.flag, arg.blocked);
        ctx.state.thrown = 0;
        for (var i = 0; i < arg.count; i++) {
          try {
            s.publish('check', i, body('a', i, arg.size));
          } catch (e) {
            ctx.state.thrown++;
          }
        }
        ctx.state.woke = true;
      }, 10);
      return true;
    }, { stuck: stuckUntilSource(), body: BODY_SOURCE, flag: flag('old-go'), blocked: flag('old-stuck'),
      count: COUNT, size: SIZE });
    await waitFile('old-stuck', 'the old worker to be stuck');
    await floodUntilCut(flooder, 'flood');
    await harness.sleep(PAST_GRACE_MS);

    // A new worker (given the old one's region, before the fix) publishes
    // COUNT messages that the reader, stuck meanwhile, has not read yet.
    var fresh = (await c.fork()).id;
    await c.run(reader, function (ctx, arg) {
      var stuckUntil = eval('(' + arg.stuck + ')'); // eslint-disable-line no-eval
      setTimeout(function () { stuckUntil(ctx, arg.flag, arg.blocked); }, 10);
      return true;
    }, { stuck: stuckUntilSource(), flag: flag('reader-go'), blocked: flag('reader-stuck') });
    await waitFile('reader-stuck', 'the reader to be stuck');
    var before = await c.stats();
    await c.run(fresh, function (ctx, arg) {
      var body = eval('(' + arg.body + ')'); // eslint-disable-line no-eval
      var s = ctx.store();
      // Connected (and given a region) first; its publishes are routed
      // once the second reply comes (in order).
      return ctx.call(s.client('x'), 'get', 'k').then(function () {
        for (var i = 0; i < arg.count; i++) s.publish('check', i, body('b', i, arg.size));
        return ctx.call(s.client('x'), 'get', 'k');
      }).then(function () { return true; });
    }, { body: BODY_SOURCE, count: COUNT, size: SIZE });
    var routed = await c.stats();
    assert.strictEqual(routed.sharedDeliveries - before.sharedDeliveries, COUNT,
      'the new worker\'s messages went through the pool');

    // The old worker wakes and writes; then the reader reads.
    fs.writeFileSync(flag('old-go'), '');
    var oldState = await c.run(old, function (ctx) {
      return ctx.until(function () { return ctx.state.woke; }, 20000, 'the old worker to wake')
        .then(function () { return { thrown: ctx.state.thrown }; });
    });
    fs.writeFileSync(flag('reader-go'), '');
    var got = await c.run(reader, function (ctx, count) {
      return ctx.until(function () { return ctx.state.got.length >= count; }, 20000,
        function () { return count + ' messages (have ' + ctx.state.got.length + ')'; })
        .then(function () { return ctx.state.got; });
    }, COUNT);

    var bad = got.filter(function (g) { return !g.ok; });
    this.test.title += ' (' + bad.length + ' of ' + got.length + ' spoilt; the old worker\'s publish threw ' +
      oldState.thrown + ' times)';
    assert.deepStrictEqual(bad.slice(0, 5), [], 'the reader got the new worker\'s bytes');
    assert.deepStrictEqual(got.map(function (g) { return g.seq; }),
      Array.from({ length: COUNT }, function (_, i) { return i; }));
  });

  it('a cut-off reader stuck past the old grace period reads what it was handed', async function () {
    var ids = c.workerIds;
    var reader = ids[0];
    var publisher = ids[1];
    var BATCH = 32;
    var SIZE = 64 * 1024;

    // The reader is stuck inside its consumer of the first message.
    await c.run(reader, function (ctx, arg) {
      var stuckUntil = eval('(' + arg.stuck + ')'); // eslint-disable-line no-eval
      var body = eval('(' + arg.body + ')'); // eslint-disable-line no-eval
      var s = ctx.store();
      ctx.state.got = [];
      s.on('error', function () { ctx.state.cut = true; });
      return new Promise(function (resolve, reject) {
        s.subscribe('batch', function (seq, b) {
          ctx.state.got.push({ seq: seq, ok: b === body('p', seq, b.length), head: b.slice(0, 12) });
          if (seq === 0) stuckUntil(ctx, arg.flag, arg.blocked);
        }, function (err) { return err ? reject(err) : resolve(true); });
      });
    }, { stuck: stuckUntilSource(), body: BODY_SOURCE, flag: flag('reader-go'), blocked: flag('reader-stuck') });

    var before = await c.stats();
    await c.run(publisher, function (ctx, arg) {
      var body = eval('(' + arg.body + ')'); // eslint-disable-line no-eval
      var s = ctx.store();
      s.on('error', function () {});
      // Connected (and given a region) first.
      return ctx.call(s.client('x'), 'get', 'k').then(function () {
        for (var i = 0; i < arg.count; i++) s.publish('batch', i, body('p', i, arg.size));
        return true;
      });
    }, { body: BODY_SOURCE, count: BATCH, size: SIZE });
    await waitFile('reader-stuck', 'the reader to be stuck');
    var handed = await c.waitStats(function (s) {
      return s.sharedDeliveries - before.sharedDeliveries >= BATCH;
    }, 20000, 'the batch to go through the pool');
    assert.strictEqual(handed.sharedDeliveries - before.sharedDeliveries, BATCH);

    // More of the same until the reader is cut off, then, past the old
    // grace period, messages to nobody, of the same sizes: before the fix
    // they were written where the reader's unread batch lay (and decoded
    // there as the reader's, each whole but the wrong one).
    await floodUntilCut(publisher, 'batch');
    await harness.sleep(PAST_GRACE_MS);
    await c.run(publisher, function (ctx, arg) {
      var body = eval('(' + arg.body + ')'); // eslint-disable-line no-eval
      var s = ctx.store();
      for (var i = 0; i < arg.count; i++) s.publish('batch', i, body('q', i, arg.size));
      return ctx.call(s.client('x'), 'get', 'k').then(function () { return true; });
    }, { body: BODY_SOURCE, count: 64, size: SIZE });

    fs.writeFileSync(flag('reader-go'), '');
    var got = await c.run(reader, function (ctx) {
      // It read what its socket held, then heard of the cut.
      return ctx.until(function () { return ctx.state.cut; }, 20000, 'the reader to hear of the cut')
        .then(function () { return ctx.state.got.filter(function (g) { return typeof g.seq === 'number'; }); });
    });
    var bad = got.filter(function (g) { return !g.ok; });
    this.test.title += ' (' + bad.length + ' of ' + got.length + ' spoilt)';
    assert.deepStrictEqual(bad.slice(0, 5), [], 'every message read is the one published');
    assert.deepStrictEqual(got.map(function (g) { return g.seq; }),
      Array.from({ length: BATCH }, function (_, i) { return i; }), 'the whole batch, in order');
  });
});
