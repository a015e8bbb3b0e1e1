'use strict';
// The bytes of a socket.io 4 adapter message (socket.io-adapter's
// ClusterAdapter messages and responses: { uid, nsp, type, data }) on the
// broker's topics. The one module that knows this layout:
//
//   byte 0      the form of data (anything else is refused):
//                 DATA         data itself follows
//                 PACKET       data is { packet }: packet follows
//                 PACKET_OPTS  data is { packet, opts }: [packet, opts] follows
//   byte 1      type (socket.io-adapter's MessageType)
//   byte 2      n, the byte length of uid
//   bytes 3..   uid (latin1), then what follows, in the codec's bytes
//               (lib/codec.js)
//
// The two short forms are a serverSideEmit's and a broadcast's, the
// messages that come by the thousand: their envelope object and its keys
// are neither written nor read.
// nsp is not sent: the topic a message travels on is the namespace's (or
// the response topic of one adapter of it), so the receiver knows it.
//
// Why not the codec alone: a message is encoded once and decoded by every
// other server, and most of it repeats from message to message. The header
// bytes of a (uid, type) are made once and reused, and the receiver reads
// the type with no work and the uid as a string it already has, so only
// data is encoded and decoded per message.

var codec = require('../codec');

var DATA = 0xa4;
var PACKET = 0xa5;
var PACKET_OPTS = 0xa6;
var hasOwn = Object.prototype.hasOwnProperty;
var objectProto = Object.prototype;
var HEADER_CACHE_LIMIT = 256;
var UID_CACHE_SIZE = 8;
var LATIN1 = /^[\x00-\xff]*$/;

var headers = new Map(); // uid -> [header bytes per type and form]

function header(uid, type, form) {
  var byType = headers.get(uid);
  if (byType === undefined) {
    if (typeof uid !== 'string' || uid.length > 255 || !LATIN1.test(uid)) {
      throw new TypeError('socket.io-cluster-store: an adapter message needs a uid of at most ' +
        '255 latin1 characters, got ' + String(uid));
    }
    if (headers.size >= HEADER_CACHE_LIMIT) headers.clear();
    headers.set(uid, byType = []);
  }
  var slot = type * 4 + form - DATA;
  var bytes = byType[slot];
  if (bytes === undefined) {
    if (!(type >= 0 && type <= 255) || (type | 0) !== type) {
      throw new TypeError('socket.io-cluster-store: an adapter message type is 0..255, got ' + String(type));
    }
    bytes = Buffer.allocUnsafe(3 + uid.length);
    bytes[0] = form;
    bytes[1] = type;
    bytes[2] = uid.length;
    bytes.latin1Write(uid, 3);
    byType[slot] = bytes;
  }
  return bytes;
}

// The bytes for message ({ uid, type, data }; nsp is left out). A
// TypeError (ERR_CLUSTER_STORE_VALUE, naming `what`) for a data the codec
// cannot hold. The result is the codec's: copied by the caller before the
// next encode.
function encode(message, what) {
  var data = message.data;
  var form = formOf(data);
  var value = form === DATA ? data : form === PACKET ? data.packet : [data.packet, data.opts];
  return codec.encode(value, what, header(message.uid, message.type, form));
}

// Which form data takes: a short one when its own keys are exactly
// packet, or packet and opts (a plain object's).
function formOf(data) {
  if (typeof data !== 'object' || data === null || Object.getPrototypeOf(data) !== objectProto) return DATA;
  var packet = false;
  var opts = false;
  for (var key in data) {
    if (!hasOwn.call(data, key)) continue;
    if (key === 'packet') packet = true;
    else if (key === 'opts') opts = true;
    else return DATA;
  }
  if (!packet) return DATA;
  return opts ? PACKET_OPTS : PACKET;
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
  var form = bytes[at];
  if (stop - at < 4 || (form !== DATA && form !== PACKET && form !== PACKET_OPTS) ||
      stop - at < 4 + bytes[at + 2]) {
    throw new RangeError('socket.io-cluster-store: not an adapter message of this version');
  }
  var valueAt = at + 3 + bytes[at + 2];
  var value = codec.decode(bytes, valueAt, stop);
  var data;
  if (form === DATA) {
    data = value;
  } else if (form === PACKET) {
    data = { packet: value };
  } else {
    if (!Array.isArray(value) || value.length !== 2) {
      throw new RangeError('socket.io-cluster-store: a broadcast message without its packet and options');
    }
    data = { packet: value[0], opts: value[1] };
  }
  return { uid: readUid(bytes, at + 3, valueAt), nsp: nsp, type: bytes[at + 1], data: data };
}

module.exports = {
  encode: encode,
  decode: decode
};
