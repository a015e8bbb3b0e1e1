'use strict';
// "Machines" for the uplink's tests: each a cluster master of its own
// (test/support/harness.js) whose broker joins the others through one
// redis-server (test/support/redis-server.js).
//
//   var m = await machines.start(redis, { prefix, sio, workers, url, setup });
//   m.cluster, m.name, m.close()
//   await machines.waitUp([m, ...])        every uplink up
//   await machines.barrier([m, ...], name) each machine has read everything
//                                          Redis had pushed to it before
//   await machines.stats(m)                the master's stats()
//   var proxy = await machines.roundRobinProxy([port, ...]) a TCP proxy that
//                     sends each new connection to the next port in turn
//   var slow = await machines.delayProxy(port, { upMs, downMs }) a TCP proxy
//                     that holds what goes to port (up) or comes back (down)
//                     that long, in order: a Redis far away. slow.hold()
//                     keeps every byte both ways until slow.release();
//                     slow.cut() ends the connections it has (and goes on
//                     taking new ones); slow.accepted() counts connections

var http = require('http');
var net = require('net');
var harness = require('./harness');

var count = 0;

async function start(redis, options) {
  options = options || {};
  var setup = Object.assign({ redis: options.url || redis.url(), redisPrefix: options.prefix || 'test' },
    options.setup || {});
  var cluster = await harness.start({ workers: options.workers || 2, sio: !!options.sio, setup: setup });
  var name = 'machine-' + (++count);
  return { cluster: cluster, name: name, close: function () { return cluster.close(); } };
}

function stats(m) {
  return m.cluster.run('master', function (ctx) { return ctx.require(ctx.ROOT).stats(); });
}

async function waitUp(list, ms) {
  var deadline = Date.now() + (ms || 20000);
  for (;;) {
    var all = await Promise.all(list.map(stats));
    if (all.every(function (s) { return s.uplinkState === 2; })) return all;
    if (Date.now() > deadline) {
      throw new Error('uplinks not up: ' + JSON.stringify(all.map(function (s) {
        return { state: s.uplinkState, error: s.uplinkError };
      })));
    }
    await new Promise(function (r) { setTimeout(r, 50); });
  }
}

// A barrier in one worker of each machine: its broker then has read every
// message Redis had pushed to it (so it knows every other machine's
// interest told before). storeName: a ctx property holding the store to
// use (ctx.ioStore), or none for a store of its own.
async function barrier(list, storeName) {
  await Promise.all(list.map(function (m) {
    return m.cluster.run(m.cluster.workerIds[0], function (ctx, storeName) {
      var store = storeName ? ctx[storeName] : ctx.store('barrier');
      // One round trip first: the channel is open, so the barrier runs.
      return ctx.call(store, 'stats').then(function () {
        if (!store._connection.catchUp(store._endpoint)) throw new Error('the barrier did not run');
        return true;
      });
    }, storeName || null);
  }));
}

// Joins two sockets both ways. Either side's end is passed on as an end
// (FIN), never as a reset: whatever still comes from the other side is
// read and dropped, so nothing unread is left to make the kernel reset the
// connection. (socket.io 0.9 leaves a closed transport's socket without an
// 'error' listener: a reset on it would end the worker. Real load balancers
// do not reset every connection they close either.)
function join(a, b, sockets) {
  sockets.add(a);
  sockets.add(b);
  function forward(from, to) {
    from.on('data', function (chunk) {
      if (!to.destroyed && !to.writableEnded) to.write(chunk);
    });
    from.on('end', function () { if (!to.writableEnded) to.end(); });
    from.on('close', function () {
      sockets.delete(from);
      if (!to.writableEnded) to.end();
      to.resume();
    });
    from.on('error', function () { /* 'close' follows */ });
  }
  forward(a, b);
  forward(b, a);
}

function endAll(sockets) {
  sockets.forEach(function (s) {
    if (!s.writableEnded) s.end();
    s.resume();
  });
}

function roundRobinProxy(ports) {
  var next = 0;
  var counts = ports.map(function () { return 0; });
  var sockets = new Set();
  var server = net.createServer(function (client) {
    var i = next;
    next = (next + 1) % ports.length;
    counts[i]++;
    join(client, net.connect(ports[i], '127.0.0.1'), sockets);
  });
  return new Promise(function (resolve) {
    server.listen(0, '127.0.0.1', function () {
      resolve({
        port: server.address().port,
        counts: function () { return counts.slice(); },
        close: function () {
          server.close();
          endAll(sockets);
        }
      });
    });
  });
}

// GET path on port, on a connection of its own: { status, body }; an
// error when no answer comes in timeoutMs (10 s), a hang guard.
function httpGet(port, path, timeoutMs) {
  return new Promise(function (resolve, reject) {
    var req = http.get({ host: '127.0.0.1', port: port, path: path, agent: false }, function (res) {
      var body = '';
      res.setEncoding('utf8');
      res.on('data', function (d) { body += d; });
      res.on('end', function () { resolve({ status: res.statusCode, body: body }); });
    });
    req.setTimeout(timeoutMs || 10000, function () { req.destroy(new Error('no answer to GET ' + path)); });
    req.on('error', reject);
  });
}

function delayProxy(port, delays) {
  var sockets = new Set();
  var accepted = 0;
  var held = null; // while held: what to pass on at release, in order
  function later(fn, ms) {
    if (held) held.push(fn);
    else setTimeout(fn, ms);
  }
  function forward(from, to, ms) {
    from.on('data', function (chunk) {
      later(function () { if (!to.destroyed && !to.writableEnded) to.write(chunk); }, ms);
    });
    from.on('end', function () { later(function () { if (!to.writableEnded) to.end(); }, ms); });
    from.on('close', function () {
      sockets.delete(from);
      if (!to.writableEnded) to.end();
      to.resume();
    });
    from.on('error', function () { /* 'close' follows */ });
  }
  var server = net.createServer(function (client) {
    var upstream = net.connect(port, '127.0.0.1');
    accepted++;
    sockets.add(client);
    sockets.add(upstream);
    forward(client, upstream, delays.upMs || 0);
    forward(upstream, client, delays.downMs || 0);
  });
  return new Promise(function (resolve) {
    server.listen(0, '127.0.0.1', function () {
      resolve({
        port: server.address().port,
        url: function () { return 'redis://127.0.0.1:' + server.address().port + '/0'; },
        hold: function () { held = held || []; },
        release: function () {
          var fns = held || [];
          held = null;
          fns.forEach(function (fn) { fn(); });
        },
        cut: function () { endAll(sockets); },
        accepted: function () { return accepted; },
        close: function () {
          server.close();
          endAll(sockets);
        }
      });
    });
  });
}

module.exports = { start: start, stats: stats, waitUp: waitUp, barrier: barrier,
  roundRobinProxy: roundRobinProxy, delayProxy: delayProxy, httpGet: httpGet };
