// Languages in the browser: the widget and /demo in each of the 15 languages, the choice of the
// language, right-to-left layout, plural forms, dates, what a submission says about its language,
// /admin in the browser's language, axe-core on /demo and /admin, and a keyboard-only comment.
//
//   cd tests/browser && npm ci && node --test i18n.test.js
//
// Expected texts are read from the catalogs (locales/widget, locales/admin), so a translation can
// change without touching this file; which plural form a count takes is both asserted (a table
// written out below) and computed with the page's own Intl.PluralRules.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import zlib from 'node:zlib';

import {
  ADMIN_TOKEN, Blog, ROOT, SCREENSHOTS, Service, launchBrowser, makeTmp, openPage, widgetReady,
} from './harness.js';

const test = (name, fn) => nodeTest(name, { timeout: 120_000 }, fn);
const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const LANGS = ['en', 'de', 'fr', 'es', 'pt-BR', 'pt-PT', 'it', 'nl', 'pl', 'tr', 'ru', 'ar', 'he', 'ja', 'zh-Hans'];
const RTL = ['ar', 'he'];
const catalog = (folder, lang) => JSON.parse(fs.readFileSync(path.join(ROOT, 'locales', folder, `${lang}.json`), 'utf8'));
const WIDGET = Object.fromEntries(LANGS.map((lang) => [lang, catalog('widget', lang)]));
const ADMIN = Object.fromEntries(LANGS.map((lang) => [lang, catalog('admin', lang)]));
const squash = (s) => s.replace(/\s+/g, ' ').trim();

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

/** The message `key` of a catalog for `n` as the page formats it: its plural form and digits. */
function expected(page, message, n) {
  return page.evaluate(({ message, n, lang }) => {
    if (typeof message === 'string') return message;
    const form = message[new Intl.PluralRules(lang).select(n)] ?? message.other;
    return form.replace('{count}', new Intl.NumberFormat(lang).format(n));
  }, { message, n, lang: page.__lang });
}

/** /demo with the widget in `lang`: the page as served, with data-lang added to its container
 * (and another thread than /demo/, when given). */
async function demoIn(page, url, lang, uri = '/demo/') {
  await page.route(`${url}/demo`, async (route) => {
    const response = await route.fetch();
    const html = (await response.text()).replace('<div id="marginalia-thread" data-uri="/demo/">',
      `<div id="marginalia-thread" data-uri="${uri}" data-lang="${lang}">`);
    assert.ok(html.includes(`data-lang="${lang}"`), 'the demo still embeds the widget as documented');
    await route.fulfill({ response, body: html });
  });
  page.__lang = lang;
  await page.goto(`${url}/demo`);
  await widgetReady(page);
}

