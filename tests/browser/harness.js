// Test harness of the browser suite: starts the real marginalia binary on a free loopback port, a
// tiny "blog" on another port (so the widget works cross-origin, with CORS), and headless
// Chromium through playwright-core. Seeds data through the HTTP API, never through the database.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const ASSETS = path.join(ROOT, 'assets');
export const SCREENSHOTS = path.join(ROOT, 'docs/screenshots');
export const BIN = path.resolve(HERE, process.env.MARGINALIA_BIN || '../../target/release/marginalia');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ADMIN_TOKEN = 'browser-test-admin-token-0123';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running marginalia instance, with the HTTP helpers the tests seed data with. */
/** Submissions made through `Service.submit`, for their default addresses. */
let submissions = 0;

export class Service {
  static async start({ tmp, name = 'main', allowedOrigins = '', perMinute = 1000, burst = 1000, env: extraEnv = {} }) {
    if (!fs.existsSync(BIN)) {
      throw new Error(`marginalia binary not found at ${BIN}: run \`cargo build --release\` or set MARGINALIA_BIN`);
    }
    const port = await freePort();
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    const logPath = path.join(dir, 'service.log');
    const log = fs.openSync(logPath, 'w');
    const env = {
      ...process.env,
      MARGINALIA_BIND: `127.0.0.1:${port}`,
      MARGINALIA_DATABASE_URL: `sqlite://${path.join(dir, 'db.sqlite')}`,
      MARGINALIA_ADMIN_TOKEN: ADMIN_TOKEN,
      MARGINALIA_RATE_LIMIT_PER_MINUTE: String(perMinute),
      MARGINALIA_RATE_LIMIT_BURST: String(burst),
      MARGINALIA_ALLOWED_ORIGINS: allowedOrigins,
      MARGINALIA_LOG: process.env.MARGINALIA_LOG || 'info',
      ...extraEnv,
    };
    delete env.DATABASE_URL;
    delete env.MARGINALIA_TRUSTED_PROXIES;
    const proc = spawn(BIN, ['serve'], { env, cwd: dir, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const service = new Service(port, proc, logPath);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) {
        throw new Error(`marginalia exited with ${proc.exitCode}:\n${service.logTail()}`);
      }
      try {
        const r = await fetch(`${service.url}/healthz`);
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`marginalia did not answer /healthz:\n${service.logTail()}`);
      await sleep(100);
    }
    return service;
  }

  constructor(port, proc, logPath) {
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.proc = proc;
    this.logPath = logPath;
  }

