'use strict';
// Values cross the channel as bytes this module writes. Two forms:
//
//  - COMPACT (first byte 6, 7 or 8): the values socket.io and applications
//    pass almost always (plain objects, arrays, strings, numbers, booleans,
//    null, undefined, Dates, Buffers and typed arrays), written by a small
//    tagged encoder straight into a reused buffer. It keeps what JSON
//    loses: undefined, array holes, NaN, Infinity, -0, Dates, the
//    "__proto__" key as data, lone surrogates, bytes. Its layout:
//
//      form      6: no string table; 7: an ASCII one; 8: a UTF-16LE one
//                (3, 4 and 5, the same without Buffers and typed arrays,
//                are still read)
//      tagged    the value: a tag byte per item, then what it holds; short
//                ASCII strings and keys in line, the others' characters
//                in the table, in the order they are met
//      table     (forms 4 and 5) those characters
//      4 bytes   (forms 4 and 5) the table's length in bytes, little-endian
//
//    Cost per string and per key, not per character, is what this layout
//    is for: objects of many short strings (socket.io handshakes) are most
//    of what a server answers to fetchSockets().
//  - V8 (first byte 2): anything else (Map, Set, RegExp, BigInt, DataView,
//    class instances, shared references and cycles) goes
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

// The compact form: without a string table, with one in ASCII, with one in
// UTF-16. The forms before Buffers and typed arrays had a tag of their own
// (3, 4, 5) are still read: their bytes mean the same.
var FORM_COMPACT = 6;
var FORM_COMPACT_ASCII = 7;
var FORM_COMPACT_UTF16 = 8;
var FORM_OLD_COMPACT = 3;
var FORM_OLD_COMPACT_ASCII = 4;
var FORM_OLD_COMPACT_UTF16 = 5;
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
var T_VIEW = 14; // a Buffer or typed array: kind byte, varint byte length, the bytes

