'use strict';
// A TCP forwarder for tests that must choose which worker a client reaches,
// as a load balancer would: every connection made to the proxy goes to the
// port `target` names when it is made.
//
//   var p = await proxy.start(port);   // p.port: where clients connect
//   p.target = otherPort;              // later connections go there
//   p.cut();                           // closes every open connection
//   p.hold(true);                      // new connections wait...
//   p.hold(false);                     // ...until released (to the target then)
//   await p.close();

var net = require('net');

function start(target) {
  var sockets = new Set();
  var held = [];
  var holding = false;
  var state = { target: target };

  function forward(client) {
    var upstream = net.connect(state.target, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    function drop() {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    }
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  var server = net.createServer(function (client) {
    client.on('error', function () {});
    if (holding) held.push(client);
    else forward(client);
  });

  return new Promise(function (resolve, reject) {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', function () {
      resolve({
        port: server.address().port,
        get target() { return state.target; },
        set target(port) { state.target = port; },
        cut: function () {
          sockets.forEach(function (s) { s.destroy(); });
          sockets.clear();
        },
        hold: function (on) {
          holding = on;
          if (on) return;
          var waiting = held;
          held = [];
          waiting.forEach(function (c) { if (!c.destroyed) forward(c); });
        },
        close: function () {
          holding = false;
          held.forEach(function (c) { c.destroy(); });
          held = [];
          sockets.forEach(function (s) { s.destroy(); });
          return new Promise(function (done) { server.close(function () { done(); }); });
        }
      });
    });
  });
}

module.exports = { start: start };
