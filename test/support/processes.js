'use strict';
// The processes a test starts, and waiting for a condition: shared by the
// store suites (test/support/cluster.js) and the fault suites
// (test/faults/fixtures/harness.js). Every tracked process is killed when
// the test process exits, whatever happened.

var live = new Set();

function killPid(pid, signal) {
  try {
    process.kill(pid, signal || 'SIGKILL');
    return true;
  } catch (e) {
    return false;
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

process.on('exit', function () {
  live.forEach(function (pid) { killPid(pid, 'SIGKILL'); });
});

// Resolves with cond()'s first truthy value, polling every 10 ms; rejects
// when cond throws, or after timeout ms with a message naming `what` (a
// string, or a function that describes the state at that moment).
function waitFor(cond, timeout, what) {
  var deadline = Date.now() + timeout;
  return new Promise(function (resolve, reject) {
    (function poll() {
      var v;
      try {
        v = cond();
      } catch (err) {
        return reject(err);
      }
      if (v) return resolve(v);
      if (Date.now() > deadline) {
        return reject(new Error('timed out after ' + timeout + ' ms waiting for ' +
          (typeof what === 'function' ? what() : what)));
      }
      setTimeout(poll, 10);
    })();
  });
}

module.exports = { live: live, killPid: killPid, isAlive: isAlive, waitFor: waitFor };
