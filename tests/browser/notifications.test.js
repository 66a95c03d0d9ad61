// Notifications in a browser: a reader asks for replies with the widget's checkbox, confirms from
// the mail, gets a mail when a reply to them is approved, and unsubscribes from it; a moderator
// approves from the link in their mail. The mail goes through a real SMTP server on loopback
// (MailSink in harness.js) and every link is opened in headless Chromium.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test as nodeTest } from 'node:test';

import { Blog, MailSink, Service, launchBrowser, makeTmp, openPage, widgetReady } from './harness.js';

const test = (name, fn) => nodeTest(name, { timeout: 90_000 }, fn);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const MODERATOR = 'moderator@clinic.example';
let tmp;
let mail;
let service;
let blog;
let browser;
const contexts = [];

async function open() {
  const opened = await openPage(browser);
  opened.context.setDefaultTimeout(15_000);
  contexts.push(opened.context);
  return opened;
}

/** The first link in a mail's text part that starts with the service's URL and `path`. */
function link(message, path) {
  const escaped = `${service.url}${path}`.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const found = message.text.match(new RegExp(`${escaped}[A-Za-z0-9_-]+`));
  assert.ok(found, `no ${path} link in:\n${message.text}`);
  return found[0];
}

const input = (page, label) => page.locator('#marginalia-thread form').getByRole('textbox', { name: label, exact: true });

describe('notifications in a browser', () => {
  before(async () => {
    tmp = makeTmp();
    mail = await MailSink.start();
    blog = await Blog.start(0);
    service = await Service.start({
      tmp,
      name: 'notify',
      allowedOrigins: blog.url,
      env: {
        MARGINALIA_SMTP_URL: `smtp://127.0.0.1:${mail.port}?tls=none`,
        MARGINALIA_MAIL_FROM: 'Clinic blog <comments@clinic.example>',
        MARGINALIA_NOTIFY_EMAILS: MODERATOR,
        MARGINALIA_SITE_NAME: 'Clinic blog',
      },
    });
    blog.servicePort = service.port;
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await blog?.stop();
    await service?.stop();
    await mail?.stop();
    if (tmp && !process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a moderator approves from the mail: opening the link changes nothing, the button does, once', async () => {
    const uri = '/posts/approve-from-mail/';
    const submitted = await service.submit({ uri, name: 'Maya', email: 'maya@example.org', body: 'Is the clinic open on Saturdays?' });
    const message = await mail.waitFor(MODERATOR, /New comment awaiting moderation on \/posts\/approve-from-mail\/ from Maya/);
    assert.match(message.text, /maya@example\.org/, 'moderators see the address');
    const approve = link(message, '/moderate/');

    const { page } = await open();
    const shown = await page.goto(approve);
    assert.equal(shown.status(), 200);
    await page.getByRole('heading', { name: 'Approve this comment?' }).waitFor();
    await page.getByText('Is the clinic open on Saturdays?').waitFor();
    assert.equal((await service.comment(submitted.id)).status, 'pending', 'opening the link changes nothing');

    const [done] = await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Approve' }).click()]);
    assert.equal(done.status(), 200);
    await page.getByRole('heading', { name: 'Approved' }).waitFor();
    const approved = await service.comment(submitted.id);
    assert.equal(approved.status, 'approved');
    assert.equal(approved.moderated_by, `email:${MODERATOR}`);

    const again = await page.goto(approve);
    assert.equal(again.status(), 410, 'a link acts once: opened again, it says it was used');
    assert.equal(await page.getByRole('button').count(), 0, 'and offers no button');

    await page.goto(blog.url + uri);
    await widgetReady(page);
    await page.locator('#marginalia-thread .mg-name', { hasText: 'Maya' }).waitFor();
  });

  test('a reader ticks "notify me", confirms, gets the approved reply, and unsubscribes', async () => {
    const uri = '/posts/reply-mail/';
    const reader = 'ada@example.org';
    const { page } = await open();
    await page.goto(blog.url + uri);
    await widgetReady(page);

    const checkbox = page.getByRole('checkbox', { name: 'Notify me of follow-up comments by email' });
    assert.equal(await checkbox.isChecked(), false, 'unticked by default');
    await input(page, 'Comment').fill('Does the therapy need a referral?');
    await input(page, 'Name').fill('Ada');
    await input(page, 'Email').fill(reader);
    await checkbox.check();
    await page.getByRole('button', { name: 'Post Comment' }).click();
    await page.getByText('Your comment is awaiting moderation').first().waitFor();
    assert.equal(await checkbox.isChecked(), false, 'unticked again for the next comment');

    const confirmation = await mail.waitFor(reader, /Confirm that you want replies to your comment on \/posts\/reply-mail\//);
    assert.equal(confirmation.headers['list-unsubscribe'], undefined);
    const [ada] = await service.queue(uri);
    await service.moderate(ada.id, 'approve');

    // Confirm in the browser: the page asks, the button confirms.
    await page.goto(link(confirmation, '/subscribe/'));
    await page.getByRole('heading', { name: 'Confirm replies by email' }).waitFor();
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Yes, send me replies' }).click()]);
    await page.getByRole('heading', { name: 'Replies confirmed' }).waitFor();

    // A reply is submitted: nothing for Ada until it is approved.
    const reply = await service.submit({ uri, parent_id: ada.id, name: 'Dr Berg', email: 'berg@clinic.example', body: 'No referral needed.' });
    await mail.waitFor(MODERATOR, /from Dr Berg/);
    await sleep(2500);
    assert.equal(mail.messages.filter((m) => m.to.includes(reader)).length, 1, 'only the confirmation so far');
    await service.moderate(reply.id, 'approve');
    const replyMail = await mail.waitFor(reader, /New reply to your comment on \/posts\/reply-mail\/ from Dr Berg/);
    assert.match(replyMail.text, /No referral needed\./);
    assert.doesNotMatch(replyMail.text + replyMail.html, /berg@clinic\.example/, 'no other reader\'s address');
    assert.equal(replyMail.headers['list-unsubscribe-post'], 'List-Unsubscribe=One-Click');
    const oneClick = replyMail.headers['list-unsubscribe'].replace(/^<|>$/g, '');
    assert.ok(oneClick.startsWith(`${service.url}/unsubscribe/`), oneClick);

    // Unsubscribe from the link in the mail, in the browser.
    await page.goto(link(replyMail, '/unsubscribe/'));
    await page.getByRole('heading', { name: 'Unsubscribe' }).waitFor();
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Unsubscribe' }).click()]);
    assert.match(await page.locator('h1').textContent(), /unsubscribed/i);

    // Another approved reply: no more mail to Ada.
    const later = await service.submit({ uri, parent_id: ada.id, name: 'Nurse Cole', email: 'cole@clinic.example', body: 'Bring your card.' });
    await service.moderate(later.id, 'approve');
    await mail.waitFor(MODERATOR, /from Nurse Cole/);
    await sleep(3000);
    const toAda = mail.messages.filter((m) => m.to.includes(reader)).length;
    assert.equal(toAda, 2, 'the confirmation and one reply mail, nothing after unsubscribing');
  });
});