// The kinds of T_VIEW: VIEW_KINDS[kind] makes one (a Buffer: kind 0).
// The bytes are the view's own, in the platform's order, as V8's
// serializer writes them (every target the addon builds for is
// little-endian). Subclasses and DataViews take the V8 form.
var VIEW_KINDS = [Buffer, Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array,
  Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
var VIEW_PROTOS = VIEW_KINDS.map(function (kind) { return kind.prototype; });
var bufferProto = Buffer.prototype;

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
// Strings up to INLINE_MAX characters are written in line, ASCII as one
// byte per character (a loop per character costs less than a call into
// node for so few). Longer ones, and short ones that are not ASCII, go to
// the value's string table: their characters, concatenated in the order
// the strings were met (V8 links the pieces and copies them once, when
// the table is written), and written in one call after the tagged bytes
// (see writeTable).
var INLINE_MAX = 12;
var table = '';
// Past the longest string V8 makes, the V8 form (which refuses it for its
// size, as it would be refused anyway).
var TABLE_MAX = require('buffer').constants.MAX_STRING_LENGTH;

// A key met again in the same value is written as the index of its first
// time, so the decoder makes each key once per value. Not for the first
// KEYS_PLAIN keys of a value (a small value rarely repeats one, and the
// look-up would cost more than it saves). Keys get an id for good (keyIds,
// up to KEY_IDS of them, then all forgotten at once); keyValue[id] is the
// value being encoded when the key was last written, keyIndex[id] its
// index in that value.
var KEYS_PLAIN = 16;
var KEY_IDS = 4096;
var KEY_ID_MAX_LENGTH = 64;
var keyIds = new Map();
var keyValue = [];
var keyIndex = [];
var keysMet = 0; // in this value
var keysWritten = 0; // in this value, other than as an index
var valueSerial = 0;

// Objects met so far in this value. One met twice (a shared reference or a
// cycle) sends the whole value to the V8 form, which keeps identity. Few
// objects: a linear scan of seen[0, seenCount) beats a Set; many: a Set,
// kept from value to value (emptied after each), which tells an object
// already in it by not growing (one look-up per object, not two). A
// longer scan was measured twice and not kept: up to 128 objects, the
// encoding of a 10-socket fetchSockets answer (~70 objects) lost the
// Set's growth, a tenth of the answering server's time, but answers of
// 25 and 100 sockets took 30-45 % longer (the scan is quadratic).
var SEEN_SCAN = 32;
var seen = new Array(SEEN_SCAN);
var seenCount = 0;
var seenSet = new Set();
var seenMany = false;

function visit(obj) {
  if (seenMany) {
    var size = seenSet.size;
    if (seenSet.add(obj).size === size) throw NOT_COMPACT;
    return;
  }
  for (var i = 0; i < seenCount; i++) if (seen[i] === obj) throw NOT_COMPACT;
  if (seenCount === SEEN_SCAN) {
    for (var j = 0; j < seenCount; j++) seenSet.add(seen[j]);
    seenSet.add(obj);
    seenMany = true;
    return;
  }
  seen[seenCount++] = obj;
}

// Forgets the objects of the last value (holding none of them after).
function forgetSeen() {
  for (var i = 0; i < seenCount; i++) seen[i] = undefined;
  seenCount = 0;
  if (seenMany) {
    seenSet.clear();
    seenMany = false;
  }
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

// A string is written as a varint header, its length times two, plus one
// if its characters are in the table; then, if not, its characters. A key
// has that header times two; or, met before in this value, its index
// there times two plus one. (The caller has made room for 6 + INLINE_MAX
// bytes.)
function writeString(s, headerScale) {
  var len = s.length;
  if (len <= INLINE_MAX) {
    // (Locals: the loop runs per character of most keys and short strings.)
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
      buf[at] = len * 2 * headerScale;
      pos = p;
      return;
    }
  }
  var header = (len * 2 + 1) * headerScale;
  if (header < 0x80) out[pos++] = header;
  else writeVarint(header);
  if (len > TABLE_MAX - table.length) throw NOT_COMPACT;
  table += s;
}

function writeKey(key) {
  if (++keysMet <= KEYS_PLAIN) {
    keysWritten++;
    writeString(key, 2);
    return;
  }
  var id = keyIds.get(key);
  if (id === undefined) {
    if (key.length <= KEY_ID_MAX_LENGTH) {
      if (keyIds.size === KEY_IDS) {
        keyIds.clear();
        keyValue.length = 0;
        keyIndex.length = 0;
      }
      id = keyIds.size;
      keyIds.set(key, id);
    }
  } else if (keyValue[id] === valueSerial) {
    writeVarint(keyIndex[id] * 2 + 1);
    return;
  }
  if (id !== undefined) {
    keyValue[id] = valueSerial;
    keyIndex[id] = keysWritten;
  }
  keysWritten++;
  writeString(key, 2);
}

function writeValue(v, depth) {
  switch (typeof v) {
    case 'string':
      ensure(7 + INLINE_MAX);
      out[pos++] = T_STRING;
      writeString(v, 1);
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
      writeObject(v, depth);
      return;
    default: // bigint, function, symbol
      throw NOT_COMPACT;
  }
}

// (Apart from writeValue, which stays small enough for V8 to inline into
// the loops over items below.)
function writeObject(v, depth) {
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
      ensure(6 + INLINE_MAX);
      writeKey(key);
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
  var kind = proto === bufferProto ? 0 : VIEW_PROTOS.indexOf(proto);
  // (isView: an object merely made with a typed array's prototype is not one)
  if (kind >= 0 && ArrayBuffer.isView(v)) {
    writeView(v, kind);
    return;
  }
  throw NOT_COMPACT;
}

function writeView(v, kind) {
  var length = v.byteLength;
  ensure(length + 7);
  out[pos++] = T_VIEW;
  out[pos++] = kind;
  writeVarint(length);
  if (kind > 1) v = new Uint8Array(v.buffer, v.byteOffset, length);
  if (length <= 64) {
    var buf = out;
    var at = pos;
    for (var i = 0; i < length; i++) buf[at + i] = v[i];
  } else {
    out.set(v, pos);
  }
  pos += length;
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
    var formAt = pos++;
    keysMet = 0;
    keysWritten = 0;
    valueSerial++;
    writeValue(value, 0);
    var form = writeTable(); // (may replace out: not in one statement)
    out[formAt] = form;
    return view(pos);
  } catch (err) {
    if (err === TOO_DEEP) throw depthError(describe(what, name));
    // A getter or a Proxy trap that threw: the value's fault, reported as
    // such (the V8 form would call it again).
    if (err !== NOT_COMPACT) throw valueError(value, describe(what, name), err);
  } finally {
    busy = false;
    forgetSeen();
    table = '';
  }
  return encodeV8(value, what, prefix, name);
}

