'use strict';
// Load, reduced: bench/load.js with 100k messages (8 workers,
// 10k channels plus a common one). load.js itself checks that every
// subscriber got exactly what was addressed to it, in order per publisher,
// and that nobody was cut off; here its JSON result is checked again, with
// the broker's largest queue and the master's RSS.

var assert = require('assert');
var childProcess = require('child_process');
var path = require('path');
var harness = require('../support/harness');

var LOAD = path.join(__dirname, '..', '..', 'bench', 'load.js');

describe('faults: load (bench/load.js --messages 100000)', function () {
  it('loses nothing, keeps order per publisher, bounds the broker\'s memory', async function () {
    var child = childProcess.spawn(process.execPath, [LOAD, '--messages', '100000', '--json', '--timeout', '90'], {
      stdio: ['ignore', 'pipe', 'pipe']
    });
    harness.track(child.pid);
    var out = '';
    var err = '';
    child.stdout.on('data', function (d) { out += d; });
    child.stderr.on('data', function (d) { err += d; });
    var code = await new Promise(function (resolve) { child.on('close', resolve); });
    var line = out.trim().split('\n').pop();
    var result;
    try {
      result = JSON.parse(line);
    } catch (e) {
      throw new Error('load.js printed no result (exit ' + code + '):\n' + out + '\n' + err);
    }
    var mb = function (n) { return (n / 1048576).toFixed(1) + ' MiB'; };
    this.test.title += ' (' + result.messagesPerSecond + ' msgs/s, ' + result.deliveriesPerSecond +
      ' deliveries/s, maxQueuedBytes ' + mb(result.broker.maxQueuedBytes) + ', master RSS peak ' +
      mb(result.masterRss.peak) + ')';
    assert.deepStrictEqual(result.problems, []);
    assert.strictEqual(result.ok, true);
    assert.strictEqual(code, 0, 'exit code; stderr: ' + err);
    assert.strictEqual(result.deliveries, result.expectedDeliveries);
    assert.ok(result.deliveries > 100000, 'fan-out happened');
    assert.strictEqual(result.broker.messagesPublished, 100000);
    assert.strictEqual(result.broker.messagesDelivered, result.deliveries);
    assert.strictEqual(result.broker.workersCutOff, 0);
    assert.ok(result.broker.maxQueuedBytes <= result.broker.queueLimit);
    if (/lib(asan|ubsan)/.test(process.env.LD_PRELOAD || '')) return; // RSS means nothing under ASan
    assert.ok(result.masterRss.peak - result.masterRss.start < 128 * 1048576,
      'master RSS grew ' + mb(result.masterRss.peak - result.masterRss.start));
  });
});
