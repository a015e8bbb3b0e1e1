'use strict';
// The constants JavaScript shares with the engine: frame types, reply
// statuses, header flags, the words that describe a delivered frame, and
// the names of the broker's counters. None is copied here: the addon
// exports them from the lists in src/frame.h and src/addon.c
// (native.constants), and this file only gives them their usual names.
var constants = require('./native').constants;

// The addon gives each table its properties one at a time, and V8 keeps
// an object made so as a dictionary past a dozen of them: TYPE (24 names)
// was one, and every TYPE.X on the per-call path a lookup. A copy that
// JSON.parse makes in one go has fast properties. Frozen like the original.
function fastTable(table) {
  return Object.freeze(JSON.parse(JSON.stringify(table)));
}

// Frame types (frame.h's FRAME_TYPE_LIST), e.g. TYPE.PUBLISH.
var TYPE = fastTable(constants.TYPE);

// A reply's outcome (FRAME_STATUS_LIST), e.g. STATUS.MISSING.
var STATUS = fastTable(constants.STATUS);

// Header flags (FRAME_FLAG_LIST). JavaScript may set BARRIER, RETAIN and
// UNROUTED; SHARED is the engine's own (the addon drops it from what it is
// asked to send).
var FLAG = fastTable(constants.FLAG);

// The addon describes each delivered frame with DESCRIPTOR_WORDS numbers;
// WORD names their indices (src/addon.c's ADDON_WORD_LIST): TYPE holds the
// type (low byte), the status (next byte) and WORD_SHARED, set when the
// payload is in the shared pool, at REGION_OFFSET in region REGION.
var DESCRIPTOR_WORDS = constants.DESCRIPTOR_WORDS;
var WORD = fastTable(constants.WORD);
var WORD_SHARED = constants.WORD_SHARED;

// Frames handed to the addon in one call (channelSendMany) are described
// with SEND_WORDS numbers each; SEND_WORD names their indices (src/
// addon_internal.h's ADDON_SEND_WORD_LIST).
var SEND_WORDS = constants.SEND_WORDS;
var SEND_WORD = fastTable(constants.SEND_WORD);

// The broker's counters, in the order of a STATS reply (FRAME_STAT_LIST).
// These names are API (stats()); 'channels' counts topics, as the C side
// still calls them.
var STAT_NAMES = constants.STAT_NAMES;

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
  WORD: WORD,
  WORD_SHARED: WORD_SHARED,
  SEND_WORDS: SEND_WORDS,
  SEND_WORD: SEND_WORD,
  STAT_NAMES: STAT_NAMES,
  statsObject: statsObject
};
