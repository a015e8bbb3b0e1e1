'use strict';
// The value codec alone (lib/codec.js): exact round trips across the edges
// of its formats (string lengths around the one-byte header, ASCII vs
// UTF-16, numbers around the integer forms), random values, and refusals.

var assert = require('assert');
var codec = require('../lib/codec');

function roundTrip(v) {
  // Copy out: encode may return a view of a buffer the next call reuses.
  return codec.decode(Buffer.from(codec.encode(v, 'a test value')));
}

function sameString(a, b) {
  assert.strictEqual(typeof a, 'string');
  assert.ok(a === b, 'string of ' + b.length + ' chars changed');
}

describe('value codec', function () {
  it('keeps strings of every length around the format edges, ASCII or not', function () {
    var pieces = ['x', 'é', '😀', '\ud800', '\udc00', '\u0000', '\u007f', '\u0080', '\uffff'];
    for (var len = 0; len < 300; len++) {
      pieces.forEach(function (p) {
        var s = 'a'.repeat(len) + p;
        sameString(roundTrip(s), s);
        sameString(roundTrip(p + 'a'.repeat(len)), p + 'a'.repeat(len));
        var keyed = {};
        keyed[s] = len;
        assert.strictEqual(roundTrip(keyed)[s], len);
      });
    }
  });

  // Short ASCII strings and keys are written in line, the others in the
  // value's string table (ASCII, or UTF-16 if one of them is not), keys
  // met again as an index, strings decoded from chunks of the bytes.
  it('gives short strings met again back as they were, never another one of the same slot', function () {
    // Short strings that start a value are kept by a hash of their bytes:
    // thousands of them, of every short length, over and over, most
    // sharing a slot with others (and with their own reversal, or the
    // same letters in another case), each alone and first in a packet.
    var words = [];
    for (var i = 0; i < 3000; i++) {
      var w = (i * 7919).toString(36).slice(0, 1 + i % 12);
      words.push(w, w.split('').reverse().join(''), w.toUpperCase(), w + '\u00e9'.slice(0, i % 2));
    }
    for (var round = 0; round < 3; round++) {
      words.forEach(function (w, k) {
        var back = roundTrip([w, k]);
        assert.strictEqual(back[0], w);
        assert.strictEqual(back[1], k);
      });
    }
    // Bytes a newer encoder never writes in line (latin1 above 0x7f), as
    // another process might send them: the same characters every time.
    var latin1 = Buffer.from([6, 8, 2, 7, 6, 0x61, 0xe9, 0xff, 7, 6, 0x61, 0xe9, 0xff]);
    for (var n = 0; n < 3; n++) assert.deepStrictEqual(codec.decode(latin1), ['a\u00e9\u00ff', 'a\u00e9\u00ff']);
  });

  it('keeps many strings and keys of every kind in one value, in order', function () {
    var long = 'L'.repeat(70); // past the length of keys given an index
    var keys = ['id', 'a-key-of-some-length', 'x\u0000', '0', '7', '__proto__', long, ''];
    function text(i, ascii) {
      var len = [0, 1, 12, 13, 14, 200, 255, 256, 257, 600][i % 10];
      var s = '';
      for (var c = 0; c < len; c++) s += String.fromCharCode(33 + (i * 7 + c) % 90);
      if (!ascii && i % 3 === 0) s += ['é', '\udc00', '😀'][i % 9 / 3];
      return s;
    }
    [true, false].forEach(function (ascii) {
      var list = [];
      for (var i = 0; i < 40; i++) {
        var o = i % 4 === 0 ? Object.create(null) : {};
        for (var k = 0; k < keys.length; k++) {
          var key = keys[(k + i) % keys.length];
          if (!ascii && key === '') key = ['é', '\ud83d', 'ü' + i][i % 3];
          var value = (i + k) % 5 === 0 ? i : text(i + k, ascii);
          Object.defineProperty(o, key, { value: value, enumerable: true, writable: true, configurable: true });
        }
        list.push(o);
      }
      var v = { requestId: 'r', list: list, tail: text(7, ascii) };
      var bytes = Buffer.from(codec.encode(v, 'a test value'));
      assert.strictEqual(bytes[0], ascii ? 7 : 8, 'form');
      var r = codec.decode(bytes);
      assert.deepStrictEqual(r, v);
      r.list.forEach(function (o, i) {
        assert.deepStrictEqual(Object.keys(o), Object.keys(list[i]), 'keys of ' + i);
        assert.strictEqual(Object.getPrototypeOf(o), Object.getPrototypeOf(list[i]));
      });
    });
  });

  it('decodes a value inside the decoding of another (a setter on Object.prototype)', function () {
    var inner = { list: [{ name: 'a string longer than thirteen', n: 1 }, { name: 'é', n: 2 }] };
    var innerBytes = Buffer.from(codec.encode(inner, 'inner'));
    var outer = { first: 'one', hook: 1, again: [{ first: 'a string longer than thirteen' }] };
    var outerBytes = Buffer.from(codec.encode(outer, 'outer'));
    var decoded = [];
    Object.defineProperty(Object.prototype, 'hook', {
      configurable: true,
      set: function () { decoded.push(codec.decode(innerBytes)); }
    });
    var r;
    try {
      r = codec.decode(outerBytes);
    } finally {
      delete Object.prototype.hook;
    }
    assert.deepStrictEqual(decoded, [inner]);
    assert.strictEqual(r.first, 'one');
    assert.deepStrictEqual(r.again, outer.again);
  });

  it('keeps numbers exactly, including -0, NaN and the integer form edges', function () {
    [0, -0, 1, -1, 127, 128, -128, -129, 2147483647, -2147483648, 2147483648, -2147483649,
      0.1, -1e300, 5e-324, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity].forEach(function (n) {
      assert.ok(Object.is(roundTrip(n), n), String(n));
    });
  });

  it('round-trips random nested values', function () {
    var seed = 42;
    function rand(n) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    }
    function value(depth) {
      switch (rand(depth > 3 ? 6 : 9)) {
        case 0: return rand(2) === 0;
        case 1: return null;
        case 2: return undefined;
        case 3: return (rand(1 << 30) - (1 << 29)) / (rand(3) + 1);
        case 4: return String.fromCharCode.apply(null, Array.from({ length: rand(80) }, function () {
          return rand(4) === 0 ? rand(0x10000) : 32 + rand(90);
        }));
        case 5: return new Date(rand(1 << 30) * 1000);
        case 6: return Array.from({ length: rand(6) }, function () { return value(depth + 1); });
        case 7: {
          var o = {};
          for (var i = rand(6); i > 0; i--) o['k' + rand(50) + (rand(5) === 0 ? 'é' : '')] = value(depth + 1);
          return o;
        }
        default: return [, value(depth + 1), ,]; // eslint-disable-line no-sparse-arrays
      }
    }
    for (var i = 0; i < 3000; i++) {
      var v = value(0);
      assert.deepStrictEqual(roundTrip(v), v);
    }
  });

  it('keeps Buffers and typed arrays in the compact form, kind, bytes and all', function () {
    var backing = new ArrayBuffer(64);
    new Uint8Array(backing).forEach(function (x, i, a) { a[i] = i * 7; });
    var sizes = [0, 1, 63, 64, 65, 300];
    var values = [];
    sizes.forEach(function (n) {
      values.push(Buffer.alloc(n, n & 0xff), new Uint8Array(n).fill(3), new Int8Array(n).fill(-3),
        new Uint8ClampedArray(n).fill(200), new Int16Array(n).fill(-300), new Uint16Array(n).fill(60000),
        new Int32Array(n).fill(-70000), new Uint32Array(n).fill(4000000000), new Float32Array(n).fill(1.5),
        new Float64Array(n).fill(-0.1), new BigInt64Array(n).fill(-5n), new BigUint64Array(n).fill(5n));
    });
    // Views into a larger buffer (a pooled Buffer, an offset typed array).
    values.push(Buffer.from('pooled bytes'), new Uint16Array(backing, 6, 5), new Float64Array(backing, 16, 3));
    values.forEach(function (v) {
      var packet = { name: 'file', args: [{ data: v, size: v.length }] };
      var bytes = Buffer.from(codec.encode(packet, 'x'));
      assert.strictEqual(bytes[0], 6, 'compact form for ' + v.constructor.name);
      var r = codec.decode(bytes);
      var d = r.args[0].data;
      assert.strictEqual(Object.getPrototypeOf(d), Object.getPrototypeOf(v), v.constructor.name);
      assert.strictEqual(d.length, v.length);
      assert.deepStrictEqual(Buffer.from(d.buffer, d.byteOffset, d.byteLength),
        Buffer.from(v.buffer, v.byteOffset, v.byteLength), v.constructor.name + ' bytes');
      // Its own bytes: the input may be written over once decoded.
      bytes.fill(0);
      assert.deepStrictEqual(Buffer.from(d.buffer, d.byteOffset, d.byteLength),
        Buffer.from(v.buffer, v.byteOffset, v.byteLength), v.constructor.name + ' copied');
    });
    // The same Buffer twice keeps its identity (V8 form); DataViews,
    // subclasses and look-alikes take the V8 form too.
    var shared = Buffer.from('shared');
    var r = roundTrip({ a: shared, b: shared });
    assert.strictEqual(r.a, r.b);
    assert.deepStrictEqual(r.a, shared);
    class Bytes extends Uint8Array {}
    [new DataView(new ArrayBuffer(4)), new Bytes(3)].forEach(function (v) {
      var encoded;
      try {
        encoded = codec.encode(v, 'x');
      } catch (err) {
        return assert.strictEqual(err.code, 'ERR_CLUSTER_STORE_VALUE'); // as V8 refuses it
      }
      assert.strictEqual(encoded[0], 2, 'V8 form');
    });
    var fake = Object.create(Uint8Array.prototype);
    assert.strictEqual(codec.encode(fake, 'x')[0], 2, 'V8 form');
  });

  it('refuses views whose bytes are cut or of an unknown kind', function () {
    var bytes = Buffer.from(codec.encode([new Float64Array([1, 2])], 'x'));
    for (var cut = 1; cut < bytes.length; cut++) {
      assert.throws(function () { codec.decode(bytes.subarray(0, cut)); }, RangeError);
    }
    // [6, T_ARRAY, 1, T_VIEW, kind, length...]
    var kindAt = 4;
    var bad = Buffer.from(bytes);
    bad[kindAt] = 99;
    assert.throws(function () { codec.decode(bad); }, /unknown kind/);
    var odd = Buffer.from([6, 8, 1, 14, 9, 3, 1, 2, 3]); // 3 bytes of Float64Array
    assert.throws(function () { codec.decode(odd); }, RangeError);
    assert.throws(function () { codec.decode(Buffer.from([9, 1])); }, /unknown value encoding/);
    assert.throws(function () { codec.decode(Buffer.from([1, 1])); }, /unknown value encoding/);
  });

  // Past a few of one shape, objects are made by a function made for it.
  it('makes objects of a shape met again the same as the first ones, keys of every kind', function () {
    var odd = {};
    ['a"b', 'back\\slash', 'line\u2028sep', 'lone\ud800', '', '0', '10', '1', 'constructor', 'toString',
      'é', 'a key longer than thirty-two characters, in the table'].forEach(function (k, i) {
      odd[k] = i % 2 ? [i, { k: k }] : 'v' + i;
    });
    var proto = JSON.parse('{"first": 1, "__proto__": {"polluted": true}, "last": [2]}');
    var values = [odd, proto, { type: 'event', name: 'n', args: [odd, proto], endpoint: '' }];
    values.forEach(function (v) {
      var bytes = Buffer.from(codec.encode(v, 'x'));
      for (var round = 0; round < 12; round++) {
        var r = codec.decode(bytes);
        assert.deepStrictEqual(r, v, 'round ' + round);
        assert.deepStrictEqual(Object.keys(r), Object.keys(v), 'keys, round ' + round);
        assert.strictEqual(Object.getPrototypeOf(r), Object.prototype);
      }
    });
    // One shape, its long keys in an ASCII table or a UTF-16 one by turns.
    for (var round = 0; round < 12; round++) {
      var text = round % 2 ? 'wide é' : 'narrow';
      var v = { 'a long key in the string table': text, 'another long key, also there': [text], s: 1 };
      var r = codec.decode(Buffer.from(codec.encode(v, 'x')));
      assert.deepStrictEqual(r, v, 'round ' + round);
      assert.deepStrictEqual(Object.keys(r), Object.keys(v));
    }
    var p = codec.decode(Buffer.from(codec.encode(proto, 'x')));
    assert.ok(Object.prototype.hasOwnProperty.call(p, '__proto__'));
    assert.strictEqual(p.polluted, undefined);
    assert.strictEqual({}.polluted, undefined);
  });

  it('keeps identity of shared and cyclic references (V8 form)', function () {
    var shared = { n: 1 };
    var v = { a: shared, b: [shared] };
    var r = roundTrip(v);
    assert.strictEqual(r.a, r.b[0]);
    var cyc = { name: 'loop' };
    cyc.self = cyc;
    var c = roundTrip(cyc);
    assert.strictEqual(c.self, c);
    // Past its first objects, the encoder looks them up in a Set instead
    // of a list: one met again there is found as well.
    var many = [];
    for (var i = 0; i < 300; i++) many.push({ i: i });
    many.push(many[3]);
    var m = roundTrip(many);
    assert.strictEqual(m.length, 301);
    assert.strictEqual(m[300], m[3]);
    assert.strictEqual(m[299].i, 299);
  });

  it('refuses functions and symbols with a TypeError, and keeps working', function () {
    [function () {}, Symbol('s'), { nested: [function () {}] }].forEach(function (bad) {
      assert.throws(function () { codec.encode(bad, 'the value of "k"'); }, function (err) {
        return err instanceof TypeError && /cannot store the value of "k"/.test(err.message);
      });
      assert.deepStrictEqual(roundTrip({ ok: [1, 'two'] }), { ok: [1, 'two'] });
    });
  });

  it('refuses truncated input with an error instead of inventing a value', function () {
    var repeated = [];
    for (var i = 0; i < 6; i++) repeated.push({ name: 'item', index: i, label: 'a label longer than 13' });
    [{ text: 'hello world', list: [1, 2, 3] }, { text: 'hello world, in the table', list: repeated },
      { text: 'héllo', list: repeated }].forEach(function (v) {
      var bytes = Buffer.from(codec.encode(v));
      for (var cut = 1; cut < bytes.length; cut++) {
        assert.throws(function () { codec.decode(bytes.subarray(0, cut)); }, RangeError);
      }
    });
  });
});

