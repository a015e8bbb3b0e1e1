'use strict';
// The socket.io 4 demo chat (example/chat-v4) in a real browser, as a user
// runs it: socket.io's default transports (polling, then websocket) on
// node's plain round robin, no sticky sessions. Two pages served by
// different workers chat; then the worker serving one page is killed, and
// the page comes back on another worker recovered, with what was said
// while it was away. Needs Debian's chromium (.ci/run installs it);
// skipped, saying so, where it is missing.

var assert = require('assert');
var http = require('http');
var browsers = require('./support/browser');

describe('socket.io 4 demo chat in headless Chromium', function () {
  this.timeout(120000);
  var demo;
  var browser;
  var contexts = [];

  before(function () {
    browsers.skipWithoutChromium(this);
    return browsers.startDemo('chat-v4', 4).then(function (started) {
      demo = started;
      return browsers.launch();
    }).then(function (launched) { browser = launched; });
  });

  afterEach(async function () {
    await Promise.all(contexts.splice(0).map(function (c) { return c.close().catch(function () {}); }));
  });

  after(async function () {
    if (browser) await browser.close().catch(function () {});
    if (demo) demo.process.kill('SIGKILL');
  });

  // One request from here, so that node's round robin deals the next
  // connection to another worker.
  function nudge() {
    return new Promise(function (resolve, reject) {
      http.get(demo.url + 'nudge', { agent: false }, function (res) {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
  }

  // A page in a browser context of its own (its own connections, as a
  // second user has), once it is connected and knows its worker. It
  // records whether it polled and any response the server refused.
  async function open() {
    var context = await browser.newContext();
    contexts.push(context);
    context.setDefaultTimeout(60000);
    var page = await context.newPage();
    var seen = { polled: false, refused: [] };
    page.on('request', function (req) {
      if (/\/socket\.io\/.*transport=polling/.test(req.url())) seen.polled = true;
    });
    page.on('response', function (res) {
      if (res.status() < 400 || !/\/socket\.io\//.test(res.url())) return;
      seen.refused.push(res.status() + ' ' + res.url());
    });
    await page.goto(demo.url);
    await page.waitForSelector('body[data-connected="true"]');
    await page.waitForFunction(function () {
      return /^\d+$/.test(document.getElementById('worker').textContent);
    });
    return {
      context: context,
      page: page,
      seen: seen,
      worker: await page.textContent('#worker'),
      pid: Number(await page.textContent('#pid'))
    };
  }

  async function join(p, nick) {
    await p.page.fill('#nick', nick);
    await p.page.click('#nick-form button');
    await p.page.waitForSelector('body[data-joined="true"]');
  }

  async function say(p, text) {
    await p.page.fill('#text', text);
    await p.page.click('#send');
  }

  // Resolves once the line of `text` is in p's log.
  function heard(p, text) {
    return p.page.waitForSelector('#log .text:text-is(' + JSON.stringify(text) + ')');
  }

  // The whole line of `text` in p's log (the primary's greetings may come
  // after it).
  function lineOf(p, text) {
    return p.page.textContent('#log p:has(.text:text-is(' + JSON.stringify(text) + '))');
  }

  function onWebsocket(p) {
    return p.page.waitForFunction(function () {
      return document.getElementById('transport').textContent === 'websocket';
    });
  }

  // Two joined pages served by different workers, both upgraded.
  async function twoPages() {
    var first = await open();
    var second = await open();
    for (var tries = 0; second.worker === first.worker && tries < 16; tries++) {
      await second.context.close();
      await nudge();
      second = await open();
    }
    assert.notStrictEqual(second.worker, first.worker, 'two pages on different workers');
    await join(first, 'ada');
    await join(second, 'bob');
    await onWebsocket(first);
    await onWebsocket(second);
    return [first, second];
  }

  it('chats between pages on different workers, polling then websocket', async function () {
    var pages = await twoPages();
    var ada = pages[0];
    var bob = pages[1];
    await say(ada, 'hello from worker ' + ada.worker);
    await heard(bob, 'hello from worker ' + ada.worker);
    assert.match(await lineOf(bob, 'hello from worker ' + ada.worker), /^ada: hello from worker \d+ via worker \d+$/);
    await say(bob, 'hello from worker ' + bob.worker);
    await heard(ada, 'hello from worker ' + bob.worker);
    [ada, bob].forEach(function (p) {
      assert.ok(p.seen.polled, 'the page polled before it upgraded');
      // Without the hand-off, requests reaching a worker that does not own
      // their session are answered 400 "Session ID unknown".
      assert.deepStrictEqual(p.seen.refused, [], 'no request refused');
    });
  });

  it('brings a page whose worker was killed back recovered, with what it missed', async function () {
    var pages = await twoPages();
    var ada = pages[0];
    var bob = pages[1];
    assert.strictEqual(browsers.parentPid(ada.pid), demo.process.pid, 'the page names a worker of the demo');

    // Hold ada's reconnection until bob has spoken, so that what bob says
    // is missed for sure. Her page is on websocket: the only requests
    // stopped here are those of the reconnection (it starts by polling).
    var engineRequests = /\/socket\.io\/\?/;
    var holding = true;
    var held = [];
    await ada.page.route(engineRequests, function (route) {
      if (holding) held.push(route);
      else route.continue().catch(function () {});
    });
    process.kill(ada.pid, 'SIGKILL');
    await ada.page.waitForSelector('body[data-connected="false"]');
    await say(bob, 'said while ada was away');
    await heard(bob, 'said while ada was away');
    holding = false;
    held.splice(0).forEach(function (route) { route.continue().catch(function () {}); });
    await ada.page.unroute(engineRequests);

    await ada.page.waitForSelector('body[data-connected="true"][data-recovered]');
    assert.strictEqual(await ada.page.getAttribute('body', 'data-recovered'), 'true', 'recovered');
    // Missed messages arrive before 'connect', so they are in the log now,
    // marked, once each.
    assert.strictEqual(await ada.page.locator('#log p.missed .text:text-is("said while ada was away")').count(), 1);
    assert.strictEqual(await ada.page.locator('#log .text:text-is("said while ada was away")').count(), 1);
    await ada.page.waitForFunction(function (killed) {
      var pid = document.getElementById('pid').textContent;
      return /^\d+$/.test(pid) && Number(pid) !== killed;
    }, ada.pid);
    assert.notStrictEqual(await ada.page.textContent('#worker'), ada.worker, 'served by another worker');

    // Her session goes on: still in the room, still named ada.
    await say(bob, 'welcome back');
    await heard(ada, 'welcome back');
    await say(ada, 'thanks');
    await heard(bob, 'thanks');
    assert.match(await lineOf(bob, 'thanks'), /^ada: thanks via worker \d+$/);
    assert.strictEqual(await ada.page.locator('#log p.missed').count(), 1, 'only what she missed is marked');
  });
});
