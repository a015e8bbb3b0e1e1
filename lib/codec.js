'use strict';
// Values cross the channel as bytes this module writes. Two forms:
//
//  - COMPACT (first byte 1): the values socket.io and applications pass
//    almost always (plain objects, arrays, strings, numbers, booleans, null,
//    undefined, Dates), written by a small tagged encoder straight into a
//    reused buffer. It keeps what JSON loses: undefined, array holes, NaN,
//    Infinity, -0, Dates, the "__proto__" key as data.
//  - V8 (first byte 2): anything else (Map, Set, RegExp, BigInt, typed
//    arrays, Buffers, class instances, shared references and cycles) goes
//    through V8's structured-clone serializer, which round-trips them.
//
// What neither can hold (functions, symbols) is refused with a TypeError
// rather than silently changed, and so is a value nested deeper than
// MAX_DEPTH: every process that receives it must be able to decode it.
//
// The split is for speed: V8's serializer costs a few microseconds per
// small value in allocations and wrapper objects, several times what the
// compact encoder does, and a broadcast is encoded once but decoded in every
// worker.

var v8 = require('v8');
var types = require('util').types;

var FORM_COMPACT = 1;
var FORM_V8 = 2;

var T_UNDEFINED = 0;
var T_NULL = 1;
var T_FALSE = 2;
var T_TRUE = 3;
var T_INT8 = 4;
var T_INT32 = 5;
var T_DOUBLE = 6;
var T_STRING = 7;
var T_ARRAY = 8;
var T_HOLE = 9;
var T_OBJECT = 10;
var T_DATE = 11;
var T_BARE_OBJECT = 12; // an object without a prototype
var T_HOLES = 13; // a run of array holes: varint count

// The deepest nesting a value may have. Both decoders recurse once per
// level: V8's deserializer reads ~1,950 levels of objects on node 20's
// default stack (~1,550 when called 3,000 frames deep), though its
// serializer writes ~3,100; the compact decoder reads ~5,900. A value
// deeper than this is refused at the sender, with room left for the
// stack of whatever delivers the message.
var MAX_DEPTH = 1000;
// The fewest bytes one level of nesting takes in the V8 form (a Set: its
// tag, its end tag, its count): a V8-form value shorter than
// MAX_DEPTH * V8_MIN_LEVEL_BYTES cannot be too deep, and is not walked.
var V8_MIN_LEVEL_BYTES = 3;
// A run of this many holes in an array switches the encoder from visiting
// every index to visiting the array's own keys, so an array of length
// 2^32-1 with few items costs what its items cost.
var SPARSE_RUN = 32;
// Arrays longer than this are walked for depth by index (see tooDeepArray).
var LONG_ARRAY = 1024;
var objectProto = Object.prototype;
var hasOwn = Object.prototype.hasOwnProperty;
var arrayProto = Array.prototype;
var dateProto = Date.prototype;

// Thrown inside the compact encoder to fall back to the V8 form.
var NOT_COMPACT = { notCompact: true };
// Thrown inside the compact encoder for a value nested too deep.
var TOO_DEEP = { tooDeep: true };

// Doubles go through this pair of views (the platform's byte order is
// little-endian on every target the addon builds for).
var f64 = new Float64Array(1);
var f64Bytes = new Uint8Array(f64.buffer);

// The encoder writes into one reused buffer; out/pos are its state. Counts
// and lengths are LEB128 varints: one byte for anything under 128.
var out = Buffer.allocUnsafe(64 * 1024);
var pos = 0;
var busy = false;

// Objects met so far in this value. One met twice (a shared reference or a
// cycle) sends the whole value to the V8 form, which keeps identity. Few
// objects: a linear scan of seen[0, seenCount) beats a Set; many: a Set.
var SEEN_SCAN = 32;
var seen = new Array(SEEN_SCAN);
var seenCount = 0;
var seenSet = null;

function visit(obj) {
  if (seenSet !== null) {
    if (seenSet.has(obj)) throw NOT_COMPACT;
    seenSet.add(obj);
    return;
  }
  for (var i = 0; i < seenCount; i++) if (seen[i] === obj) throw NOT_COMPACT;
  if (seenCount === SEEN_SCAN) {
    seenSet = new Set(seen);
    seenSet.add(obj);
    return;
  }
  seen[seenCount++] = obj;
}