// Writes the string table, if any, then its length in bytes (4, little-
// endian), and returns the form byte that says how: one byte per
// character when they are all ASCII (UTF-8 gives one byte per character
// only then; a lone surrogate takes three), else UTF-16LE, which keeps
// lone surrogates too.
function writeTable() {
  var len = table.length;
  if (len === 0) return FORM_COMPACT;
  // (room for all of it: a truncated write could count len bytes by chance)
  ensure(len * 3 + 4);
  var form = FORM_COMPACT_ASCII;
  var bytes = out.utf8Write(table, pos, len * 3);
  if (bytes !== len) {
    form = FORM_COMPACT_UTF16;
    bytes = out.ucs2Write(table, pos, len * 2);
  }
  if (bytes > 0xffffffff) throw NOT_COMPACT;
  pos += bytes;
  out[pos++] = bytes & 0xff;
  out[pos++] = (bytes >>> 8) & 0xff;
  out[pos++] = (bytes >>> 16) & 0xff;
  out[pos++] = (bytes >>> 24) & 0xff;
  return form;
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

// Decoder state: the buffer being read, the position in it and where the
// tagged bytes end; the string table: where it starts in the buffer,
// whether it is UTF-16, its length in characters and how many of them were
// taken; the keys of the value so far.
var din = null;
var dpos = 0;
var dend = 0;
var tableAt = 0;
var tableWide = false;
var tableLength = 0;
var tablePos = 0;
var keys = [];
var keyCount = 0;
var decoding = false;

// Strings are cut from chunks: a string made in one call from up to CHUNK
// bytes of the buffer, from where the first string in it starts, which
// saves a call into node for most strings. One chunk of the tagged bytes
// (latin1: a byte a character) for the strings written in line, one of
// the table. V8 makes a string cut from another of at least 13
// characters as a view of it (a "sliced string"), which keeps all of the
// other alive: a string kept from a decoded value keeps at most CHUNK
// bytes more alive that way.
var CHUNK = 256;
var inlineChunk = '';
var inlineFrom = 0; // where inlineChunk starts in din
var inlineTo = 0;
var tableChunk = '';
var tableFrom = 0;
var tableTo = 0;

// Keys repeat from message to message ('type', 'name', 'args'...).
// Reusing the string made last time for the same bytes saves building it
// and lets V8 find the property by an already internalized name. The
// table's width is part of the bytes: "a" in UTF-16 is "a\0" in ASCII.
var KEY_CACHE_SIZE = 4096;
var KEY_CACHE_MAX_LENGTH = 32;
var keyCacheBytes = new Array(KEY_CACHE_SIZE);
var keyCacheWide = new Array(KEY_CACHE_SIZE);
var keyCacheStrings = new Array(KEY_CACHE_SIZE);

// A hash of din[from, to), for the caches of strings below.
function bytesHash(from, to) {
  var buf = din;
  var h = to - from;
  // (Math.imul: h * 31 left the 32-bit range, and the loop then ran in
  // doubles, a quarter of the decoding of an object-heavy message.)
  for (var i = from; i < to; i++) h = (Math.imul(h, 31) + buf[i]) | 0;
  return h;
}

function cachedKey(from, to, wide) {
  var buf = din;
  var slot = bytesHash(from, to) & (KEY_CACHE_SIZE - 1);
  var known = keyCacheBytes[slot];
  if (known !== undefined && known.length === to - from && keyCacheWide[slot] === wide) {
    var same = true;
    for (var j = 0; j < known.length; j++) {
      if (known[j] !== buf[from + j]) {
        same = false;
        break;
      }
    }
    if (same) return keyCacheStrings[slot];
  }
  var s = internalized(wide ? buf.ucs2Slice(from, to) : buf.latin1Slice(from, to));
  keyCacheBytes[slot] = Uint8Array.prototype.slice.call(buf, from, to);
  keyCacheWide[slot] = wide;
  keyCacheStrings[slot] = s;
  return s;
}

// The same string as V8 keeps it for a property name: stored under it,
// and compared with '__proto__', it costs one comparison of pointers
// instead of one of characters.
function internalized(s) {
  var o = Object.create(null); // (no __proto__ setter to call)
  o[s] = 0;
  return Object.keys(o)[0];
}

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

// The header of a string or key (see writeString).
function readHeader() {
  if (dpos < dend && din[dpos] < 0x80) return din[dpos++];
  return readVarint();
}

// Short strings written in line that start a chunk (see inlineString),
// by a hash of their bytes: the string made last time for them. Most
// messages hold one such string, first (an event name), which then costs
// no call into node and no new string, and reaches the application as
// the same string each time (V8 finds a listener by it without hashing
// it again). Only strings are kept; a slot holds the latest.
var SHORT_CACHE_SIZE = 512;
var SHORT_CACHE_MAX_LENGTH = INLINE_MAX; // (a copy, not a view of the chunk)
var shortCache = new Array(SHORT_CACHE_SIZE);

// A string of len characters written in line, at dpos.
function inlineString(len) {
  var from = dpos;
  if (len > dend - from) throw truncated();
  var to = from + len;
  dpos = to;
  if (from >= inlineFrom && to <= inlineTo) return inlineChunk.substring(from - inlineFrom, to - inlineFrom);
  if (len > CHUNK) return din.latin1Slice(from, to);
  var slot = -1;
  if (len <= SHORT_CACHE_MAX_LENGTH) {
    slot = bytesHash(from, to) & (SHORT_CACHE_SIZE - 1);
    var known = shortCache[slot];
    if (known !== undefined && known.length === len) {
      var buf = din;
      var j = 0;
      while (j < len && known.charCodeAt(j) === buf[from + j]) j++;
      if (j === len) return known;
    }
  }
  inlineFrom = from;
  inlineTo = Math.min(from + CHUNK, dend);
  inlineChunk = din.latin1Slice(from, inlineTo);
  var s = inlineChunk.substring(0, len);
  if (slot >= 0) shortCache[slot] = s;
  return s;
}

// Where the next len characters of the table start in din.
function takeTable(len) {
  if (len > tableLength - tablePos) throw truncated();
  var from = tablePos;
  tablePos += len;
  return tableWide ? tableAt + from * 2 : tableAt + from;
}

// A string of len characters in the table.
function tableString(len) {
  var from = takeTable(len);
  var width = tableWide ? 2 : 1;
  var to = from + len * width;
  if (from >= tableFrom && to <= tableTo) {
    return tableChunk.substring((from - tableFrom) / width, (to - tableFrom) / width);
  }
  if (to - from > CHUNK) return tableWide ? din.ucs2Slice(from, to) : din.latin1Slice(from, to);
  tableFrom = from;
  tableTo = Math.min(from + CHUNK, tableAt + tableLength * width);
  tableChunk = tableWide ? din.ucs2Slice(from, tableTo) : din.latin1Slice(from, tableTo);
  return tableChunk.substring(0, len);
}

function readString() {
  var header = readHeader();
  var len = (header - header % 2) / 2;
  if (len === 0) return '';
  return header % 2 === 0 ? inlineString(len) : tableString(len);
}

function readKey() {
  var header = readHeader();
  if (header % 2 === 1) {
    var index = (header - 1) / 2;
    if (index >= keyCount) throw truncated();
    return keys[index];
  }
  var stringHeader = header / 2;
  var len = (stringHeader - stringHeader % 2) / 2;
  var from, to;
  var wide = false;
  if (stringHeader % 2 === 0) {
    from = dpos;
    if (len > dend - from) throw truncated();
    to = dpos = from + len;
  } else {
    from = takeTable(len);
    wide = tableWide;
    to = from + (wide ? len * 2 : len);
  }
  var key;
  if (to - from <= KEY_CACHE_MAX_LENGTH) key = cachedKey(from, to, wide);
  else key = internalized(wide ? din.ucs2Slice(from, to) : din.latin1Slice(from, to));
  keys[keyCount++] = key;
  return key;
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
    case T_STRING: return readString();
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
      if (tag === T_OBJECT && n <= SHAPE_KEYS_MAX) return readShaped(n);
      v = tag === T_OBJECT ? {} : Object.create(null);
      for (i = 0; i < n; i++) {
        var key = readKey();
        var item = readValue();
        if (key === '__proto__') {
          Object.defineProperty(v, key, { value: item, enumerable: true, writable: true, configurable: true });
        } else {
          v[key] = item;
        }
      }
      return v;
    case T_DATE: return new Date(readDouble());
    case T_VIEW: return readView();
    default:
      throw new RangeError('socket.io-cluster-store: unknown value tag ' + tag);
  }
}

