'use strict';
// Values cross the channel as V8 serializer bytes: every JSON value comes
// back as it went, and so do undefined, NaN, Infinity, -0, Dates, RegExps,
// Maps, Sets, BigInts, typed arrays, Buffers (as Uint8Array) and cyclic
// structures. What cannot be cloned (functions, symbols, class instances with
// native internals) is refused with a TypeError instead of silently changed.
var v8 = require('v8');

function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  return 'a value';
}

function encode(value, what) {
  try {
    return v8.serialize(value);
  } catch (err) {
    var e = new TypeError('socket.io-cluster-store: cannot store ' + what + ': ' +
      (err && err.message ? err.message : String(err)) + ' (' + describe(value) +
      ' given; values must be data: JSON values, Dates, Maps, Sets, typed arrays, BigInts, ' +
      'without functions or symbols)');
    e.code = 'ERR_CLUSTER_STORE_VALUE';
    throw e;
  }
}

function decode(bytes) {
  return v8.deserialize(bytes);
}

exports.encode = encode;
exports.decode = decode;
