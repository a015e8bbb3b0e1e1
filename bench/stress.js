#!/usr/bin/env node
'use strict';
// Stress without sticky sessions: every store x transport through
// test/support/stress (the same fixture test/sticky.test.js drives: a
// cluster master forking W socket.io 0.9.19 workers on one shared port, N
// clients connecting at once with one forced transport; see there for the
// phases), printed side by side.
//
//   node bench/stress.js [--stores cluster,strong,redis,memory]
//                        [--transports websocket,xhr-polling,jsonp-polling]
//                        [--clients 1000] [--workers 4] [--json] [--save FILE]
//                        [--verbose]
//   --json prints the raw result instead of the table, --save FILE also
//   writes it to FILE, --verbose echoes what the children print.
//   npm run stress -- --clients 500
//
// Stores: cluster (this package), strong (strong-cluster-socket.io-store
// 0.1.8), redis (socket.io's RedisStore against a redis-server the script
// starts on 127.0.0.1:26379 in a temp dir; the row is skipped, saying so,
// when redis-server is not installed), memory (no shared store: the
// contrast). jsonp-polling uses test/support/stress/jsonp-client.js:
// socket.io-client 0.9.16 cannot do jsonp-polling under node (it needs a
// DOM).
//
// File descriptors: the client process holds one socket per websocket
// client and up to two per polling client, each worker its share; 1000
// clients need about 2500 descriptors in the client process. If `ulimit -n`
// is below 4096, raise it first (`ulimit -n 8192`).
//
// Every phase has a deadline, and every child process (master, workers,
// clients, redis-server) is killed at the end, also when something fails,
// or when this script is interrupted (SIGINT, SIGTERM).

var stress = require('../test/support/stress');

function sum(list, fn) {
  return list.reduce(function (s, x) { return s + fn(x); }, 0);
}

// ---- output ---------------------------------------------------------------

function pad(s, n, left) {
  s = String(s);
  if (s.length >= n) return s;
  var fill = new Array(n - s.length + 1).join(' ');
  return left ? s + fill : fill + s;
}

var COLUMNS = [
  ['store', 8, true], ['transport', 13, true], ['clients', 7], ['connected', 9],
  ['not hs', 6], ['other err', 9], ['timed out', 9], ['acks ok', 7], ['bcast ok', 8],
  ['room ok', 7], ['>1 worker', 9], ['cross hs', 8], ['rooms clean', 14], ['time', 6]
];

function cells(row) {
  if (row.skipped) {
    return [row.store, row.transport, row.clients, 'skipped: ' + row.skipped];
  }
  var c = row.connect || {};
  var errs = c.errors || {};
  var nh = errs['client not handshaken'] || 0;
  var other = sum(Object.keys(errs), function (k) { return errs[k]; }) - nh;
  var out = [
    row.store, row.transport, row.clients,
    c.connected !== undefined ? c.connected : '-',
    c.errors ? nh : '-',
    c.errors ? other : '-',
    c.timedOut !== undefined ? c.timedOut : '-',
    row.ack ? row.ack.ok : '-',
    row.expect ? row.expect.bcastAll : '-',
    row.expect ? row.expect.roomAll : '-',
    row.spread ? (row.spread.polling ? row.spread.multiWorker : 'n/a') : '-',
    row.spread ? row.spread.crossHandshake : '-',
    row.clean ? (row.clean.clean ? 'yes ' + (row.clean.ms / 1000).toFixed(1) + 's' : notClean(row.clean)) : '-',
    (row.ms / 1000).toFixed(0) + 's'
  ];
  if (row.fatal) out[out.length - 1] += ' !';
  return out;
}

function notClean(clean) {
  var left = sum(clean.roomsLeft, function (n) { return typeof n === 'number' ? n : 0; });
  var dead = clean.roomsLeft.filter(function (n) { return n === 'dead'; }).length;
  return 'NO ' + left + ' left' + (dead ? ', ' + dead + ' dead' : '');
}

