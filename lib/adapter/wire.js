'use strict';
// The bytes of a socket.io 4 adapter message (socket.io-adapter's
// ClusterAdapter messages and responses: { uid, nsp, type, data }) on the
// broker's topics. The one module that knows this layout:
//
//   byte 0      MAGIC (a message of this layout; anything else is refused)
//   byte 1      type (socket.io-adapter's MessageType)
//   byte 2      n, the byte length of uid
//   bytes 3..   uid (latin1), then data in the codec's bytes (lib/codec.js)
//
// nsp is not sent: the topic a message travels on is the namespace's (or
// the response topic of one adapter of it), so the receiver knows it.
//
// Why not the codec alone: a message is encoded once and decoded by every
// other server, and most of it repeats from message to message. The header
// bytes of a (uid, type) are made once and reused, and the receiver reads
// the type with no work and the uid as a string it already has, so only
// data is encoded and decoded per message.

var codec = require('../codec');

var MAGIC = 0xa4;
var HEADER_CACHE_LIMIT = 256;
var UID_CACHE_SIZE = 8;
var LATIN1 = /^[\x00-\xff]*$/;

var headers = new Map(); // uid -> [header bytes per type]

function header(uid, type) {
  var byType = headers.get(uid);
  if (byType === undefined) {
    if (typeof uid !== 'string' || uid.length > 255 || !LATIN1.test(uid)) {
      throw new TypeError('socket.io-cluster-store: an adapter message needs a uid of at most ' +
        '255 latin1 characters, got ' + String(uid));
    }
    if (headers.size >= HEADER_CACHE_LIMIT) headers.clear();
    headers.set(uid, byType = []);
  }
  var bytes = byType[type];
  if (bytes === undefined) {
    if (!(type >= 0 && type <= 255) || (type | 0) !== type) {
      throw new TypeError('socket.io-cluster-store: an adapter message type is 0..255, got ' + String(type));
    }
    bytes = Buffer.allocUnsafe(3 + uid.length);
    bytes[0] = MAGIC;
    bytes[1] = type;
    bytes[2] = uid.length;
    bytes.latin1Write(uid, 3);
    byType[type] = bytes;
  }
  return bytes;
}

// The bytes for message ({ uid, type, data }; nsp is left out). A
// TypeError (ERR_CLUSTER_STORE_VALUE, naming `what`) for a data the codec
// cannot hold. The result is the codec's: copied by the caller before the
// next encode.
function encode(message, what) {
  return codec.encode(message.data, what, header(message.uid, message.type));
}

// The uids met lately, as strings: a server hears the same few.
var uidBytes = new Array(UID_CACHE_SIZE);
var uidStrings = new Array(UID_CACHE_SIZE);
var uidNext = 0;

function readUid(bytes, start, end) {
  var len = end - start;
  for (var k = 0; k < UID_CACHE_SIZE; k++) {
    var known = uidBytes[k];
    if (known === undefined || known.length !== len) continue;
    var i = 0;
    while (i < len && known[i] === bytes[start + i]) i++;
    if (i === len) return uidStrings[k];
  }
  var s = bytes.latin1Slice(start, end);
  uidBytes[uidNext] = Uint8Array.prototype.slice.call(bytes, start, end);
  uidStrings[uidNext] = s;
  uidNext = (uidNext + 1) % UID_CACHE_SIZE;
  return s;
}

// The message in bytes[start, end) (default: all of them), with nsp (the
// namespace of the topic it came on): { uid, nsp, type, data }. Throws a
// RangeError for bytes of another layout (another version of this
// package) or cut short.
function decode(bytes, nsp, start, end) {
  var at = start === undefined ? 0 : start;
  var stop = end === undefined ? bytes.length : end;
  if (stop - at < 4 || bytes[at] !== MAGIC || stop - at < 4 + bytes[at + 2]) {
    throw new RangeError('socket.io-cluster-store: not an adapter message of this version');
  }
  var dataAt = at + 3 + bytes[at + 2];
  return { uid: readUid(bytes, at + 3, dataAt), nsp: nsp, type: bytes[at + 1],
    data: codec.decode(bytes, dataAt, stop) };
}

module.exports = {
  encode: encode,
  decode: decode
};
