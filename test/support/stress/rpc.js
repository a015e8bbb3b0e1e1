'use strict';
// Request/response over a node IPC channel (child_process.fork or a cluster
// worker), for the stress fixture's processes. Every message this module
// sends carries a `__stress` marker, and everything without it is ignored,
// so it coexists with whatever else uses the same channel (strong-mq's
// native provider talks over the cluster IPC channel too).

var MARK = '__stress';

// caller(target) -> call(cmd, args, timeoutMs) -> Promise. `target` has
// send() and emits 'message' (a ChildProcess, a cluster Worker, `process`).
function caller(target, label) {
  var next = 1;
  var pending = new Map();
  function onMessage(msg) {
    if (!msg || msg[MARK] !== 'reply') return;
    var p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new Error(label + ': ' + msg.error));
    else p.resolve(msg.result);
  }
  function onGone() {
    var err = new Error(label + ' went away');
    pending.forEach(function (p) { clearTimeout(p.timer); p.reject(err); });
    pending.clear();
  }
  target.on('message', onMessage);
  // A send to a process that just died is reported here, not thrown.
  target.on('error', function () {});
  target.on('exit', onGone);
  target.on('disconnect', onGone);
  function call(cmd, args, timeoutMs) {
    return new Promise(function (resolve, reject) {
      var id = next++;
      var p = { resolve: resolve, reject: reject, timer: null };
      p.timer = setTimeout(function () {
        pending.delete(id);
        reject(new Error(label + ': "' + cmd + '" got no answer within ' + timeoutMs + ' ms'));
      }, timeoutMs || 30000);
      pending.set(id, p);
      if (target.connected === false || (target.isDead && target.isDead())) {
        pending.delete(id);
        clearTimeout(p.timer);
        return reject(new Error(label + ' is gone'));
      }
      try {
        var msg = { cmd: cmd, id: id, args: args || {} };
        msg[MARK] = 'call';
        target.send(msg);
      } catch (err) {
        pending.delete(id);
        clearTimeout(p.timer);
        reject(err);
      }
    });
  }
  call.close = function () {
    target.removeListener('message', onMessage);
    onGone();
  };
  return call;
}

// serve(target, handlers): handlers[cmd](args) returns a value or a Promise.
function serve(target, handlers) {
  target.on('message', function (msg) {
    if (!msg || msg[MARK] !== 'call') return;
    var h = handlers[msg.cmd];
    Promise.resolve()
      .then(function () {
        if (!h) throw new Error('unknown command ' + msg.cmd);
        return h(msg.args || {});
      })
      .then(function (result) { reply(target, msg.id, null, result); },
        function (err) { reply(target, msg.id, err && err.message ? err.message : String(err)); });
  });
}

function reply(target, id, error, result) {
  var msg = { id: id, error: error, result: result };
  msg[MARK] = 'reply';
  try {
    if (target.connected !== false) target.send(msg);
  } catch (e) { /* the caller went away */ }
}

// One-way notice (e.g. 'ready').
function notify(target, event, data) {
  var msg = { event: event, data: data };
  msg[MARK] = 'event';
  try { target.send(msg); } catch (e) { /* gone */ }
}

function onNotice(target, fn) {
  target.on('message', function (msg) {
    if (msg && msg[MARK] === 'event') fn(msg.event, msg.data);
  });
}

function sleep(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms); });
}

module.exports = { caller: caller, serve: serve, notify: notify, onNotice: onNotice, sleep: sleep };