// Objects of one shape (the same keys in the same order) come again and
// again: a packet's {type, name, args, endpoint}, an app's event arguments.
// Adding their properties one by one, by names V8 learns only at run time,
// was the largest part of decoding them (a lookup and a map transition per
// key); so was hashing each key's bytes to find its string. A tree of the
// shapes met, one step per key, gives both: each node expects the key that
// followed it last time (its string and its bytes, compared in place of a
// hash), and a shape met SHAPE_HITS times gets a function that makes its
// objects as a literal does, in one allocation, from the values read.
// Bounded: past SHAPE_NODES nodes the tree starts over, and at most
// SHAPE_MAKERS shapes get a function before it does. Without code from
// strings (--disallow-code-generation-from-strings) objects are made key
// by key, as before.
//
// A literal defines its properties: a setter that code has put on
// Object.prototype is not called for them, as JSON.parse does not call it.
// (Made key by key, as every shape is at first, it is called, and the key
// not kept, as before.)
var SHAPE_KEYS_MAX = 32;
var SHAPE_HITS = 4;
var SHAPE_NODES = 4096;
var SHAPE_MAKERS = 512;
var shapeNodes = 0;
var shapeMakers = 0;
var canMake = true;

function Shape(keys, keyBytes, keyWide) {
  this.keys = keys; // from the root to here
  this.key = keys.length > 0 ? keys[keys.length - 1] : undefined; // the last
  // Its bytes, when its header takes one byte: the header, then its
  // characters (in line, or in the table: keyWide says in which width);
  // the node is found by them. Else null.
  this.keyBytes = keyBytes;
  this.keyWide = keyWide;
  this.kids = []; // the nodes that follow, the first SHAPE_KIDS of them
  this.others = null; // Map: key -> node, for the rest
  this.hits = 0;
  this.make = null;
  this.plain = keys.indexOf('__proto__') < 0; // a literal can make it
}

