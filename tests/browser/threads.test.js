// Closed and renamed threads in a browser: the widget on a closed thread shows its comments and
// "Comments are closed." instead of the form, and the moderation page's buttons close, open and
// rename threads. Same harness as marginalia.test.js (the release binary, a blog on another
// origin, headless Chromium).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test as nodeTest } from 'node:test';

import { ADMIN_TOKEN, Blog, Service, launchBrowser, makeTmp, openPage, widgetReady } from './harness.js';

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
function fresh(name) {
  slugs += 1;
  return `/posts/${name}-${slugs}/`;
}

const form = (page) => page.locator('#marginalia-respond');
const closedNote = (page) => page.locator('#marginalia-thread').getByText('Comments are closed.');

async function adminLogin(page) {
  await page.goto(`${service.url}/admin`);
  await page.getByLabel('Moderator token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#queue').waitFor();
  await page.locator('#list[aria-busy]').waitFor({ state: 'detached' });
}

async function adminShow(page, uri, status) {
  await page.getByLabel('Status').selectOption(status);
  await page.getByLabel('Page', { exact: true }).fill(uri);
  await page.getByRole('button', { name: 'Show' }).click();
  await page.locator('#queue-title', { hasText: `on ${uri}` }).waitFor();
  await page.locator('#list[aria-busy]').waitFor({ state: 'detached' });
}

describe('closed and renamed threads in a browser', () => {
  before(async () => {
    tmp = makeTmp();
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
  });

  test('a closed thread shows its comments and "Comments are closed." instead of the form', async () => {
    const uri = fresh('closed');
    await service.publish({ uri, name: 'Ada', body: 'Said before the close.' });
    const closed = await service.request('POST', `/api/admin/threads/close?uri=${encodeURIComponent(uri)}`, { admin: true });
    assert.equal(closed.status, 200, closed.text);

    const { page, problems } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    await page.getByRole('heading', { name: '1 comment', exact: true }).waitFor();
    await page.getByText('Said before the close.').waitFor();
    await closedNote(page).waitFor();
    assert.equal(await form(page).isVisible(), false, 'no form');
    assert.equal(await page.locator('#marginalia-thread form').isVisible(), false);
    assert.equal(await page.locator('#marginalia-thread .mg-reply').isVisible(), false, 'no reply buttons');
    assert.deepEqual(problems, []);

    // An open thread still has its form and no such note.
    const openUri = fresh('open');
    await service.publish({ uri: openUri, name: 'Bob', body: 'Open here.' });
    await page.goto(blog.url + openUri);
    await widgetReady(page);
    await page.getByText('Open here.').waitFor();
    assert.equal(await form(page).isVisible(), true);
    assert.equal(await closedNote(page).isVisible(), false);
  });

  test('a thread closed while the reader writes refuses the comment and keeps the text', async () => {
    const uri = fresh('closing');
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);
    const respond = form(page);
    await respond.getByRole('textbox', { name: 'Comment', exact: true }).fill('Too late.');
    await respond.getByRole('textbox', { name: 'Name', exact: true }).fill('Cy');
    await respond.getByRole('textbox', { name: 'Email', exact: true }).fill('cy@example.org');
    await service.request('POST', `/api/admin/threads/close?uri=${encodeURIComponent(uri)}`, { admin: true });
    await respond.getByRole('button', { name: 'Post Comment' }).click();
    await respond.locator('.mg-status.mg-bad', { hasText: 'Comments are closed.' }).waitFor();
    assert.equal(await respond.getByRole('textbox', { name: 'Comment', exact: true }).inputValue(), 'Too late.');
    assert.deepEqual(await service.queue(uri), [], 'nothing stored');
  });

  test('the moderation page closes and opens a comment\'s thread, and renames a thread', async () => {
    const uri = fresh('moderated');
    await service.publish({ uri, name: 'Dee', body: 'On the old address.' });
    const admin = await open();
    await adminLogin(admin.page);
    await adminShow(admin.page, uri, 'approved');
    const item = admin.page.locator('#list > li.item').first();

    await item.getByRole('button', { name: 'Close thread' }).click();
    await admin.page.locator('#status', { hasText: `Comments on ${uri} are closed.` }).waitFor();
    assert.equal((await service.thread(uri)).closed, true);
    const reader = await open();
    await reader.page.goto(blog.url + uri);
    await widgetReady(reader.page);
    await closedNote(reader.page).waitFor();
    assert.equal(await form(reader.page).isVisible(), false);

    await item.getByRole('button', { name: 'Open thread' }).click();
    await admin.page.locator('#status', { hasText: `Comments on ${uri} are open.` }).waitFor();
    await reader.page.reload();
    await widgetReady(reader.page);
    await form(reader.page).waitFor();
    assert.equal(await closedNote(reader.page).isVisible(), false);

    const renamed = fresh('renamed');
    await admin.page.getByText('Threads', { exact: true }).click();
    await admin.page.getByLabel('From page').fill(uri);
    await admin.page.getByLabel('To page').fill(renamed);
    await admin.page.getByRole('button', { name: 'Rename thread' }).click();
    await admin.page.locator('#rename-result', { hasText: `Comments moved from ${uri} to ${renamed}: 1.` }).waitFor();
    assert.equal((await service.thread(uri)).total, 0);
    assert.equal((await service.thread(renamed)).total, 1);
    await reader.page.goto(blog.url + renamed);
    await widgetReady(reader.page);
    await reader.page.getByText('On the old address.').waitFor();
  });
});
