'use strict';
// A minimal socket.io 0.9 client for the jsonp-polling transport, written
// for the stress fixture because socket.io-client 0.9.16 cannot do
// jsonp-polling under node: that transport inserts <script> and <form>
// elements, its check() is `'document' in global`, and the node build does
// not even load it (under node io.transports holds only websocket and
// xhr-polling), so forcing it ends in 'connect_failed'.
//
// It speaks what a browser's jsonp-polling client sends: a JSONP handshake
// (GET /socket.io/1/?t=..&jsonp=0 -> io.j[0]("sid:hb:close:transports")),
// long-polling GETs /socket.io/1/jsonp-polling/<sid>?t=..&i=0 answered with
// io.j[0]("<payload>"), and form POSTs d=<JSON string of the payload> to the
// same URL, one at a time (packets queued meanwhile go out together, as the
// browser client's buffer does). Packets are socket.io-client's own parser.
// Only the '' namespace, as the stress fixture needs.

var http = require('http');
var EventEmitter = require('events').EventEmitter;
var parser = require('socket.io-client').parser;

var JSONP_RE = /^io\.j\[\d+\]\(([\s\S]*)\);?\s*$/;

function JsonpClient(base, options) {
  EventEmitter.call(this);
  var u = new URL(base);
  this.host = u.hostname;
  this.port = Number(u.port) || 80;
  this.resource = '/socket.io/1';
  this.index = 0;
  this.agent = (options && options.agent) || http.globalAgent;
  this.connectTimeout = (options && options.connectTimeout) || 10000;
  this.sessionid = null;
  this.connected = false;
  this.closed = false;
  this.acks = {};
  this.ackId = 0;
  this.queue = [];
  this.posting = false;
  this.getReq = null;
  this.workers = new Set(); // X-Stress-Worker of every response
  this.connectTimer = null;
  this.handshake();
}

JsonpClient.prototype = Object.create(EventEmitter.prototype);
JsonpClient.prototype.constructor = JsonpClient;

JsonpClient.prototype.request = function (method, path, body, fn) {
  var self = this;
  var headers = {};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  var req = http.request({
    host: this.host, port: this.port, method: method, path: path, headers: headers, agent: this.agent
  }, function (res) {
    var w = res.headers['x-stress-worker'];
    if (w) self.workers.add(Number(w));
    var text = '';
    res.setEncoding('utf8');
    res.on('data', function (d) { text += d; });
    res.on('end', function () { fn(null, res.statusCode, text); });
    res.on('error', function (err) { fn(err); });
  });
  req.on('error', function (err) { fn(err); });
  req.end(body);
  return req;
};

JsonpClient.prototype.fail = function (message) {
  if (this.closed) return;
  this.closed = true;
  clearTimeout(this.connectTimer);
  if (this.getReq) this.getReq.destroy();
  this.emit('error', message);
};

JsonpClient.prototype.handshake = function () {
  var self = this;
  this.connectTimer = setTimeout(function () {
    if (!self.connected) self.fail('connect timeout');
  }, this.connectTimeout);
  this.request('GET', this.resource + '/?t=' + Date.now() + '&jsonp=' + this.index, undefined,
    function (err, status, text) {
      if (self.closed) return;
      if (err) return self.fail(err.message);
      var m = JSONP_RE.exec(text);
      if (status !== 200 || !m) return self.fail('handshake failed (' + status + '): ' + text.slice(0, 80));
      var hs;
      try {
        hs = JSON.parse(m[1]);
      } catch (e) {
        // io.j[0](new Error("handshake unauthorized"))
        var em = /Error\("([^"]*)"\)/.exec(m[1]);
        return self.fail(em ? em[1] : 'bad handshake answer');
      }
      var parts = String(hs).split(':');
      if (parts[3] && parts[3].split(',').indexOf('jsonp-polling') < 0) {
        return self.fail('transport not offered by the server');
      }
      self.sessionid = parts[0];
      self.poll();
    });
};

