'use strict';
// placeholder
function create(receiver) {
  return {
    topic: 'socket.io-cluster-store:relay:' + receiver.tag,
    onMessage: function () {},
    onChannelError: function () {},
    serve: function () {},
    forward: function (gate) { gate.handing = false; gate.serveLocally(); }
  };
}
module.exports = { create: create };
