// The browser suite of marginalia: the widget on a blog of another origin, the moderation page and
// the demo page, in headless Chromium against the real release binary.
//
//   cd tests/browser && npm ci && node --test
//
// Env: MARGINALIA_BIN (default ../../target/release/marginalia), CHROMIUM_PATH (/usr/bin/chromium),
// KEEP_TMP=1 keeps the databases and service logs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';

import {
  ADMIN_TOKEN, ASSETS, Blog, SCREENSHOTS, Service, launchBrowser, makeTmp, openPage, widgetReady,
} from './harness.js';

/** Every test gets its own time limit (the suite as a whole is limited by run.sh). */
const test = (name, fn) => nodeTest(name, { timeout: 90_000 }, fn);

let tmp;
let service;
let blog;
let browser;
const contexts = [];

async function open(options) {
  const opened = await openPage(browser, options);
  opened.context.setDefaultTimeout(15_000);
  contexts.push(opened.context);
  return opened;
}

let slugs = 0;
/** A fresh thread for each test, so that tests do not see each other's comments. */
function fresh(name) {
  slugs += 1;
  return `/posts/${name}-${slugs}/`;
}

const thread = (page) => page.locator('#marginalia-thread');
const commentItem = (page, text) => page.locator('#marginalia-thread li.mg-comment').filter({
  has: page.locator(':scope > article .mg-name', { hasText: text }),
});

/** A text field of the widget's form, by its accessible name (the label without the "*"). */
const input = (page, label) => page.locator('#marginalia-thread form').getByRole('textbox', { name: label, exact: true });

async function fillForm(page, { body, name, email, website }) {
  if (body !== undefined) await input(page, 'Comment').fill(body);
  if (name !== undefined) await input(page, 'Name').fill(name);
  if (email !== undefined) await input(page, 'Email').fill(email);
  if (website !== undefined) await input(page, 'Website').fill(website);
}

async function adminLogin(page, instance = service) {
  await page.goto(`${instance.url}/admin`);
  await page.getByLabel('Moderator token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#queue').waitFor();
  await page.locator('#list[aria-busy]').waitFor({ state: 'detached' });
}

/** Shows only the comments of one page in the moderation list. */
async function adminFilter(page, uri, status = 'pending') {
  await page.getByLabel('Status').selectOption(status);
  await page.getByLabel('Page', { exact: true }).fill(uri);
  await page.getByRole('button', { name: 'Show' }).click();
  await page.locator('#queue-title', { hasText: `on ${uri}` }).waitFor();
  await page.locator('#list[aria-busy]').waitFor({ state: 'detached' });
}

const adminItem = (page, name) => page.locator('#list > li.item').filter({
  has: page.locator('h3 .name', { hasText: name }),
});

