'use strict';
// What the browser tests share: Debian's chromium driven by playwright-core
// (the suite is skipped, saying so, where it is missing; .ci/run installs
// it), and a demo of example/ started as `npm start` starts it, on a free
// port.

var childProcess = require('child_process');
var fs = require('fs');
var path = require('path');
var processes = require('./processes');

var CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Call first in a suite's before(): skips the suite without chromium.
function skipWithoutChromium(hook) {
  if (fs.existsSync(CHROMIUM)) return;
  console.log('      skipped: ' + CHROMIUM + ' not installed (apt-get install chromium)');
  hook.skip();
}

function launch() {
  return require('playwright-core').chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  });
}

// Starts example/NAME/server.js with `workers` workers on a free port.
// Resolves with { process, url } once every worker listens; the demo's
// primary is killed when this process exits, and its workers follow it.
function startDemo(name, workers) {
  return new Promise(function (resolve, reject) {
    var child = childProcess.fork(path.join(__dirname, '..', '..', 'example', name, 'server.js'), [], {
      env: Object.assign({}, process.env, { PORT: '0', WORKERS: String(workers) }),
      stdio: ['ignore', 'ignore', 'inherit', 'ipc']
    });
    processes.track(child.pid);
    child.on('message', function (m) { if (m && m.ready) resolve({ process: child, url: m.url }); });
    child.on('exit', function (code, signal) {
      processes.live.delete(child.pid);
      reject(new Error('the demo exited with ' + (signal || code)));
    });
  });
}

// The parent of a live process (Linux): the test kills only the demo's own
// workers.
function parentPid(pid) {
  var stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
  // pid (comm) state ppid ...: comm may hold spaces and parentheses.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

module.exports = {
  CHROMIUM: CHROMIUM,
  skipWithoutChromium: skipWithoutChromium,
  launch: launch,
  startDemo: startDemo,
  parentPid: parentPid
};
