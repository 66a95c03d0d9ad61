// The XSS corpus (tests/xss/payloads.jsonl, see tests/xss/SOURCES.md) in a real browser: every
// payload submitted as the body, the name and the website, approved, and rendered by the widget on
// the test blog (no CSP there, so nothing is masked). Nothing may run, no dialog may open, and the
// comments' DOM holds nothing outside the contract's allow-list. The server's own body_html is also parsed
// by Chromium's HTML parser and held to the allow-list, so that a parser difference between the
// server's sanitizer and the browser (mutation XSS) cannot hide behind the widget's second filter.
//
//   tests/browser/run.sh --test-name-pattern='XSS corpus'

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Blog, ROOT, Service, launchBrowser, makeTmp, openPage, widgetReady } from './harness.js';

const CORPUS = fs.readFileSync(path.join(ROOT, 'tests/xss/payloads.jsonl'), 'utf8')
  .split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
const FIELDS = ['body', 'name', 'website'];
/** Comments per thread, and per widget page: every thread needs a few "Load more" clicks. */
const PER_THREAD = 100;
const PAGE_SIZE = 40;
const ALLOWED = 'P BR STRONG EM DEL CODE PRE BLOCKQUOTE UL OL LI A';
const FORBIDDEN = 'iframe, script, svg, img, object, embed, style, form, input, math, frame, frameset, base, meta, link, template, video, audio, image, textarea, select';
const REL = 'nofollow ugc noopener noreferrer';
/** The 422 message of a body that renders to nothing. */
const NOTHING_SAID = 'says nothing once formatting is removed';

let tmp;
let service;
let blog;
let browser;
const contexts = [];
/** field -> [{ uri, comments: [{ id, entry, sent }] }] */
const threads = Object.fromEntries(FIELDS.map((f) => [f, []]));
const refused = Object.fromEntries(FIELDS.map((f) => [f, 0]));

/** Runs `fn` over `items`, `limit` at a time; results in order. */
async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Seeds one field: each payload submitted in it (the other fields valid), accepted ones approved. */
async function seed(field) {
  const answers = await pool(CORPUS, 8, async (entry, i) => {
    const uri = `/posts/xss-${field}-${Math.floor(i / PER_THREAD)}/`;
    const comment = { uri, name: 'Reader', email: 'reader@example.org', body: `Corpus payload ${entry.id} as ${field}.` };
    comment[field] = entry.payload;
    let r = await service.request('POST', '/api/comments', { json: comment });
    if (r.status === 422 && field === 'body' && r.body.fields?.body === NOTHING_SAID) {
      // A payload that renders to nothing is refused; followed by a visible paragraph it
      // still goes through the sanitizer and out to the widget (unless it swallows the
      // paragraph, as an unclosed <script> does, and says nothing again).
      comment.body = `${entry.payload}\n\nStill here.`;
      r = await service.request('POST', '/api/comments', { json: comment });
      if (r.status === 422 && r.body.fields?.body === NOTHING_SAID) return null;
    }
    if (r.status === 422) {
      assert.deepEqual(Object.keys(r.body.fields), [field], `#${entry.id} as ${field}: refused on ${r.text}`);
      if (field === 'body') {
        // the contract refuses control characters but tab, CR and LF, and bodies that say nothing.
        assert.match(entry.payload, /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/u, `#${entry.id} refused as body`);
      }
      return null;
    }
    assert.equal(r.status, 202, `#${entry.id} as ${field}: ${r.text}`);
    await service.moderate(r.body.id, 'approve');
    return { uri, id: r.body.id, entry, sent: comment[field] };
  });
  for (const answer of answers) {
    if (!answer) {
      refused[field] += 1;
      continue;
    }
    let thread = threads[field].find((t) => t.uri === answer.uri);
    if (!thread) threads[field].push((thread = { uri: answer.uri, comments: [] }));
    thread.comments.push(answer);
  }
}

/** Shows every comment of the thread: "Load more" until there is no more. */
async function loadAll(page, expected) {
  const more = page.getByRole('button', { name: 'Load more comments' });
  for (let clicks = 0; await more.isVisible(); clicks += 1) {
    assert.ok(clicks < 50, 'Load more ends');
    await more.click();
    await widgetReady(page);
  }
  await page.waitForFunction((n) => document.querySelectorAll('#marginalia-thread li.mg-comment').length >= n, expected);
}