describe('marginalia in a browser', () => {
  before(async () => {
    tmp = makeTmp();
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    // The blog's origin must be known before the service starts (ALLOWED_ORIGINS), and the blog
    // must know the service's port: start the blog on a placeholder, then point it at the service.
    blog = await Blog.start(0);
    service = await Service.start({ tmp, allowedOrigins: blog.url });
    blog.servicePort = service.port;
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await blog?.stop();
    await service?.stop();
    if (tmp && !process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
    else if (tmp) console.log(`kept ${tmp}`);
  });

  test('embed.js is the asset, byte for byte, with a script type, an ETag and caching', async () => {
    const r = await service.request('GET', '/embed.js');
    assert.equal(r.status, 200);
    assert.equal(r.text, fs.readFileSync(path.join(ASSETS, 'embed.js'), 'utf8'),
      'the binary serves a stale embed.js: rebuild it with cargo build --release');
    assert.match(r.headers.get('content-type'), /^(application|text)\/javascript/);
    assert.ok(r.headers.get('cache-control'), 'Cache-Control');
    const etag = r.headers.get('etag');
    assert.ok(etag, 'ETag');
    const again = await service.request('GET', '/embed.js', { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    for (const [file, route] of [['admin.html', '/admin'], ['admin.js', '/admin/admin.js'], ['admin.css', '/admin/admin.css'], ['demo.html', '/demo']]) {
      const asset = await service.request('GET', route);
      assert.equal(asset.status, 200, route);
      assert.equal(asset.text, fs.readFileSync(path.join(ASSETS, file), 'utf8'), `${route} is a stale ${file}`);
    }
  });

  test('renders an approved thread oldest first, with nested replies, links, dates and a count', async () => {
    const uri = fresh('thread');
    const ada = await service.publish({ uri, name: 'Ada', website: 'https://ada.example/', body: 'First, *with emphasis*.' });
    const bob = await service.publish({ uri, name: 'Bob', body: 'A reply to Ada.', parent_id: ada.id });
    const cy = await service.publish({ uri, name: 'Cy', body: 'A reply to Bob.', parent_id: bob.id });
    await service.publish({ uri, name: 'Dee', body: 'A reply to Cy, four levels deep.', parent_id: cy.id });
    await service.publish({ uri, name: 'Eve', body: 'Second top-level comment.' });
    await service.submit({ uri, name: 'Pending Pat', body: 'Not approved yet.' });

    const { page, problems } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    await assert.doesNotReject(page.getByRole('heading', { name: '5 comments' }).waitFor());

    const top = page.locator('#marginalia-thread ol.mg-list > li.mg-comment > article .mg-name');
    assert.deepEqual(await top.allTextContents(), ['Ada', 'Eve'], 'top level, oldest first');
    const adaItem = commentItem(page, 'Ada');
    assert.equal(await adaItem.locator(':scope > ol.mg-children > li > article .mg-name').first().textContent(), 'Bob');
    const bobItem = commentItem(page, 'Bob');
    assert.deepEqual(await bobItem.locator(':scope > ol.mg-children > li > article .mg-name').allTextContents(), ['Cy', 'Dee'],
      'the third level holds Cy, and Dee (a fourth level) is flattened next to it');
    await assert.doesNotReject(commentItem(page, 'Dee').locator('.mg-irt', { hasText: 'in reply to Cy' }).waitFor());

    const link = adaItem.locator(':scope > article .mg-name a');
    assert.equal(await link.getAttribute('href'), 'https://ada.example/');
    assert.equal(await link.getAttribute('rel'), 'nofollow ugc');
    assert.equal(await commentItem(page, 'Bob').locator(':scope > article .mg-name a').count(), 0, 'no website, no link');
    assert.equal(await adaItem.locator(':scope > article .mg-body em').textContent(), 'with emphasis');
    const datetime = await adaItem.locator(':scope > article time').getAttribute('datetime');
    assert.equal(datetime, ada.created_at);
    assert.notEqual(await adaItem.locator(':scope > article time').textContent(), '');
    assert.equal(await page.getByText('Pending Pat').count(), 0, 'a pending comment is not shown to others');
    assert.deepEqual(problems, []);
  });

  test('the count heading is singular for one comment, and "Load more" pages through a thread', async () => {
    const uri = fresh('paged');
    const { page } = await open();
    await service.publish({ uri, name: 'Only', body: 'One.' });
    await page.goto(blog.url + uri);
    await widgetReady(page);
    await page.getByRole('heading', { name: '1 comment', exact: true }).waitFor();

    await service.publish({ uri, name: 'Second', body: 'Two.' });
    await service.publish({ uri, name: 'Third', body: 'Three.' });
    await page.goto(`${blog.url}${uri}?page-size=2`);
    await widgetReady(page);
    await page.getByRole('heading', { name: '3 comments' }).waitFor();
    const names = page.locator('#marginalia-thread li.mg-comment .mg-name');
    assert.deepEqual(await names.allTextContents(), ['Only', 'Second']);
    await page.getByRole('button', { name: 'Load more comments' }).click();
    await page.getByText('Three.').waitFor();
    assert.deepEqual(await names.allTextContents(), ['Only', 'Second', 'Third']);
    assert.equal(await page.getByRole('button', { name: 'Load more comments' }).isVisible(), false);
  });

  test('the form has the expected texts and labels', async () => {
    const uri = fresh('form');
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    const respond = page.locator('#marginalia-respond');
    assert.equal(await respond.getByRole('heading').textContent(), 'Leave a Reply');
    assert.equal((await respond.locator('.mg-notes').textContent()).replace(/\s+/g, ' ').trim(),
      'Your email address will not be published. Required fields are marked *');
    // The honeypot's label is for bots only (see the honeypot test): not among the form's labels.
    const labels = (await respond.locator('.mg-field label').allTextContents()).map((s) => s.replace(/\s+/g, ' ').trim());
    assert.deepEqual(labels, ['Comment *', 'Name *', 'Email *', 'Website',
      'Save my name, email, and website in this browser for the next time I comment.',
      'Notify me of follow-up comments by email']);
    const notify = respond.getByRole('checkbox', { name: 'Notify me of follow-up comments by email' });
    assert.equal(await notify.count(), 1, 'a real label for the notify checkbox');
    assert.equal(await notify.isChecked(), false, 'unticked by default');
    for (const label of ['Comment', 'Name', 'Email', 'Website']) {
      assert.equal(await input(page, label).count(), 1, `a real label for ${label}`);
    }
    assert.equal(await respond.getByRole('button', { name: 'Post Comment' }).count(), 1);
    assert.equal(await page.getByRole('heading', { name: 'No comments yet' }).count(), 1);
    assert.equal(await respond.locator('[aria-live]').count(), 1, 'an aria-live status');
  });

  test('the honeypot is out of sight, the accessibility tree and the tab order; the widget sends a form token', async () => {
    const uri = fresh('honeypot');
    const { page, problems } = await open();
    const tokenFetched = page.waitForResponse((r) => r.url().endsWith('/api/form-token') && r.status() === 200);
    await page.goto(blog.url + uri);
    await widgetReady(page);
    const { token } = await (await tokenFetched).json();
    const trap = page.locator('#marginalia-homepage');
    assert.equal(await trap.count(), 1, 'the field is there for bots');
    assert.equal(await page.getByRole('textbox', { name: 'Homepage' }).count(), 0, 'not in the accessibility tree');
    assert.equal(await trap.getAttribute('tabindex'), '-1');
    assert.equal(await trap.getAttribute('autocomplete'), 'off');
    assert.equal(await trap.evaluate((el) => el.closest('[aria-hidden="true"]') !== null), true, 'inside aria-hidden');
    const size = await trap.evaluate((el) => {
      const r = el.getBoundingClientRect();
      return { width: r.width, height: r.height };
    });
    assert.ok(size.width <= 1 && size.height <= 1, `visually hidden: ${JSON.stringify(size)}`);
    // Tab from the website field goes on to the next checkbox, never into the trap.
    await input(page, 'Website').focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'marginalia-save');

    // A person's submission carries the token and no honeypot value.
    await fillForm(page, { body: 'A human comment.', name: 'Hana Human', email: 'hana@example.org' });
    const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/comments'));
    await page.getByRole('button', { name: 'Post Comment' }).click();
    const payload = (await sent).postDataJSON();
    assert.equal(payload.form_token, token);
    assert.equal('homepage' in payload, false);
    await page.getByRole('status').filter({ hasText: 'awaiting moderation' }).waitFor();
    const [human] = await service.queue(uri);
    assert.equal(human.name, 'Hana Human');

    // A bot that fills every field gets the same answer, and lands in spam.
    await trap.evaluate((el) => { el.value = 'https://bot.example/'; });
    await fillForm(page, { body: 'Great post, visit my site.', name: 'Bot', email: 'bot@example.org' });
    const botSent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/comments'));
    await page.getByRole('button', { name: 'Post Comment' }).click();
    assert.equal((await botSent).postDataJSON().homepage, 'https://bot.example/');
    await commentItem(page, 'Bot').getByText('Your comment is awaiting moderation').waitFor();
    const [spam] = await service.queue(uri, 'spam');
    assert.equal(spam.name, 'Bot');
    assert.deepEqual(spam.reasons.slice(0, 1), ['honeypot']);
    assert.deepEqual(problems, []);
  });

  test('a reader submits, sees "awaiting moderation", still sees it after reloading, until it is published', async () => {
    const uri = fresh('pending');
    const { page, problems } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    await fillForm(page, { body: 'My **first** comment.', name: 'Rita Reader', email: 'rita@example.org' });
    await page.getByRole('button', { name: 'Post Comment' }).click();

    const mine = commentItem(page, 'Rita Reader');
    await mine.getByText('Your comment is awaiting moderation').waitFor();
    assert.equal(await mine.locator('strong').textContent(), 'first');
    await page.getByRole('status').filter({ hasText: 'awaiting moderation' }).waitFor();
    assert.equal(await input(page, 'Comment').inputValue(), '', 'the comment box is emptied');
    const stored = await page.evaluate(() => localStorage.getItem('marginalia:pending'));
    assert.ok(stored.includes('Rita Reader'));
    assert.ok(!stored.includes('rita@example.org'), 'the pending copy holds no email');
    assert.equal(await page.evaluate(() => localStorage.getItem('marginalia:author')), null,
      'name and email are remembered only when the box is ticked');

    await page.reload();
    await widgetReady(page);
    await commentItem(page, 'Rita Reader').getByText('Your comment is awaiting moderation').waitFor();
    assert.equal(await page.getByRole('heading', { name: 'No comments yet' }).count(), 1, 'pending is not counted');

    // Another reader does not see it.
    const other = await open();
    await other.page.goto(blog.url + uri);
    await widgetReady(other.page);
    assert.equal(await other.page.getByText('Rita Reader').count(), 0);

    const [queued] = await service.queue(uri);
    assert.equal(queued.email, 'rita@example.org');
    await service.moderate(queued.id, 'approve');
    await page.reload();
    await widgetReady(page);
    await page.getByRole('heading', { name: '1 comment' }).waitFor();
    assert.equal(await page.getByText('Your comment is awaiting moderation').count(), 0);
    assert.equal(await commentItem(page, 'Rita Reader').count(), 1, 'shown once, as published');
    assert.equal(await page.evaluate(() => localStorage.getItem('marginalia:pending')), null, 'the copy is dropped');
    assert.deepEqual(problems, []);
  });

  test('the pending copy expires after a week, and a tampered copy cannot inject markup', async () => {
    const uri = fresh('expiry');
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    const day = 864e5;
    await page.evaluate(({ uri, day }) => {
      const base = { uri, parent_id: null, website: null, created_at: new Date().toISOString() };
      localStorage.setItem('marginalia:pending', JSON.stringify([
        { ...base, id: 900001, name: 'Old Olga', body_html: '<p>old</p>', saved_at: Date.now() - 8 * day },
        { ...base, id: 900002, name: 'Fresh Fay', body_html: '<p>fresh <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><a href="javascript:window.__pwned=3">x</a></p>', saved_at: Date.now() - day },
      ]));
    }, { uri, day });
    await page.reload();
    await widgetReady(page);
    await commentItem(page, 'Fresh Fay').getByText('Your comment is awaiting moderation').waitFor();
    assert.equal(await page.getByText('Old Olga').count(), 0);
    const left = JSON.parse(await page.evaluate(() => localStorage.getItem('marginalia:pending')));
    assert.deepEqual(left.map((p) => p.id), [900002]);
    const body = commentItem(page, 'Fresh Fay').locator('.mg-body');
    assert.equal(await body.locator('img, script').count(), 0);
    assert.equal(await body.locator('a').getAttribute('href'), null);
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  });

  test('the client checks mirror the server rules, next to the fields, before sending anything', async () => {
    const uri = fresh('client-checks');
    const { page } = await open();
    let posts = 0;
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url().includes('/api/comments')) posts += 1;
    });
    await page.goto(blog.url + uri);
    await widgetReady(page);
    await page.getByRole('button', { name: 'Post Comment' }).click();
    const error = (id) => page.locator(`#marginalia-${id}-error`);
    assert.equal(await error('body').textContent(), 'Comment is required.');
    assert.equal(await error('name').textContent(), 'Name is required.');
    assert.equal(await error('email').textContent(), 'Email is required.');
    assert.equal(await error('website').isVisible(), false);
    assert.equal(await input(page, 'Comment').getAttribute('aria-invalid'), 'true');
    assert.equal(await input(page, 'Comment').getAttribute('aria-describedby'), 'marginalia-body-error');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'marginalia-body', 'focus goes to the first error');

    // 80 code points is fine even when it is 160 UTF-16 units; 81 is not. Same for the other rules.
    await fillForm(page, { body: '   ', name: '😀'.repeat(81), email: 'not-an-email', website: 'ftp://files.example/' });
    await page.getByRole('button', { name: 'Post Comment' }).click();
    assert.equal(await error('body').textContent(), 'Comment is required.');
    assert.equal(await error('name').textContent(), 'Name must be at most 80 characters.');
    assert.equal(await error('email').textContent(), 'Please enter a valid email address.');
    assert.match(await error('website').textContent(), /http:\/\/ or https:\/\//);
    assert.equal(posts, 0, 'nothing was sent');

    await fillForm(page, { body: 'Fine.', name: '😀'.repeat(80), email: 'emoji@example.org', website: '' });
    await page.getByRole('button', { name: 'Post Comment' }).click();
    await page.getByText('Your comment is awaiting moderation').first().waitFor();
    assert.equal(posts, 1);
  });

  test('the server\'s field errors show next to their fields and keep what was typed', async () => {
    const uri = fresh('server-errors');
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    // The client only checks the part before the @; the server also refuses an underscore in the domain.
    await fillForm(page, { body: 'Kept text', name: 'Una', email: 'una@mail_server.example' });
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/comments') && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Post Comment' }).click();
    assert.equal((await answer).status(), 422);
    const emailError = page.locator('#marginalia-email-error');
    await emailError.waitFor();
    assert.equal(await emailError.textContent(), 'Email must be a valid email address.');
    assert.equal(await input(page, 'Email').getAttribute('aria-invalid'), 'true');
    assert.equal(await input(page, 'Comment').inputValue(), 'Kept text');
    assert.match(await page.getByRole('status').textContent(), /correct the marked fields/);

    // Typing in the field clears its error.
    await input(page, 'Email').fill('una@example.org');
    assert.equal(await emailError.isVisible(), false);
    await page.getByRole('button', { name: 'Post Comment' }).click();
    await commentItem(page, 'Una').getByText('Your comment is awaiting moderation').waitFor();
  });

  test('a network error keeps what the reader typed', async () => {
    const uri = fresh('offline');
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    await page.route('**/api/comments', (route) => (route.request().method() === 'POST' ? route.abort('internetdisconnected') : route.continue()));
    await fillForm(page, { body: 'Do not lose me.', name: 'Nina', email: 'nina@example.org', website: 'https://nina.example/' });
    await page.getByRole('button', { name: 'Post Comment' }).click();
    await page.getByRole('status').filter({ hasText: 'did not answer' }).waitFor();
    assert.equal(await input(page, 'Comment').inputValue(), 'Do not lose me.');
    assert.equal(await input(page, 'Name').inputValue(), 'Nina');
    assert.equal(await input(page, 'Website').inputValue(), 'https://nina.example/');
    await page.unroute('**/api/comments');
    await page.getByRole('button', { name: 'Post Comment' }).click();
    await commentItem(page, 'Nina').getByText('Your comment is awaiting moderation').waitFor();
  });

  test('429 shows "You are commenting too quickly" with the wait', async () => {
    const slow = await Service.start({ tmp, name: 'slow', allowedOrigins: blog.url, perMinute: 1, burst: 1 });
    try {
      const uri = fresh('rate');
      const { page } = await open();
      await page.goto(`${blog.url}${uri}?svc=${slow.port}`);
      await widgetReady(page);
      await fillForm(page, { body: 'One', name: 'Quick', email: 'quick@example.org' });
      await page.getByRole('button', { name: 'Post Comment' }).click();
      await commentItem(page, 'Quick').waitFor();
      await fillForm(page, { body: 'Two' });
      await page.getByRole('button', { name: 'Post Comment' }).click();
      const status = page.getByRole('status');
      await status.filter({ hasText: 'You are commenting too quickly' }).waitFor();
      assert.match(await status.textContent(), /Please wait (\d+ seconds|1 second|1 minute) and try again/);
      assert.equal(await input(page, 'Comment').inputValue(), 'Two', 'the text is kept');
    } finally {
      await slow.stop();
    }
  });

  test('a moderator logs in, approves with the button and with the "a" shortcut; the blog shows both', async () => {
    const uri = fresh('moderate');
    const first = await service.submit({ uri, name: 'Button Ben', email: 'ben@example.org', website: 'https://ben.example/', body: 'Approve me with the button.' });
    const second = await service.submit({ uri, name: 'Key Kim', email: 'kim@example.org', body: 'Approve me with the keyboard.' });

    const { page, problems } = await open();
    const response = await page.goto(`${service.url}/admin`);
    assert.match(response.headers()['content-security-policy'], /default-src 'self'/);
    await page.getByLabel('Moderator token').fill('not-the-token-at-all');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('That token is not valid.').waitFor();
    await adminLogin(page);
    await page.locator('#pending-count').waitFor();
    await adminFilter(page, uri);

    const ben = adminItem(page, 'Button Ben');
    for (const text of ['ben@example.org', 'https://ben.example/', '127.0.0.1', uri, 'Approve me with the button.']) {
      await assert.doesNotReject(ben.getByText(text, { exact: false }).first().waitFor(), text);
    }
    assert.match(await ben.locator('dd').allTextContents().then((t) => t.join(' ')), /HeadlessChrome|Mozilla|node/i, 'the user agent');
    const names = await page.locator('#list > li .name').allTextContents();
    assert.deepEqual(names, ['Button Ben', 'Key Kim'], 'oldest first');
    const pendingBefore = Number(await page.locator('#pending-number').textContent());

    await ben.getByRole('button', { name: 'Approve' }).click();
    await ben.waitFor({ state: 'detached' });
    assert.equal((await service.comment(first.id)).status, 'approved');
    await page.waitForFunction((n) => Number(document.getElementById('pending-number').textContent) === n, pendingBefore - 1);

    // The remaining comment is now the current one; "a" approves it.
    await page.locator('body').press('k');
    await page.keyboard.press('a');
    await adminItem(page, 'Key Kim').waitFor({ state: 'detached' });
    assert.equal((await service.comment(second.id)).status, 'approved');
    assert.equal((await service.comment(second.id)).moderated_by, 'admin');
    await page.waitForFunction((n) => Number(document.getElementById('pending-number').textContent) === n, pendingBefore - 2);

    const reader = await open();
    await reader.page.goto(blog.url + uri);
    await widgetReady(reader.page);
    await reader.page.getByRole('heading', { name: '2 comments' }).waitFor();
    assert.equal(await commentItem(reader.page, 'Button Ben').count(), 1);
    assert.equal(await commentItem(reader.page, 'Key Kim').count(), 1);
    assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), [], 'no console errors but the 401s before logging in');
  });

  test('the keyboard shortcuts j/k move, r rejects, s marks spam, and are ignored while typing', async () => {
    const uri = fresh('shortcuts');
    const one = await service.submit({ uri, name: 'One', body: 'first' });
    const two = await service.submit({ uri, name: 'Two', body: 'second' });
    const three = await service.submit({ uri, name: 'Three', body: 'third' });
    const { page } = await open();
    await adminLogin(page);
    await adminFilter(page, uri);

    // Typing "s" and "r" into the page filter does nothing to the comments.
    await page.getByLabel('Page', { exact: true }).press('s');
    await page.getByLabel('Page', { exact: true }).press('r');
    await page.getByLabel('Page', { exact: true }).fill(uri);
    assert.equal(await page.locator('#list > li').count(), 3);

    await page.locator('#list > li').first().click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('j');
    assert.equal(await page.locator('#list > li.current .name').textContent(), 'Two');
    await page.keyboard.press('j');
    await page.keyboard.press('k');
    assert.equal(await page.locator('#list > li.current .name').textContent(), 'Two');
    await page.keyboard.press('r');
    await adminItem(page, 'Two').waitFor({ state: 'detached' });
    assert.equal((await service.comment(two.id)).status, 'rejected');
    assert.equal(await page.locator('#list > li.current .name').textContent(), 'Three');
    await page.keyboard.press('s');
    await adminItem(page, 'Three').waitFor({ state: 'detached' });
    assert.equal((await service.comment(three.id)).status, 'spam');
    assert.equal((await service.comment(one.id)).status, 'pending');

    await adminFilter(page, uri, 'spam');
    assert.deepEqual(await page.locator('#list > li .name').allTextContents(), ['Three']);
  });

  test('bulk approve and bulk reject', async () => {
    const uri = fresh('bulk');
    const ids = [];
    for (const name of ['Bulk A', 'Bulk B', 'Bulk C', 'Bulk D']) ids.push((await service.submit({ uri, name, body: name })).id);
    const { page } = await open();
    await adminLogin(page);
    await adminFilter(page, uri);
    await page.getByLabel('Select comment', { exact: false }).first().waitFor();
    assert.equal(await page.getByRole('button', { name: 'Approve selected' }).isDisabled(), true);
    await adminItem(page, 'Bulk A').getByRole('checkbox').check();
    await adminItem(page, 'Bulk C').getByRole('checkbox').check();
    assert.equal(await page.locator('#selected-count').textContent(), '2 selected');
    await page.getByRole('button', { name: 'Approve selected' }).click();
    await page.getByRole('status').filter({ hasText: '2 comments approved' }).waitFor();
    assert.deepEqual(await page.locator('#list > li .name').allTextContents(), ['Bulk B', 'Bulk D']);

    await page.getByLabel('Select all').check();
    await page.getByRole('button', { name: 'Reject selected' }).click();
    await page.getByRole('status').filter({ hasText: '2 comments rejected' }).waitFor();
    await page.getByText('Nothing to moderate').waitFor();

    const statuses = await Promise.all(ids.map(async (id) => (await service.comment(id)).status));
    assert.deepEqual(statuses, ['approved', 'rejected', 'approved', 'rejected']);
    const published = await service.thread(uri);
    assert.deepEqual(published.comments.map((c) => c.name), ['Bulk A', 'Bulk C']);
  });

  test('a reply: the link opens the form under the comment, Cancel reply closes it, the reply nests once approved', async () => {
    const uri = fresh('reply');
    const parent = await service.publish({ uri, name: 'Parent Paula', body: 'Reply to me.' });
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    const paula = commentItem(page, 'Parent Paula');

    // Keyboard only: tab to the reply button and press Enter.
    await paula.getByRole('button', { name: 'Reply to Parent Paula' }).focus();
    await page.keyboard.press('Enter');
    assert.equal(await paula.locator('#marginalia-respond').count(), 1, 'the form moved under the comment');
    assert.equal(await page.locator('#marginalia-respond h3').textContent(), 'Leave a Reply to Parent Paula');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'marginalia-body');
    await page.getByRole('button', { name: 'Cancel reply' }).click();
    assert.equal(await paula.locator('#marginalia-respond').count(), 0, 'back at the bottom');
    assert.equal(await page.locator('#marginalia-respond h3').textContent(), 'Leave a Reply');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Reply', 'focus returns to the reply button');

    await paula.getByRole('button', { name: 'Reply to Parent Paula' }).click();
    await page.keyboard.type('A keyboard-typed reply.');
    await page.keyboard.press('Tab');
    await page.keyboard.type('Replying Ray');
    await page.keyboard.press('Tab');
    await page.keyboard.type('ray@example.org');
    await page.keyboard.press('Enter');
    const pendingReply = paula.locator(':scope > ol.mg-children > li.mg-pending');
    await pendingReply.getByText('Your comment is awaiting moderation').waitFor();
    assert.equal(await pendingReply.locator('.mg-name').textContent(), 'Replying Ray');
    assert.equal(await paula.locator('#marginalia-respond').count(), 0, 'the form went back to the bottom');

    const [reply] = await service.queue(uri);
    assert.equal(reply.parent_id, parent.id);
    await service.moderate(reply.id, 'approve');
    await page.reload();
    await widgetReady(page);
    const nested = commentItem(page, 'Parent Paula').locator(':scope > ol.mg-children > li.mg-comment:not(.mg-pending)');
    assert.equal(await nested.locator('.mg-name').textContent(), 'Replying Ray');
    assert.equal(await page.getByText('Your comment is awaiting moderation').count(), 0);
  });

  test('script and event-handler payloads in an approved comment render as text and never run', async () => {
    const uri = fresh('xss');
    const payloadName = '<img src=x onerror="window.__pwned=1">';
    await service.publish({
      uri,
      name: payloadName,
      website: 'https://evil.example/"><img/src=x/onerror=window.__pwned=2>',
      body: [
        '<script>window.__pwned=3</script>',
        '<img src=x onerror="window.__pwned=4">',
        '[click](javascript:window.__pwned=5)',
        '<a href="javascript:window.__pwned=6">link</a> <iframe src="javascript:window.__pwned=7"></iframe>',
        '<svg onload="window.__pwned=8"></svg> <b onmouseover="window.__pwned=9">hover</b>',
      ].join('\n\n'),
    });
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    const item = page.locator('#marginalia-thread li.mg-comment').first();
    await item.waitFor();
    await page.waitForTimeout(300); // give an image error or a load handler the time to fire
    await item.locator('.mg-body').hover();
    await item.locator('.mg-body a').first().click({ timeout: 1000 }).catch(() => {});
    await page.waitForTimeout(100);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no payload ran');
    assert.equal(await thread(page).locator('script, img, iframe, svg, object, embed, [onerror], [onload], [onmouseover]').count(), 0);
    assert.equal(await item.locator('.mg-name').textContent(), payloadName, 'the name is shown as text');
    for (const href of await thread(page).locator('a[href]').evaluateAll((links) => links.map((a) => a.getAttribute('href')))) {
      assert.ok(!/^\s*javascript:/i.test(href), `no javascript: link (${href})`);
    }

    // The moderation page shows the same comment without running it either.
    const admin = await open();
    await adminLogin(admin.page);
    await adminFilter(admin.page, uri, 'approved');
    await admin.page.waitForTimeout(300);
    assert.equal(await admin.page.evaluate(() => window.__pwned), undefined);
    assert.equal(await admin.page.locator('#list script, #list img, #list iframe, #list svg').count(), 0);
    assert.equal(await admin.page.locator('#list .name').textContent(), payloadName);
  });

  test('the commenter\'s email is nowhere in the blog page', async () => {
    const uri = fresh('privacy');
    const email = 'secret.commenter+marginalia@example.org';
    const author = await open();
    await author.page.goto(blog.url + uri);
    await widgetReady(author.page);
    await fillForm(author.page, { body: 'Keep my address private.', name: 'Private Pia', email });
    await author.page.getByLabel('Save my name').check();
    await author.page.getByRole('button', { name: 'Post Comment' }).click();
    await commentItem(author.page, 'Private Pia').getByText('awaiting moderation').waitFor();
    assert.ok(!(await author.page.content()).includes(email), 'not even in the author\'s own page markup');
    assert.ok(!(await author.page.evaluate(() => localStorage.getItem('marginalia:pending'))).includes(email));
    const [queued] = await service.queue(uri);
    await service.moderate(queued.id, 'approve');

    for (const { page } of [author, await open()]) {
      await page.goto(blog.url + uri);
      await widgetReady(page);
      await commentItem(page, 'Private Pia').waitFor();
      const html = await page.evaluate(() => document.documentElement.outerHTML);
      assert.ok(!html.includes(email) && !html.includes('secret.commenter'), 'the email is not in the DOM');
    }
    // Ticking the box remembered the author (in their browser only): their form is filled again.
    await author.page.reload();
    await widgetReady(author.page);
    assert.equal(await input(author.page, 'Email').inputValue(), email);
    assert.equal(await author.page.getByLabel('Save my name').isChecked(), true);
  });

  test('the counts fill every data-marginalia-count element with one request per 100 uris', async () => {
    const a = fresh('count-a');
    const b = fresh('count-b');
    const none = fresh('count-none');
    await service.publish({ uri: a, body: 'a1' });
    await service.publish({ uri: a, body: 'a2' });
    await service.submit({ uri: a, body: 'pending, not counted' });
    await service.publish({ uri: b, body: 'b1' });
    const { page, problems } = await open();
    const countRequests = [];
    page.on('request', (r) => r.url().includes('/api/counts') && countRequests.push(r.url()));
    const query = new URLSearchParams();
    for (const uri of [a, b, none, a]) query.append('uri', uri);
    await page.goto(`${blog.url}/index/?${query}`);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-marginalia-count]')].every((el) => el.textContent !== '…'));
    assert.deepEqual(await page.locator('.count').allTextContents(), ['2 comments', '1 comment', '0 comments', '2 comments']);
    assert.equal(countRequests.length, 1);
    assert.deepEqual(problems, []);

    // 150 distinct uris: two requests (the API takes at most 100).
    const many = new URLSearchParams();
    for (let i = 0; i < 150; i += 1) many.append('uri', `/bulk-count/${i}/`);
    countRequests.length = 0;
    await page.goto(`${blog.url}/index/?${many}`);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-marginalia-count]')].every((el) => el.textContent === '0 comments'));
    assert.equal(countRequests.length, 2);
  });

  test('without JavaScript the plain form posts and lands back (303) on the post', async () => {
    const uri = fresh('nojs');
    const { page } = await open({ javaScriptEnabled: false });
    await page.goto(blog.url + uri);
    await page.getByLabel('Comment').fill('Sent without JavaScript.');
    await page.getByLabel('Name').fill('Plain Form');
    await page.getByLabel('Email').fill('plain@example.org');
    const redirect = page.waitForResponse((r) => r.url().endsWith('/api/comments'));
    await page.getByRole('button', { name: 'Post Comment' }).click();
    const answer = await redirect;
    assert.equal(answer.status(), 303);
    await page.waitForURL(blog.url + uri);
    assert.equal(page.url(), blog.url + uri);
    const [queued] = await service.queue(uri);
    assert.equal(queued.name, 'Plain Form');
    assert.equal(queued.body, 'Sent without JavaScript.');
  });

  test('the moderation page has a strict CSP and runs without a single CSP violation', async () => {
    const uri = fresh('csp');
    const parent = await service.publish({ uri, name: 'Csp Parent', body: 'A parent with a [link](https://example.org/).' });
    await service.submit({ uri, name: 'Csp Child', body: '> quoted\n\n`code`', parent_id: parent.id });
    const { page, problems } = await open();
    const r = await page.goto(`${service.url}/admin`);
    const headers = r.headers();
    const csp = headers['content-security-policy'];
    for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
      assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
    }
    assert.ok(!/unsafe-inline|unsafe-eval/.test(csp));
    assert.equal(headers['x-content-type-options'], 'nosniff');
    const cspReports = [];
    await page.exposeFunction('__cspViolation', (v) => cspReports.push(v));
    await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`)));
    await page.reload();
    await adminLogin(page);
    await adminFilter(page, uri);
    const child = adminItem(page, 'Csp Child');
    await child.locator('.parent blockquote').waitFor();
    assert.match(await child.locator('.parent').textContent(), /In reply to Csp Parent/);
    assert.equal(await child.locator('.body blockquote').textContent().then((t) => t.trim()), 'quoted');
    // The page's own styles applied (so the stylesheet was not blocked).
    assert.equal(await page.locator('#list > li').first().evaluate((el) => getComputedStyle(el).borderLeftStyle), 'solid');
    assert.deepEqual(cspReports, []);
    assert.deepEqual(problems.filter((p) => /Content Security Policy/i.test(p)), []);
    assert.deepEqual(await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]), [0, 0, ''],
      'the token and the session are out of reach of scripts');

    await page.reload();
    await page.locator('#queue').waitFor();
    assert.equal(await page.locator('#login').isVisible(), false, 'the session cookie resumes the session');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Moderator token').waitFor();
    await page.reload();
    await page.getByLabel('Moderator token').waitFor();
    assert.equal(await page.locator('#queue').isVisible(), false, 'logged out for good');
  });

  test('under a strict blog CSP the widget works, styled, and its styles stay inside it', async () => {
    const uri = fresh('scoped');
    await service.publish({ uri, name: 'Styled Sam', body: 'Hi.' });
    const { page, problems } = await open();
    // Computed styles of the blog's own elements, before and after the widget loads.
    const outside = () => page.evaluate(() => ['p.outside', 'button.outside', 'h1', 'body'].map((sel) => {
      const s = getComputedStyle(document.querySelector(sel));
      return [sel, s.color, s.backgroundColor, s.margin, s.padding, s.fontFamily, s.fontSize, s.outlineStyle, s.boxSizing].join('|');
    }));
    await page.route(/\/embed\.js$/, async (route) => {
      // Hold the script back until the blog's own styles are measured.
      await page.waitForFunction(() => window.__measured === true, null, { timeout: 10_000 }).catch(() => {});
      await route.continue();
    });
    await page.goto(`${blog.url}${uri}?csp=strict`, { waitUntil: 'commit' });
    await page.locator('p.outside').waitFor();
    const before = await outside();
    await page.evaluate(() => { window.__measured = true; });
    await widgetReady(page);
    await commentItem(page, 'Styled Sam').waitFor();
    assert.deepEqual(await outside(), before, 'the blog\'s own elements look the same');
    const styled = await page.locator('#marginalia-thread').evaluate((el) => ({
      accent: getComputedStyle(el).getPropertyValue('--mg-accent').trim(),
      padding: getComputedStyle(el).paddingTop,
    }));
    assert.ok(styled.accent.length > 0, 'the widget stylesheet applied under style-src \'self\'');
    assert.notEqual(styled.padding, '0px');
    assert.deepEqual(problems, [], 'no CSP violation on the blog');
  });

  test('theming: custom properties, forced and system dark mode, visible focus', async () => {
    const uri = fresh('theme');
    const { page } = await open({ colorScheme: 'dark' });
    await page.goto(blog.url + uri);
    await widgetReady(page);
    const bg = () => page.locator('#marginalia-thread').evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(await bg(), 'rgb(22, 27, 34)', 'dark by prefers-color-scheme');
    await page.goto(`${blog.url}${uri}?theme=light`);
    await widgetReady(page);
    assert.equal(await bg(), 'rgb(255, 255, 255)', 'data-theme="light" wins');
    await page.addStyleTag({ content: '#marginalia-thread { --marginalia-accent: rgb(200, 0, 100); }' });
    const button = page.getByRole('button', { name: 'Post Comment' });
    assert.equal(await button.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(200, 0, 100)');

    // Keyboard focus is visible. Website → "save my name" → "notify me" → the button.
    await input(page, 'Website').focus();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Post Comment');
    const outline = await button.evaluate((el) => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth);
    assert.match(outline, /^solid [1-9]/);
  });

  test('strings can be overridden with data attributes and window.marginaliaConfig; data-uri defaults to the path', async () => {
    const uri = fresh('strings');
    await service.publish({ uri, name: 'Path Default', body: 'Found through location.pathname.' });
    const config = JSON.stringify({ strings: { leaveReply: 'Schreiben Sie einen Kommentar', commentsOne: 'Ein Kommentar' } });
    const { page } = await open();
    await page.goto(`${blog.url}${uri}?nouri=1&str-post-comment=${encodeURIComponent('Kommentar abschicken')}&config=${encodeURIComponent(config)}`);
    await widgetReady(page);
    await page.getByRole('heading', { name: 'Ein Kommentar' }).waitFor();
    assert.equal(await page.locator('#marginalia-respond h3').textContent(), 'Schreiben Sie einen Kommentar');
    assert.equal(await page.locator('#marginalia-thread button[type=submit]').textContent(), 'Kommentar abschicken');
    await commentItem(page, 'Path Default').waitFor();
  });

  test('the demo page works end to end with the default settings; screenshots of the widget and the moderation page', async () => {
    // As after `cargo run --release`: no ALLOWED_ORIGINS, the page and the API on one origin.
    const demo = await Service.start({ tmp, name: 'demo' });
    try {
      const uri = '/demo/';
      const maya = await demo.publish({
        uri, name: 'Maya (mum of two)', website: 'https://maya.example/',
        body: 'This explains so much! Our son’s OT suggested **wall push-ups** before homework and it really does help him settle.',
      });
      await demo.publish({
        uri, name: 'Willow Lane team', parent_id: maya.id,
        body: 'So glad to hear it, Maya. Carrying the shopping in from the car is another easy one to try.',
      });
      await demo.publish({
        uri, name: 'Tom', body: 'Is there a simple way to tell whether handwriting trouble is a fine-motor issue or just needs practice?',
      });

      for (const [scheme, file] of [['light', 'widget-light.png'], ['dark', 'widget-dark.png']]) {
        const { page, problems } = await open({ colorScheme: scheme, viewport: { width: 820, height: 900 } });
        const r = await page.goto(`${demo.url}/demo`);
        assert.match(r.headers()['content-security-policy'] || '', /script-src 'self'/);
        await widgetReady(page);
        await page.getByRole('heading', { name: '3 comments' }).waitFor();
        await page.waitForFunction(() => document.querySelector('[data-marginalia-count="/demo/"]').textContent === '3 comments');
        if (scheme === 'light') {
          await fillForm(page, { body: 'Thank you, this is really helpful.', name: 'Sam', email: 'sam@example.org' });
          await page.getByRole('button', { name: 'Post Comment' }).click();
          await commentItem(page, 'Sam').getByText('Your comment is awaiting moderation').waitFor();
        }
        await page.evaluate(() => document.activeElement.blur());
        await page.locator('#marginalia-thread').screenshot({ path: path.join(SCREENSHOTS, file), animations: 'disabled' });
        assert.deepEqual(problems, [], `${scheme}: no console errors on /demo`);
      }

      // The newcomer approves Sam's comment on /admin and sees it on /demo.
      const { page, problems } = await open({ viewport: { width: 1100, height: 1000 } });
      await demo.submit({ uri, name: 'Priya', email: 'priya@example.org', website: 'https://priya.example/', parent_id: maya.id, body: 'We tried this too. Does it matter *when* in the day?' });
      await adminLogin(page, demo);
      await adminItem(page, 'Priya').locator('.parent blockquote').waitFor();
      await page.locator('#list > li').first().click({ position: { x: 5, y: 5 } });
      await page.evaluate(() => document.activeElement.blur());
      await page.screenshot({ path: path.join(SCREENSHOTS, 'admin.png'), animations: 'disabled' });
      await adminItem(page, 'Sam').getByRole('button', { name: 'Approve' }).click();
      await adminItem(page, 'Sam').waitFor({ state: 'detached' });
      // The page asks GET /api/admin/session first; its 401 (not logged in yet) is the only error.
      assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), []);

      const reader = await open();
      await reader.page.goto(`${demo.url}/demo`);
      await widgetReady(reader.page);
      await reader.page.getByRole('heading', { name: '4 comments' }).waitFor();
      await commentItem(reader.page, 'Sam').waitFor();
      for (const file of ['widget-light.png', 'widget-dark.png', 'admin.png']) {
        assert.ok(fs.statSync(path.join(SCREENSHOTS, file)).size > 5000, `${file} was written`);
      }
    } finally {
      await demo.stop();
    }
  });

  // Chromium sends Origin on every POST, same-origin ones included: with
  // MARGINALIA_ALLOWED_ORIGINS set (and not listing the service itself), /demo must still post.
  nodeTest('with ALLOWED_ORIGINS set, /demo still takes comments (its own origin)', { timeout: 60_000 }, async () => {
    const { page } = await open();
    await page.goto(`${service.url}/demo`);
    await widgetReady(page);
    await fillForm(page, { body: 'Same origin.', name: 'Own Origin', email: 'own@example.org' });
    await page.getByRole('button', { name: 'Post Comment' }).click();
    await commentItem(page, 'Own Origin').getByText('Your comment is awaiting moderation').waitFor({ timeout: 5000 });
  });
});