// Forgets the objects of the last value (holding none of them after).
function forgetSeen() {
  for (var i = 0; i < seenCount; i++) seen[i] = undefined;
  seenCount = 0;
  seenSet = null;
}

// out.subarray(0, length), one made per length and kept while out is the
// same buffer: a message's bytes are copied before the next encode (see
// encode), so handing out the same view object again changes nothing, and
// saves making one per message.
var VIEW_CACHE_MAX = 4096;
var views = [];
var viewsOf = null;

function view(length) {
  if (length > VIEW_CACHE_MAX) return out.subarray(0, length);
  if (viewsOf !== out) {
    views = [];
    viewsOf = out;
  }
  var v = views[length];
  if (v === undefined) v = views[length] = out.subarray(0, length);
  return v;
}

function ensure(n) {
  if (pos + n <= out.length) return;
  var size = out.length * 2;
  while (size < pos + n) size *= 2;
  var grown = Buffer.allocUnsafe(size);
  out.copy(grown, 0, 0, pos);
  out = grown;
}

function varintLength(v) {
  var n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

function writeVarint(v) {
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
}

// A string is written as a varint header, bytes * 2 + (1 if UTF-16), then
// its bytes: ASCII as one byte per character, anything else as UTF-16LE.
// UTF-16 is a plain copy both ways (node 20 decodes UTF-8 an order of
// magnitude slower) and keeps lone surrogates, which UTF-8 cannot carry.
function writeString(s) {
  var len = s.length;
  ensure(len * 3 + 6);
  if (len < 64) {
    // One header byte for an ASCII string this short; redone below if the
    // string turns out not to be ASCII. (Locals: the loop runs per
    // character of every key and short string.)
    var buf = out;
    var at = pos;
    var p = at + 1;
    var i = 0;
    for (; i < len; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[p++] = c;
    }
    if (i === len) {
      buf[at] = len * 2;
      pos = p;
      return;
    }
  }
  // Try ASCII: UTF-8 gives one byte per character only for an ASCII
  // string (anything else, lone surrogates included, takes two or more).
  var start = pos;
  writeVarint(len * 2);
  // (room for all of it: a truncated write could count len bytes by chance)
  if (out.utf8Write(s, pos, len * 3) === len) {
    pos += len;
    return;
  }
  pos = start;
  writeVarint(len * 4 + 1);
  pos += out.ucs2Write(s, pos, len * 2);
}

function writeValue(v, depth) {
  switch (typeof v) {
    case 'string':
      ensure(1);
      out[pos++] = T_STRING;
      writeString(v);
      return;
    case 'number':
      ensure(9);
      if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
        if (v >= -128 && v < 128) {
          out[pos++] = T_INT8;
          out[pos++] = v & 0xff;
        } else {
          out[pos++] = T_INT32;
          out[pos++] = v & 0xff;
          out[pos++] = (v >> 8) & 0xff;
          out[pos++] = (v >> 16) & 0xff;
          out[pos++] = (v >> 24) & 0xff;
        }
      } else {
        out[pos++] = T_DOUBLE;
        f64[0] = v;
        for (var b = 0; b < 8; b++) out[pos++] = f64Bytes[b];
      }
      return;
    case 'boolean':
      ensure(1);
      out[pos++] = v ? T_TRUE : T_FALSE;
      return;
    case 'undefined':
      ensure(1);
      out[pos++] = T_UNDEFINED;
      return;
    case 'object':
      if (v === null) {
        ensure(1);
        out[pos++] = T_NULL;
        return;
      }
      if (depth >= MAX_DEPTH) throw TOO_DEEP;
      visit(v);
      var proto = Object.getPrototypeOf(v);
      if (proto === arrayProto) {
        var n = v.length;
        ensure(6);
        out[pos++] = T_ARRAY;
        writeVarint(n);
        var holes = 0;
        for (var i = 0; i < n; i++) {
          var item = v[i];
          if (item === undefined && !(i in v)) {
            if (++holes === SPARSE_RUN) return writeSparse(v, n, i + 1 - holes, depth);
          } else {
            if (holes > 0) writeHoles(holes);
            holes = 0;
            writeValue(item, depth + 1);
          }
        }
        if (holes > 0) writeHoles(holes);
        return;
      }
      if (proto === objectProto || proto === null) {
        ensure(2);
        out[pos++] = proto === null ? T_BARE_OBJECT : T_OBJECT;
        // The count goes before the keys; one byte is kept for it and the
        // rest moved up in the rare case it needs more. for-in (own keys
        // only, as Object.keys gives them, in the same order) lets V8 read
        // each value through the object's enum cache instead of a
        // megamorphic lookup by name.
        var countAt = pos++;
        var count = 0;
        for (var key in v) {
          if (!hasOwn.call(v, key)) continue;
          count++;
          writeString(key);
          writeValue(v[key], depth + 1);
        }
        if (count < 0x80) {
          out[countAt] = count;
        } else {
          var extra = varintLength(count) - 1;
          ensure(extra);
          out.copyWithin(countAt + 1 + extra, countAt + 1, pos);
          var end = pos + extra;
          pos = countAt;
          writeVarint(count);
          pos = end;
        }
        return;
      }
      if (proto === dateProto) {
        ensure(9);
        out[pos++] = T_DATE;
        f64[0] = v.getTime();
        for (var d = 0; d < 8; d++) out[pos++] = f64Bytes[d];
        return;
      }
      throw NOT_COMPACT;
    default: // bigint, function, symbol
      throw NOT_COMPACT;
  }
}

