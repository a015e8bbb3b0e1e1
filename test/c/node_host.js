'use strict';
// node node_host.js TEST.node: runs a C test built as a shared object (see
// node_host.c) and exits with its status. Also, with --include, prints the
// directory of node's own headers (node_api.h, uv.h) for the Makefile.

var fs = require('fs');
var path = require('path');

function includeDir() {
  var dirs = [];
  var local = require('../../scripts/build').localNodeDir();
  if (local) dirs.push(path.join(local, 'include', 'node'));
  // Where node-gyp keeps the headers it fetched for this node.
  var cache = process.env.npm_config_devdir ||
    path.join(process.env.XDG_CACHE_HOME || path.join(require('os').homedir(), '.cache'), 'node-gyp');
  dirs.push(path.join(cache, process.versions.node, 'include', 'node'));
  for (var i = 0; i < dirs.length; i++) {
    if (fs.existsSync(path.join(dirs[i], 'uv.h')) && fs.existsSync(path.join(dirs[i], 'node_api.h'))) {
      return dirs[i];
    }
  }
  return null;
}

if (process.argv[2] === '--include') {
  var dir = includeDir();
  if (!dir) {
    console.error('node_host.js: node\'s headers (uv.h, node_api.h) were not found; run ' +
      '`npm install` first (it fetches them for the addon), or install libuv1-dev');
    process.exit(1);
  }
  process.stdout.write(dir + '\n');
} else {
  var mod = { exports: {} };
  process.dlopen(mod, path.resolve(process.argv[2]));
  process.exit(typeof mod.exports === 'number' ? mod.exports : 1);
}