/** Fires every handler-carrying event at every element of the comment list (links are not clicked). */
function provoke(page) {
  return page.evaluate(() => {
    const events = ['mouseover', 'mouseenter', 'mousemove', 'mousedown', 'mouseup', 'pointerover', 'pointerenter',
      'focus', 'focusin', 'blur', 'load', 'error', 'animationstart', 'animationend', 'transitionend', 'toggle',
      'begin', 'scroll', 'input', 'change', 'submit', 'keydown'];
    for (const el of document.querySelectorAll('#marginalia-thread ol.mg-list *')) {
      for (const type of events) el.dispatchEvent(new Event(type, { bubbles: false }));
      if (typeof el.click === 'function' && el.tagName !== 'A' && el.closest('a') === null && !el.closest('.mg-actions')) el.click();
    }
  });
}

/** Everything in the rendered comments outside the allow-list (widget chrome excluded). */
function renderedViolations(page) {
  return page.evaluate(({ ALLOWED, FORBIDDEN, REL }) => {
    const allowed = new Set(ALLOWED.split(' '));
    const out = [];
    const hrefOk = (href) => {
      try {
        return ['http:', 'https:', 'mailto:'].includes(new URL(href).protocol);
      } catch {
        return false;
      }
    };
    const list = document.querySelector('#marginalia-thread ol.mg-list');
    for (const el of list.querySelectorAll(FORBIDDEN)) out.push(`forbidden <${el.localName}>`);
    // The widget's own chrome: one Reply button per comment, and nothing else that acts.
    for (const el of list.querySelectorAll('button')) {
      if (!el.matches('.mg-actions > button.mg-reply')) out.push(`a button that is not the widget's: ${el.outerHTML}`);
    }
    for (const el of document.querySelectorAll('#marginalia-thread *')) {
      for (const { name, value } of el.attributes) {
        if (/^on/i.test(name)) out.push(`<${el.localName} ${name}=${value}>`);
        // (Text attributes such as aria-label may hold the name's text; URL attributes may not run code.)
        if (/^(src|action|formaction|data|poster|background|srcset|xlink:href)$/i.test(name)) out.push(`<${el.localName} ${name}="${value}">`);
      }
      if (el.hasAttribute('href')) {
        let scheme = 'unparsable';
        try {
          scheme = new URL(el.getAttribute('href'), location.href).protocol;
        } catch { /* kept as unparsable */ }
        if (!['http:', 'https:', 'mailto:'].includes(scheme)) out.push(`<${el.localName} href="${el.getAttribute('href')}">`);
      }
    }
    for (const body of list.querySelectorAll('.mg-body')) {
      for (const el of body.querySelectorAll('*')) {
        if (el.namespaceURI !== 'http://www.w3.org/1999/xhtml' || !allowed.has(el.tagName)) out.push(`element <${el.localName}> (${el.namespaceURI})`);
        for (const { name, value } of el.attributes) {
          if (el.tagName === 'A' && name === 'href') {
            if (!hrefOk(value)) out.push(`href ${value}`);
          } else if (!(el.tagName === 'A' && name === 'rel' && value === REL)) {
            out.push(`attribute ${name}="${value}" on <${el.localName}>`);
          }
        }
      }
    }
    // Names are text: their links (the website) are http(s) with the widget's own rel.
    for (const a of list.querySelectorAll('.mg-name a')) {
      if (!/^https?:$/.test(new URL(a.href).protocol)) out.push(`website link ${a.href}`);
      if (a.children.length) out.push(`markup inside a name link: ${a.innerHTML}`);
    }
    for (const name of list.querySelectorAll('.mg-name')) {
      if (name.querySelector(':scope > :not(a)')) out.push(`markup in a name: ${name.innerHTML}`);
    }
    return out;
  }, { ALLOWED, FORBIDDEN, REL });
}

/** The server's body_html of every comment, parsed by Chromium (inert), against the allow-list. */
function serverHtmlViolations(page, bodies) {
  return page.evaluate(({ bodies, ALLOWED, REL }) => {
    const allowed = new Set(ALLOWED.split(' '));
    const out = [];
    for (const { id, html } of bodies) {
      const tpl = document.createElement('template');
      tpl.innerHTML = html;
      const walker = document.createTreeWalker(tpl.content, NodeFilter.SHOW_ALL);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.nodeType === Node.TEXT_NODE) continue;
        if (node.nodeType !== Node.ELEMENT_NODE) {
          out.push(`#${id}: node type ${node.nodeType}`);
          continue;
        }
        if (node.namespaceURI !== 'http://www.w3.org/1999/xhtml' || !allowed.has(node.tagName)) out.push(`#${id}: <${node.localName}>`);
        if (node.tagName === 'A' && node.getAttribute('rel') !== REL) out.push(`#${id}: <a rel="${node.getAttribute('rel')}">`);
        for (const { name, value } of node.attributes) {
          if (node.tagName === 'A' && name === 'rel' && value === REL) continue;
          if (node.tagName === 'A' && name === 'href') {
            let ok = false;
            try {
              ok = ['http:', 'https:', 'mailto:'].includes(new URL(value).protocol);
            } catch { /* not absolute */ }
            if (!ok) out.push(`#${id}: href ${value}`);
            continue;
          }
          out.push(`#${id}: ${name}="${value}" on <${node.localName}>`);
        }
      }
    }
    return out;
  }, { bodies, ALLOWED, REL });
}