  logTail(lines = 40) {
    try {
      return fs.readFileSync(this.logPath, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop() {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async request(method, pathAndQuery, { json, admin = false, headers = {} } = {}) {
    const init = { method, headers: { ...headers }, redirect: 'manual' };
    if (admin) init.headers.Authorization = `Bearer ${ADMIN_TOKEN}`;
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    }
    const r = await fetch(this.url + pathAndQuery, init);
    const text = await r.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: r.status, headers: r.headers, body, text };
  }

  /** Submits a comment as a reader would (JSON) and returns the 202 answer. */
  async submit(fields) {
    // A fresh address each time unless the test names one: the same address, page and body twice
    // is a duplicate (409), which tests that submit "Hello" twice do not mean to test.
    submissions += 1;
    const comment = { name: 'Reader', email: `reader${submissions}@example.org`, body: 'Hello', ...fields };
    const r = await this.request('POST', '/api/comments', { json: comment });
    if (r.status !== 202) throw new Error(`submit answered ${r.status}: ${r.text}`);
    return r.body;
  }

  async moderate(id, action) {
    const r = await this.request('POST', `/api/admin/comments/${id}/${action}`, { admin: true });
    if (r.status !== 200) throw new Error(`${action} ${id} answered ${r.status}: ${r.text}`);
    return r.body;
  }

  /** Submits then approves: a published comment. */
  async publish(fields) {
    const submitted = await this.submit(fields);
    await this.moderate(submitted.id, 'approve');
    return submitted;
  }

  async comment(id) {
    const r = await this.request('GET', `/api/admin/comments/${id}`, { admin: true });
    if (r.status !== 200) throw new Error(`GET comment ${id} answered ${r.status}: ${r.text}`);
    return r.body;
  }

  async queue(uri, status = 'pending') {
    const query = new URLSearchParams({ status, uri, limit: '1000' });
    const r = await this.request('GET', `/api/admin/comments?${query}`, { admin: true });
    if (r.status !== 200) throw new Error(`list answered ${r.status}: ${r.text}`);
    return r.body.comments;
  }

  async thread(uri) {
    const r = await this.request('GET', `/api/comments?uri=${encodeURIComponent(uri)}`);
    return r.body;
  }
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The test blog, on its own origin. Pages:
 *   /posts/SLUG/    a post with the widget; query: svc=PORT (another service), page-size=N,
 *                   nouri=1 (no data-uri: the widget uses the path), str-KEY=VALUE (data-KEY),
 *                   config=JSON (window.marginaliaConfig, from /config.js), theme=dark|light,
 *                   lang=TAG (data-lang on the thread), html-lang=TAG (<html lang>, default en),
 *                   count=1 (a data-marginalia-count element for the post's own thread)
 *   /index/?uri=/a/&uri=/b/   an index page with data-marginalia-count elements (html-lang too)
 *   /config.js?json=…         sets window.marginaliaConfig
 * Any page with csp=strict gets a strict CSP (no inline script or style, scripts and fetches only
 * from the service). Without it there is no CSP at all, so that the XSS tests are not masked by one.
 * Posts send their full address as Referer (a meta referrer policy), so that no-JS form posts can
 * land back on the post itself.
 */
export class Blog {
  static async start(servicePort) {
    const blog = new Blog(servicePort);
    blog.port = await freePort();
    blog.url = `http://127.0.0.1:${blog.port}`;
    blog.server = http.createServer((req, res) => blog.handle(req, res));
    await new Promise((resolve) => blog.server.listen(blog.port, '127.0.0.1', resolve));
    return blog;
  }

  constructor(servicePort) {
    this.servicePort = servicePort;
  }

  stop() {
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(resolve));
  }

  handle(req, res) {
    const url = new URL(req.url, this.url);
    const svc = `http://127.0.0.1:${url.searchParams.get('svc') || this.servicePort}`;
    const csp = [
      "default-src 'self'",
      `script-src 'self' ${svc}`,
      `connect-src ${svc}`,
      "style-src 'self'",
      "img-src 'self'",
      `form-action ${svc}`,
      "base-uri 'none'",
    ].join('; ');
    const send = (status, type, body) => {
      const headers = { 'Content-Type': type, 'Cache-Control': 'no-store' };
      if (url.searchParams.get('csp') === 'strict') headers['Content-Security-Policy'] = csp;
      res.writeHead(status, headers);
      res.end(body);
    };
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    if (url.pathname === '/config.js') {
      return send(200, 'text/javascript', `window.marginaliaConfig = ${url.searchParams.get('json') || '{}'};`);
    }
    if (url.pathname === '/blog.css') {
      // The blog's own styles, to check that the widget's do not leak out (nor break in).
      return send(200, 'text/css', 'body{font:16px/1.5 serif;margin:2rem;color:rgb(20,20,20);background:rgb(250,250,250)}'
        + 'p.outside{margin:7px 0}button.outside{padding:3px}');
    }
    const htmlLang = escapeHtml(url.searchParams.get('html-lang') ?? 'en');
    if (url.pathname === '/index/') {
      const items = url.searchParams.getAll('uri')
        .map((uri, i) => `<li><a href="${escapeHtml(uri)}">Post ${i}</a> <span class="count" data-marginalia-count="${escapeHtml(uri)}">…</span></li>`)
        .join('\n');
      return send(200, 'text/html; charset=utf-8', `<!doctype html><html lang="${htmlLang}"><head><meta charset="utf-8">
<title>Index</title><link rel="stylesheet" href="/blog.css"></head><body>
<h1>All posts</h1><ul>${items}</ul>
<script src="${svc}/embed.js" defer></script></body></html>`);
    }
    const post = url.pathname.match(/^\/posts\/[a-z0-9-]+\/$/);
    if (!post) return send(404, 'text/plain', 'not found');
    const uri = url.pathname;
    const attrs = [];
    if (!url.searchParams.has('nouri')) attrs.push(`data-uri="${escapeHtml(uri)}"`);
    if (url.searchParams.has('page-size')) attrs.push(`data-page-size="${escapeHtml(url.searchParams.get('page-size'))}"`);
    if (url.searchParams.has('theme')) attrs.push(`data-theme="${escapeHtml(url.searchParams.get('theme'))}"`);
    if (url.searchParams.has('lang')) attrs.push(`data-lang="${escapeHtml(url.searchParams.get('lang'))}"`);
    const count = url.searchParams.has('count')
      ? `<p>Comments: <span class="count" data-marginalia-count="${escapeHtml(uri)}">…</span></p>`
      : '';
    for (const [key, value] of url.searchParams) {
      if (key.startsWith('str-')) attrs.push(`data-${escapeHtml(key.slice(4))}="${escapeHtml(value)}"`);
    }
    const config = url.searchParams.has('config')
      ? `<script src="/config.js?json=${encodeURIComponent(url.searchParams.get('config'))}"></script>`
      : '';
    return send(200, 'text/html; charset=utf-8', `<!doctype html>
<html lang="${htmlLang}"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer-when-downgrade">
<title>A post on the test blog</title>
<link rel="stylesheet" href="/blog.css">
${config}</head><body>
<article><h1>A post on the test blog</h1>
<p class="outside">Some text of the blog, outside the widget.</p>
<button class="outside" type="button">A blog button</button>
${count}</article>
<div id="marginalia-thread" ${attrs.join(' ')}></div>
<script src="${svc}/embed.js" defer></script>
<noscript>
  <form id="nojs" method="post" action="${svc}/api/comments">
    <input type="hidden" name="uri" value="${escapeHtml(uri)}">
    <label for="nojs-body">Comment *</label> <textarea id="nojs-body" name="body" required></textarea>
    <label for="nojs-name">Name *</label> <input id="nojs-name" name="name" required>
    <label for="nojs-email">Email *</label> <input id="nojs-email" name="email" type="email" required>
    <label for="nojs-website">Website</label> <input id="nojs-website" name="website" type="url">
    <button type="submit">Post Comment</button>
  </form>
</noscript>
</body></html>`);
  }
}

/**
 * A real SMTP server on a loopback port (enough ESMTP for lettre: EHLO, MAIL, RCPT, DATA, QUIT),
 * keeping every message it accepts, so that tests read the mail the service sends.
 */
export class MailSink {
  static async start() {
    const sink = new MailSink();
    sink.server = net.createServer((socket) => sink.session(socket));
    await new Promise((resolve) => sink.server.listen(0, '127.0.0.1', resolve));
    sink.port = sink.server.address().port;
    return sink;
  }

  constructor() {
    this.messages = []; // { to: [...], raw: string }
  }

  session(socket) {
    let buffer = '';
    let data = null;
    let to = [];
    socket.setEncoding('latin1');
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data !== null) {
          if (line === '.') {
            this.messages.push({ to, raw: data.join('\r\n') });
            data = null;
            to = [];
            socket.write('250 OK\r\n');
          } else {
            data.push(line.startsWith('..') ? line.slice(1) : line);
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-sink\r\n250 8BITMIME\r\n');
        else if (verb === 'RCPT') {
          to.push(line.replace(/^RCPT TO:\s*<?([^>]*)>?.*$/i, '$1'));
          socket.write('250 OK\r\n');
        } else if (verb === 'DATA') {
          data = [];
          socket.write('354 go on\r\n');
        } else if (verb === 'QUIT') {
          socket.end('221 bye\r\n');
        } else socket.write('250 OK\r\n');
      }
    });
    socket.on('error', () => {});
  }

  /** Waits for a message to `to` whose subject matches `subject`, and returns it parsed. */
  async waitFor(to, subject, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.map(parseMail).find((m) => m.to.includes(to) && subject.test(m.subject));
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no mail to ${to} matching ${subject}; got: ${this.messages.map((m) => parseMail(m).subject).join(' | ')}`);
      }
      await sleep(200);
    }
  }

  count(to) {
    return this.messages.filter((m) => m.to.includes(to)).length;
  }

  stop() {
    return new Promise((resolve) => this.server.close(resolve));
  }
}

/** The headers, subject and decoded text part of a raw message (multipart/alternative or single part). */
export function parseMail({ to, raw }) {
  const split = (text) => {
    const at = text.indexOf('\r\n\r\n');
    const head = text.slice(0, at).replace(/\r\n[ \t]+/g, ' ');
    const headers = {};
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, body: text.slice(at + 4) };
  };
  const decode = (part) => {
    const encoding = (part.headers['content-transfer-encoding'] || '7bit').toLowerCase();
    let bytes;
    if (encoding === 'base64') bytes = Buffer.from(part.body.replace(/\s+/g, ''), 'base64');
    else if (encoding === 'quoted-printable') {
      const text = part.body.replace(/=\r\n/g, '');
      const out = [];
      for (let i = 0; i < text.length; i++) {
        if (text[i] === '=' && /^[0-9A-F]{2}$/i.test(text.slice(i + 1, i + 3))) {
          out.push(parseInt(text.slice(i + 1, i + 3), 16));
          i += 2;
        } else out.push(text.charCodeAt(i));
      }
      bytes = Buffer.from(out);
    } else bytes = Buffer.from(part.body, 'latin1');
    return bytes.toString('utf8');
  };
  const message = split(raw);
  const parts = {};
  const boundary = /boundary="?([^";]+)"?/i.exec(message.headers['content-type'] || '');
  if (boundary) {
    for (const chunk of message.body.split(`--${boundary[1]}`).slice(1, -1)) {
      const part = split(chunk.replace(/^\r\n/, ''));
      const type = (part.headers['content-type'] || 'text/plain').split(';')[0].toLowerCase();
      parts[type] = decode(part);
    }
  } else {
    parts[(message.headers['content-type'] || 'text/plain').split(';')[0].toLowerCase()] = decode(message);
  }
  const subject = (message.headers.subject || '').replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, kind, text) =>
    kind.toLowerCase() === 'b'
      ? Buffer.from(text, 'base64').toString('utf8')
      : decode({ headers: { 'content-transfer-encoding': 'quoted-printable' }, body: text.replace(/_/g, ' ') }));
  return { to, headers: message.headers, subject, text: parts['text/plain'] || '', html: parts['text/html'] || '' };
}

export const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
}

/** A fresh context and page that records console errors, CSP reports and page errors. */
export async function openPage(browser, options = {}) {
  // An English browser unless a test says otherwise (the widget and /admin follow its languages).
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, locale: 'en-US', ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) {
      problems.push(message.text());
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return { context, page, problems };
}

/** Waits until the widget has rendered its thread (or failed to). */
export async function widgetReady(page) {
  await page.waitForSelector('#marginalia-thread .mg-thread[aria-busy="false"]');
}

export function makeTmp() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'marginalia-browser-'));
}
