'use strict';
// Values cross the channel as bytes this module writes. Two forms:
//
//  - COMPACT (first byte 1): the values socket.io and applications pass
//    almost always (plain objects, arrays, strings, numbers, booleans, null,
//    undefined, Dates), written by a small tagged encoder straight into a
//    reused buffer. It keeps what JSON loses: undefined, array holes, NaN,
//    Infinity, -0, Dates, the "__proto__" key as data.
//  - V8 (first byte 2): anything else (Map, Set, RegExp, BigInt, typed
//    arrays, Buffers, class instances, cycles, very deep nesting) goes
//    through V8's structured-clone serializer, which round-trips them.
//
// What neither can hold (functions, symbols) is refused with a TypeError
// rather than silently changed.
//
// The split is for speed: V8's serializer costs a few microseconds per
// small value in allocations and wrapper objects, several times what the
// compact encoder does, and a broadcast is encoded once but decoded in every
// worker.

var v8 = require('v8');

var FORM_COMPACT = 1;
var FORM_V8 = 2;

var T_UNDEFINED = 0;
var T_NULL = 1;
var T_FALSE = 2;
var T_TRUE = 3;
var T_INT = 4;
var T_DOUBLE = 5;
var T_STRING = 6;
var T_ARRAY = 7;
var T_HOLE = 8;
var T_OBJECT = 9;
var T_DATE = 10;

var MAX_DEPTH = 64; // deeper (or cyclic) structures take the V8 form
var objectProto = Object.prototype;
var arrayProto = Array.prototype;
var dateProto = Date.prototype;

// Thrown inside the compact encoder to fall back to the V8 form.
var NOT_COMPACT = { notCompact: true };

function Encoder() {
  this.buf = Buffer.allocUnsafe(64 * 1024);
  this.pos = 0;
  this.busy = false;
}

Encoder.prototype.ensure = function (n) {
  if (this.pos + n <= this.buf.length) return;
  var size = this.buf.length * 2;
  while (size < this.pos + n) size *= 2;
  var grown = Buffer.allocUnsafe(size);
  this.buf.copy(grown, 0, 0, this.pos);
  this.buf = grown;
};

Encoder.prototype.u32 = function (v) {
  this.ensure(4);
  this.buf.writeUInt32LE(v, this.pos);
  this.pos += 4;
};

Encoder.prototype.string = function (s) {
  var len = s.length;
  this.ensure(5 + len * 3);
  var buf = this.buf;
  var start = this.pos + 4;
  var p = start;
  // ASCII is copied byte by byte (cheaper than a call into C++ for the
  // short strings that dominate); anything else is encoded by node.
  var i = 0;
  for (; i < len; i++) {
    var c = s.charCodeAt(i);
    if (c >= 0x80) break;
    buf[p++] = c;
  }
  if (i < len) p += buf.utf8Write(i === 0 ? s : s.slice(i), p);
  buf.writeUInt32LE(p - start, this.pos);
  this.pos = p;
};

Encoder.prototype.value = function (v, depth) {
  var buf;
  switch (typeof v) {
    case 'string':
      this.ensure(1);
      this.buf[this.pos++] = T_STRING;
      this.string(v);
      return;
    case 'number':
      this.ensure(9);
      buf = this.buf;
      if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
        buf[this.pos++] = T_INT;
        buf.writeInt32LE(v, this.pos);
        this.pos += 4;
      } else {
        buf[this.pos++] = T_DOUBLE;
        buf.writeDoubleLE(v, this.pos);
        this.pos += 8;
      }
      return;
    case 'boolean':
      this.ensure(1);
      this.buf[this.pos++] = v ? T_TRUE : T_FALSE;
      return;
    case 'undefined':
      this.ensure(1);
      this.buf[this.pos++] = T_UNDEFINED;
      return;
    case 'object':
      if (v === null) {
        this.ensure(1);
        this.buf[this.pos++] = T_NULL;
        return;
      }
      if (depth >= MAX_DEPTH) throw NOT_COMPACT;
      var proto = Object.getPrototypeOf(v);
      if (proto === arrayProto) {
        var n = v.length;
        this.ensure(5);
        this.buf[this.pos++] = T_ARRAY;
        this.u32(n);
        for (var i = 0; i < n; i++) {
          var item = v[i];
          if (item === undefined && !(i in v)) {
            this.ensure(1);
            this.buf[this.pos++] = T_HOLE;
          } else {
            this.value(item, depth + 1);
          }
        }
        return;
      }
      if (proto === objectProto || proto === null) {
        var keys = Object.keys(v);
        this.ensure(5);
        this.buf[this.pos++] = T_OBJECT;
        this.u32(keys.length);
        for (var k = 0; k < keys.length; k++) {
          this.string(keys[k]);
          this.value(v[keys[k]], depth + 1);
        }
        return;
      }
      if (proto === dateProto) {
        this.ensure(9);
        this.buf[this.pos++] = T_DATE;
        this.buf.writeDoubleLE(v.getTime(), this.pos);
        this.pos += 8;
        return;
      }
      throw NOT_COMPACT;
    default: // bigint, function, symbol
      throw NOT_COMPACT;
  }
};

