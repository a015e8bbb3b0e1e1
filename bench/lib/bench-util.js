'use strict';
// Small helpers shared by the benchmark's processes: clocks, percentiles,
// the machine line, per-thread CPU time, and the length-prefixed framing the
// raw socketpair floor uses.

var fs = require('fs');
var os = require('os');
var path = require('path');
var perf = require('perf_hooks').performance;

// Wall-clock milliseconds with sub-millisecond resolution, comparable
// across the processes of one machine.
function now() {
  return perf.timeOrigin + perf.now();
}

function hrMicros() {
  return Number(process.hrtime.bigint()) / 1000;
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  var i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
  return sorted[i];
}

function machineLine() {
  var cpus = os.cpus();
  var model = cpus.length ? cpus[0].model.trim() : 'unknown CPU';
  var nproc = typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length;
  return 'nproc ' + nproc + ', ' + model + ', node ' + process.version + ', ' + os.platform() +
    ' ' + os.release() + ', load average ' + os.loadavg().map(function (v) { return v.toFixed(2); }).join(' ');
}

// utime+stime (ms) of one thread of a process, from /proc; NaN where /proc
// is not there.
var TICK_MS = 10; // USER_HZ is 100 on every Linux node runs on
function threadCpuMs(pid, tid) {
  try {
    var text = fs.readFileSync('/proc/' + pid + '/task/' + tid + '/stat', 'utf8');
    var fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch (e) {
    return NaN;
  }
}

// CPU ms of pid's threads: { main (the JS thread), other (every other
// thread: our broker, V8's and libuv's helpers), total }.
function processThreadsCpuMs(pid) {
  var out = { main: NaN, other: 0, total: 0 };
  var tasks;
  try {
    tasks = fs.readdirSync('/proc/' + pid + '/task');
  } catch (e) {
    return { main: NaN, other: NaN, total: NaN };
  }
  tasks.forEach(function (tid) {
    var ms = threadCpuMs(pid, tid);
    if (!(ms >= 0)) return;
    out.total += ms;
    if (String(tid) === String(pid)) out.main = ms;
    else out.other += ms;
  });
  return out;
}

function rssOf(pid) {
  try {
    var m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch (e) {
    return NaN;
  }
}

// ---- the socketpair floor's framing -------------------------------------
// [u32 LE total length][u16 LE name length][name][payload]

// Calls onFrame(name, payloadSubarray) for every complete frame that
// arrives. Chunks are kept as they come and joined once a frame is whole.
function FrameReader(onFrame) {
  this.onFrame = onFrame;
  this.chunks = [];
  this.have = 0;
  this.need = 0;
}

FrameReader.prototype.push = function (chunk) {
  if (this.chunks.length) {
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.have < this.need) return;
    chunk = Buffer.concat(this.chunks, this.have);
    this.chunks = [];
    this.have = 0;
  }
  var off = 0;
  var len = chunk.length;
  while (len - off >= 6) {
    var total = chunk.readUInt32LE(off);
    if (len - off < total) break;
    var nameLen = chunk.readUInt16LE(off + 4);
    var name = chunk.latin1Slice(off + 6, off + 6 + nameLen);
    this.onFrame(name, chunk.subarray(off + 6 + nameLen, off + total));
    off += total;
  }
  if (off < len) {
    var rest = chunk.subarray(off);
    this.chunks.push(rest);
    this.have = rest.length;
    this.need = rest.length >= 4 ? rest.readUInt32LE(0) : 6;
  }
};

// A storm reader's count, kept in a small file beside the IPC channel: a
// store that routes through the master's IPC may hold a report behind
// its backlog for minutes, while the file says what the reader had taken
// in. Written whole to a temporary name and renamed, so a reader of the
// file never sees half of one.
function stormCountFile(masterPid, index) {
  return path.join(os.tmpdir(), 'cs-bench-storm-' + masterPid + '-' + index + '.json');
}

function writeStormCount(masterPid, index, count) {
  var file = stormCountFile(masterPid, index);
  fs.writeFileSync(file + '.tmp', JSON.stringify({ count: count }));
  fs.renameSync(file + '.tmp', file);
}

// What the readers had counted, summed, and the files removed.
function takeStormCounts(masterPid, indexes) {
  var total = 0;
  indexes.forEach(function (index) {
    var file = stormCountFile(masterPid, index);
    try {
      total += JSON.parse(fs.readFileSync(file, 'utf8')).count;
      fs.unlinkSync(file);
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  });
  return total;
}

module.exports = {
  writeStormCount: writeStormCount,
  takeStormCounts: takeStormCounts,
  now: now,
  hrMicros: hrMicros,
  percentile: percentile,
  machineLine: machineLine,
  threadCpuMs: threadCpuMs,
  processThreadsCpuMs: processThreadsCpuMs,
  rssOf: rssOf,
  FrameReader: FrameReader
};
