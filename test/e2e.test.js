'use strict';
// The demo chat in a real browser: two pages served by different workers,
// a message typed in one appears in the other. Needs Debian's chromium
// (.ci/run installs it); skipped, saying so, where it is missing.

var assert = require('assert');
var browsers = require('./support/browser');

describe('demo chat in headless Chromium', function () {
  this.timeout(60000);
  var demo;
  var browser;

  before(function () {
    browsers.skipWithoutChromium(this);
    return browsers.startDemo('chat', 4).then(function (started) { demo = started; });
  });

  after(function () {
    if (browser) browser.close().catch(function () {});
    if (demo) demo.process.kill('SIGKILL');
  });

  async function open(ctx) {
    var page = await ctx.newPage();
    await page.goto(demo.url);
    await page.waitForFunction(function () {
      return /^\d+$/.test(document.getElementById('worker').textContent);
    });
    return { page: page, worker: await page.textContent('#worker') };
  }

  it('shows a message typed on one worker in a page served by another', async function () {
    browser = await browsers.launch();
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
