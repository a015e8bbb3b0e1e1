'use strict';
// Memory errors and leaks in C: test/faults/valgrind.sh, i.e. the C unit
// tests under valgrind's memcheck, and a single-process node workout of
// the addon (test/fixtures/valgrind-script.js) under memcheck, counting only
// errors and definite leaks with a frame in the addon. The two parts run at
// once (valgrind runs each process on one core at a time): about a minute
// and a half on 2 cores, against two and a half one after the other.

var assert = require('assert');
var childProcess = require('child_process');
var path = require('path');

var processes = require('../support/processes');

var SCRIPT = path.join(__dirname, 'valgrind.sh');

function haveValgrind() {
  return childProcess.spawnSync('valgrind', ['--version']).status === 0;
}

// valgrind.sh PART: resolves with its exit status and all it printed.
// It runs in a process group of its own, tracked as the harness tracks
// its processes, so that valgrind goes with it (on the timeout, or when
// this process exits first).
function part(name) {
  return new Promise(function (resolve) {
    var child = childProcess.spawn('bash', [SCRIPT, name], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    var group = -child.pid;
    processes.track(group);
    var output = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', function (s) { output += s; });
    child.stderr.on('data', function (s) { output += s; });
    var timer = setTimeout(function () { processes.killPid(group, 'SIGKILL'); }, 330000);
    child.on('close', function (code, signal) {
      clearTimeout(timer);
      processes.live.delete(group);
      resolve({ name: name, status: signal ? signal : code, output: output });
    });
  });
}

describe('faults: valgrind (C unit tests, and the addon in node)', function () {
  it('finds no memory error and no definite leak in the engine', async function () {
    if (!haveValgrind()) this.skip();
    this.timeout(360000);
    var parts = await Promise.all([part('c'), part('node')]);
    parts.forEach(function (p) {
      assert.strictEqual(p.status, 0, 'valgrind.sh ' + p.name + ' exit ' + p.status + ':\n' + p.output.slice(-6000));
    });
    var output = parts[0].output + parts[1].output;
    assert.match(output, /valgrind-script: ok/);
    assert.match(output, /nothing in the addon/);
    var summary = output.split('\n').filter(function (l) { return /passed, \d+ failed|whole process/.test(l); });
    this.test.title += ' (' + summary.map(function (l) { return l.trim(); }).join('; ') + ')';
  });
});
