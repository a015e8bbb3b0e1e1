'use strict';
// Loads the engine: a prebuilt binary for this platform when the package
// ships one, else the one `npm install` compiled (node-gyp-build's order).
module.exports = require('node-gyp-build')(require('path').join(__dirname, '..'));
