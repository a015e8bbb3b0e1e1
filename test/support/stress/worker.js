'use strict';
// One cluster worker of the stress fixture: socket.io 0.9 on the shared port
// with the chosen store. It records, per session id, which worker served
// each HTTP request (and says so in an X-Stress-Worker response header),
// which worker answered the handshake, and where 'connection' fired; the
// master collects that through the commands below.

var cluster = require('cluster');
var http = require('http');
var io = require('socket.io');
var rpc = require('./rpc');
var stores = require('./stores');

var cfg = JSON.parse(process.env.STRESS_CONFIG || '{}');
var wid = cluster.worker.id;

var served = Object.create(null); // sid -> { workerId: requests }
var handshakes = Object.create(null); // sid -> worker that answered the handshake
var connections = Object.create(null); // sid -> 'connection' events fired here
var storeErrors = Object.create(null); // message -> count
var pings = Object.create(null); // client index -> 'ping' events its handler ran for here
var orphanPings = Object.create(null); // client index -> 'ping' events for a socket without handlers here

// /socket.io/1/<transport>/<sid>  (handshake: /socket.io/1/)
var URL_RE = /^\/socket\.io\/1\/(?:([^\/?]+)\/([^\/?]+))?\/?(?:\?|$)/;

function record(url) {
  var m = URL_RE.exec(url);
  if (!m || !m[2]) return m ? 'handshake' : null;
  var byWorker = served[m[2]] || (served[m[2]] = Object.create(null));
  byWorker[wid] = (byWorker[wid] || 0) + 1;
  return 'client';
}

var server = http.createServer();
var manager = io.listen(server, {
  log: false,
  transports: ['websocket', 'xhr-polling', 'jsonp-polling'],
  'polling duration': cfg.pollingDuration || 20,
  'browser client': false
});

var store = stores.workerStore(cfg, io);
if (store) {
  if (typeof store.on === 'function') {
    store.on('error', function (err) {
      var key = String(err && err.message || err);
      storeErrors[key] = (storeErrors[key] || 0) + 1;
    });
  }
  manager.set('store', store);
}

// Ahead of socket.io's own listeners (it moves the others behind its own).
server.prependListener('request', function (req, res) {
  var kind = record(req.url);
  res.setHeader('X-Stress-Worker', String(wid));
  if (kind === 'handshake') {
    // The session id is the first field of the handshake body
    // ("sid:hb:close:transports", or wrapped in io.j[n]("...") for JSONP).
    var end = res.end;
    res.end = function (chunk) {
      if (chunk) {
        var m = /^(?:io\.j\[\d+\]\(")?([^:"]+):/.exec(String(chunk));
        if (m) handshakes[m[1]] = wid;
      }
      return end.apply(this, arguments);
    };
  }
});
server.prependListener('upgrade', function (req) { record(req.url); });

// Events socket.io hands to a Socket on which 'connection' never fired here
// have no listener: the application never sees them.
var handlePacket = manager.sockets.handlePacket;
manager.sockets.handlePacket = function (sessid, packet) {
  if (packet && packet.type === 'event' && packet.name === 'ping' && !connections[sessid]) {
    var a = packet.args && packet.args[0];
    if (a && typeof a.i === 'number') orphanPings[a.i] = (orphanPings[a.i] || 0) + 1;
  }
  return handlePacket.apply(this, arguments);
};

manager.sockets.on('connection', function (socket) {
  connections[socket.id] = (connections[socket.id] || 0) + 1;
  socket.on('ping', function (data, ack) {
    if (data && typeof data.i === 'number') pings[data.i] = (pings[data.i] || 0) + 1;
    if (typeof ack === 'function') ack({ i: data && data.i, worker: wid });
  });
  socket.on('join', function (room, ack) {
    socket.join(room);
    if (typeof ack === 'function') ack({ room: room, worker: wid });
  });
});

function roomCounts(rooms) {
  var out = {};
  rooms.forEach(function (room) {
    // The check the issue names: io.sockets.clients(room) on this worker.
    out[room] = manager.sockets.clients(room).length;
  });
  return out;
}

rpc.serve(process, {
  broadcast: function (a) {
    manager.sockets.emit('bcast', { tag: a.tag, from: wid });
    return { worker: wid };
  },
  room: function (a) {
    manager.sockets.in(a.room).emit('room', { room: a.room, tag: a.tag, from: wid });
    return { worker: wid };
  },
  inspect: function (a) {
    return {
      worker: wid,
      pid: process.pid,
      rooms: roomCounts(a.rooms || []),
      clients: manager.sockets.clients().length,
      connected: Object.keys(manager.connected).length,
      handshaken: Object.keys(manager.handshaken).length,
      storeErrors: storeErrors
    };
  },
  records: function () {
    return {
      worker: wid, served: served, handshakes: handshakes, connections: connections,
      pings: pings, orphanPings: orphanPings
    };
  },
  reset: function () {
    served = Object.create(null);
    handshakes = Object.create(null);
    connections = Object.create(null);
    storeErrors = Object.create(null);
    pings = Object.create(null);
    orphanPings = Object.create(null);
    return true;
  }
});

server.on('error', function (err) {
  console.error('[stress worker %d] server error: %s', wid, err.message);
  process.exit(1);
});

server.listen(cfg.port, cfg.host || '127.0.0.1', function () {
  rpc.notify(process, 'listening', { worker: wid, pid: process.pid });
});
