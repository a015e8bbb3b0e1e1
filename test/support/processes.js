'use strict';
// The processes a test starts, and waiting for a condition or a callback:
// used by the harness (test/support/harness.js) in the test process and by
// the context (test/support/context.js) inside the fixture processes. Every
// tracked process is killed when the process that started it exits,
// whatever happened.

var childProcess = require('child_process');

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

function track(pid) {
  if (pid) live.add(pid);
}

// Stops tracking the pids that are gone.
function untrackGone(pids) {
  pids.forEach(function (pid) { if (!isAlive(pid)) live.delete(pid); });
}

// `node script ...args` with process.env plus `env`, never looking like a
// cluster worker; tracked until it exits.
function spawnNode(script, args, env, stdio) {
  var fullEnv = Object.assign({}, process.env, env || {});
  delete fullEnv.NODE_UNIQUE_ID;
  var child = childProcess.spawn(process.execPath, [script].concat(args || []), { stdio: stdio, env: fullEnv });
  track(child.pid);
  child.on('exit', function () { live.delete(child.pid); });
  return child;
}

// Keeps the last `limit` characters of a stream in .text, for failure messages.
function tail(stream, limit) {
  var out = { text: '' };
  if (!stream) return out;
  stream.setEncoding('utf8');
  stream.on('data', function (chunk) {
    out.text += chunk;
    if (out.text.length > limit) out.text = out.text.slice(-limit);
  });
  return out;
}

function sleep(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms); });
}

// Resolves with cond()'s first truthy value, polling every `every` ms (10
// by default); rejects when cond throws, or after timeout ms (10000 by
// default) with a message naming `what` (a string, or a function that
// describes the state at that moment; cond's source when there is none).
function waitFor(cond, timeout, what, every) {
  var limit = timeout || 10000;
  var deadline = Date.now() + limit;
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
        return reject(new Error('timed out after ' + limit + ' ms waiting for ' +
          (typeof what === 'function' ? what() : what || cond.toString())));
      }
      setTimeout(poll, every || 10);
    })();
  });
}

// ctx.until() of the fixture processes: waitFor, polling every 5 ms.
function until(cond, timeout, what) {
  return waitFor(cond, timeout, what, 5);
}

// Calls obj[method](...args, callback). Resolves with { err, value, ms }
// when the callback comes; rejects when the call throws, or when no
// callback comes within `timeout` ms (so a hang fails instead of stalling),
// with "<label> did not call back within <timeout> ms" (label: a string, or
// a function that makes it then).
function callBack(obj, method, args, timeout, label) {
  var started = Date.now();
  return new Promise(function (resolve, reject) {
    var done = false;
    var timer = setTimeout(function () {
      if (done) return;
      done = true;
      reject(new Error((typeof label === 'function' ? label() : label) + ' did not call back within ' +
        timeout + ' ms'));
    }, timeout);
    try {
      obj[method].apply(obj, args.concat([function (err, value) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ err: err || null, value: value, ms: Date.now() - started });
      }]));
    } catch (err) {
      done = true;
      clearTimeout(timer);
      reject(err);
    }
  });
}

module.exports = {
  live: live,
  killPid: killPid,
  isAlive: isAlive,
  track: track,
  untrackGone: untrackGone,
  spawnNode: spawnNode,
  tail: tail,
  sleep: sleep,
  waitFor: waitFor,
  until: until,
  callBack: callBack
};
