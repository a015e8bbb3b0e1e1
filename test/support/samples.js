'use strict';
// The values every round-trip test sends through the store (set/get and
// publish). A function, so each caller gets fresh objects. Shared by the
// tests and the fixtures.

module.exports = function samples() {
  var holes = [1, , 3]; // eslint-disable-line no-sparse-arrays
  holes[7] = 'eight';
  holes.length = 10; // trailing holes too

  var cyclic = { name: 'cyclic', list: [1, 2] };
  cyclic.self = cyclic;
  cyclic.list.push(cyclic);

  var deep = { leaf: 'bottom' };
  for (var i = 0; i < 100; i++) deep = { level: i, next: deep };

  return {
    int: 42,
    negativeInt: -7,
    bigInt32Edge: 2147483647,
    beyondInt32: 2147483648,
    float: 3.141592653589793,
    maxSafe: Number.MAX_SAFE_INTEGER,
    tiny: 5e-324,
    huge: 1.7976931348623157e308,
    negativeZero: -0,
    nan: NaN,
    infinity: Infinity,
    negativeInfinity: -Infinity,
    numericString: '42',
    emptyString: '',
    trueValue: true,
    falseValue: false,
    nullValue: null,
    undefinedValue: undefined,
    emptyObject: {},
    emptyArray: [],
    nested: { a: { b: { c: [1, { d: 'deep', e: [true, null] }] } }, n: 1, s: '1', z: 0 },
    array: [1, 'two', null, true, { three: 3 }, [4, [5]], undefined, -0, NaN],
    arrayWithHoles: holes,
    unicode: 'héllo wörld, Ελληνικά, 日本語, emoji 😀🎉👩‍👩‍👧, astral 𝄞 𠜎 𝕏, nul \u0000 end',
    unicodeKeys: { 'ключ': 'значение', '😀': '🎉', '': 'empty key', 'a.b': 1 },
    protoKeyAsData: JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}'),
    date: new Date(Date.UTC(2020, 1, 29, 12, 34, 56, 789)),
    invalidDate: new Date(NaN),
    map: new Map([['a', 1], [2, { b: [3] }], [{ k: 1 }, 'object key']]),
    set: new Set([1, 'a', { x: 1 }, -0]),
    bigint: 12345678901234567890123456789n,
    negativeBigint: -1n,
    regexp: /a+b?c*/gi,
    uint8: new Uint8Array([0, 1, 2, 254, 255]),
    float64: new Float64Array([1.5, -0, NaN, Infinity]),
    cyclic: cyclic,
    deep: deep,
    nullPrototype: Object.assign(Object.create(null), { a: 1, b: 'two', nested: Object.create(null) }),
    mixed: { when: new Date(0), list: [undefined, , null], tags: new Set(['x']), n: -0 } // eslint-disable-line no-sparse-arrays
  };
};
