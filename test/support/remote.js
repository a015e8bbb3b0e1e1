'use strict';
// What the fixture processes of both suites (test/fixtures/ with
// test/support/context.js, test/faults/fixtures/) do with a function the
// test sends: run its source with a ctx, and describe an error it throws
// (or a store gives) as JSON for the answer.

// Runs the source text of a test function: fn(ctx, arg); resolves with its
// value.
function runSource(ctx, src, arg) {
  return Promise.resolve().then(function () {
    // eslint-disable-next-line no-new-func
    var fn = new Function('return (' + src + ');')();
    return fn(ctx, arg);
  });
}

function errorInfo(err) {
  if (!err) return null;
  return {
    message: String(err && err.message !== undefined ? err.message : err),
    name: err && err.name,
    code: err && err.code,
    isError: err instanceof Error,
    isTypeError: err instanceof TypeError,
    isRangeError: err instanceof RangeError
  };
}

module.exports = { runSource: runSource, errorInfo: errorInfo };