function writeHoles(count) {
  ensure(6);
  if (count === 1) {
    out[pos++] = T_HOLE;
  } else {
    out[pos++] = T_HOLES;
    writeVarint(count);
  }
}

// The rest of an array from index `from` (a run of holes starts there),
// through its own keys: array indices come first in them, in order.
function writeSparse(v, n, from, depth) {
  var keys = Object.keys(v);
  var next = from; // the first index not yet written
  var last = -1;
  for (var k = 0; k < keys.length; k++) {
    var index = +keys[k];
    // Past the indices: names like "01" or "1e3" are not elements.
    if (!(index < n) || index <= last || '' + index !== keys[k]) break;
    last = index;
    if (index < next) continue;
    if (index > next) writeHoles(index - next);
    writeValue(v[index], depth + 1);
    next = index + 1;
  }
  if (next < n) writeHoles(n - next);
}

// Whether a value for the V8 form nests deeper than MAX_DEPTH, counting
// each object where V8 first meets it (it writes a reference after that),
// in V8's order: own enumerable keys, Map entries, Set values, an Error's
// cause.
function tooDeep(v, depth, met) {
  if (typeof v !== 'object' || v === null || met.has(v)) return false;
  met.add(v);
  if (depth >= MAX_DEPTH) return true;
  if (types.isMap(v)) {
    var found = false;
    Map.prototype.forEach.call(v, function (value, key) {
      if (!found) found = tooDeep(key, depth + 1, met) || tooDeep(value, depth + 1, met);
    });
    return found;
  }
  if (types.isSet(v)) {
    var deep = false;
    Set.prototype.forEach.call(v, function (value) {
      if (!deep) deep = tooDeep(value, depth + 1, met);
    });
    return deep;
  }
  if (types.isAnyArrayBuffer(v) || types.isArrayBufferView(v) || types.isDate(v) ||
      types.isRegExp(v) || types.isBoxedPrimitive(v)) {
    return false;
  }
  if (types.isNativeError(v)) {
    var cause = Object.getOwnPropertyDescriptor(v, 'cause');
    return !!cause && tooDeep(cause.value, depth + 1, met);
  }
  if (Array.isArray(v) && v.length > LONG_ARRAY) return tooDeepArray(v, depth, met);
  return tooDeepKeys(v, depth, met, 0);
}

// Own enumerable keys, past the array indices below `from`.
function tooDeepKeys(v, depth, met, from) {
  var keys = Object.keys(v);
  for (var k = 0; k < keys.length; k++) {
    if (from > 0) {
      var index = +keys[k];
      if (index < from && '' + index === keys[k]) continue;
    }
    if (tooDeep(v[keys[k]], depth + 1, met)) return true;
  }
  return false;
}

// A long array by index: Object.keys would cost ~100 ms a million items
// (a string each), the loop ~1 ms. A run of holes switches to the keys, as
// the encoder does. The non-index properties of a long dense array (rare)
// are not walked: a value too deep through one of them is dropped by its
// receivers, with 'error', instead of refused here.
function tooDeepArray(v, depth, met) {
  var n = v.length;
  var holes = 0;
  for (var i = 0; i < n; i++) {
    var item = v[i];
    if (item === undefined && !(i in v)) {
      if (++holes === SPARSE_RUN) return tooDeepKeys(v, depth, met, i + 1);
      continue;
    }
    holes = 0;
    if (typeof item === 'object' && item !== null && tooDeep(item, depth + 1, met)) return true;
  }
  return false;
}

