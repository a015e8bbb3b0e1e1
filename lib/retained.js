'use strict';
// The broker's retention and bound namespaces, for front ends (the
// socket.io 4 adapter's connection state recovery uses them): each call
// takes the process's connection (connection.js) and the endpoint it acts
// for, and calls back once the broker answered. See src/frame.h for what
// the broker does with each.
//
//   publish(conn, endpoint, topic, payload, cb)   cb(err, offset)
//   publishRemote(conn, endpoint, topic, payload, cb)  the same, to other processes only
//   keep(conn, endpoint, topic, payload, cb)      the same, delivered to no one
//   read(conn, endpoint, topic, offset, cb)       cb(err, [{ offset, payload }] | null)
//   bind(conn, endpoint, namespace, ms)           no answer
//   take(conn, endpoint, namespace, key, cb)      cb(err, Buffer | null)
//
// An offset is a string (FRAME_OFFSET_SIZE characters: the broker's epoch
// and the message's number, in hex); offsets of one broker compare as
// strings as their messages' order does. read() answers null when the
// broker cannot give everything after the offset (another broker's, or
// older than a message it dropped): the caller must not think it has all.

var constants = require('./native').constants;
var protocol = require('./protocol');

var TYPE = protocol.TYPE;
var STATUS = protocol.STATUS;
var FLAG = protocol.FLAG;
var OFFSET_SIZE = constants.OFFSET_SIZE;
var ENTRY_HEAD_SIZE = OFFSET_SIZE + 4;
var HEAD_SIZE = 4;
// The pages one read() may take before it gives up: a log that grows
// faster than it is read is not one to catch up with.
var MAX_PAGES = 1000;

var OFFSET_PATTERN = new RegExp('^[0-9a-f]{16}-[0-9a-f]{16}$');

function isOffset(value) {
  return typeof value === 'string' && value.length === OFFSET_SIZE && OFFSET_PATTERN.test(value);
}

function statusError(what, status, payload) {
  var text = payload && payload.length ? payload.toString('utf8') : 'status ' + status;
  var err = new Error('socket.io-cluster-store: ' + what + ' failed: ' + text);
  err.code = status === STATUS.NO_MEMORY ? 'ERR_CLUSTER_STORE_MEMORY' : 'ERR_CLUSTER_STORE_REQUEST';
  return err;
}

function request(conn, endpoint, type, topic, key, payload, flags, callback) {
  conn.send({ type: type, endpoint: endpoint, topic: topic, client: undefined, key: key,
    payload: payload, flags: flags, now: false, callback: callback });
}

function retain(conn, endpoint, topic, payload, flags, cb) {
  request(conn, endpoint, TYPE.PUBLISH, topic, undefined, payload, flags,
    function (err, status, reply) {
      if (err) return cb(err);
      if (status !== STATUS.OK) return cb(statusError('a retained publish', status, reply));
      cb(null, reply.toString('latin1'));
    });
}

// Publishes payload (a Buffer) on topic and keeps it in the topic's log;
// cb(err, offset) once the broker has taken it.
function publish(conn, endpoint, topic, payload, cb) {
  retain(conn, endpoint, topic, payload, FLAG.RETAIN, cb);
}

// As publish, but the broker delivers it to the subscribers of other
// processes only: the caller delivers it in its own (FLAG.REMOTE).
function publishRemote(conn, endpoint, topic, payload, cb) {
  retain(conn, endpoint, topic, payload, FLAG.RETAIN | FLAG.REMOTE, cb);
}

// Keeps payload in topic's log, for later readers, without delivering it
// to the topic's subscribers (the caller knows none wants it now).
function keep(conn, endpoint, topic, payload, cb) {
  retain(conn, endpoint, topic, payload, FLAG.RETAIN | FLAG.UNROUTED, cb);
}

// The messages of topic's log after offset, in order, page after page:
// cb(null, [{ offset, payload }]) (a Buffer each, copied), or cb(null,
// null) when the broker cannot give them all.
function read(conn, endpoint, topic, offset, cb) {
  if (!isOffset(offset)) return process.nextTick(cb, null, null);
  var entries = [];
  var pages = 0;
  function next(from) {
    request(conn, endpoint, TYPE.RETAINED_READ, topic, from, undefined, 0,
      function (err, status, reply) {
        if (err) return cb(err);
        if (status === STATUS.MISSING || status === STATUS.BAD_REQUEST) return cb(null, null);
        if (status !== STATUS.OK) return cb(statusError('reading retained messages', status, reply));
        if (reply.length < HEAD_SIZE) return cb(null, null);
        var left = reply.readUInt32LE(0);
        var pos = HEAD_SIZE;
        var last = null;
        while (pos + ENTRY_HEAD_SIZE <= reply.length) {
          var entryOffset = reply.toString('latin1', pos, pos + OFFSET_SIZE);
          var length = reply.readUInt32LE(pos + OFFSET_SIZE);
          var start = pos + ENTRY_HEAD_SIZE;
          if (start + length > reply.length) return cb(null, null);
          entries.push({ offset: entryOffset, payload: Buffer.from(reply.subarray(start, start + length)) });
          last = entryOffset;
          pos = start + length;
        }
        if (left === 0) return cb(null, entries);
        if (last === null || ++pages >= MAX_PAGES) return cb(null, null);
        next(last);
      });
  }
  next(offset);
}

// Binds namespace to this process's channel: it stays while the channel
// does, and goes ms after it closes (the process exited or died), unless
// something else (an expiry, a take, a clear) decides first.
function bind(conn, endpoint, namespace, ms) {
  var payload = Buffer.alloc(4);
  payload.writeUInt32LE(ms, 0);
  conn.send({ type: TYPE.KV_BIND, endpoint: endpoint, topic: undefined, client: namespace,
    key: undefined, payload: payload, flags: 0, now: false, callback: null });
}

// The value of key in namespace, and the namespace gone, in one step: of
// two processes that take it, one gets it, the other null.
function take(conn, endpoint, namespace, key, cb) {
  conn.send({ type: TYPE.KV_TAKE, endpoint: endpoint, topic: undefined, client: namespace,
    key: key, payload: undefined, flags: FLAG.BARRIER, now: false,
    callback: function (err, status, reply) {
      if (err) return cb(err);
      if (status === STATUS.MISSING) return cb(null, null);
      if (status !== STATUS.OK) return cb(statusError('taking a value', status, reply));
      cb(null, Buffer.from(reply));
    } });
}

module.exports = {
  OFFSET_SIZE: OFFSET_SIZE,
  isOffset: isOffset,
  publish: publish,
  publishRemote: publishRemote,
  keep: keep,
  read: read,
  bind: bind,
  take: take
};