var shared = new Encoder();

function valueError(value, what, err) {
  var e = new TypeError('socket.io-cluster-store: cannot store ' + what + ': ' +
    (err && err.message ? err.message : String(err)) + ' (values must be data: JSON values, ' +
    'Dates, Maps, Sets, typed arrays, BigInts; not functions or symbols)');
  e.code = 'ERR_CLUSTER_STORE_VALUE';
  return e;
}

// Returns the bytes for value. The result may be a view of a buffer that
// the next call reuses: the caller copies it (the engine does) before
// encoding anything else.
function encode(value, what) {
  // A getter that publishes while its object is being encoded must not
  // share the buffer in use.
  var enc = shared.busy ? new Encoder() : shared;
  enc.busy = true;
  enc.pos = 0;
  try {
    enc.ensure(1);
    enc.buf[enc.pos++] = FORM_COMPACT;
    enc.value(value, 0);
    return enc.buf.subarray(0, enc.pos);
  } catch (err) {
    if (err !== NOT_COMPACT) throw err;
  } finally {
    enc.busy = false;
  }
  var bytes;
  try {
    bytes = v8.serialize(value);
  } catch (err) {
    throw valueError(value, what, err);
  }
  var out = Buffer.allocUnsafe(bytes.length + 1);
  out[0] = FORM_V8;
  bytes.copy(out, 1);
  return out;
}

// Object keys repeat from message to message ('type', 'name', 'args'...).
// Reusing the string made last time for the same bytes saves building it
// and lets V8 find the property by an already internalized name.
var KEY_CACHE_SIZE = 4096;
var keyCacheBytes = new Array(KEY_CACHE_SIZE);
var keyCacheStrings = new Array(KEY_CACHE_SIZE);

function cachedKey(buf, start, end) {
  var h = end - start;
  for (var i = start; i < end; i++) h = (h * 31 + buf[i]) | 0;
  var slot = h & (KEY_CACHE_SIZE - 1);
  var known = keyCacheBytes[slot];
  if (known !== undefined && known.length === end - start) {
    var same = true;
    for (var j = 0; j < known.length; j++) {
      if (known[j] !== buf[start + j]) {
        same = false;
        break;
      }
    }
    if (same) return keyCacheStrings[slot];
  }
  var s = buf.utf8Slice(start, end);
  keyCacheBytes[slot] = Uint8Array.prototype.slice.call(buf, start, end);
  keyCacheStrings[slot] = s;
  return s;
}

function Decoder(buf) {
  this.buf = buf;
  this.pos = 1;
}

Decoder.prototype.string = function () {
  var buf = this.buf;
  var len = buf.readUInt32LE(this.pos);
  var start = this.pos + 4;
  var end = start + len;
  if (end > buf.length) throw new RangeError('truncated string');
  this.pos = end;
  if (len < 8) {
    var s = '';
    for (var i = start; i < end; i++) {
      var c = buf[i];
      if (c >= 0x80) return buf.utf8Slice(start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return buf.utf8Slice(start, end);
};

Decoder.prototype.value = function () {
  var buf = this.buf;
  var tag = buf[this.pos++];
  var v, n, i;
  switch (tag) {
    case T_STRING: return this.string();
    case T_INT:
      v = buf.readInt32LE(this.pos);
      this.pos += 4;
      return v;
    case T_DOUBLE:
      v = buf.readDoubleLE(this.pos);
      this.pos += 8;
      return v;
    case T_TRUE: return true;
    case T_FALSE: return false;
    case T_NULL: return null;
    case T_UNDEFINED: return undefined;
    case T_ARRAY:
      n = buf.readUInt32LE(this.pos);
      this.pos += 4;
      if (n > buf.length - this.pos) throw new RangeError('truncated array');
      v = new Array(n);
      for (i = 0; i < n; i++) {
        if (buf[this.pos] === T_HOLE) this.pos++;
        else v[i] = this.value();
      }
      return v;
    case T_OBJECT:
      n = buf.readUInt32LE(this.pos);
      this.pos += 4;
      v = {};
      for (i = 0; i < n; i++) {
        var klen = buf.readUInt32LE(this.pos);
        var kstart = this.pos + 4;
        if (kstart + klen > buf.length) throw new RangeError('truncated key');
        this.pos = kstart + klen;
        var key = klen <= 32 ? cachedKey(buf, kstart, kstart + klen) : buf.utf8Slice(kstart, kstart + klen);
        var item = this.value();
        if (key === '__proto__') {
          Object.defineProperty(v, key, { value: item, enumerable: true, writable: true, configurable: true });
        } else {
          v[key] = item;
        }
      }
      return v;
    case T_DATE:
      v = new Date(buf.readDoubleLE(this.pos));
      this.pos += 8;
      return v;
    default:
      throw new RangeError('unknown value tag ' + tag);
  }
};

function decode(bytes) {
  if (bytes[0] === FORM_COMPACT) return new Decoder(bytes).value();
  if (bytes[0] === FORM_V8) return v8.deserialize(bytes.subarray(1));
  throw new RangeError('socket.io-cluster-store: unknown value encoding ' + bytes[0]);
}

exports.encode = encode;
exports.decode = decode;