function format(result) {
  var lines = [];
  var o = result.options;
  lines.push('socket.io 0.9.19, ' + o.workers + ' workers, round-robin (no sticky sessions), ' +
    o.clients + ' clients connecting at once per row; node ' + process.version + ', ' +
    require('os').cpus().length + ' CPUs');
  lines.push(COLUMNS.map(function (c) { return pad(c[0], c[1], c[2]); }).join(' | '));
  lines.push(COLUMNS.map(function (c) { return new Array(c[1] + 1).join('-'); }).join('-|-'));
  result.rows.forEach(function (row) {
    var cs = cells(row);
    if (row.skipped) {
      lines.push(pad(cs[0], 8, true) + ' | ' + pad(cs[1], 13, true) + ' | ' + pad(cs[2], 7) + ' | ' + cs[3]);
      return;
    }
    lines.push(cs.map(function (v, i) { return pad(v, COLUMNS[i][1], COLUMNS[i][2]); }).join(' | '));
  });
  lines.push('');
  lines.push('not hs: \'client not handshaken\'. acks ok: ack answered with the right payload. bcast ok / room ok:');
  lines.push('clients that got the io.sockets.emit / room broadcast sent from each of the ' + o.workers + ' workers.');
  lines.push('>1 worker: polling sessions whose requests were served by more than one worker. cross hs:');
  lines.push('sessions whose transport requests reached a worker other than the one that answered the handshake.');
  lines.push('rooms clean: io.sockets.clients(room) empty on every worker after the clients disconnected.');
  var notes = [];
  result.rows.forEach(function (row) {
    if (row.skipped) return;
    var name = row.store + ' / ' + row.transport + ': ';
    var bits = [];
    var errs = (row.connect && row.connect.errors) || {};
    var keys = Object.keys(errs);
    if (keys.length) bits.push('errors ' + keys.map(function (k) { return JSON.stringify(k) + ' x' + errs[k]; }).join(', '));
    var ot = (row.connect && row.connect.otherTransport) || {};
    if (Object.keys(ot).length) bits.push('CONNECTED OVER ANOTHER TRANSPORT ' + JSON.stringify(ot));
    if (row.connect && row.connect.connected) bits.push('connect p50/max ' + row.connect.connectP50 + '/' + row.connect.connectMax + ' ms');
    if (row.ack && (row.ack.wrong || row.ack.missing)) bits.push('acks wrong ' + row.ack.wrong + ', missing ' + row.ack.missing);
    if (row.ackLoss) {
      bits.push('of the missing acks: handler ran but the answer was lost ' + row.ackLoss.handledAnswerLost +
        ', the event reached only workers without its connection handlers ' + row.ackLoss.onlyOrphanWorkers +
        ', reached no worker ' + row.ackLoss.nowhere);
    }
    if (row.join && row.join.missing) bits.push('join acks missing ' + row.join.missing);
    if (row.roomsJoined) bits.push('room members seen per worker after the joins [' + row.roomsJoined.join(', ') + '] of ' + (row.join ? row.join.acked : '?'));
    var e = row.expect;
    if (e) {
      if (e.bcastMissing || e.roomMissing) bits.push('missing broadcasts ' + e.bcastMissing + ', room broadcasts ' + e.roomMissing);
      if (e.bcastDup || e.roomDup) bits.push('duplicates: broadcasts ' + e.bcastDup + ', room broadcasts ' + e.roomDup);
      if (e.wrongRoom) bits.push('room broadcasts to the wrong room ' + e.wrongRoom);
      if (e.dropped) bits.push('dropped ' + e.dropped + ' ' + JSON.stringify(e.droppedReasons));
    }
    var s = row.spread;
    if (s) {
      bits.push('workers per session ' + s.workersPerSession + ' (' + s.requestsPerSession + ' requests)');
      if (s.dupConnection) bits.push("'connection' fired on more than one worker for " + s.dupConnection);
      if (s.noConnection) bits.push("no 'connection' recorded for " + s.noConnection);
    }
    if (row.clean && !row.clean.clean) bits.push('left after ' + row.clean.ms + ' ms: room members per worker [' + row.clean.roomsLeft.join(', ') + '], clients [' + row.clean.clientsLeft.join(', ') + ']');
    if (row.workerExits && row.workerExits.length) {
      bits.push('WORKERS DIED: ' + row.workerExits.map(function (x) {
        return 'worker ' + x.worker + ' (' + (x.signal || 'exit ' + x.code) + ')';
      }).join(', '));
    }
    if (row.crashes && row.crashes.length) {
      var uniq = {};
      row.crashes.forEach(function (c) { uniq[c] = (uniq[c] || 0) + 1; });
      Object.keys(uniq).forEach(function (c) { bits.push('uncaught x' + uniq[c] + ': ' + c); });
    }
    if (row.storeErrors && Object.keys(row.storeErrors).length) bits.push('store errors ' + JSON.stringify(row.storeErrors));
    if (row.sendFailures && row.sendFailures.length) bits.push('broadcasts that could not be sent: ' + row.sendFailures.length + ' (' + row.sendFailures[0] + ')');
    if (row.bailed) bits.push('stopped early (bail): ' + row.bailed);
    if (row.fatal) bits.push('FAILED: ' + row.fatal);
    notes.push(name + bits.join('; '));
  });
  if (notes.length) {
    lines.push('');
    notes.forEach(function (n) { lines.push(n); });
  }
  if (result.redis && result.redis.unavailable) {
    lines.push('');
    lines.push('redis: ' + result.redis.unavailable);
  }
  return lines.join('\n');
}

// ---- CLI ------------------------------------------------------------------

function parseArgs(argv) {
  var out = {};
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    var m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error('unexpected argument ' + a);
    var key = m[1];
    var value = m[2];
    if (key === 'json' || key === 'verbose' || key === 'help') { out[key] = true; continue; }
    if (value === undefined) value = argv[++i];
    if (value === undefined) throw new Error('--' + key + ' needs a value');
    if (key === 'stores' || key === 'transports' || key === 'save') out[key] = value;
    else if (key === 'clients' || key === 'workers' || key === 'rooms') out[key] = Number(value);
    else throw new Error('unknown option --' + key);
  }
  return out;
}

function main() {
  var args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
  if (args.help) {
    console.log('node bench/stress.js [--stores cluster,strong,redis,memory] ' +
      '[--transports websocket,xhr-polling,jsonp-polling] [--clients 1000] [--workers 4] [--json] [--save FILE] [--verbose]');
    return;
  }
  var json = args.json;
  var save = args.save;
  delete args.json;
  delete args.save;
  args.log = function (line) { console.error(line); };
  function bail() {
    stress.killAll();
    process.exit(130);
  }
  process.on('SIGINT', bail);
  process.on('SIGTERM', bail);
  stress.run(args).then(function (result) {
    if (save) require('fs').writeFileSync(save, JSON.stringify(result, null, 2) + '\n');
    console.log(json ? JSON.stringify(result, null, 2) : format(result));
  }, function (err) {
    console.error('stress failed: ' + (err && err.stack || err));
    process.exitCode = 1;
  });
}

module.exports = { format: format };

if (require.main === module) main();
