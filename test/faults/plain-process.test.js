'use strict';
// A slow reader outside a cluster: a plain process (the broker runs in
// it) whose store is cut off for not reading must hear of it like a worker
// does: the request in flight fails, 'error', then 'reconnect', and new
// publishes arrive; an open store keeps the process alive meanwhile.

var assert = require('assert');
var childProcess = require('child_process');
var path = require('path');

describe('faults: a plain process cut off for not reading (queueLimit 1 MiB)', function () {
  // Found while writing these tests. In a plain process (the broker in the
  // process itself, nothing else keeping its loop alive), a cut-off is
  // noticed when the channel's poll handle closes, but it is reported to
  // JavaScript from an unref'd prepare handle, and the reconnect timer is
  // unref'd too: the loop runs out first. The process exits with code 0,
  // the request in flight never gets its callback, no 'error' is emitted.
  it('the cut is reported, pending calls fail, the store reconnects', function () {
    var script = path.join(__dirname, '..', 'fixtures', 'plain-cutoff.js');
    var r = childProcess.spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20000 });
    var result = JSON.parse((r.stdout || '').trim().split('\n').pop() || 'null');
    assert.deepStrictEqual(result, {
      pending: 'ERR_CLUSTER_STORE_CLOSED',
      error: 'ERR_CLUSTER_STORE_CLOSED',
      reconnected: true,
      after: true
    }, 'stderr: ' + r.stderr);
    assert.strictEqual(r.status, 0);
  });
});
