'use strict';
// A clustered chat: the master forks one worker per slot (4 by default),
// every worker runs socket.io 0.9 on the same port with ClusterStore, and
// node's round-robin scheduling spreads connections (and, for polling
// clients, each request) over the workers. No sticky sessions.
//
//   npm start                 # http://127.0.0.1:8080
//   PORT=9000 WORKERS=2 npm start

var cluster = require('cluster');
var io = require('socket.io');
var ClusterStore = require('../..')(io);
var demo = require('../shared/demo');

if (cluster.isMaster) {
  // Requiring socket.io-cluster-store above already started the broker
  // here; setup() only makes that visible.
  require('../..').setup();
  demo.forkWorkers('chat');
  return;
}

var server = demo.pageServer(__dirname);
var sio = io.listen(server, { store: new ClusterStore(), log: false });
var worker = cluster.worker.id;

sio.sockets.on('connection', function (socket) {
  socket.emit('welcome', { worker: worker, pid: process.pid });
  socket.on('nick', function (nick, ack) {
    nick = String(nick).slice(0, 32) || 'anonymous';
    // Per-client data lives in the master's broker: any worker can read it.
    socket.set('nick', nick, function (err) {
      if (err) return ack && ack({ error: err.message });
      socket.join('chat');
      sio.sockets.in('chat').emit('joined', { nick: nick, worker: worker });
      if (ack) ack({ ok: true, worker: worker });
    });
  });
  socket.on('say', function (text, ack) {
    socket.get('nick', function (err, nick) {
      if (err || !nick) return ack && ack({ error: err ? err.message : 'pick a nick first' });
      sio.sockets.in('chat').emit('said', {
        nick: nick,
        text: String(text).slice(0, 500),
        worker: worker
      });
      if (ack) ack({ ok: true });
    });
  });
});

server.listen(demo.settings.port, demo.settings.host);
