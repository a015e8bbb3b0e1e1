'use strict';
// Micro benchmark of the value codec (lib/codec.js): encode and decode of
// the shapes the store carries, ns per value, for this checkout and, side by
// side in the same run, another one (the stores' codec at --baseline DIR).
// Rounds alternate between the two so a busy machine slows both alike; the
// figure is each side's median round.
//
//   node bench/codec.js [--baseline DIR] [--rounds N] [--ms MS]
//   node bench/codec.js --loop N [--baseline DIR]
//
// --loop N only encodes and decodes every shape N times with one codec
// (the baseline's when given), for an instruction count that a busy machine
// does not disturb: run it under `valgrind --tool=callgrind` for two values
// of N; the difference of the counts over the difference of the N is the
// cost of one pass over the shapes.

var path = require('path');

function arg(name, dflt) {
  var i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

var ROUNDS = +arg('--rounds', 7);
var MS = +arg('--ms', 300);
var sides = [{ name: 'this', codec: require('../lib/codec.js') }];
if (arg('--baseline')) {
  sides.push({ name: 'baseline', codec: require(path.resolve(arg('--baseline'), 'lib', 'codec.js')) });
}

// What socket.io 0.9 publishes (a dispatch packet: the publish args) and
// what applications put in it and in client data.
function fetchSocketsAnswer(n) {
  var sockets = [];
  for (var i = 0; i < n; i++) {
    var id = 'Xk3' + i + 'aQ9vLmT2pRw8ZbN_' + i;
    var query = Object.create(null); // as node's querystring makes it
    query.EIO = '4';
    query.transport = 'websocket';
    sockets.push({ id: id, handshake: {
      headers: { 'sec-websocket-version': '13', 'sec-websocket-key': 'q7Lw2nVx9tYb3KcR8mZp' + i + 'A==',
        connection: 'Upgrade', upgrade: 'websocket',
        'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits', host: '127.0.0.1:41823' },
      time: 'Wed Dec 02 2026 21:04:11 GMT+0000 (Coordinated Universal Time)', address: '127.0.0.1',
      xdomain: false, secure: false, issued: 1764709451000 + i, url: '/socket.io/?EIO=4&transport=websocket',
      query: query, auth: {} }, rooms: [id], data: {} });
  }
  return sockets;
}

var SHAPES = {
  'dispatch packet': ['', { type: 'event', name: 'chat', args: [{ user: 'u1', text: 'hello world' }],
    endpoint: '' }, false, []],
  'nested event args': ['/chat', { type: 'event', name: 'item:updated', endpoint: '/chat',
    args: [{ title: 'A title of some length', id: 123456, tags: ['news', 'sport', 'local'],
      author: { id: 'u-42', name: 'Ada', roles: ['editor'] }, score: 4.5, draft: false }] },
  false, ['room-7']],
  // The 'app' publish workload's packet with a Buffer (1 in 8 of them).
  'packet with a 256-byte Buffer': ['/room-7', { type: 'event', name: 'file', args: [{ name: 'avatar.png',
    size: 256, data: Buffer.alloc(256, 7) }], endpoint: '' }, false, ['sid-21']],
  'client data value': { nickname: 'user-381', room: 'lobby', joined: 1733140000000,
    prefs: { theme: 'dark', sound: true }, seen: [3, 17, 42] },
  // What a server answers a fetchSockets() for 10 of its sockets (the
  // socket.io 4 adapter; handshakes as a node socket.io-client's over
  // websocket make them).
  'fetchSockets answer, 10 sockets': { requestId: '3f9c2a7d81e04b56', sockets: fetchSocketsAnswer(10) },
  'short string': 'hello world',
  'array of numbers': [1, 2, 3, 400, 50000, 6.5, -7, 8, 9, 10]
};

if (arg('--loop')) {
  var loopCodec = sides[sides.length - 1].codec;
  var values = Object.keys(SHAPES).map(function (k) { return SHAPES[k]; });
  var encoded = values.map(function (v) { return Buffer.from(loopCodec.encode(v, 'a value')); });
  var total = 0;
  for (var n = +arg('--loop'); n > 0; n--) {
    for (var k = 0; k < values.length; k++) {
      total += loopCodec.encode(values[k], 'a value').length;
      if (loopCodec.decode(encoded[k]) !== null) total++;
    }
  }
  if (total < 0) console.log(total);
  process.exit(0);
}

function measure(codec, value) {
  var bytes = Buffer.from(codec.encode(value, 'a value'));
  var n = 0;
  var t0 = process.hrtime.bigint();
  var end = t0 + BigInt(MS) * 500000n;
  var sink = 0;
  while (process.hrtime.bigint() < end) {
    for (var i = 0; i < 200; i++) sink += codec.encode(value, 'a value').length;
    n += 200;
  }
  var enc = Number(process.hrtime.bigint() - t0) / n;
  n = 0;
  t0 = process.hrtime.bigint();
  end = t0 + BigInt(MS) * 500000n;
  while (process.hrtime.bigint() < end) {
    for (var j = 0; j < 200; j++) if (codec.decode(bytes) !== null) sink++;
    n += 200;
  }
  var dec = Number(process.hrtime.bigint() - t0) / n;
  if (sink < 0) console.log(sink);
  return { enc: enc, dec: dec, size: bytes.length };
}

var results = {};
Object.keys(SHAPES).forEach(function (shape) {
  results[shape] = {};
  sides.forEach(function (s) { results[shape][s.name] = { enc: [], dec: [] }; });
  for (var r = 0; r < ROUNDS; r++) {
    sides.forEach(function (s, k) {
      var side = sides[(k + r) % sides.length];
      var m = measure(side.codec, SHAPES[shape]);
      results[shape][side.name].enc.push(m.enc);
      results[shape][side.name].dec.push(m.dec);
      results[shape][side.name].size = m.size;
    });
  }
});

function median(xs) {
  var s = xs.slice().sort(function (a, b) { return a - b; });
  return s[s.length >> 1];
}

var head = '| value | bytes | ' + sides.map(function (s) { return s.name + ' encode ns | ' + s.name + ' decode ns'; }).join(' | ') +
  (sides.length > 1 ? ' | encode ÷ baseline | decode ÷ baseline' : '') + ' |';
console.log(head);
console.log(head.replace(/[^|]+/g, ' --- '));
Object.keys(results).forEach(function (shape) {
  var r = results[shape];
  var cells = [shape, r.this.size];
  sides.forEach(function (s) { cells.push(median(r[s.name].enc).toFixed(0), median(r[s.name].dec).toFixed(0)); });
  if (sides.length > 1) {
    cells.push((median(r.this.enc) / median(r.baseline.enc)).toFixed(2) + '×',
      (median(r.this.dec) / median(r.baseline.dec)).toFixed(2) + '×');
  }
  console.log('| ' + cells.join(' | ') + ' |');
});
