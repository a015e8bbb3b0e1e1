'use strict';
// Hostile input. What one client (or one bad value) sends must
// cost that client or that message, never a worker. 4 real cluster
// workers serving real socket.io 0.9.19, maxFrameSize 1 MiB; raw HTTP
// polling requests, so the test says which worker gets what.

var assert = require('assert');
var http = require('http');
var harness = require('./support/harness');

var WORKERS = 4;
var MAX_FRAME = 1024 * 1024;
var DEPTH = 2500;

// A plain HTTP request on its own connection (cluster's round robin hands
// each to the next worker): { status, body, worker }.
function request(port, method, path, body) {
  return new Promise(function (resolve, reject) {
    var req = http.request({ host: '127.0.0.1', port: port, method: method, path: path, agent: false,
      headers: body === undefined ? {} : { 'content-type': 'text/plain; charset=UTF-8',
        'content-length': Buffer.byteLength(body) } }, function (res) {
      var text = '';
      res.setEncoding('utf8');
      res.on('data', function (d) { text += d; });
      res.on('end', function () {
        resolve({ status: res.statusCode, body: text, worker: Number(res.headers['x-worker']) });
      });
    });
    req.setTimeout(30000, function () { req.destroy(new Error(method + ' ' + path + ': no answer in 30 s')); });
    req.on('error', reject);
    req.end(body);
  });
}

