'use strict';
// The clustered chat on socket.io 4: the primary forks one worker per slot
// (4 by default) and calls setupPrimary(); every worker runs socket.io 4 on
// the same port with createAdapter(). Nothing is sticky: node's plain
// round robin spreads connections over the workers, and each request of a
// session (a poll, a POST, the websocket upgrade) is handed to the worker
// that owns the session, which createAdapter() enables by itself. Clients
// use socket.io's default transports: polling, then websocket.
//
// connectionStateRecovery is on: a client that loses its connection, also
// because its worker was killed, comes back on any worker with its session
// (id, rooms, nick) and the messages it missed. Kill the pid a page shows
// (kill -9 PID) to see it; the primary forks a new worker in its place.
// The primary greets the room every 30 s through createEmitter(), which
// @socket.io/cluster-adapter cannot do (those greetings are not kept for
// recovery).
//
//   npm run start:v4          # http://127.0.0.1:8080
//   PORT=9000 WORKERS=2 npm run start:v4

var cluster = require('cluster');
var adapter = require('../../adapter');
var demo = require('../shared/demo');

if (cluster.isPrimary) {
  // The broker runs here. Node's default scheduling (round robin) is kept;
  // the README recommends cluster.SCHED_NONE for production.
  adapter.setupPrimary();
  demo.forkWorkers('chat (socket.io 4)');
  var emitter = adapter.createEmitter();
  setInterval(function () {
    emitter.to('chat').emit('said', { nick: 'primary', text: 'still here', worker: 'primary' });
  }, 30000).unref();
  return;
}

var Server = require('socket.io-v4').Server;
var server = demo.pageServer(__dirname);
var io = new Server(server, {
  adapter: adapter.createAdapter(), // also hands each request to its session's worker
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 }
});
var worker = cluster.worker.id;

io.on('connection', function (socket) {
  // A recovered socket comes here too, with its rooms and socket.data back
  // and its missed messages already sent; the client learns from
  // socket.recovered on its side. The welcome is also the client's first
  // kept packet: a client that received none cannot be recovered.
  socket.emit('welcome', { worker: worker, pid: process.pid });
  socket.on('nick', function (nick, ack) {
    nick = String(nick).slice(0, 32) || 'anonymous';
    // Set before the join: joining saves the session (socket.data included)
    // in the broker, where it outlives this worker.
    socket.data.nick = nick;
    socket.join('chat');
    io.to('chat').emit('joined', { nick: nick, worker: worker });
    io.fetchSockets().then(function (sockets) {
      if (typeof ack === 'function') ack({ ok: true, worker: worker, online: sockets.length });
    }, function (err) {
      if (typeof ack === 'function') ack({ ok: true, worker: worker, error: err.message });
    });
  });
  socket.on('say', function (text, ack) {
    if (!socket.data.nick) return typeof ack === 'function' && ack({ error: 'pick a nick first' });
    io.to('chat').emit('said', { nick: socket.data.nick, text: String(text).slice(0, 500), worker: worker });
    if (typeof ack === 'function') ack({ ok: true });
  });
});

server.listen(demo.settings.port, demo.settings.host);
