'use strict';
// What the two chat demos share on the server: their settings (PORT, HOST,
// WORKERS), the primary's forking and reporting, and the HTTP server for
// the page and the files both pages load. What differs (socket.io 0.9 with
// ClusterStore, socket.io 4 with the adapter) stays in each server.js.

var cluster = require('cluster');
var fs = require('fs');
var http = require('http');
var path = require('path');

var settings = {
  port: Number(process.env.PORT || 8080), // 0: a free port, the same for every worker
  host: process.env.HOST || '127.0.0.1',
  workers: Number(process.env.WORKERS || 4)
};

// In the primary: forks settings.workers workers; once they all listen,
// prints the URL and sends { ready, url } to a parent process that forked
// the demo (the browser tests do). A worker that dies after it listened is
// replaced; SIGTERM closes the cluster.
function forkWorkers(name) {
  var ready = 0;
  var listened = new Set();
  for (var i = 0; i < settings.workers; i++) cluster.fork();
  cluster.on('listening', function (worker, address) {
    listened.add(worker.id);
    if (++ready !== settings.workers) return;
    var url = 'http://' + settings.host + ':' + address.port + '/';
    console.log(name + ': ' + url + '  (' + settings.workers + ' workers, pid ' + process.pid + ')');
    if (process.send) process.send({ ready: true, url: url });
  });
  cluster.on('exit', function (worker, code, signal) {
    if (worker.exitedAfterDisconnect) return;
    // One that never listened would most likely die again: not replaced.
    var replace = listened.delete(worker.id);
    console.log('worker %d died (%s)%s', worker.id, signal || code, replace ? '; forking another' : '');
    if (replace) cluster.fork();
  });
  process.on('SIGTERM', function () { cluster.disconnect(function () { process.exit(0); }); });
}

// In a worker: an HTTP server for the demo's page (dir/index.html) and the
// shared chat.css and chat.js; socket.io attaches to it.
function pageServer(dir) {
  function file(where, type) {
    return { type: type + '; charset=utf-8', body: fs.readFileSync(where) };
  }
  var page = file(path.join(dir, 'index.html'), 'text/html');
  var files = {
    '/': page,
    '/index.html': page,
    '/chat.css': file(path.join(__dirname, 'chat.css'), 'text/css'),
    '/chat.js': file(path.join(__dirname, 'chat.js'), 'text/javascript')
  };
  return http.createServer(function (req, res) {
    var found = files[req.url];
    if (!found) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': found.type });
    res.end(found.body);
  });
}

module.exports = { settings: settings, forkWorkers: forkWorkers, pageServer: pageServer };
