'use strict';
// The published package: `npm pack` puts a prebuilt binary in the tarball,
// and an app installs it with install scripts blocked (so nothing is
// compiled) and runs a store with it: a cluster master and two workers.

var assert = require('assert');
var childProcess = require('child_process');
var fs = require('fs');
var os = require('os');
var path = require('path');

var root = path.join(__dirname, '..');

function run(cmd, args, cwd) {
  var r = childProcess.spawnSync(cmd, args, { cwd: cwd, encoding: 'utf8', timeout: 240000 });
  if (r.status !== 0) {
    throw new Error(cmd + ' ' + args.join(' ') + ' failed (' + r.status + '):\n' + r.stdout + r.stderr);
  }
  return r.stdout;
}

describe('npm package', function () {
  this.timeout(300000);
  var dir;
  // prebuildify builds in build/ and moves the binary out to prebuilds/,
  // which node-gyp-build loads first: left so, it would shadow every later
  // `npm run build` in this checkout. The checkout's own build is kept
  // aside and put back, and a prebuilds/ the test made is removed.
  var prebuilds = path.join(root, 'prebuilds');
  var hadPrebuilds = fs.existsSync(prebuilds);
  var built = path.join(root, 'build', 'Release', 'cluster_store.node');
  var saved = null;

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-store-pack-'));
    if (fs.existsSync(built)) {
      saved = path.join(dir, 'cluster_store.node');
      fs.copyFileSync(built, saved);
    }
  });

  after(function () {
    if (saved) {
      fs.mkdirSync(path.dirname(built), { recursive: true });
      fs.copyFileSync(saved, built);
    }
    if (!hadPrebuilds && saved) fs.rmSync(prebuilds, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ships a prebuild and works installed with --ignore-scripts', function () {
    // What `npm pack` runs first (prepack), then the pack itself with its
    // JSON report alone on stdout.
    run(process.execPath, [path.join(root, 'scripts', 'prebuild.js')], root);
    var packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], root));
    var files = packed[0].files.map(function (f) { return f.path; });
    assert.ok(files.indexOf('prebuilds/linux-x64/socket.io-cluster-store.node') !== -1,
      'tarball has the linux-x64 prebuild: ' + files.join(', '));
    assert.ok(files.indexOf('index.d.ts') !== -1, 'tarball has the type declarations');
    ['adapter.js', 'adapter.d.ts', 'lib/adapter/index.js'].forEach(function (f) {
      assert.ok(files.indexOf(f) !== -1, 'tarball has ' + f + ' (socket.io-cluster-store/adapter)');
    });
    assert.ok(!files.some(function (f) { return /^(build|test|bench)\//.test(f); }),
      'tarball has no build output, tests or benchmarks');

    var app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    var socketIo = path.dirname(require.resolve('socket.io/package.json'));
    run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline',
      path.join(dir, packed[0].filename), 'socket.io@0.9.19'], app);
    assert.ok(!fs.existsSync(path.join(app, 'node_modules/socket.io-cluster-store/build')),
      'nothing was compiled');

    fs.writeFileSync(path.join(app, 'app.js'), [
      "var cluster = require('cluster');",
      "var ClusterStore = require('socket.io-cluster-store')(require('socket.io'));",
      'if (cluster.isMaster) {',
      '  var done = 0;',
      '  for (var i = 0; i < 2; i++) cluster.fork().on("message", function (m) {',
      '    console.log(JSON.stringify(m));',
      '    if (++done === 2) cluster.disconnect();',
      '  });',
      '} else {',
      '  var store = new ClusterStore();',
      '  var id = cluster.worker.id;',
      "  store.client('shared').set('w' + id, { id: id }, function (err) {",
      '    if (err) throw err;',
      '    setTimeout(function () {',
      "      store.client('shared').get('w' + (3 - id), function (err, v) {",
      '        process.send({ worker: id, err: err && err.message, other: v });',
      '      });',
      '    }, 300);',
      '  });',
      '}'
    ].join('\n'));
    var out = run(process.execPath, ['app.js'], app).trim().split('\n').map(JSON.parse);
    assert.strictEqual(out.length, 2);
    out.forEach(function (m) {
      assert.strictEqual(m.err, null);
      assert.deepStrictEqual(m.other, { id: 3 - m.worker });
    });
    assert.ok(socketIo);
  });
});
