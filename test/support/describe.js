'use strict';
// describe(value) -> a JSON string that says exactly what a value is: its
// types, structure, array holes, -0, NaN, Dates, Maps, Sets, BigInts,
// prototypes (plain / null / other) and shared or cyclic references. Two
// values that describe() the same are the same for the purposes of the
// store contract ("same types and structure"). Used by the test process
// and by the fixtures, so values can be compared across processes without
// trusting any transport but the one under test.

var crypto = require('crypto');

var BIG_STRING = 4096;

function describe(value) {
  var seen = new Map();

  function num(n) {
    if (Object.is(n, -0)) return '-0';
    return String(n); // NaN, Infinity, -Infinity spelled out
  }

  function str(s) {
    if (s.length <= BIG_STRING) return { t: 'string', v: s };
    // utf16le keeps every code unit, lone surrogates included
    return {
      t: 'string',
      length: s.length,
      sha256: crypto.createHash('sha256').update(Buffer.from(s, 'utf16le')).digest('hex')
    };
  }

  function protoName(o) {
    var p = Object.getPrototypeOf(o);
    if (p === null) return 'null';
    return (p.constructor && p.constructor.name) || '?';
  }

  function d(v) {
    switch (typeof v) {
      case 'undefined': return { t: 'undefined' };
      case 'boolean': return { t: 'boolean', v: v };
      case 'number': return { t: 'number', v: num(v) };
      case 'bigint': return { t: 'bigint', v: v.toString() };
      case 'string': return str(v);
      case 'symbol': return { t: 'symbol', v: String(v) };
      case 'function': return { t: 'function' };
    }
    if (v === null) return { t: 'null' };
    if (seen.has(v)) return { t: 'ref', to: seen.get(v) };
    var id = seen.size;
    seen.set(v, id);
    var out = { t: protoName(v), id: id };
    if (Array.isArray(v)) {
      out.length = v.length;
      out.items = [];
      for (var i = 0; i < v.length; i++) out.items.push(i in v ? d(v[i]) : { t: 'hole' });
      var extra = Object.keys(v).filter(function (k) { return !/^\d+$/.test(k); });
      if (extra.length) out.props = extra.map(function (k) { return [k, d(v[k])]; });
      return out;
    }
    if (v instanceof Date) {
      out.time = num(v.getTime());
      return out;
    }
    if (v instanceof Map) {
      out.entries = [];
      v.forEach(function (val, key) { out.entries.push([d(key), d(val)]); });
      return out;
    }
    if (v instanceof Set) {
      out.values = [];
      v.forEach(function (val) { out.values.push(d(val)); });
      return out;
    }
    if (v instanceof RegExp) {
      out.source = v.source;
      out.flags = v.flags;
      return out;
    }
    if (ArrayBuffer.isView(v)) {
      out.bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
      return out;
    }
    if (v instanceof Error) {
      out.message = v.message;
    }
    out.props = Object.keys(v).map(function (k) { return [k, d(v[k])]; });
    return out;
  }

  return JSON.stringify(d(value));
}

module.exports = describe;
