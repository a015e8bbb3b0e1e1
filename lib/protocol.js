'use strict';
// The constants JavaScript shares with the engine: frame types, reply
// statuses, header flags, the words that describe a delivered frame, and
// the names of the broker's counters. They mirror src/frame.h and
// src/addon.c by hand, in this one file, until the addon exports them.

// Frame types (enum frame_type).
var TYPE = {
  SUBSCRIBE: 2, UNSUBSCRIBE: 3, PUBLISH: 4, MESSAGE: 5, KV_GET: 6, KV_SET: 7, KV_HAS: 8,
  KV_DEL: 9, KV_CLEAR: 10, KV_EXPIRE: 11, KV_PERSIST: 12, CLOSE: 13, STATS: 14, SYNC: 15,
  REPLY: 16
};

// A reply's outcome (enum frame_status).
var STATUS = { OK: 0, MISSING: 1, NO_MEMORY: 2, BAD_REQUEST: 3 };

// Header flags JavaScript may set (enum frame_flag).
var FLAG = { BARRIER: 1 };

// The addon describes each delivered frame with DESCRIPTOR_WORDS numbers
// (src/addon.c): word 0 the type (low byte), the status (next byte) and
// WORD_SHARED; 1 the endpoint; 2 the request id; 3 where field a starts in
// the batch's bytes; 4 field a's length; 5 field b's length; 6 the
// payload's length. With WORD_SHARED the payload is in the shared pool:
// word 2 is then its region and word 5 its offset in that region.
var DESCRIPTOR_WORDS = 7;
var WORD_SHARED = 0x10000;

// The broker's counters, in the order of a STATS reply (enum frame_stat).
// These names are API (stats()); 'channels' counts topics, as the C side
// still calls them.
var STAT_NAMES = [
  'workers', 'workersCutOff', 'framesIn', 'bytesIn', 'messagesPublished', 'messagesDelivered',
  'bytesDelivered', 'channels', 'subscriptions', 'clients', 'keys', 'dataBytes', 'queuedBytes',
  'maxQueuedBytes', 'queueLimit', 'maxFrameSize', 'sharedDeliveries'
];

// The counters as an object keyed by STAT_NAMES, or null without values.
function statsObject(values) {
  if (!values) return null;
  var out = {};
  for (var i = 0; i < STAT_NAMES.length; i++) out[STAT_NAMES[i]] = values[i];
  return out;
}

module.exports = {
  TYPE: TYPE,
  STATUS: STATUS,
  FLAG: FLAG,
  DESCRIPTOR_WORDS: DESCRIPTOR_WORDS,
  WORD_SHARED: WORD_SHARED,
  STAT_NAMES: STAT_NAMES,
  statsObject: statsObject
};