// The nodes after one looked at by their bytes: objects nested at one
// place in a message (an event's arguments) start with several keys.
var SHAPE_KIDS = 8;
var shapeRoot = new Shape([], null, false);

// The node after node for key, just read by readKey from keyAt on.
function shapeStep(node, key, keyAt) {
  var kids = node.kids;
  for (var i = 0; i < kids.length; i++) if (kids[i].key === key) return kids[i];
  var child = node.others === null ? undefined : node.others.get(key);
  if (child !== undefined) return child;
  if (++shapeNodes > SHAPE_NODES) {
    shapeRoot = new Shape([], null, false);
    shapeNodes = 1;
    shapeMakers = 0;
  }
  var header = din[keyAt];
  var bytes = null;
  if (header < 0x80 && header % 4 === 0) { // in line
    bytes = Uint8Array.prototype.slice.call(din, keyAt, dpos);
  } else if (header < 0x80 && header % 4 === 2) { // in the table, just taken
    var width = tableWide ? 2 : 1;
    var to = tableAt + tablePos * width;
    var from = to - (header >> 2) * width;
    bytes = new Uint8Array(1 + to - from);
    bytes[0] = header;
    bytes.set(din.subarray(from, to), 1);
  }
  child = new Shape(node.keys.concat(key), bytes, tableWide);
  if (kids.length < SHAPE_KIDS) {
    kids.push(child);
  } else {
    if (node.others === null) node.others = new Map();
    node.others.set(key, child);
  }
  return child;
}

