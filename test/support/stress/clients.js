'use strict';
// The stress fixture's client process (a child of run() in index.js): opens N
// socket.io 0.9 clients at once with one forced transport and runs the
// phases the runner asks for, counting what arrives. websocket and
// xhr-polling use socket.io-client 0.9.16; jsonp-polling uses
// ./jsonp-client.js (socket.io-client cannot do it under node).

var rpc = require('./rpc');
var JsonpClient = require('./jsonp-client');

var ioc = null;
var clients = []; // { i, sock, state, error, transport, bcast, roomGot, room, ack, joined, ... }

function now() { return Date.now(); }

// socket.io-client 0.9.16 cannot be forced onto one transport with the
// `transports` option: its util.merge() merges arrays element by element
// into the shared default list (io.transports, which under node is
// ['websocket', 'xhr-polling', 'websocket', 'xhr-polling']), so
// { transports: ['xhr-polling'] } leaves websocket in the list and the
// client still connects over websocket (and the shared list is changed for
// every later socket). The list every socket starts from is that shared
// array, so it is set, in place, to the one transport wanted; each client
// then checks which transport it really got.
function forceTransport(transport) {
  var list = ioc.transports;
  if (list.length === 1 && list[0] === transport) return;
  list.length = 0;
  list.push(transport);
}

// One interface over both kinds of client.
function open(url, transport, connectTimeout) {
  if (transport === 'jsonp-polling') {
    var j = new JsonpClient(url, { connectTimeout: connectTimeout });
    return {
      on: function (ev, fn) { j.on(ev, fn); },
      send: function () { j.send.apply(j, arguments); },
      close: function () { j.disconnect(); },
      sid: function () { return j.sessionid; },
      transport: function () { return 'jsonp-polling'; },
      hard: function () { j.closed = true; if (j.getReq) j.getReq.destroy(); }
    };
  }
  if (!ioc) ioc = require('socket.io-client');
  forceTransport(transport);
  var s = ioc.connect(url, {
    'force new connection': true,
    'try multiple transports': false,
    reconnect: false,
    'connect timeout': connectTimeout
  });
  return {
    on: function (ev, fn) { s.on(ev, fn); },
    send: function () { s.emit.apply(s, arguments); },
    close: function () { s.disconnect(); },
    sid: function () { return s.socket.sessionid; },
    transport: function () { return s.socket.transport && s.socket.transport.name; },
    hard: function () {
      try {
        s.socket.reconnect = function () {};
        if (s.socket.transport) s.socket.transport.close();
      } catch (e) { /* already gone */ }
    }
  };
}

// Resolves when check() is true for every item, or at the deadline.
function until(check, deadline) {
  return new Promise(function (resolve) {
    (function tick() {
      if (check() || now() >= deadline) return resolve();
      setTimeout(tick, 20);
    })();
  });
}

function connected() {
  return clients.filter(function (c) { return c.state === 'connected'; });
}

function inc(map, key) { map[key] = (map[key] || 0) + 1; }

