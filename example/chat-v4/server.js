'use strict';
// The clustered chat on socket.io 4: the primary forks one worker per slot
// (4 by default) and calls setupPrimary(); every worker runs socket.io 4 on
// the same port with createAdapter(). Clients use websocket only, so each
// connection stays on the worker that accepted it (socket.io 4's polling
// needs sticky sessions in a cluster). The primary greets the room every
// 30 s through createEmitter(), which @socket.io/cluster-adapter cannot do.
//
//   npm run start:v4          # http://127.0.0.1:8080
//   PORT=9000 WORKERS=2 npm run start:v4

var cluster = require('cluster');
var fs = require('fs');
var http = require('http');
var path = require('path');
var adapter = require('../../adapter');

var port = Number(process.env.PORT || 8080);
var host = process.env.HOST || '127.0.0.1';
var workers = Number(process.env.WORKERS || 4);

if (cluster.isPrimary) {
  adapter.setupPrimary();
  var ready = 0;
  for (var i = 0; i < workers; i++) cluster.fork();
  cluster.on('listening', function () {
    if (++ready === workers) {
      console.log('chat (socket.io 4): http://' + host + ':' + port + '/  (' + workers +
        ' workers, pid ' + process.pid + ')');
      if (process.send) process.send({ ready: true, url: 'http://' + host + ':' + port + '/' });
    }
  });
  cluster.on('exit', function (worker, code, signal) {
    if (!worker.exitedAfterDisconnect) console.log('worker %d died (%s)', worker.id, signal || code);
  });
  var emitter = adapter.createEmitter();
  setInterval(function () {
    emitter.to('chat').emit('said', { nick: 'primary', text: 'still here', worker: 'primary' });
  }, 30000).unref();
  process.on('SIGTERM', function () { cluster.disconnect(function () { process.exit(0); }); });
  return;
}

var Server = require('socket.io-v4').Server;
var page = fs.readFileSync(path.join(__dirname, 'index.html'));
var server = http.createServer(function (req, res) {
  if (req.url === '/' || req.url === '/index.html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page);
    return;
  }
  res.writeHead(404);
  res.end();
});

var io = new Server(server, { adapter: adapter.createAdapter(), transports: ['websocket'] });
var worker = cluster.worker.id;

io.on('connection', function (socket) {
  socket.emit('welcome', { worker: worker });
  socket.on('nick', function (nick, ack) {
    nick = String(nick).slice(0, 32) || 'anonymous';
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

server.listen(port, host);