describe('XSS corpus in a browser', () => {
  before(async () => {
    tmp = makeTmp();
    blog = await Blog.start(0);
    // Every submission comes from 127.0.0.1: the rate limit is raised above the corpus' size.
    const submissions = CORPUS.length * FIELDS.length + 10;
    service = await Service.start({ tmp, name: 'xss', allowedOrigins: blog.url, perMinute: submissions, burst: submissions });
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

  test('XSS corpus: the corpus is large and distinct', () => {
    assert.ok(CORPUS.length >= 200, `${CORPUS.length} payloads`);
    assert.equal(new Set(CORPUS.map((e) => e.payload)).size, CORPUS.length);
  });

  for (const field of FIELDS) {
    test(`XSS corpus: every payload as the ${field} is published inert`, { timeout: 600_000 }, async () => {
      const started = Date.now();
      await seed(field);
      const kept = threads[field].reduce((n, t) => n + t.comments.length, 0);
      assert.equal(kept + refused[field], CORPUS.length);
      // Bodies are refused only for control characters or for saying nothing even when
      // followed by a paragraph (both checked in seed()): a few of the corpus.
      if (field === 'body') assert.ok(kept >= CORPUS.length * 0.9, `${kept} bodies published`);

      for (const thread of threads[field]) {
        const { context, page, problems } = await openPage(browser);
        contexts.push(context);
        context.setDefaultTimeout(30_000);
        const dialogs = [];
        const popups = [];
        page.on('dialog', (dialog) => {
          dialogs.push(`${dialog.type()}: ${dialog.message()}`);
          dialog.dismiss().catch(() => {});
        });
        page.on('popup', (popup) => popups.push(popup.url()));
        const address = `${blog.url}${thread.uri}?page-size=${PAGE_SIZE}`;
        await page.goto(address);
        await widgetReady(page);
        await loadAll(page, thread.comments.length);
        await page.waitForTimeout(500); // time for an error or load handler, an animation, a refresh
        await provoke(page);
        await page.waitForTimeout(300);

        const where = `${field} thread ${thread.uri}`;
        assert.equal(await page.locator('#marginalia-thread li.mg-comment').count(), thread.comments.length, `${where}: all shown`);
        assert.deepEqual(await page.evaluate(() => Object.keys(window).filter((k) => /pwn/i.test(k))), [], `${where}: no flag`);
        assert.equal(await page.evaluate(() => window.__pwned), undefined, `${where}: window.__pwned`);
        assert.deepEqual(dialogs, [], `${where}: no dialog`);
        assert.deepEqual(popups, [], `${where}: no popup`);
        assert.equal(page.url(), address, `${where}: no navigation`);
        assert.deepEqual(await renderedViolations(page), [], `${where}: the rendered comments`);
        assert.deepEqual(problems.filter((p) => /page error/.test(p)), [], `${where}: no script error`);

        // What was sent shows as text where it is text.
        const shown = await page.locator('#marginalia-thread li.mg-comment').evaluateAll((items) => items.map((li) => ({
          id: Number(li.dataset.id),
          name: li.querySelector('.mg-name').textContent,
          website: li.querySelector('.mg-name a')?.getAttribute('href') ?? null,
        })));
        const byId = new Map(shown.map((s) => [s.id, s]));
        for (const { id, entry, sent } of thread.comments) {
          const item = byId.get(id);
          assert.ok(item, `#${entry.id} is shown`);
          if (field === 'name') assert.equal(item.name, sent.trim(), `#${entry.id}: the name is shown as text`);
          if (field === 'website') assert.equal(item.website, new URL(sent.trim()).href, `#${entry.id}: the website link`);
        }

        // The server's own HTML, parsed by Chromium rather than by the sanitizer's parser.
        const published = await service.request('GET', `/api/comments?uri=${encodeURIComponent(thread.uri)}&limit=1000`);
        const bodies = published.body.comments.map((c) => ({ id: c.id, html: c.body_html }));
        assert.equal(bodies.length, thread.comments.length);
        assert.deepEqual(await serverHtmlViolations(page, bodies), [], `${where}: the server's body_html in Chromium's parser`);
        await context.close();
      }
      console.log(`# ${field}: ${CORPUS.length} payloads, ${refused[field]} refused (422 on ${field}), `
        + `${CORPUS.length - refused[field]} published inert, over ${threads[field].length} threads, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  }
});
