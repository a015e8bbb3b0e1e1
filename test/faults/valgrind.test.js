'use strict';
// Memory errors and leaks in C: test/faults/valgrind.sh, i.e. the C unit
// tests under valgrind's memcheck, then a single-process node workout of
// the addon (test/fixtures/valgrind-script.js) under memcheck, counting only
// errors and definite leaks with a frame in the addon. About a minute.

var assert = require('assert');
var childProcess = require('child_process');
var path = require('path');

var SCRIPT = path.join(__dirname, 'valgrind.sh');

function haveValgrind() {
  return childProcess.spawnSync('valgrind', ['--version']).status === 0;
}

describe('faults: valgrind (C unit tests, and the addon in node)', function () {
  it('finds no memory error and no definite leak in the engine', function () {
    if (!haveValgrind()) this.skip();
    this.timeout(360000);
    var r = childProcess.spawnSync('bash', [SCRIPT, 'all'], { encoding: 'utf8', timeout: 350000 });
    var output = (r.stdout || '') + (r.stderr || '');
    assert.strictEqual(r.status, 0, 'valgrind.sh exit ' + r.status + ':\n' + output.slice(-6000));
    assert.match(output, /valgrind-script: ok/);
    assert.match(output, /nothing in the addon/);
    var summary = output.split('\n').filter(function (l) { return /passed, \d+ failed|whole process/.test(l); });
    this.test.title += ' (' + summary.map(function (l) { return l.trim(); }).join('; ') + ')';
  });
});
