#!/usr/bin/env node
// Install step: use a prebuilt binary when one fits this platform, otherwise
// compile the addon with node-gyp. When node's own headers are installed next
// to the node binary (as Debian's and most distribution packages do), build
// against them so no header tarball has to be downloaded.
'use strict';

var fs = require('fs');
var path = require('path');
var spawnSync = require('child_process').spawnSync;

var root = path.join(__dirname, '..');
var force = process.argv.indexOf('--force') !== -1;
var debug = process.argv.indexOf('--debug') !== -1;

if (require.main !== module) {
  module.exports = { localNodeDir: localNodeDir };
  return;
}

if (!force) {
  try {
    require('node-gyp-build').path(root);
    process.exit(0); // a prebuild or an earlier build already fits
  } catch (e) {
    // nothing loadable yet: build it
  }
}

function localNodeDir() {
  var candidates = [
    path.join(path.dirname(process.execPath), '..'),
    process.config && process.config.variables && process.config.variables.node_prefix
  ];
  for (var i = 0; i < candidates.length; i++) {
    var dir = candidates[i];
    if (dir && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')) &&
        fs.existsSync(path.join(dir, 'include', 'node', 'common.gypi'))) {
      return path.resolve(dir);
    }
  }
  return null;
}

function nodeGypCommand() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) {
    return process.env.npm_config_node_gyp;
  }
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch (e) {
    var bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm',
      'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (fs.existsSync(bundled)) return bundled;
  }
  console.error('socket.io-cluster-store: no prebuilt binary fits this platform and node-gyp ' +
    'was not found. Install node-gyp (npm install -g node-gyp) or use a platform with a prebuild.');
  process.exit(1);
}

// One compiler per core (node-gyp runs one at a time by default).
var args = [nodeGypCommand(), 'rebuild', '--jobs', 'max'];
var nodedir = process.env.npm_config_nodedir || localNodeDir();
if (nodedir) args.push('--nodedir=' + nodedir);
if (debug) args.push('--debug');
var result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.error) throw result.error;
process.exit(result.status === null ? 1 : result.status);