var handlers = {
  connect: function (a) {
    var t0 = now();
    var deadline = t0 + a.timeout;
    clients = [];
    // All of them in the same tick: the handshakes hit the workers at once.
    for (var i = 0; i < a.n; i++) {
      (function (c) {
        c.sock = open(a.url, a.transport, a.timeout + 1000);
        c.sock.on('connect', function () {
          if (c.state === 'pending') {
            c.state = 'connected';
            c.connectMs = now() - t0;
            c.transport = c.sock.transport();
          }
        });
        c.sock.on('error', function (reason) {
          var msg = typeof reason === 'string' ? reason : (reason && reason.message) || String(reason);
          if (c.state === 'pending') { c.state = 'error'; c.error = msg || 'error'; }
          else c.laterErrors.push(msg);
        });
        c.sock.on('connect_failed', function () {
          if (c.state === 'pending') { c.state = 'error'; c.error = 'connect_failed'; }
        });
        c.sock.on('disconnect', function (reason) {
          if (c.state === 'connected' && !c.closing) c.dropped = reason || 'disconnect';
        });
        c.sock.on('bcast', function (msg) {
          if (msg) inc(c.bcast, msg.tag + '@' + msg.from);
        });
        c.sock.on('room', function (msg) {
          if (!msg) return;
          if (msg.room !== c.room) c.wrongRoom++;
          else inc(c.roomGot, msg.tag + '@' + msg.from);
        });
        clients.push(c);
      })({
        i: i, state: 'pending', error: null, laterErrors: [], dropped: null, closing: false,
        bcast: {}, roomGot: {}, wrongRoom: 0, room: null, connectMs: null
      });
    }
    return until(function () {
      return clients.every(function (c) { return c.state !== 'pending'; });
    }, deadline).then(function () {
      var errors = {};
      var timedOut = 0;
      var otherTransport = {};
      var ms = [];
      clients.forEach(function (c) {
        if (c.state === 'error') inc(errors, c.error);
        else if (c.state === 'pending') {
          timedOut++;
          c.state = 'timeout';
          c.sock.hard();
        } else {
          ms.push(c.connectMs);
          if (c.transport !== a.transport) inc(otherTransport, String(c.transport));
        }
      });
      ms.sort(function (x, y) { return x - y; });
      return {
        clients: clients.length,
        connected: ms.length,
        errors: errors,
        timedOut: timedOut,
        otherTransport: otherTransport,
        ms: now() - t0,
        connectP50: ms.length ? ms[Math.floor(ms.length / 2)] : null,
        connectMax: ms.length ? ms[ms.length - 1] : null
      };
    });
  },

  // Every connected client emits 'ping' {i} with an ack; the worker answers
  // { i, worker }.
  ack: function (a) {
    var list = connected();
    var deadline = now() + a.timeout;
    var ok = 0;
    var wrong = 0;
    var answered = 0;
    var byWorker = {};
    list.forEach(function (c) {
      c.ack = null;
      c.sock.send('ping', { i: c.i }, function (res) {
        if (c.ack) return;
        c.ack = res || {};
        answered++;
        if (res && res.i === c.i) { ok++; inc(byWorker, res.worker); } else wrong++;
      });
    });
    return until(function () { return answered >= list.length; }, deadline).then(function () {
      var missingIds = list.filter(function (c) { return !c.ack; }).map(function (c) { return c.i; });
      return {
        asked: list.length, ok: ok, wrong: wrong, missing: list.length - answered, byWorker: byWorker,
        missingIds: missingIds
      };
    });
  },

  // Client i joins room-(i % rooms) and waits for the join's ack.
  join: function (a) {
    var list = connected();
    var deadline = now() + a.timeout;
    var acked = 0;
    list.forEach(function (c) {
      c.room = 'room-' + (c.i % a.rooms);
      c.joined = false;
      c.sock.send('join', c.room, function () {
        if (!c.joined) { c.joined = true; acked++; }
      });
    });
    return until(function () { return acked >= list.length; }, deadline).then(function () {
      return { asked: list.length, acked: acked, missing: list.length - acked };
    });
  },

  // Waits until every connected client has each expected broadcast (and,
  // for its room, each expected room broadcast), or the deadline.
  expect: function (a) {
    var list = connected();
    var deadline = now() + a.timeout;
    function complete(c) {
      var i;
      for (i = 0; i < a.bcast.length; i++) if (!c.bcast[a.bcast[i]]) return false;
      for (i = 0; i < a.room.length; i++) if (!c.roomGot[a.room[i]]) return false;
      return true;
    }
    return until(function () { return list.every(complete); }, deadline).then(function () {
      var r = {
        clients: list.length, bcastExpected: a.bcast.length, roomExpected: a.room.length,
        bcastAll: 0, bcastMissing: 0, bcastDup: 0, roomAll: 0, roomMissing: 0, roomDup: 0,
        wrongRoom: 0, dropped: 0, droppedReasons: {}
      };
      list.forEach(function (c) {
        var missB = 0;
        var missR = 0;
        a.bcast.forEach(function (k) {
          if (!c.bcast[k]) missB++;
          else if (c.bcast[k] > 1) r.bcastDup += c.bcast[k] - 1;
        });
        a.room.forEach(function (k) {
          if (!c.roomGot[k]) missR++;
          else if (c.roomGot[k] > 1) r.roomDup += c.roomGot[k] - 1;
        });
        if (!missB) r.bcastAll++;
        r.bcastMissing += missB;
        if (!missR) r.roomAll++;
        r.roomMissing += missR;
        r.wrongRoom += c.wrongRoom;
        if (c.dropped) { r.dropped++; inc(r.droppedReasons, c.dropped); }
      });
      return r;
    });
  },

  sessions: function () {
    return connected().map(function (c) { return { i: c.i, sid: c.sock.sid(), room: c.room }; });
  },

  disconnect: function () {
    var n = 0;
    clients.forEach(function (c) {
      if (c.state === 'connected') {
        c.closing = true;
        n++;
        try { c.sock.close(); } catch (e) { /* already closed */ }
      } else {
        try { c.sock.hard(); } catch (e) { /* already closed */ }
      }
    });
    return { disconnected: n };
  },

  exit: function () {
    setTimeout(function () { process.exit(0); }, 20);
    return true;
  }
};

rpc.serve(process, handlers);
process.on('disconnect', function () { process.exit(0); });
rpc.notify(process, 'ready', { pid: process.pid });
