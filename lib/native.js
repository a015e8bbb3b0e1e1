'use strict';
// Loads the engine: a prebuilt binary for this platform when the package
// ships one, else the one `npm install` compiled (node-gyp-build's order).
// SOCKET_IO_CLUSTER_STORE_ADDON names another build to load instead; the
// sanitizer run uses it so that its instrumented binary never replaces the
// normal one.
var override = process.env.SOCKET_IO_CLUSTER_STORE_ADDON;
module.exports = override ? require(override) :
  require('node-gyp-build')(require('path').join(__dirname, '..'));