function deepJson(depth) {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

describe('hostile input: ' + WORKERS + ' workers, socket.io 0.9.19, maxFrameSize 1 MiB', function () {
  var c;
  var t = 0;

  before(async function () {
    this.timeout(60000);
    c = await harness.start({ workers: WORKERS, sio: true, setup: { maxFrameSize: MAX_FRAME } });
    // Every answer says which worker gave it.
    await c.runAll(c.workerIds, function (ctx) {
      ctx.io.server.prependListener('request', function (req, res) {
        res.setHeader('x-worker', String(ctx.workerId));
      });
      ctx.state.deep = [];
      return Promise.all([1, 2].map(function (n) { return ctx.subscribe('api' + n, 'deep'); }));
    });
  });

  after(async function () {
    if (c) await c.close();
  });

  function url(transport, sid, extra) {
    return '/socket.io/1/' + transport + '/' + sid + '?t=' + Date.now() + '-' + (++t) + (extra || '');
  }

  // Every worker is still there and answers, and none has died.
  async function allAlive(label) {
    var exits = c.exits.slice();
    assert.deepStrictEqual(exits, [], label + ': workers exited' + c.output());
    var pids = await c.runAll(c.workerIds, function () { return process.pid; });
    assert.deepStrictEqual(pids.sort(), c.workerPids().sort(), label);
  }

  // A handshaken client whose first poll connected it: { sid, home }.
  async function connectPolling(transport) {
    var hs = await request(c.port, 'GET', '/socket.io/1/?t=' + Date.now() + '-' + (++t));
    assert.strictEqual(hs.status, 200, hs.body);
    var sid = hs.body.split(':')[0];
    var first = await request(c.port, 'GET', url(transport, sid, transport === 'jsonp-polling' ? '&i=0' : ''));
    assert.strictEqual(first.body, transport === 'jsonp-polling' ? 'io.j[0]("1::");' : '1::');
    return { sid: sid, home: first.worker };
  }

  // POSTs body for the client to a worker that is not its home (tries the
  // next connections until one lands elsewhere): the response.
  async function postAway(client, transport, body) {
    for (var i = 0; i < 3 * WORKERS; i++) {
      var res = await request(c.port, 'POST', url(transport, client.sid), body);
      if (res.worker !== client.home) return res;
    }
    throw new Error('no POST reached a worker other than ' + client.home);
  }

  // The client is gone from every worker (disconnected, not just left
  // waiting), and a poll for it is refused as not handshaken.
  async function refused(sid, label) {
    var left = await c.runAll(c.workerIds, function (ctx, id) {
      return ctx.until(function () {
        return !ctx.io.connected[id] && !ctx.io.handshaken[id] && !ctx.io.open[id];
      }, 10000, 'client ' + id + ' disconnected here').then(function () { return true; });
    }, sid);
    assert.deepStrictEqual(left, new Array(WORKERS).fill(true), label);
    var poll = await request(c.port, 'GET', url('xhr-polling', sid));
    assert.strictEqual(poll.body, '7:::1+0', label + ': a later poll is refused as not handshaken');
  }

  async function storeErrors() {
    var all = await c.runAll(c.workerIds, function (ctx) { return ctx.errors.splice(0); });
    return [].concat.apply([], all);
  }

  describe('through the store API', function () {
    it('refuses to publish a 2,500-deep object, sending nothing; the subscribers live', async function () {
      var r = await c.run(1, function (ctx, depth) {
        var deep = 1;
        for (var i = 0; i < depth; i++) deep = { a: deep };
        var out = {};
        try {
          ctx.store('api1').publish('deep', 'hello', deep);
          out.publish = null;
        } catch (err) {
          out.publish = ctx.errorInfo(err);
        }
        ctx.store('api1').publish('deep', 'marker');
        return ctx.call(ctx.store('api1').client('deep-client'), 'set', 'k', deep).then(function (x) {
          out.set = ctx.errorInfo(x[0]);
          return out;
        });
      }, DEPTH);
      ['publish', 'set'].forEach(function (k) {
        assert.ok(r[k], k + ' was refused');
        assert.strictEqual(r[k].code, 'ERR_CLUSTER_STORE_VALUE', r[k].message);
        assert.ok(r[k].isTypeError);
        assert.match(r[k].message, /nested more than 1000 levels deep/);
      });
      assert.match(r.publish.message, /the arguments published on "deep"/);
      assert.match(r.set.message, /the value of "k"/);
      for (var w = 2; w <= WORKERS; w++) {
        var got = await c.run(w, function (ctx) {
          var list = ctx.got('api1', 'deep');
          return ctx.until(function () { return list.length >= 1; }, 10000, 'the marker').then(function () {
            return list.splice(0);
          });
        });
        assert.deepStrictEqual(got, [['marker']], 'worker ' + w + ': only the marker arrived');
      }
      var has = await c.run(2, function (ctx) {
        return ctx.call(ctx.store('api1').client('deep-client'), 'has', 'k');
      });
      assert.deepStrictEqual(has, [null, false], 'nothing was stored');
      await allAlive('after the deep publish');
      assert.deepStrictEqual(await storeErrors(), []);
    });

    // What an older writer (or any process that skips the depth check)
    // sends: the receivers must drop that message only, and say so.
    it('drops a message or value no receiver can decode, with an error event and a counter', async function () {
      await c.run(1, function (ctx, depth) {
        var v8 = ctx.require('v8');
        var deep = 1;
        for (var i = 0; i < depth; i++) deep = { a: deep };
        var bytes = v8.serialize([deep]);
        var payload = Buffer.concat([Buffer.from([2]), bytes]);
        var s = ctx.store('api1');
        var TYPE = ctx.require(ctx.path.join(ctx.ROOT, 'lib', 'protocol')).TYPE;
        s._connection.send({ type: TYPE.PUBLISH, endpoint: s._endpoint, topic: 'deep', payload: payload,
          now: true });
        s._connection.send({ type: TYPE.KV_SET, endpoint: s._endpoint, client: 'undecodable', key: 'k',
          payload: payload, now: true });
        s.publish('deep', 'after');
      }, DEPTH);
      for (var w = 2; w <= WORKERS; w++) {
        var r = await c.run(w, function (ctx) {
          var list = ctx.got('api1', 'deep');
          var s = ctx.store('api1');
          return ctx.until(function () { return list.length >= 1; }, 10000, 'the message after').then(function () {
            return ctx.call(s.client('undecodable'), 'get', 'k');
          }).then(function (got) {
            return ctx.call(s, 'stats').then(function (st) {
              return { list: list.splice(0), get: ctx.errorInfo(got[0]), stats: st[1], errors: ctx.errors.splice(0) };
            });
          });
        });
        assert.deepStrictEqual(r.list, [['after']], 'worker ' + w + ': the next message arrived');
        // One 'error' on each of the worker's two subscribed stores.
        assert.strictEqual(r.errors.length, 2, 'worker ' + w + ': ' + JSON.stringify(r.errors));
        r.errors.forEach(function (e) {
          assert.strictEqual(e.code, 'ERR_CLUSTER_STORE_DECODE');
          assert.match(e.message, /a message on "deep" could not be decoded in this process and was dropped/);
        });
        assert.strictEqual(r.get.code, 'ERR_CLUSTER_STORE_DECODE', 'get: ' + JSON.stringify(r.get));
        assert.match(r.get.message, /the value of "k" could not be decoded/);
        // The message (for each of this worker's two subscribed stores) and the get.
        assert.strictEqual(r.stats.decodeErrors, 3, 'worker ' + w + ': ' + JSON.stringify(r.stats));
        assert.strictEqual(typeof r.stats.messagesPublished, 'number');
      }
      await allAlive('after undecodable messages');
      await storeErrors(); // worker 1's other store got it too
    });
  });

  describe('through socket.io polling requests', function () {
    // The non-home worker forwarded the packet in the V8 form, and
    // every other worker died decoding it.
    it('refuses a client whose 15 KB xhr-polling POST nests 2,500 deep; every worker lives', async function () {
      var client = await connectPolling('xhr-polling');
      var body = '5:::{"name":"hello","args":[' + deepJson(DEPTH) + ']}';
      assert.ok(body.length < 16 * 1024, body.length + ' bytes');
      var res = await postAway(client, 'xhr-polling', body);
      assert.strictEqual(res.status, 200);
      await refused(client.sid, 'the deep POST');
      await allAlive('after the deep POST');
      var errors = await storeErrors();
      assert.ok(errors.length >= 1 && errors.every(function (e) {
        return e.code === 'ERR_CLUSTER_STORE_VALUE' && /nested more than 1000 levels deep/.test(e.message) &&
          e.message.indexOf(client.sid) >= 0;
      }), JSON.stringify(errors));
    });

    // The non-home worker threw RangeError (over maxFrameSize) out
    // of socket.io's request 'end' handler and exited.
    it('refuses a client whose 2 MiB xhr-polling POST is over maxFrameSize; every worker lives', async function () {
      var client = await connectPolling('xhr-polling');
      var body = '5:::{"name":"hello","args":["' + 'x'.repeat(2 * MAX_FRAME) + '"]}';
      var res = await postAway(client, 'xhr-polling', body);
      assert.strictEqual(res.status, 200);
      await refused(client.sid, 'the 2 MiB POST');
      await allAlive('after the 2 MiB POST');
      var errors = await storeErrors();
      assert.ok(errors.length >= 1 && errors.every(function (e) {
        return e.code === 'ERR_CLUSTER_STORE_TOO_LARGE' && e.message.indexOf(client.sid) >= 0;
      }), JSON.stringify(errors));
    });

    // socket.io answers a POST before it parses the body; a
    // jsonp-polling body that is not JSON made it write its 'parse' error
    // to that answered response: ERR_HTTP_HEADERS_SENT, the worker exited.
    it('refuses a client whose jsonp-polling POST is not JSON, without writing to the answered POST', async function () {
      var client = await connectPolling('jsonp-polling');
      var res = await request(c.port, 'POST', url('jsonp-polling', client.sid, '&i=0'), 'd=this is not JSON');
      assert.strictEqual(res.status, 200);
      assert.strictEqual(res.body, '1');
      await refused(client.sid, 'the bad jsonp body');
      await allAlive('after the bad jsonp body');
      await storeErrors();
    });

    // socket.io's onOpen sets transports[id] = null where another
    // worker opened a poll for the client, and its onDisconnect deletes
    // only truthy entries: a key per such client stayed on for good.
    it('leaves no manager.transports key behind for clients whose polls crossed workers', async function () {
      var sids = [];
      for (var i = 0; i < 6; i++) {
        var client = await connectPolling('xhr-polling');
        sids.push(client.sid);
        // A poll held open on the next worker, then a disconnect request.
        var held = request(c.port, 'GET', url('xhr-polling', client.sid));
        await c.runAll(c.workerIds, function (ctx, id) {
          return ctx.until(function () { return !!ctx.io.open[id]; }, 10000, 'the held poll of ' + id)
            .then(function () { return true; });
        }, client.sid);
        await request(c.port, 'GET', url('xhr-polling', client.sid, '&disconnect=1'));
        assert.strictEqual((await held).body, '0::', 'the held poll was answered with a disconnect');
        await refused(client.sid, 'client ' + i);
      }
      var left = await c.runAll(c.workerIds, function (ctx, ids) {
        return Object.keys(ctx.io.transports).filter(function (id) { return ids.indexOf(id) >= 0; });
      }, sids);
      assert.deepStrictEqual(left, new Array(WORKERS).fill([]), 'transports keys left by worker');
      await allAlive('after the disconnects');
    });
  });
});