// The node after node whose key's bytes are next (read, as readKey would
// read them), or null.
function shapeKid(node) {
  var kids = node.kids;
  var buf = din;
  var at = dpos;
  if (at >= dend) return null;
  var first = buf[at];
  for (var k = 0; k < kids.length; k++) {
    var kid = kids[k];
    var bytes = kid.keyBytes;
    if (bytes === null || bytes[0] !== first) continue;
    var len = bytes.length;
    var i = 1;
    if (first % 4 === 0) { // in line
      if (len > dend - at) continue;
      while (i < len && bytes[i] === buf[at + i]) i++;
      if (i < len) continue;
      dpos = at + len;
    } else { // in the table
      var chars = first >> 2;
      if (kid.keyWide !== tableWide || chars > tableLength - tablePos) continue;
      var from = tableAt + (tableWide ? tablePos * 2 : tablePos) - 1;
      while (i < len && bytes[i] === buf[from + i]) i++;
      if (i < len) continue;
      dpos = at + 1;
      tablePos += chars;
    }
    keys[keyCount++] = kid.key;
    return kid;
  }
  return null;
}

// Values of the objects being read, a stack: an object's n values are
// vals[base, base + n) until it is made.
var vals = [];
var valsTop = 0;
var valsMax = 0;

function readShaped(n) {
  var base = valsTop;
  valsTop = base + n;
  if (valsTop > valsMax) valsMax = valsTop;
  var node = shapeRoot;
  for (var i = 0; i < n; i++) {
    var kid = shapeKid(node);
    if (kid === null) {
      var keyAt = dpos;
      node = shapeStep(node, readKey(), keyAt);
    } else {
      node = kid;
    }
    vals[base + i] = readValue();
  }
  var make = node.make;
  if (make === null && ++node.hits >= SHAPE_HITS && node.plain && canMake && shapeMakers < SHAPE_MAKERS) {
    make = node.make = shapeMaker(node.keys);
  }
  var v;
  if (make !== null) {
    v = make(vals, base);
    valsTop = base;
    return v;
  }
  // (The values stay on the stack meanwhile: a setter on Object.prototype
  // may decode another value.)
  v = {};
  var shapeKeys = node.keys;
  for (var j = 0; j < n; j++) {
    var k = shapeKeys[j];
    if (k === '__proto__') {
      Object.defineProperty(v, k, { value: vals[base + j], enumerable: true, writable: true, configurable: true });
    } else {
      v[k] = vals[base + j];
    }
  }
  valsTop = base;
  return v;
}

// function (vals, base) { return { "key0": vals[base], ... }; } for keys
// (none of them "__proto__", which a literal takes for the prototype), or
// null when code cannot be made from strings here.
function shapeMaker(shapeKeys) {
  var body = 'return {';
  for (var i = 0; i < shapeKeys.length; i++) {
    body += (i > 0 ? ', ' : '') + JSON.stringify(shapeKeys[i]) + ': vals[base + ' + i + ']';
  }
  body += '};';
  try {
    var make = new Function('vals', 'base', body); // eslint-disable-line no-new-func
    shapeMakers++;
    return make;
  } catch (err) {
    canMake = false;
    return null;
  }
}