// What errors call the value: what, or what "name" when a name is given
// (made only for an error: the calls that succeed build no text).
function describe(what, name) {
  return name === undefined ? what : what + ' "' + name + '"';
}

function valueError(value, what, err) {
  var e = new TypeError('socket.io-cluster-store: cannot store ' + what + ': ' +
    (err && err.message ? err.message : String(err)) + ' (values must be data: JSON values, ' +
    'Dates, Maps, Sets, typed arrays, BigInts; not functions or symbols)');
  e.code = 'ERR_CLUSTER_STORE_VALUE';
  return e;
}

function depthError(what) {
  var e = new TypeError('socket.io-cluster-store: cannot store ' + what + ': it is nested more than ' +
    MAX_DEPTH + ' levels deep, deeper than every process can decode (flatten it, or send it as a ' +
    'JSON string)');
  e.code = 'ERR_CLUSTER_STORE_VALUE';
  return e;
}

// Returns the bytes for value. The result may be a view of a buffer that
// the next call reuses: the caller copies it (the engine does) before
// encoding anything else. prefix (optional, a Buffer): bytes written
// before the value's, for a caller with a header of its own (decode then
// takes where the value starts). Errors name the value what, or what
// "name" when name is given.
function encode(value, what, prefix, name) {
  if (busy) return encodeV8(value, what, prefix, name); // a getter publishing mid-encode
  busy = true;
  pos = 0;
  // Do not keep a huge buffer for good because of one huge value.
  if (out.length > 1024 * 1024) out = Buffer.allocUnsafe(64 * 1024);
  try {
    if (prefix !== undefined) {
      var n = prefix.length;
      ensure(n + 1);
      var buf = out;
      for (var i = 0; i < n; i++) buf[i] = prefix[i];
      pos = n;
    } else {
      ensure(1);
    }
    out[pos++] = FORM_COMPACT;
    writeValue(value, 0);
    return view(pos);
  } catch (err) {
    if (err === TOO_DEEP) throw depthError(describe(what, name));
    // A getter or a Proxy trap that threw: the value's fault, reported as
    // such (the V8 form would call it again).
    if (err !== NOT_COMPACT) throw valueError(value, describe(what, name), err);
  } finally {
    busy = false;
    forgetSeen();
  }
  return encodeV8(value, what, prefix, name);
}

function encodeV8(value, what, prefix, name) {
  var bytes;
  try {
    bytes = v8.serialize(value);
  } catch (err) {
    // V8's serializer runs out of stack past ~2,000-3,000 levels: say why.
    var deepAlso = false;
    try {
      deepAlso = tooDeep(value, 0, new Set());
    } catch (e) {
      // the serializer's own error says more
    }
    throw deepAlso ? depthError(describe(what, name)) : valueError(value, describe(what, name), err);
  }
  if (bytes.length > MAX_DEPTH * V8_MIN_LEVEL_BYTES) {
    var deep;
    try {
      deep = tooDeep(value, 0, new Set());
    } catch (err) {
      throw valueError(value, describe(what, name), err);
    }
    if (deep) throw depthError(describe(what, name));
  }
  var at = prefix === undefined ? 0 : prefix.length;
  var copy = Buffer.allocUnsafe(at + bytes.length + 1);
  if (at > 0) prefix.copy(copy, 0);
  copy[at] = FORM_V8;
  bytes.copy(copy, at + 1);
  return copy;
}

// Object keys repeat from message to message ('type', 'name', 'args'...).
// Reusing the string made last time for the same bytes saves building it
// and lets V8 find the property by an already internalized name.
var KEY_CACHE_SIZE = 4096;
var keyCacheBytes = new Array(KEY_CACHE_SIZE);
var keyCacheStrings = new Array(KEY_CACHE_SIZE);

function cachedKey(buf, start, end) {
  var h = end - start;
  // (Math.imul: h * 31 left the 32-bit range, and the loop then ran in
  // doubles, a quarter of the decoding of an object-heavy message.)
  for (var i = start; i < end; i++) h = (Math.imul(h, 31) + buf[i]) | 0;
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
  var s = buf.latin1Slice(start, end);
  keyCacheBytes[slot] = Uint8Array.prototype.slice.call(buf, start, end);
  keyCacheStrings[slot] = s;
  return s;
}

