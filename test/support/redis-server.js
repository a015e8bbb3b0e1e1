'use strict';
// A real redis-server for the tests that join machines through Redis: on
// 127.0.0.1, on a free port, in a temporary directory, no persistence.
//
//   var redis = await redisServer.start({ password: 'pw' }); // null: none installed
//   redis.port, redis.pid, redis.url(password)
//   await redis.kill();      // SIGKILL, waits for the exit
//   await redis.restart();   // the same port and options again
//   redis.pause(); redis.resume();   // SIGSTOP / SIGCONT
//   await redis.command(['INFO', 'stats'])  // one command, its reply as text
//   await redis.stop();
//
// BINARY is where the tests look for it; available() says whether it is
// there (CI installs it: .ci/run).

var childProcess = require('child_process');
var fs = require('fs');
var net = require('net');
var os = require('os');
var path = require('path');

var BINARY = '/usr/bin/redis-server';

function available() {
  try {
    fs.accessSync(BINARY, fs.constants.X_OK);
    return true;
  } catch (e) {
    return false;
  }
}

function freePort() {
  return new Promise(function (resolve, reject) {
    var server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', function () {
      var port = server.address().port;
      server.close(function () { resolve(port); });
    });
  });
}

// One command in RESP, its raw reply as text (enough for PING, INFO, AUTH).
function command(port, args, password) {
  return new Promise(function (resolve, reject) {
    var sock = net.connect(port, '127.0.0.1');
    var out = '';
    var timer = setTimeout(function () { sock.destroy(); reject(new Error('redis: no answer to ' + args[0])); }, 3000);
    function encode(list) {
      return '*' + list.length + '\r\n' + list.map(function (a) {
        a = String(a);
        return '$' + Buffer.byteLength(a) + '\r\n' + a + '\r\n';
      }).join('');
    }
    sock.on('connect', function () {
      sock.write((password ? encode(['AUTH', password]) : '') + encode(args));
    });
    sock.on('data', function (d) {
      out += d;
      var reply = out;
      if (password) {
        var end = reply.indexOf('\r\n');
        if (end < 0) return;
        reply = reply.slice(end + 2); // AUTH's answer
      }
      // A bulk reply is whole once its length is there; others end at CRLF.
      var m = /^\$(\d+)\r\n/.exec(reply);
      var whole = m ? Buffer.byteLength(reply) >= m[0].length + Number(m[1]) + 2 : /\r\n$/.test(reply);
      if (!whole) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(reply);
    });
    sock.on('error', function (err) { clearTimeout(timer); reject(err); });
  });
}

function Server(options, port) {
  this.options = options;
  this.port = port;
  this.child = null;
  this.pid = null;
  this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-redis-'));
  this.exited = null;
}

Server.prototype.url = function (password) {
  var pw = password === undefined ? this.options.password : password;
  return 'redis://' + (pw ? ':' + encodeURIComponent(pw) + '@' : '') + '127.0.0.1:' + this.port + '/0';
};

Server.prototype.launch = function () {
  var self = this;
  var args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
    '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'];
  if (this.options.password) args.push('--requirepass', this.options.password);
  var child = childProcess.spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  this.child = child;
  this.pid = child.pid;
  this.exited = null;
  var output = '';
  child.stderr.on('data', function (d) { output = (output + d).slice(-2000); });
  var exit = new Promise(function (resolve) {
    child.on('exit', function (code, signal) { self.exited = signal || code; resolve(); });
    child.on('error', function (err) { self.exited = err.message; resolve(); });
  });
  this.exitPromise = exit;
  var deadline = Date.now() + 10000;
  return (function wait() {
    return command(self.port, ['PING'], self.options.password).then(function (reply) {
      if (/PONG/.test(reply)) return self;
      throw new Error(reply);
    }).catch(function (err) {
      if (self.exited !== null) throw new Error('redis-server exited (' + self.exited + '): ' + output);
      if (Date.now() > deadline) throw new Error('redis-server did not answer within 10 s: ' + err.message);
      return new Promise(function (r) { setTimeout(r, 50); }).then(wait);
    });
  })();
};

Server.prototype.command = function (args) {
  return command(this.port, args, this.options.password);
};

Server.prototype.kill = function () {
  if (this.exited !== null) return Promise.resolve();
  try { process.kill(this.pid, 'SIGCONT'); } catch (e) { /* gone */ }
  this.child.kill('SIGKILL');
  return this.exitPromise;
};

Server.prototype.restart = function () {
  var self = this;
  return this.kill().then(function () { return self.launch(); });
};

Server.prototype.pause = function () { process.kill(this.pid, 'SIGSTOP'); };
Server.prototype.resume = function () { process.kill(this.pid, 'SIGCONT'); };

Server.prototype.stop = function () {
  var self = this;
  return this.kill().then(function () {
    try { fs.rmSync(self.dir, { recursive: true, force: true }); } catch (e) { /* best effort */ }
  });
};

var started = new Set();
process.on('exit', function () {
  started.forEach(function (s) {
    try { process.kill(s.pid, 'SIGKILL'); } catch (e) { /* gone */ }
  });
});

// A running server, or null when redis-server is not installed.
function start(options) {
  if (!available()) return Promise.resolve(null);
  return freePort().then(function (port) {
    var server = new Server(options || {}, port);
    started.add(server);
    return server.launch();
  });
}

module.exports = { BINARY: BINARY, available: available, freePort: freePort, start: start };