JsonpClient.prototype.url = function () {
  return this.resource + '/jsonp-polling/' + this.sessionid + '?t=' + Date.now() + '&i=' + this.index;
};

JsonpClient.prototype.poll = function () {
  if (this.closed) return;
  var self = this;
  this.getReq = this.request('GET', this.url(), undefined, function (err, status, text) {
    self.getReq = null;
    if (self.closed) return;
    if (err) return self.lost('poll failed: ' + err.message);
    if (status !== 200) return self.lost('poll answered ' + status);
    if (text) {
      var m = JSONP_RE.exec(text);
      if (!m) return self.lost('bad poll answer: ' + text.slice(0, 80));
      var payload;
      try {
        payload = JSON.parse(m[1]);
      } catch (e) {
        return self.lost('bad poll payload');
      }
      var packets = parser.decodePayload(payload);
      for (var i = 0; i < packets.length; i++) {
        self.onPacket(packets[i]);
        if (self.closed) return;
      }
    }
    self.poll();
  });
};

JsonpClient.prototype.lost = function (reason) {
  if (!this.connected) return this.fail(reason);
  this.connected = false;
  this.closed = true;
  this.emit('disconnect', reason);
};

JsonpClient.prototype.onPacket = function (packet) {
  switch (packet.type) {
    case 'connect':
      if (!packet.endpoint && !this.connected) {
        this.connected = true;
        clearTimeout(this.connectTimer);
        this.emit('connect');
      }
      break;
    case 'heartbeat':
      this.packet({ type: 'heartbeat' });
      break;
    case 'event':
      EventEmitter.prototype.emit.apply(this, [packet.name].concat(packet.args || []));
      break;
    case 'ack': {
      var fn = this.acks[packet.ackId];
      if (fn) {
        delete this.acks[packet.ackId];
        fn.apply(null, packet.args || []);
      }
      break;
    }
    case 'error':
      // As socket.io-client: advice 'reconnect' ends the session (no
      // reconnection here), and the reason ('client not handshaken') is
      // published as 'error'.
      if (!this.connected) return this.fail(packet.reason || 'error packet');
      if (packet.advice === 'reconnect') this.lost('error: ' + (packet.reason || 'error packet'));
      this.emit('error', packet.reason || 'error packet');
      break;
    case 'disconnect':
      if (!packet.endpoint) this.lost('booted');
      break;
    default:
      break; // noop, message, json: not used by the fixture
  }
};

JsonpClient.prototype.packet = function (packet) {
  packet.endpoint = packet.endpoint || '';
  this.queue.push(parser.encodePacket(packet));
  this.flush();
};

JsonpClient.prototype.flush = function () {
  if (this.posting || !this.queue.length || !this.sessionid) return;
  var self = this;
  var data = parser.encodePayload(this.queue.splice(0));
  this.posting = true;
  this.request('POST', this.url(), 'd=' + encodeURIComponent(JSON.stringify(data)),
    function (err, status) {
      self.posting = false;
      if (err || status !== 200) {
        if (!self.closed) self.lost('post failed: ' + (err ? err.message : status));
        return;
      }
      self.flush();
    });
};

// socket.io-client's socket.emit(name, args..., ack)
JsonpClient.prototype.send = function (name) {
  var args = Array.prototype.slice.call(arguments, 1);
  var packet = { type: 'event', name: name };
  var last = args[args.length - 1];
  if (typeof last === 'function') {
    packet.id = String(++this.ackId);
    packet.ack = 'data';
    this.acks[packet.id] = args.pop();
  }
  packet.args = args;
  this.packet(packet);
};

JsonpClient.prototype.disconnect = function () {
  if (this.closed) return;
  var wasConnected = this.connected;
  if (wasConnected) this.packet({ type: 'disconnect' });
  this.closed = true;
  this.connected = false;
  clearTimeout(this.connectTimer);
  if (this.getReq) this.getReq.destroy();
  if (wasConnected) this.emit('disconnect', 'booted');
};

module.exports = JsonpClient;