// Decoder state: the buffer being read and the position in it.
var din = null;
var dpos = 0;
var dend = 0; // where the value's bytes end in din

function truncated() {
  return new RangeError('socket.io-cluster-store: truncated value');
}

// (The scale is kept by multiplying: Math.pow here was a runtime call per
// byte, a fifth of a receiving worker's time.)
function readVarint() {
  var v = 0;
  var shift = 0;
  var scale = 1;
  for (;;) {
    if (dpos >= dend || shift > 28) throw truncated();
    var b = din[dpos++];
    v += (b & 0x7f) * scale;
    if (b < 0x80) return v;
    shift += 7;
    scale *= 128;
  }
}

function readString(asKey) {
  if (dpos >= dend) throw truncated();
  var header = din[dpos];
  if (header < 0x80) dpos++;
  else header = readVarint();
  var utf16 = header % 2 === 1;
  var len = (header - (utf16 ? 1 : 0)) / 2;
  var start = dpos;
  var end = start + len;
  if (end > dend) throw truncated();
  dpos = end;
  if (utf16) return din.ucs2Slice(start, end);
  if (asKey && len <= 32) return cachedKey(din, start, end);
  if (len < 8) {
    var s = '';
    for (var i = start; i < end; i++) s += String.fromCharCode(din[i]);
    return s;
  }
  return din.latin1Slice(start, end);
}

function readDouble() {
  if (dpos + 8 > dend) throw truncated();
  for (var b = 0; b < 8; b++) f64Bytes[b] = din[dpos++];
  return f64[0];
}

function readValue() {
  if (dpos >= dend) throw truncated();
  var tag = din[dpos++];
  var v, n, i;
  switch (tag) {
    case T_STRING: return readString(false);
    case T_INT8:
      if (dpos >= dend) throw truncated();
      v = din[dpos++];
      return v > 127 ? v - 256 : v;
    case T_INT32:
      if (dpos + 4 > dend) throw truncated();
      v = din[dpos] | (din[dpos + 1] << 8) | (din[dpos + 2] << 16) | (din[dpos + 3] << 24);
      dpos += 4;
      return v;
    case T_DOUBLE: return readDouble();
    case T_TRUE: return true;
    case T_FALSE: return false;
    case T_NULL: return null;
    case T_UNDEFINED: return undefined;
    case T_ARRAY:
      n = readVarint();
      if (n > 0xffffffff) throw truncated();
      v = new Array(n);
      for (i = 0; i < n;) {
        if (dpos >= dend) throw truncated();
        tag = din[dpos];
        if (tag === T_HOLE) {
          dpos++;
          i++;
        } else if (tag === T_HOLES) {
          dpos++;
          var run = readVarint();
          if (run > n - i) throw truncated();
          i += run;
        } else {
          v[i++] = readValue();
        }
      }
      return v;
    case T_OBJECT:
    case T_BARE_OBJECT:
      n = readVarint();
      v = tag === T_OBJECT ? {} : Object.create(null);
      for (i = 0; i < n; i++) {
        var key = readString(true);
        var item = readValue();
        if (key === '__proto__') {
          Object.defineProperty(v, key, { value: item, enumerable: true, writable: true, configurable: true });
        } else {
          v[key] = item;
        }
      }
      return v;
    case T_DATE: return new Date(readDouble());
    default:
      throw new RangeError('socket.io-cluster-store: unknown value tag ' + tag);
  }
}

// The value whose bytes are bytes[start, end) (default: all of them), so
// that a caller can decode in place, inside a larger buffer.
function decode(bytes, start, end) {
  var at = start === undefined ? 0 : start;
  var stop = end === undefined ? bytes.length : end;
  if (at >= stop) throw truncated();
  if (bytes[at] === FORM_COMPACT) {
    var saved = din;
    var savedPos = dpos;
    var savedEnd = dend;
    din = bytes;
    dpos = at + 1;
    dend = stop;
    try {
      return readValue();
    } finally {
      din = saved;
      dpos = savedPos;
      dend = savedEnd;
    }
  }
  // V8's deserializer returns typed arrays and Buffers as views of its
  // input, and the input is lent (see connection.js): it gets a copy of its own.
  if (bytes[at] === FORM_V8) return v8.deserialize(Buffer.from(bytes.subarray(at + 1, stop)));
  throw new RangeError('socket.io-cluster-store: unknown value encoding ' + bytes[at]);
}

exports.encode = encode;
exports.decode = decode;
