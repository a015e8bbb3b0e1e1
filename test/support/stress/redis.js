'use strict';
// A throwaway redis-server for the RedisStore row of the stress fixture:
// 127.0.0.1 only, in a temporary directory, no persistence. start() resolves
// { port, stop() } or { unavailable: reason } (never rejects), so the caller
// can skip the row and say why.

var childProcess = require('child_process');
var fs = require('fs');
var net = require('net');
var os = require('os');
var path = require('path');

function findBinary() {
  var dirs = (process.env.PATH || '').split(path.delimiter).concat(['/usr/bin', '/usr/local/bin', '/usr/sbin']);
  for (var i = 0; i < dirs.length; i++) {
    var p = path.join(dirs[i], 'redis-server');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch (e) { /* not here */ }
  }
  return null;
}

function ping(port, timeoutMs) {
  return new Promise(function (resolve) {
    var done = false;
    var sock = net.connect(port, '127.0.0.1');
    var timer = setTimeout(function () { finish(false); }, timeoutMs);
    function finish(ok) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    }
    sock.on('connect', function () { sock.write('PING\r\n'); });
    sock.on('data', function (d) { finish(/PONG/.test(String(d))); });
    sock.on('error', function () { finish(false); });
  });
}

function start(port) {
  var bin = findBinary();
  if (!bin) {
    return Promise.resolve({
      unavailable: 'redis-server is not installed (not on PATH); install it (e.g. apt-get install -y redis-server) to get the RedisStore row'
    });
  }
  return ping(port, 300).then(function (busy) {
    if (busy) {
      return { unavailable: 'something already answers on 127.0.0.1:' + port + '; not starting a redis-server there' };
    }
    var dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stress-redis-'));
    var child = childProcess.spawn(bin, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning'
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    var output = '';
    child.stdout.on('data', function (d) { output = (output + d).slice(-2000); });
    child.stderr.on('data', function (d) { output = (output + d).slice(-2000); });
    var exited = null;
    child.on('exit', function (code, signal) { exited = signal || code; });
    child.on('error', function (err) { exited = err.message; });
    function stop() {
      return new Promise(function (resolve) {
        if (exited !== null) return cleanup(resolve);
        var t = setTimeout(function () { try { child.kill('SIGKILL'); } catch (e) { /* gone */ } }, 2000);
        child.once('exit', function () { clearTimeout(t); cleanup(resolve); });
        try { child.kill('SIGTERM'); } catch (e) { clearTimeout(t); cleanup(resolve); }
      });
    }
    function cleanup(resolve) {
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch (e) { /* best effort */ }
      resolve();
    }
    var deadline = Date.now() + 5000;
    return (function wait() {
      return ping(port, 300).then(function (ok) {
        if (ok) return { port: port, pid: child.pid, stop: stop };
        if (exited !== null || Date.now() > deadline) {
          return stop().then(function () {
            return { unavailable: 'redis-server did not start on 127.0.0.1:' + port + ' (' +
              (exited !== null ? 'exited ' + exited : 'no answer in 5 s') + '): ' + output.trim().slice(-300) };
          });
        }
        return new Promise(function (r) { setTimeout(r, 100); }).then(wait);
      });
    })();
  });
}

module.exports = { start: start, findBinary: findBinary };