// Values from clients are hostile input.
describe('value codec: hostile values', function () {
  function nested(depth, make) {
    var v = 'bottom';
    for (var i = 0; i < depth; i++) v = make(v);
    return v;
  }
  function deepObject(v) { return { a: v }; }

  // V8's serializer writes ~3,100 levels of objects but its
  // deserializer reads only ~1,950 (fewer on a deeper stack): a value the
  // receivers cannot decode must be refused at the sender.
  it('refuses values nested deeper than every process can decode, naming the call', function () {
    var kinds = {
      object: deepObject,
      array: function (v) { return [v]; },
      'object with a Map (V8 form)': function (v) { return { m: new Map([['k', v]]) }; },
      Set: function (v) { return new Set([v]); },
      'sparse array': function (v) { var a = []; a[5] = v; return a; },
      // Walked by index, and past a run of holes by keys.
      'long array with a Map': function (v) { var a = new Array(1500).fill(0); a[0] = new Map(); a[1400] = v; return a; },
      'long sparse array with a Map': function (v) { var a = [new Map()]; a[1e6] = v; return a; }
    };
    Object.keys(kinds).forEach(function (kind) {
      [2000, 2500, 3000].forEach(function (depth) {
        assert.throws(function () { codec.encode(nested(depth, kinds[kind]), 'the value of "deep"'); }, function (err) {
          assert.ok(err instanceof TypeError, kind + ' ' + depth + ': ' + err.stack);
          assert.strictEqual(err.code, 'ERR_CLUSTER_STORE_VALUE');
          assert.match(err.message, /^socket\.io-cluster-store: cannot store the value of "deep": /);
          assert.match(err.message, /nested more than 1000 levels deep/, err.message);
          return true;
        }, kind + ' at depth ' + depth);
      });
    });
    assert.deepStrictEqual(roundTrip({ ok: [1, 'two'] }), { ok: [1, 'two'] });
  });

  it('round-trips values nested up to the limit, in either form', function () {
    // The top-level array and the 999 objects in it: 1000 levels.
    // (assert.deepStrictEqual recurses too deep for these: walked down.)
    function levels(v, down) {
      var n = 0;
      while (typeof v === 'object') {
        v = down(v);
        n++;
      }
      assert.strictEqual(v, 'bottom');
      return n;
    }
    var v = [nested(999, deepObject)];
    var bytes = Buffer.from(codec.encode(v, 'x'));
    assert.strictEqual(bytes[0], 6, 'compact form');
    assert.strictEqual(levels(codec.decode(bytes)[0], function (x) { return x.a; }), 999);
    var m = [nested(999, function (x) { return new Map([[1, x]]); })];
    var mb = Buffer.from(codec.encode(m, 'x'));
    assert.strictEqual(mb[0], 2, 'V8 form');
    assert.strictEqual(levels(codec.decode(mb)[0], function (x) { return x.get(1); }), 999);
    // Shared references are written once: depth counts the first visit.
    var shared = nested(900, deepObject);
    var wide = { a: shared, b: { c: shared } };
    assert.deepStrictEqual(roundTrip(wide), wide);
  });

  // A sparse array cost one byte and one loop turn per hole.
  it('encodes runs of holes in a few bytes, and huge sparse arrays fast', function () {
    var a = [];
    a.length = 50000000;
    a[3] = 'x';
    a[40000000] = { y: 1 };
    var bytes = Buffer.from(codec.encode(a, 'x'));
    assert.ok(bytes.length < 64, bytes.length + ' bytes');
    var r = codec.decode(bytes);
    assert.strictEqual(r.length, 50000000);
    assert.strictEqual(r[3], 'x');
    assert.deepStrictEqual(r[40000000], { y: 1 });
    assert.deepStrictEqual(Object.keys(r), ['3', '40000000']);

    // The longest array there is: with the old loop, still encoding after 25 s.
    var huge = [];
    huge.length = 4294967295;
    huge[0] = 1;
    huge[4294967294] = 'last';
    huge[1234567] = [, , 'inner', , ,]; // eslint-disable-line no-sparse-arrays
    var hb = Buffer.from(codec.encode(huge, 'x'));
    assert.ok(hb.length < 64, hb.length + ' bytes');
    var hr = codec.decode(hb);
    assert.strictEqual(hr.length, 4294967295);
    assert.deepStrictEqual(Object.keys(hr), ['0', '1234567', '4294967294']);
    assert.strictEqual(hr[4294967294], 'last');
    assert.deepStrictEqual(hr[1234567], [, , 'inner', , ,]); // eslint-disable-line no-sparse-arrays
  });

  it('keeps holes and undefined apart in runs of every length around the switch to keys', function () {
    for (var len = 0; len < 80; len++) {
      [0, 1, 2, 31, 32, 33, 64].forEach(function (gap) {
        var a = [];
        for (var i = 0; i < len; i++) {
          if (i % (gap + 1) === 0) a[i] = i % 3 === 0 ? undefined : i;
        }
        a.length = len + gap;
        var r = roundTrip(a);
        assert.deepStrictEqual(r, a, 'length ' + a.length + ', gap ' + gap);
        assert.deepStrictEqual(Object.keys(r), Object.keys(a));
      });
    }
    // Index-like names that are not indices are not elements.
    var odd = [];
    odd[100] = 'a';
    odd['01'] = 'not an element';
    odd['1e3'] = 'nor this';
    var r = roundTrip(odd);
    assert.deepStrictEqual(Object.keys(r), ['100']);
    assert.strictEqual(r.length, 101);
  });

  it('still decodes arrays written with one byte per hole', function () {
    // [1, <hole>, <hole>, 2] as the earlier encoder wrote it.
    var old = Buffer.from([3, 8, 4, 4, 1, 9, 9, 4, 2]);
    var r = codec.decode(old);
    assert.strictEqual(r.length, 4);
    assert.deepStrictEqual(Object.keys(r), ['0', '3']);
  });

  // A getter or a Proxy that throws is the value's fault: the
  // caller gets ERR_CLUSTER_STORE_VALUE naming the call, not the raw error.
  it('reports getters and Proxies that throw as ERR_CLUSTER_STORE_VALUE naming the call', function () {
    var getter = {};
    Object.defineProperty(getter, 'boom', { enumerable: true, get: function () { throw new Error('getter broke'); } });
    var arrGetter = [1];
    Object.defineProperty(arrGetter, 1, { enumerable: true, get: function () { throw new Error('index getter broke'); } });
    var trap = new Proxy({}, { ownKeys: function () { throw new Error('ownKeys trap broke'); } });
    var protoTrap = new Proxy({}, { getPrototypeOf: function () { throw new Error('getPrototypeOf trap broke'); } });
    var arrTrap = new Proxy([1, 2], { get: function () { throw new Error('get trap broke'); } });
    var cases = [[getter, /getter broke/], [{ deep: [arrGetter] }, /index getter broke/],
      [trap, /ownKeys trap broke/], [protoTrap, /getPrototypeOf trap broke/], [[arrTrap], /get trap broke/],
      [{ thrown: Object.defineProperty({}, 'x', { enumerable: true, get: function () { throw 'a string'; } }) },
        /a string/]]; // eslint-disable-line no-throw-literal
    cases.forEach(function (c, i) {
      assert.throws(function () { codec.encode(c[0], 'the arguments published on "ch"'); }, function (err) {
        assert.ok(err instanceof TypeError, 'case ' + i + ': ' + (err && err.stack || err));
        assert.strictEqual(err.code, 'ERR_CLUSTER_STORE_VALUE', 'case ' + i);
        assert.match(err.message, /^socket\.io-cluster-store: cannot store the arguments published on "ch": /);
        assert.match(err.message, c[1]);
        return true;
      });
    });
    assert.deepStrictEqual(roundTrip({ ok: [1, 'two'] }), { ok: [1, 'two'] });
  });
});
