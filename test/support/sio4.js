'use strict';
// What the socket.io 4 suites share: clients, the next event, and waiting
// until every server counts the others.
//
//   var socket = await sio4.connect(url, { name, transport }, opened)
//   var args = await sio4.next(socket, 'event')
//   await sio4.waitServerCount([{ cluster, id }, ...], n)

var ioc = require('socket.io-client-v4').io;

// A socket.io-client 4 socket to url (with the namespace), named `name`
// in its handshake query, over `transport` (websocket); no reconnection.
// Pushed to opened (to close it later); resolves once connected.
function connect(url, options, opened) {
  var socket = ioc(url, {
    query: { name: options.name }, transports: [options.transport || 'websocket'],
    reconnection: false, forceNew: true
  });
  if (opened) opened.push(socket);
  return new Promise(function (resolve, reject) {
    socket.on('connect', function () { resolve(socket); });
    socket.on('connect_error', reject);
  });
}

// Resolves with the arguments of the next `event` on socket.
function next(socket, event) {
  return new Promise(function (resolve) {
    socket.once(event, function () { resolve(Array.prototype.slice.call(arguments)); });
  });
}

// Resolves once the server (ctx.state.io) of every { cluster, id } counts
// n servers in its main namespace.
function waitServerCount(servers, n) {
  return Promise.all(servers.map(function (s) {
    return s.cluster.run(s.id, function (ctx, n) {
      // Polled every few ms: each poll asks again, and sees the last answer.
      var got = null;
      return ctx.until(function () {
        ctx.state.io.of('/').adapter.serverCount().then(function (c) { got = c; });
        return got === n;
      }, 20000, n + ' servers');
    }, n);
  }));
}

module.exports = { connect: connect, next: next, waitServerCount: waitServerCount };
