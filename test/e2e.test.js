'use strict';
// The demo chat in a real browser: two pages served by different workers,
// a message typed in one appears in the other. Needs Debian's chromium
// (.ci/run installs it); skipped, saying so, where it is missing.

var assert = require('assert');
var fs = require('fs');
var path = require('path');
var childProcess = require('child_process');

var CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
var PORT = 23080;

describe('demo chat in headless Chromium', function () {
  this.timeout(60000);
  var server;
  var browser;

  before(function (done) {
    if (!fs.existsSync(CHROMIUM)) {
      console.log('      skipped: ' + CHROMIUM + ' not installed (apt-get install chromium)');
      this.skip();
    }
    server = childProcess.fork(path.join(__dirname, '..', 'example', 'chat', 'server.js'), [], {
      env: Object.assign({}, process.env, { PORT: String(PORT), WORKERS: '4' }),
      stdio: ['ignore', 'ignore', 'inherit', 'ipc']
    });
    server.on('message', function (m) { if (m && m.ready) done(); });
    server.on('exit', function (code) { if (code) done(new Error('demo exited with ' + code)); });
  });

  after(function () {
    if (browser) browser.close().catch(function () {});
    if (server) server.kill('SIGKILL');
  });

  async function open(ctx) {
    var page = await ctx.newPage();
    await page.goto('http://127.0.0.1:' + PORT + '/');
    await page.waitForFunction(function () {
      return /^\d+$/.test(document.getElementById('worker').textContent);
    });
    return { page: page, worker: await page.textContent('#worker') };
  }

  it('shows a message typed on one worker in a page served by another', async function () {
    var chromium = require('playwright-core').chromium;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    });
    var ctx = await browser.newContext();
    var first = await open(ctx);
    var second = await open(ctx);
    // Round-robin scheduling alternates workers; open more pages until two
    // are on different workers.
    for (var tries = 0; second.worker === first.worker && tries < 8; tries++) {
      await second.page.close();
      second = await open(ctx);
    }
    assert.notStrictEqual(second.worker, first.worker, 'two pages on different workers');

    await first.page.fill('#nick', 'ada');
    await first.page.click('#nick-form button');
    await first.page.waitForSelector('body[data-joined="true"]');
    await second.page.fill('#nick', 'bob');
    await second.page.click('#nick-form button');
    await second.page.waitForSelector('body[data-joined="true"]');

    await first.page.fill('#text', 'hello from worker ' + first.worker);
    await first.page.click('#send');
    var seen = await second.page.waitForSelector('#log .text:text("hello from worker ' +
      first.worker + '")', { timeout: 10000 });
    assert.ok(seen, 'the message reached the other page');
    var line = await second.page.textContent('#log p:last-child');
    assert.match(line, /ada: hello from worker \d+ via worker \d+/);
  });
});
