#!/usr/bin/env node
// Builds the binary that ships inside the npm tarball (prebuilds/), with
// prebuildify: one Node-API build serves every supported Node version.
// Run by `npm pack` / `npm publish` (prepack). Uses node's own headers when
// they are installed next to node, like scripts/build.js.
'use strict';

var path = require('path');
var spawnSync = require('child_process').spawnSync;
var localNodeDir = require('./build').localNodeDir;

var env = Object.assign({}, process.env);
var nodedir = env.npm_config_nodedir || localNodeDir();
if (nodedir) env.npm_config_nodedir = nodedir;
var bin = require.resolve('prebuildify/bin.js');
var result = spawnSync(process.execPath, [bin, '--napi', '--strip'], {
  cwd: path.join(__dirname, '..'),
  env: env,
  stdio: 'inherit'
});
if (result.error) throw result.error;
process.exit(result.status === null ? 1 : result.status);