/** axe-core in the page (injected through the DevTools protocol, so the page's CSP allows it). */
async function axe(page, what) {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })));
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${what}: axe-core found serious or critical violations`);
  return violations;
}

async function adminLogin(page) {
  await page.goto(`${service.url}/admin`);
  await page.locator('#token').fill(ADMIN_TOKEN);
  await page.locator('#login-button').click();
  await page.locator('#queue').waitFor();
  await page.locator('#list[aria-busy]').waitFor({ state: 'detached' });
}

const box = (locator) => locator.evaluate((el) => {
  const r = el.getBoundingClientRect();
  return { left: r.left, right: r.right, width: r.width };
});
/** Where an element's text is, rather than its (block-wide) box. */
const textBox = (locator) => locator.evaluate((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const r = range.getBoundingClientRect();
  return { left: r.left, right: r.right, width: r.width };
});

describe('languages', () => {
  before(async () => {
    tmp = makeTmp();
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
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

  nodeTest('every catalog has the keys of English, its placeholders, and the plural forms this browser\'s rules use', () => {
    const placeholders = (s) => new Set([...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]));
    for (const [folder, catalogs] of [['widget', WIDGET], ['admin', ADMIN]]) {
      const en = catalogs.en;
      for (const lang of LANGS) {
        const messages = catalogs[lang];
        assert.deepEqual(Object.keys(messages), Object.keys(en), `${folder}/${lang}.json keys, in order`);
        const categories = new Intl.PluralRules(lang).resolvedOptions().pluralCategories.sort();
        for (const [key, message] of Object.entries(messages)) {
          const where = `${folder}/${lang}.json ${key}`;
          if (typeof en[key] === 'string') {
            assert.equal(typeof message, 'string', where);
            assert.deepEqual(placeholders(message), placeholders(en[key]), where);
          } else {
            assert.deepEqual(Object.keys(message).sort(), categories, `${where}: the forms of ${lang}`);
            const allowed = new Set([...placeholders(en[key].other), 'count']);
            for (const form of Object.values(message)) {
              for (const name of placeholders(form)) assert.ok(allowed.has(name), `${where}: {${name}}`);
            }
          }
        }
      }
    }
  });

  nodeTest('the reply button\'s accessible name contains its visible text in every language (WCAG 2.5.3)', () => {
    // As axe-core's label-content-name-mismatch compares them: words, without punctuation.
    const words = (s) => s.normalize('NFKD').toLowerCase().replace(/\p{P}/gu, ' ').split(/\s+/).filter(Boolean);
    for (const lang of LANGS) {
      const name = words(WIDGET[lang].replyLabel.replace('{name}', 'Maya Example'));
      const label = words(WIDGET[lang].reply);
      const at = name.findIndex((_, i) => label.every((word, j) => name[i + j] === word));
      assert.ok(at >= 0, `${lang}: "${WIDGET[lang].reply}" within "${WIDGET[lang].replyLabel}"`);
    }
  });

  nodeTest('first paint stays within 12 KB gzipped: embed.js plus its language\'s catalog, for every language', () => {
    const gz = (file) => zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;
    const script = gz(path.join(ROOT, 'assets/embed.js'));
    const sizes = {};
    for (const lang of LANGS) {
      // English is built into embed.js: no catalog request.
      sizes[lang] = script + (lang === 'en' ? 0 : gz(path.join(ROOT, 'locales/widget', `${lang}.json`)));
      assert.ok(sizes[lang] <= 12_000, `${lang}: ${sizes[lang]} bytes gzipped`);
    }
    console.log(`first paint, gzipped bytes: ${JSON.stringify(sizes)}`);
  });

  test('the demo page in each of the 15 languages: texts from its catalog, one catalog request, lang and dir', async () => {
    const uri = '/demo/';
    const maya = await service.publish({ uri, name: 'Maya', website: 'https://maya.example/', body: 'This explains so much! **Wall push-ups** before homework really help.' });
    await service.publish({ uri, name: 'Willow Lane team', parent_id: maya.id, body: 'So glad to hear it, Maya.' });

    for (const lang of LANGS) {
      const strings = WIDGET[lang];
      const { page, problems } = await open({ viewport: { width: 820, height: 900 } });
      const catalogs = [];
      page.on('request', (r) => r.url().includes('/embed/locales/') && catalogs.push(new URL(r.url()).pathname));
      await demoIn(page, service.url, lang);
      const root = page.locator('#marginalia-thread');
      assert.equal(await root.getAttribute('lang'), lang, `${lang}: lang on the widget`);
      assert.equal(await root.getAttribute('dir'), RTL.includes(lang) ? 'rtl' : 'ltr', `${lang}: dir`);
      assert.deepEqual(catalogs, lang === 'en' ? [] : [`/embed/locales/${lang}.json`], `${lang}: catalog requests`);

      const total = (await service.thread(uri)).total;
      assert.equal(await page.locator('#marginalia-heading').textContent(), await expected(page, strings.comments, total), `${lang}: count heading`);
      assert.equal(await page.locator('#marginalia-reply-title').textContent(), strings.leaveReply, `${lang}: form title`);
      assert.equal(await page.locator('#marginalia-thread button[type=submit]').textContent(), strings.postComment, `${lang}: button`);
      assert.equal(await page.locator('label[for="marginalia-body"]').textContent().then(squash), `${strings.labelComment} *`);
      assert.equal(squash(await page.locator('#marginalia-thread .mg-notes').textContent()),
        squash(`${strings.emailNote} ${strings.requiredNote.replace('{mark}', '*')}`), `${lang}: the notes, with the mark in place`);
      assert.equal(await page.locator('.mg-reply').first().textContent(), strings.reply);
      assert.equal(await page.locator('.mg-reply').first().getAttribute('aria-label'), strings.replyLabel.replace('{name}', 'Maya'));
      // The count on the blog's index list, in the same language and rules.
      await page.waitForFunction((n) => document.querySelector('[data-marginalia-count="/demo/"]').textContent !== 'comments', total);
      assert.equal(await page.locator('[data-marginalia-count="/demo/"]').textContent(), await expected(page, strings.count, total));
      // Dates: the full date in the language as the tooltip, and no English "ago" outside English.
      const time = page.locator('#marginalia-thread time').first();
      const [datetime, title, text] = [await time.getAttribute('datetime'), await time.getAttribute('title'), await time.textContent()];
      assert.equal(title, await page.evaluate(({ lang, datetime }) =>
        new Intl.DateTimeFormat(lang, { dateStyle: 'long', timeStyle: 'short' }).format(new Date(datetime)), { lang, datetime }));
      // Published seconds or minutes ago: "now" or "N minutes ago", as Intl says it in the language.
      const recent = await page.evaluate((lang) => {
        const rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
        return [rtf.format(0, 'second'), ...Array.from({ length: 30 }, (_, i) => rtf.format(-(i + 1), 'minute'))];
      }, lang);
      assert.ok(recent.includes(text), `${lang}: "${text}" is a relative date in the language`);
      if (lang !== 'en') assert.ok(!/\bago\b|\bnow\b/.test(text), `${lang}: "${text}" is not English`);

      assert.deepEqual(problems, [], `${lang}: no console errors`);
    }

    // The screenshots: the same page with a conversation in the language.
    const SAMPLES = {
      de: [['Maya (Mutter von zwei Kindern)', 'Das erklärt so vieles! Die Ergotherapeutin unseres Sohnes hat **Liegestütze an der Wand** vor den Hausaufgaben empfohlen, und es hilft ihm wirklich, zur Ruhe zu kommen.'],
        ['Team Willow Lane', 'Wie schön, das zu hören, Maya! Die Einkäufe aus dem Auto hereintragen ist noch eine einfache Idee zum Ausprobieren.']],
      ar: [['مريم (أم لطفلين)', 'هذا يشرح الكثير! اقترحت أخصائية العلاج الوظيفي لابننا **تمارين الضغط على الحائط** قبل الواجبات المدرسية، وهي تساعده فعلًا على الهدوء.'],
        ['فريق ويلو لين', 'يسعدنا سماع ذلك يا مريم! حمل أكياس التسوق من السيارة فكرة سهلة أخرى يمكن تجربتها.']],
      ja: [['まや（二児の母）', 'とても分かりやすい説明でした！息子の作業療法士さんに宿題の前の**壁腕立て伏せ**を勧められたのですが、本当に落ち着くようです。'],
        ['ウィローレーン チーム', 'それはよかったです、まやさん。車から買い物袋を運んでもらうのも、手軽に試せる方法です。']],
    };
    for (const [lang, [[name, body], [team, reply]]] of Object.entries(SAMPLES)) {
      const thread = `/demo/${lang}/`;
      const first = await service.publish({ uri: thread, name, body, website: 'https://example.org/' });
      await service.publish({ uri: thread, name: team, body: reply, parent_id: first.id });
      const { page, problems } = await open({ viewport: { width: 820, height: 900 } });
      await demoIn(page, service.url, lang, thread);
      await page.locator('#marginalia-thread .mg-children .mg-comment').waitFor();
      await page.evaluate(() => document.activeElement.blur());
      const file = path.join(SCREENSHOTS, `widget-${lang}.png`);
      await page.locator('#marginalia-thread').screenshot({ path: file, animations: 'disabled' });
      assert.ok(fs.statSync(file).size > 5000, `${file} was written`);
      assert.deepEqual(problems, [], `${lang}: no console errors`);
    }
  });

  test('the language: data-lang, else <html lang>, else the browser\'s; truncation, aliases, then English', async () => {
    const uri = `/posts/negotiation/`;
    const cases = [
      // [query, browser locale, expected widget language]
      ['lang=de-AT&html-lang=fr', 'en-US', 'de'],
      ['html-lang=fr-CA', 'en-US', 'fr'],
      ['html-lang=pt', 'en-US', 'pt-BR'],
      ['html-lang=pt-PT', 'en-US', 'pt-PT'],
      ['html-lang=zh-CN', 'en-US', 'zh-Hans'],
      ['html-lang=zh-Hans-SG', 'en-US', 'zh-Hans'],
      ['html-lang=iw', 'en-US', 'he'],
      ['html-lang=sv', 'ru-RU', 'ru'],
      ['lang=xx&html-lang=', 'nl-BE', 'nl'],
      ['html-lang=sv', 'sv-SE', 'en'],
    ];
    for (const [query, locale, lang] of cases) {
      const { page, problems } = await open({ locale });
      await page.goto(`${blog.url}${uri}?${query}`);
      await widgetReady(page);
      assert.equal(await page.locator('#marginalia-thread').getAttribute('lang'), lang, `${query} in a ${locale} browser`);
      assert.equal(await page.locator('#marginalia-heading').textContent(), WIDGET[lang].noComments, `${query}: the catalog of ${lang}`);
      assert.deepEqual(problems, []);
    }
  });

  test('a catalog that cannot be loaded leaves the widget in English, working', async () => {
    const { page, problems } = await open();
    await page.route('**/embed/locales/**', (route) => route.abort('connectionrefused'));
    await page.goto(`${blog.url}/posts/no-catalog/?lang=de`);
    await widgetReady(page);
    assert.equal(await page.locator('#marginalia-thread').getAttribute('lang'), 'en');
    assert.equal(await page.locator('#marginalia-thread button[type=submit]').textContent(), WIDGET.en.postComment);
    assert.ok(problems.every((p) => /ERR_CONNECTION_REFUSED|Failed to load/.test(p)), problems.join('\n'));
  });

  test('right to left: in Arabic the form fields and the reply indentation are on the right', async () => {
    const uri = '/posts/rtl/';
    const parent = await service.publish({ uri, name: 'Salma', body: 'تعليق أول.' });
    await service.publish({ uri, name: 'Omar', body: 'رد على التعليق.', parent_id: parent.id });

    const layout = async (lang) => {
      const { page } = await open({ viewport: { width: 900, height: 1000 } });
      await page.goto(`${blog.url}${uri}?lang=${lang}`);
      await widgetReady(page);
      await page.locator('.mg-children .mg-article').waitFor();
      const form = await box(page.locator('#marginalia-respond form'));
      const label = await textBox(page.locator('label[for="marginalia-body"]'));
      const textarea = await box(page.locator('#marginalia-body'));
      const check = await box(page.locator('#marginalia-save'));
      const button = await box(page.locator('#marginalia-thread button[type=submit]'));
      const section = await box(page.locator('#marginalia-thread .mg-thread'));
      const parentArticle = await box(page.locator('.mg-list > .mg-comment > .mg-article').first());
      const childArticle = await box(page.locator('.mg-children .mg-article').first());
      const rule = await page.locator('.mg-children').first().evaluate((el) => {
        const s = getComputedStyle(el);
        return { left: s.borderLeftWidth, right: s.borderRightWidth, direction: s.direction };
      });
      const headingText = await textBox(page.locator('#marginalia-heading'));
      return { page, form, label, textarea, check, button, headingText, section, parentArticle, childArticle, rule };
    };

    const near = (a, b, what) => assert.ok(Math.abs(a - b) <= 2, `${what}: ${a} vs ${b}`);
    const ar = await layout('ar');
    assert.equal(ar.rule.direction, 'rtl');
    near(ar.label.right, ar.form.right, 'ar: the label starts at the right');
    assert.ok(ar.label.left > ar.form.left + 100, 'ar: and does not reach the left');
    near(ar.check.right, ar.form.right, 'ar: the checkbox is on the right');
    near(ar.button.right, ar.form.right, 'ar: the button is on the right');
    assert.ok(ar.button.left > ar.form.left + 100, 'ar: the button is not on the left');
    near(ar.headingText.right, ar.section.right, 'ar: the heading text starts on the right');
    assert.equal(ar.rule.right, '2px', 'ar: the reply rule is on the right');
    assert.equal(ar.rule.left, '0px');
    assert.ok(ar.childArticle.right < ar.parentArticle.right - 16, 'ar: the reply is indented from the right');
    near(ar.childArticle.left, ar.parentArticle.left, 'ar: and reaches the left edge');
    near(ar.textarea.left, ar.form.left, 'ar: the text box spans the form');
    await ar.page.locator('#marginalia-thread').screenshot({ path: path.join(tmp, 'rtl.png') });

    // The same page in English is its mirror image.
    const en = await layout('en');
    near(en.label.left, en.form.left, 'en: the label starts at the left');
    near(en.check.left, en.form.left, 'en: the checkbox is on the left');
    near(en.button.left, en.form.left, 'en: the button is on the left');
    assert.equal(en.rule.left, '2px');
    assert.ok(en.childArticle.left > en.parentArticle.left + 16, 'en: the reply is indented from the left');
    near(en.childArticle.right, en.parentArticle.right, 'en: and reaches the right edge');
  });

  test('plural forms for 0, 1, 2, 5 and 21 comments in Arabic, Polish and Russian', async () => {
    // The CLDR category of each count, written out: the forms the catalogs must have been chosen by.
    const CATEGORY = {
      ar: { 0: 'zero', 1: 'one', 2: 'two', 5: 'few', 21: 'many' },
      pl: { 0: 'many', 1: 'one', 2: 'few', 5: 'many', 21: 'many' },
      ru: { 0: 'many', 1: 'one', 2: 'few', 5: 'many', 21: 'one' },
    };
    const counts = [0, 1, 2, 5, 21];
    for (const n of counts) {
      for (let i = 0; i < n; i += 1) await service.publish({ uri: `/posts/plural-${n}/`, name: `Reader ${i}`, body: `Comment ${i}` });
      assert.equal((await service.thread(`/posts/plural-${n}/`)).total, n);
    }
    for (const lang of ['ar', 'pl', 'ru']) {
      const { page } = await open();
      page.__lang = lang;
      for (const n of counts) {
        await page.goto(`${blog.url}/posts/plural-${n}/?lang=${lang}&count=1`);
        await widgetReady(page);
        const category = await page.evaluate(({ lang, n }) => new Intl.PluralRules(lang).select(n), { lang, n });
        assert.equal(category, CATEGORY[lang][n], `${lang} ${n}: the browser's rule`);
        const heading = await page.locator('#marginalia-heading').textContent();
        if (n === 0) assert.equal(heading, WIDGET[lang].noComments, `${lang} 0: the empty thread's heading`);
        else {
          const form = WIDGET[lang].comments[category];
          assert.equal(heading, form.replace('{count}', await page.evaluate(({ lang, n }) => new Intl.NumberFormat(lang).format(n), { lang, n })),
            `${lang} ${n}: the "${category}" form of the heading`);
        }
        // The count element uses the plural message for 0 too.
        const count = page.locator('[data-marginalia-count]');
        await page.waitForFunction(() => document.querySelector('[data-marginalia-count]').textContent !== '…');
        assert.equal(await count.textContent(), await expected(page, WIDGET[lang].count, n), `${lang} ${n}: the "${category}" form of the count`);
      }
    }
  });

  test('a submission carries the widget\'s language (lang, Accept-Language) and the reader sees the German notice', async () => {
    const uri = '/posts/submit-de/';
    const { page, problems } = await open();
    await page.goto(`${blog.url}${uri}?lang=de`);
    await widgetReady(page);
    const de = WIDGET.de;
    const form = page.locator('#marginalia-thread form');
    await form.getByRole('textbox', { name: de.labelComment, exact: true }).fill('Ein Kommentar auf Deutsch.');
    await form.getByRole('textbox', { name: de.labelName, exact: true }).fill('Dora');
    await form.getByRole('textbox', { name: de.labelEmail, exact: true }).fill('dora@example.org');
    const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/comments'));
    await page.getByRole('button', { name: de.postComment }).click();
    const request = await sent;
    assert.equal(request.postDataJSON().lang, 'de');
    assert.equal((await request.allHeaders())['accept-language'], 'de');
    await page.getByRole('status').filter({ hasText: de.thanks }).waitFor();
    await page.locator('.mg-pending .mg-awaiting', { hasText: de.awaiting }).waitFor();
    const [queued] = await service.queue(uri);
    assert.equal(queued.name, 'Dora');

    // The client checks speak German too, with the field's German label and the German plural.
    await form.getByRole('textbox', { name: de.labelName, exact: true }).fill('x'.repeat(81));
    await page.getByRole('button', { name: de.postComment }).click();
    assert.equal(await page.locator('#marginalia-body-error').textContent(), de.errRequired.replace('{field}', de.labelComment));
    assert.equal(await page.locator('#marginalia-name-error').textContent(),
      de.errTooLong.other.replace('{field}', de.labelName).replace('{count}', '80'));
    assert.deepEqual(problems, []);
  });

  test('the moderation page speaks the browser\'s language: German, Arabic right to left, English otherwise', async () => {
    const uri = '/posts/admin-lang/';
    const parent = await service.publish({ uri, name: 'Parent Pia', body: 'Parent.' });
    await service.submit({ uri, name: 'Child Carl', body: 'A reply.', parent_id: parent.id });
    for (const [locale, lang] of [['de-AT', 'de'], ['ar-EG', 'ar'], ['sv-SE', 'en']]) {
      const strings = ADMIN[lang];
      const { page, problems } = await open({ locale });
      await page.goto(`${service.url}/admin`);
      await page.locator('#login').waitFor();
      assert.equal(await page.locator('html').getAttribute('lang'), lang, locale);
      assert.equal(await page.locator('html').getAttribute('dir'), RTL.includes(lang) ? 'rtl' : 'ltr', locale);
      assert.equal(await page.locator('#login-button').textContent(), strings.logIn, locale);
      assert.equal(await page.locator('label[for="token"]').textContent(), strings.tokenLabel);
      assert.equal(await page.locator('#token-help code').textContent(), 'marginalia token create NAME', 'the command stays code');
      await page.locator('#token').fill(ADMIN_TOKEN);
      await page.locator('#login-button').click();
      await page.locator('#queue').waitFor();
      await page.locator('#filter-uri').fill(uri);
      await page.locator('#filters button[type=submit]').click();
      await page.locator('#queue-title', { hasText: uri }).waitFor();
      assert.equal(await page.locator('#queue-title').textContent(), strings.titlePendingOn.replace('{uri}', uri));
      const item = page.locator('#list > li.item').first();
      await item.locator('.parent strong').waitFor();
      assert.match(await item.locator('.parent-label').textContent(), new RegExp(strings.parentLabel.split('{name}')[0].trim()));
      assert.equal(await item.locator('button.approve').textContent(), strings.approve);
      assert.equal(await item.locator('.badge').textContent(), strings.statusPending);
      assert.equal(await page.locator('#selected-count').textContent(), await page.evaluate(({ m, lang }) => {
        const form = m[new Intl.PluralRules(lang).select(0)] ?? m.other;
        return form.replace('{count}', new Intl.NumberFormat(lang).format(0));
      }, { m: strings.selectedCount, lang }));
      const border = await item.evaluate((el) => [getComputedStyle(el).borderLeftWidth, getComputedStyle(el).borderRightWidth]);
      assert.deepEqual(border, RTL.includes(lang) ? ['1px', '5px'] : ['5px', '1px'], `${locale}: the status stripe is at the start`);
      const id = await item.getAttribute('data-id');
      await item.locator('button.approve').click();
      await page.getByRole('status').filter({ hasText: strings.doneApprove.replace('{id}', id).replace('{name}', 'Child Carl') }).waitFor();
      assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), [], locale);
      // A pending reply again for the next language.
      await service.submit({ uri, name: 'Child Carl', body: 'A reply.', parent_id: parent.id });
    }
  });

  test('axe-core: no serious or critical violation on /demo in English, Arabic and German, nor on /admin', async () => {
    const uri = '/demo/';
    if ((await service.thread(uri)).total === 0) await service.publish({ uri, name: 'Maya', body: 'Hello.' });
    for (const [lang, scheme] of [['en', 'light'], ['en', 'dark'], ['ar', 'light'], ['de', 'light']]) {
      const { page } = await open({ colorScheme: scheme });
      await demoIn(page, service.url, lang);
      // A pending comment of one's own and an error shown, so that those states are checked too.
      await page.locator('#marginalia-thread button[type=submit]').click();
      await page.locator('#marginalia-body-error').waitFor();
      await axe(page, `/demo in ${lang} (${scheme})`);
      // The honeypot: hidden from assistive technology and never focusable by Tab.
      const trap = page.locator('#marginalia-homepage');
      assert.equal(await trap.count(), 1);
      assert.equal(await page.getByRole('textbox', { name: 'Homepage' }).count(), 0, `${lang}: honeypot in the accessibility tree`);
      assert.equal(await trap.evaluate((el) => el.closest('[aria-hidden="true"]') !== null && el.tabIndex === -1), true);
    }
    for (const locale of ['en-US', 'ar']) {
      const { page } = await open({ locale });
      await service.submit({ uri: '/posts/axe-admin/', name: 'Axe Reader', body: 'Check me.' });
      await adminLogin(page);
      await page.locator('#list > li.item').first().waitFor();
      await page.locator('#notifications summary').click();
      await page.locator('.keys summary').click();
      await axe(page, `/admin (${locale})`);
      await page.goto(`${service.url}/admin`); // the login form too
      await page.locator('#logout').click();
      await page.locator('#login').waitFor();
      await axe(page, `/admin login (${locale})`);
    }
  });

  test('keyboard only: Tab through the form with visible focus, post, and hear the pending notice', async () => {
    const uri = '/posts/keyboard/';
    await service.publish({ uri, name: 'Kim', body: 'Hello.' });
    for (const lang of ['en', 'ar']) {
      const strings = WIDGET[lang];
      const { page, problems } = await open();
      await page.goto(`${blog.url}${uri}?lang=${lang}`);
      await widgetReady(page);
      const status = page.locator('#marginalia-thread [role="status"]');
      assert.equal(await status.getAttribute('aria-live'), 'polite', 'the live region exists before anything is said');
      assert.equal(await status.textContent(), '');

      const focused = () => page.evaluate(() => {
        const el = document.activeElement;
        const s = getComputedStyle(el);
        return {
          id: el.id, tag: el.tagName, type: el.type || '', text: el.textContent.trim(),
          outline: `${s.outlineStyle} ${parseFloat(s.outlineWidth)}`,
        };
      });
      // From the top of the blog's page, Tab until the comment box: the page's own controls, the
      // thread's reply button, then the form.
      const path = [];
      for (let i = 0; i < 40; i += 1) {
        await page.keyboard.press('Tab');
        const now = await focused();
        path.push(now.id || `${now.tag}:${now.text}`);
        if (now.id === 'marginalia-body') break;
      }
      assert.equal(path.at(-1), 'marginalia-body', `reached the comment box: ${path.join(' → ')}`);
      assert.ok(path.includes(`BUTTON:${strings.reply}`), `the reply button comes before the form: ${path.join(' → ')}`);

      const order = ['marginalia-body', 'marginalia-name', 'marginalia-email', 'marginalia-website', 'marginalia-save', 'marginalia-notify'];
      const typed = { 'marginalia-body': `Typed with the keyboard only (${lang}).`, 'marginalia-name': `Keys ${lang}`, 'marginalia-email': 'keys@example.org' };
      for (const [i, id] of order.entries()) {
        const now = await focused();
        assert.equal(now.id, id, `Tab order step ${i}`);
        assert.match(now.outline, /^solid [2-9]/, `${id}: visible focus (${now.outline})`);
        if (typed[id]) await page.keyboard.type(typed[id]);
        await page.keyboard.press('Tab');
      }
      const submit = await focused();
      assert.equal(submit.text, strings.postComment, 'then the button');
      assert.match(submit.outline, /^solid [2-9]/, 'the button shows focus');
      await page.keyboard.press('Enter');
      await status.filter({ hasText: strings.thanks }).waitFor();
      assert.equal(await status.textContent(), strings.thanks, 'the pending notice is announced politely');
      const pending = page.locator('.mg-pending > article');
      await pending.getByText(strings.awaiting).waitFor();
      assert.equal(await page.evaluate(() => document.activeElement.closest('.mg-pending') !== null), true,
        'focus moves to the new pending comment');
      assert.match((await focused()).outline, /^solid [2-9]/, 'and it shows focus');
      assert.deepEqual(problems, []);
    }
  });
});