// A Buffer or typed array of its own (a copy: the input is lent).
function readView() {
  if (dpos >= dend) throw truncated();
  var kind = din[dpos++];
  var length = readVarint();
  if (length > dend - dpos) throw truncated();
  var from = dpos;
  dpos += length;
  if (kind === 0) {
    var buf = Buffer.allocUnsafe(length);
    din.copy(buf, 0, from, dpos);
    return buf;
  }
  var Kind = VIEW_KINDS[kind];
  if (Kind === undefined) throw new RangeError('socket.io-cluster-store: unknown kind of bytes ' + kind);
  if (length % Kind.BYTES_PER_ELEMENT !== 0) throw truncated();
  var bytes = new Uint8Array(length);
  din.copy(bytes, 0, from, dpos);
  return kind === 1 ? bytes : new Kind(bytes.buffer);
}

function decodeCompact(bytes, from, tagsEnd, stop, wide) {
  din = bytes;
  dpos = from;
  dend = tagsEnd;
  tableAt = tagsEnd;
  tableWide = wide;
  tableLength = tagsEnd === stop ? 0 : (stop - 4 - tagsEnd) / (wide ? 2 : 1);
  tablePos = 0;
  keyCount = 0;
  inlineFrom = inlineTo = tableFrom = tableTo = 0;
  var value = readValue();
  if (dpos !== dend || tablePos !== tableLength) throw truncated();
  return value;
}

function decodeNested(bytes, from, tagsEnd, stop, wide) {
  var saved = [din, dpos, dend, tableAt, tableWide, tableLength, tablePos, keys, keyCount,
    inlineChunk, inlineFrom, inlineTo, tableChunk, tableFrom, tableTo, valsTop];
  keys = [];
  try {
    return decodeCompact(bytes, from, tagsEnd, stop, wide);
  } finally {
    din = saved[0];
    dpos = saved[1];
    dend = saved[2];
    tableAt = saved[3];
    tableWide = saved[4];
    tableLength = saved[5];
    tablePos = saved[6];
    keys = saved[7];
    keyCount = saved[8];
    inlineChunk = saved[9];
    inlineFrom = saved[10];
    inlineTo = saved[11];
    tableChunk = saved[12];
    tableFrom = saved[13];
    tableTo = saved[14];
    valsTop = saved[15];
  }
}

// The value whose bytes are bytes[start, end) (default: all of them), so
// that a caller can decode in place, inside a larger buffer.
function decode(bytes, start, end) {
  var at = start === undefined ? 0 : start;
  var stop = end === undefined ? bytes.length : end;
  if (at >= stop) throw truncated();
  var form = bytes[at];
  if (form >= FORM_OLD_COMPACT && form <= FORM_COMPACT_UTF16) {
    var tagsEnd = stop;
    var wide = form === FORM_COMPACT_UTF16 || form === FORM_OLD_COMPACT_UTF16;
    if (form !== FORM_COMPACT && form !== FORM_OLD_COMPACT) {
      if (stop - at < 5) throw truncated();
      var tableBytes = (bytes[stop - 4] | (bytes[stop - 3] << 8) | (bytes[stop - 2] << 16)) +
        bytes[stop - 1] * 0x1000000;
      if (tableBytes > stop - at - 5 || (wide && tableBytes % 2 !== 0)) throw truncated();
      tagsEnd = stop - 4 - tableBytes;
    }
    // A setter on Object.prototype may decode another value meanwhile.
    if (decoding) return decodeNested(bytes, at + 1, tagsEnd, stop, wide);
    decoding = true;
    try {
      return decodeCompact(bytes, at + 1, tagsEnd, stop, wide);
    } finally {
      decoding = false;
      for (var k = 0; k < keyCount; k++) keys[k] = undefined;
      for (var m = 0; m < valsMax; m++) vals[m] = undefined;
      valsTop = valsMax = 0;
      din = null;
      inlineChunk = tableChunk = '';
    }
  }
  // V8's deserializer returns typed arrays and Buffers as views of its
  // input, and the input is lent (see connection.js): it gets a copy of its own.
  if (form === FORM_V8) return v8.deserialize(Buffer.from(bytes.subarray(at + 1, stop)));
  throw new RangeError('socket.io-cluster-store: unknown value encoding ' + form);
}

exports.encode = encode;
exports.decode = decode;
