/*! marginalia comment widget (served at /embed.js by the marginalia binary; MIT). Docs: docs/widget.md
 *
 * Embed:  <div id="marginalia-thread" data-uri="/path/"></div>
 *         <script src="https://COMMENTS_HOST/embed.js" defer></script>
 * Counts: <a data-marginalia-count="/path/"></a>  (any element; one request per 100 uris)
 * Options on the thread element (all optional): data-uri (default: the path), data-page-size,
 *   data-theme="light"|"dark", data-lang (default: <html lang>, then the browser's), data-<message>
 *   (data-post-comment="Send", data-comments-one: one plural form); or window.marginaliaConfig =
 *   { uri, pageSize, lang, strings: { postComment: "Send", ... } }. Theme: --marginalia-* properties.
 *
 * Security: names, websites, dates and every other text go in as text; only the server's sanitized
 * body_html goes in as HTML, and even that passes a client-side allow-list first.
 */
(() => {
  'use strict';

  // Captured now: currentScript is null after the first await.
  const SCRIPT = document.currentScript;
  const SCRIPT_URL = (SCRIPT && SCRIPT.src) || location.href;
  const API = new URL('api/', SCRIPT_URL);
  const CFG = (typeof window.marginaliaConfig === 'object' && window.marginaliaConfig) || {};

  // = locales/widget/en.json (a test in src/routes/pages.rs checks): English needs no second request.
  const EN = /* en.json */{
    "loading": "Loading comments…",
    "loadError": "Comments could not be loaded.",
    "retry": "Try again",
    "noComments": "No comments yet",
    "comments": { "one": "{count} comment", "other": "{count} comments" },
    "count": { "one": "{count} comment", "other": "{count} comments" },
    "loadMore": "Load more comments",
    "reply": "Reply",
    "replyLabel": "Reply to {name}",
    "inReplyTo": "in reply to {name}",
    "permalink": "Link to this comment",
    "leaveReply": "Leave a Reply",
    "leaveReplyTo": "Leave a Reply to {name}",
    "cancelReply": "Cancel reply",
    "emailNote": "Your email address will not be published.",
    "requiredNote": "Required fields are marked {mark}",
    "labelComment": "Comment",
    "labelName": "Name",
    "labelEmail": "Email",
    "labelWebsite": "Website",
    "labelSave": "Save my name, email, and website in this browser for the next time I comment.",
    "labelNotify": "Notify me of follow-up comments by email",
    "postComment": "Post Comment",
    "posting": "Posting…",
    "awaiting": "Your comment is awaiting moderation.",
    "thanks": "Thank you! Your comment is awaiting moderation.",
    "errRequired": "{field} is required.",
    "errTooLong": { "one": "{field} must be at most {count} character.", "other": "{field} must be at most {count} characters." },
    "errControl": "{field} must not contain control characters.",
    "errEmail": "Please enter a valid email address.",
    "errWebsite": "Please enter a full web address starting with http:// or https://.",
    "errServerField": "{field} {message}.",
    "errFix": "Please correct the marked fields.",
    "errParent": "The comment you are replying to can no longer be answered.",
    "errRateSeconds": { "one": "You are commenting too quickly. Please wait {count} second and try again.", "other": "You are commenting too quickly. Please wait {count} seconds and try again." },
    "errRateMinutes": { "one": "You are commenting too quickly. Please wait {count} minute and try again.", "other": "You are commenting too quickly. Please wait {count} minutes and try again." },
    "errNetwork": "Your comment could not be sent because the comment server did not answer. What you wrote is still here: please try again.",
    "errServer": "Your comment could not be sent ({message}). Please try again.",
    "closed": "Comments are closed."
  };

  // The languages of /embed/locales/TAG.json.
  const LANGS = ['en', 'de', 'fr', 'es', 'pt-BR', 'pt-PT', 'it', 'nl', 'pl', 'tr', 'ru', 'ar', 'he', 'ja', 'zh-Hans'];
  const RTL = ['ar', 'he'];
  const ALIAS = { pt: 'pt-BR', zh: 'zh-Hans', 'zh-cn': 'zh-Hans', 'zh-sg': 'zh-Hans' };
  const LEGACY = { commentsZero: 'noComments' };

  const MAX_DEPTH = 3; // levels of nesting shown; deeper replies join their parent's level
  const PENDING_KEY = 'marginalia:pending';
  const AUTHOR_KEY = 'marginalia:author';
  const WEEK = 7 * 864e5;
  const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
  const CONTROL_BODY = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
  // The user part is the HTML rule the server uses; the domain is checked by the server.
  const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[^\s@]+$/;
  const TAGS = new Set('P BR STRONG EM DEL CODE PRE BLOCKQUOTE UL OL LI A'.split(' '));

  // helpers

  // The first tag with a catalog, by truncation (de-AT → de), else en: [catalog, tag for Intl].
  function negotiate(tags) {
    for (let tag of tags) {
      try {
        tag = Intl.getCanonicalLocales(String(tag).trim().replace(/_/g, '-'))[0];
      } catch {
        continue;
      }
      for (let parts = tag.toLowerCase().split('-'); parts.length; parts.pop()) {
        const part = parts.join('-');
        const hit = LANGS.find((l) => l.toLowerCase() === part) || ALIAS[part];
        if (hit) return [hit, tag];
      }
    }
    return ['en', 'en'];
  }

  // Blog overrides: "postComment", or a plural form, "commentsFew" ("Many" is "other" where a
  // language has none; "Zero" is for 0).
  function override(catalog, data, categories) {
    if (data) for (let [key, value] of Object.entries(data)) {
      key = LEGACY[key] || key;
      const form = /^(.+?)(Zero|One|Two|Few|Many|Other)$/.exec(key);
      if (typeof EN[key] === 'string' && typeof value === 'string') catalog[key] = value;
      else if (typeof EN[key] === 'object' && value && typeof value === 'object') catalog[key] = value;
      else if (form && typeof EN[form[1]] === 'object' && typeof value === 'string') {
        let category = form[2].toLowerCase();
        if (category === 'many' && !categories.includes('many')) category = 'other';
        catalog[form[1]] = { ...catalog[form[1]], [category]: value };
      }
    }
  }

  // {name} placeholders; plural forms by Intl.PluralRules, {count} ({n}: old name) by NumberFormat.
  function makeT(catalog, lang, locale) {
    const rules = new Intl.PluralRules(lang);
    const number = new Intl.NumberFormat(locale);
    return (key, vars = {}) => {
      let message = catalog[key];
      if (message && typeof message === 'object') {
        const n = vars.count;
        message = message[n === 0 && message.zero != null ? 'zero' : rules.select(n)] ?? message.other;
        vars = { ...vars, count: number.format(n), n: number.format(n) };
      }
      return String(message).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
    };
  }

  // "Required fields are marked {mark}", with an element for {mark}.
  function place(text, elements) {
    return text.split(/\{(\w+)\}/).map((part, i) => (i % 2 ? elements[part] || `{${part}}` : part));
  }

  const chars = (s) => [...s].length;
  const validUri = (u) => typeof u === 'string' && u[0] === '/' && chars(u) <= 500 && !/[\s\u0000-\u001f\u007f-\u009f]/.test(u);

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    el.append(...kids.filter((kid) => kid != null)); // strings become text nodes
    return el;
  }

  function store(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch { /* storage disabled or full: the widget still works */ }
  }
  function load(key) {
    try {
      return JSON.parse(localStorage.getItem(key));
    } catch {
      return null;
    }
  }

  function httpUrl(value) {
    try {
      const url = new URL(value);
      return /^https?:$/.test(url.protocol) && url.hostname ? url : null;
    } catch {
      return null;
    }
  }

  // Defence in depth: the server sanitized body_html already (a pending copy comes from
  // localStorage). Parse it inert and keep only the server's allow-list.
  function safeHtml(html) {
    const tpl = document.createElement('template');
    tpl.innerHTML = String(html);
    (function clean(node) {
      for (const el of [...node.children]) {
        if (!TAGS.has(el.tagName)) {
          el.remove();
          continue;
        }
        for (const { name } of [...el.attributes]) if (!(el.tagName === 'A' && name === 'href')) el.removeAttribute(name);
        if (el.tagName === 'A') {
          if (!/^(https?|mailto):/i.test((el.getAttribute('href') || '').trim())) el.removeAttribute('href');
          el.rel = 'nofollow ugc noopener noreferrer';
        }
        clean(el);
      }
    })(tpl.content);
    return tpl.content;
  }

  // styles

  const P = '#marginalia-thread';
  const LIGHT = '--mg-fg:var(--marginalia-text,#1f2328);--mg-muted:var(--marginalia-muted,#57606a);--mg-bg:var(--marginalia-background,#fff);--mg-surface:var(--marginalia-surface,#fff);--mg-border:var(--marginalia-border,#c9d1d9);--mg-accent:var(--marginalia-accent,#0a58ca);--mg-on-accent:var(--marginalia-accent-text,#fff);--mg-error:var(--marginalia-error,#b42318);--mg-pending:var(--marginalia-pending,#fff8db);--mg-focus:var(--marginalia-focus,#0a58ca);color-scheme:light;';
  const DARK = '--mg-fg:var(--marginalia-text,#e6edf3);--mg-muted:var(--marginalia-muted,#9da7b3);--mg-bg:var(--marginalia-background,#161b22);--mg-surface:var(--marginalia-surface,#0d1117);--mg-border:var(--marginalia-border,#3d444d);--mg-accent:var(--marginalia-accent,#6cb6ff);--mg-on-accent:var(--marginalia-accent-text,#0d1117);--mg-error:var(--marginalia-error,#ff9492);--mg-pending:var(--marginalia-pending,#2e2a18);--mg-focus:var(--marginalia-focus,#6cb6ff);color-scheme:dark;';
  const CSS = `
${P}{${LIGHT}display:block;color:var(--mg-fg);background:var(--mg-bg);font-family:var(--marginalia-font,inherit);font-size:var(--marginalia-font-size,inherit);line-height:1.55;padding:var(--marginalia-padding,1.25rem);border-radius:var(--marginalia-radius,8px);text-align:start}
${P}[data-theme=dark]{${DARK}}
@media (prefers-color-scheme:dark){${P}:not([data-theme=light]){${DARK}}}
${P} *,${P} *::before,${P} *::after{box-sizing:border-box}
${P} :where(h2,h3,p,ol,ul,li,form,article,header,blockquote,pre,button,input,textarea,label){margin:0;padding:0;font:inherit;color:inherit;letter-spacing:normal;text-transform:none;background:none;border:0;box-shadow:none}
${P} [hidden]{display:none!important}
${P} .mg-hp,${P} .mg-hp input{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap;border:0}
${P} a{color:var(--mg-accent);text-decoration:underline;text-underline-offset:2px}
${P} :focus-visible,${P} [tabindex="-1"]:focus{outline:3px solid var(--mg-focus);outline-offset:2px;border-radius:3px}
${P} .mg-heading{font-size:1.35em;font-weight:700;line-height:1.3;margin:0 0 .75rem}
${P} .mg-list,${P} .mg-children{list-style:none}
${P} .mg-children{margin:.25rem 0 0;margin-inline-start:1rem;padding-inline-start:1rem;border-inline-start:2px solid var(--mg-border)}
${P} .mg-comment{margin:0 0 .5rem}
${P} .mg-article{padding:.75rem 0}
${P} .mg-pending>.mg-article{background:var(--mg-pending);padding:.75rem;border-radius:6px}
${P} .mg-meta{display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:baseline;margin-bottom:.35rem}
${P} .mg-name{font-weight:700}
${P} .mg-meta .mg-date,${P} .mg-irt{color:var(--mg-muted);font-size:.875em}
${P} .mg-meta .mg-date{text-decoration:none}
${P} .mg-meta .mg-date:hover{text-decoration:underline}
${P} .mg-awaiting{font-style:italic;color:var(--mg-muted);margin:.35rem 0 0}
${P} .mg-body{overflow-wrap:anywhere}
${P} .mg-body>*+*{margin-top:.6em}
${P} .mg-body ul{list-style:disc;padding-inline-start:1.5em}
${P} .mg-body ol{list-style:decimal;padding-inline-start:1.5em}
${P} .mg-body blockquote{border-inline-start:3px solid var(--mg-border);padding-inline-start:.8em;color:var(--mg-muted)}
${P} .mg-body pre{overflow:auto;padding:.6em;border:1px solid var(--mg-border);border-radius:4px;background:var(--mg-surface)}
${P} .mg-body code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
${P} .mg-link{cursor:pointer;color:var(--mg-accent);text-decoration:underline;font-size:.875em;padding:.15rem 0}
${P} .mg-actions{margin-top:.35rem}
${P} .mg-button{cursor:pointer;display:inline-block;padding:.55rem 1.1rem;border-radius:6px;font-weight:600;border:1px solid var(--mg-accent);color:var(--mg-accent);background:transparent;margin-top:.75rem}
${P} .mg-primary{background:var(--mg-accent);color:var(--mg-on-accent)}
${P} .mg-button[aria-disabled=true]{opacity:.65;cursor:progress}
${P} .mg-respond{margin-top:1.5rem}
${P} .mg-comment .mg-respond{margin:.5rem 0 1rem}
${P} .mg-title-row{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;margin-bottom:.4rem}
${P} .mg-title{font-size:1.2em;font-weight:700;line-height:1.3}
${P} .mg-notes{color:var(--mg-muted);font-size:.9em;margin-bottom:.75rem}
${P} .mg-req{color:var(--mg-error)}
${P} .mg-field{margin-bottom:.85rem}
${P} .mg-field>label{display:block;font-weight:600;margin-bottom:.25rem}
${P} .mg-input{display:block;width:100%;max-width:100%;padding:.5rem .6rem;border:1px solid var(--mg-border);border-radius:4px;background:var(--mg-surface);color:var(--mg-fg);line-height:1.4}
${P} textarea.mg-input{min-height:8rem;resize:vertical}
${P} .mg-input[aria-invalid=true]{border-color:var(--mg-error);border-width:2px}
${P} .mg-error,${P} .mg-status.mg-bad{color:var(--mg-error);font-weight:600}
${P} .mg-error{display:block;font-size:.9em;margin-top:.25rem}
${P} .mg-check{display:flex;gap:.5rem;align-items:flex-start}
${P} .mg-check>label{font-weight:400;margin:0}
${P} .mg-check input{width:1.1rem;height:1.1rem;margin-top:.2rem;flex:none;accent-color:var(--mg-accent)}
${P} .mg-status{margin-top:.6rem}
${P} .mg-status:empty{display:none}
${P} .mg-note{color:var(--mg-muted);margin:.5rem 0}
${P} .mg-closed{margin-top:1.5rem;font-style:italic}
${P}.mg-is-closed .mg-reply{display:none}
@media (max-width:480px){${P} .mg-children{margin-inline-start:.35rem;padding-inline-start:.6rem}}
`;

  function addStyles() {
    // A constructed sheet passes a CSP without inline <style>.
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    } catch {
      document.head.append(h('style', {}, CSS));
    }
  }

  // counts

  function fillCounts(t) {
    const els = [...document.querySelectorAll('[data-marginalia-count]')];
    const uris = [...new Set(els.map((el) => el.getAttribute('data-marginalia-count')))].filter(validUri);
    for (let i = 0; i < uris.length; i += 100) {
      const query = new URLSearchParams();
      for (const uri of uris.slice(i, i + 100)) query.append('uri', uri);
      fetch(new URL('counts?' + query, API), { credentials: 'omit' })
        .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
        .then((counts) => {
          for (const el of els) {
            const n = counts[el.getAttribute('data-marginalia-count')];
            if (typeof n === 'number') el.textContent = t('count', { count: n });
          }
        })
        .catch(() => { /* leave the elements as the blog wrote them */ });
    }
  }

  // thread

  function threadUrl(uri, pageSize, after) {
    const query = new URLSearchParams({ uri });
    if (pageSize) query.set('limit', pageSize);
    if (after) query.set('after', after);
    return new URL('comments?' + query, API);
  }

  function widget(root, t, { lang, locale, uri, pageSize, first }) {
    const dateFormat = new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeStyle: 'short' });
    const relative = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
    // "3 hours ago" within a week, else the date; the full date is the tooltip.
    const when = (date) => {
      const secs = (date - Date.now()) / 1000;
      if (Math.abs(secs) >= 7 * 86400) return dateFormat.format(date);
      for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]]) {
        if (Math.abs(secs) >= size) return relative.format(Math.round(secs / size), unit);
      }
      return relative.format(0, 'second');
    };

    const nodes = new Map(); // published id -> { li, article, depth, name, kids }
    const pendingNodes = new Map(); // own pending id -> li
    let parentId = null;
    let replyButton = null;
    let next = null;
    let busy = false;

    // --- the thread section
    const heading = h('h2', { class: 'mg-heading', id: 'marginalia-heading' }, t('loading'));
    const list = h('ol', { class: 'mg-list' });
    const note = h('p', { class: 'mg-note', hidden: true });
    const more = h('button', { type: 'button', class: 'mg-button', hidden: true, onclick: () => page(next) }, t('loadMore'));
    const section = h('section', { class: 'mg-thread', 'aria-labelledby': 'marginalia-heading', 'aria-busy': 'true' }, heading, note, list, more);

    // --- the form
    const fields = {};
    const field = (key, label, control, required) => {
      const error = h('span', { class: 'mg-error', id: `marginalia-${key}-error`, hidden: true });
      control.id = `marginalia-${key}`;
      control.name = key;
      control.className = 'mg-input';
      if (required) control.required = true;
      control.addEventListener('input', () => setError(key, null));
      fields[key] = { control, error, label };
      return h('p', { class: 'mg-field' },
        h('label', { for: control.id }, label, required ? ' ' : null, required ? h('span', { class: 'mg-req', 'aria-hidden': 'true' }, '*') : null),
        control, error);
    };
    const save = h('input', { type: 'checkbox', id: 'marginalia-save', name: 'save' });
    // Unticked by default: ticking it asks for reply mail, which the reader confirms from a mail first.
    const notify = h('input', { type: 'checkbox', id: 'marginalia-notify', name: 'notify' });
    // Honeypot: out of sight, of screen readers, the keyboard and autofill; a bot filling it lands in spam.
    const honeypot = h('input', { type: 'text', id: 'marginalia-homepage', name: 'homepage', tabindex: '-1', autocomplete: 'off' });
    // Form token: signed time the form was shown (too_fast); fetched apart so reads stay cacheable.
    let formToken = null;
    const fetchFormToken = () => fetch(new URL('form-token', API), { credentials: 'omit' })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => { formToken = data && typeof data.token === 'string' ? data.token : null; })
      .catch(() => {});
    fetchFormToken();
    const submitButton = h('button', { type: 'submit', class: 'mg-button mg-primary' }, t('postComment'));
    const status = h('p', { class: 'mg-status', role: 'status', 'aria-live': 'polite' });
    const title = h('h3', { class: 'mg-title', id: 'marginalia-reply-title' }, t('leaveReply'));
    const cancel = h('button', { type: 'button', class: 'mg-link', hidden: true, onclick: () => closeReply(true) }, t('cancelReply'));
    const form = h('form', { class: 'mg-form', novalidate: true, 'aria-labelledby': 'marginalia-reply-title', onsubmit: submit },
      h('p', { class: 'mg-notes' },
        h('span', {}, t('emailNote')), ' ',
        h('span', {}, ...place(/\{mark\}/.test(t('requiredNote')) ? t('requiredNote') : t('requiredNote') + ' {mark}',
          { mark: h('span', { class: 'mg-req' }, '*') }))),
      field('body', t('labelComment'), h('textarea', { rows: 6, dir: 'auto' }), true),
      field('name', t('labelName'), h('input', { type: 'text', autocomplete: 'name', dir: 'auto' }), true),
      field('email', t('labelEmail'), h('input', { type: 'email', autocomplete: 'email', spellcheck: 'false' }), true),
      field('website', t('labelWebsite'), h('input', { type: 'url', autocomplete: 'url', spellcheck: 'false' }), false),
      h('p', { class: 'mg-hp', 'aria-hidden': 'true' }, h('label', { for: 'marginalia-homepage' }, 'Homepage'), honeypot),
      h('p', { class: 'mg-field mg-check' }, save, h('label', { for: 'marginalia-save' }, t('labelSave'))),
      h('p', { class: 'mg-field mg-check' }, notify, h('label', { for: 'marginalia-notify' }, t('labelNotify'))),
      h('p', {}, submitButton),
      status);
    const respond = h('div', { class: 'mg-respond', id: 'marginalia-respond' }, h('div', { class: 'mg-title-row' }, title, cancel), form);
    respond.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && parentId != null) closeReply(true);
    });

    const author = load(AUTHOR_KEY);
    if (author && typeof author === 'object') {
      for (const key of ['name', 'email', 'website']) if (typeof author[key] === 'string') fields[key].control.value = author[key];
      save.checked = true;
    }

    root.classList.add('marginalia');
    root.lang = lang;
    root.dir = RTL.includes(lang) ? 'rtl' : 'ltr';
    // A closed thread: comments, no form.
    const closedNote = h('p', { class: 'mg-note mg-closed', id: 'marginalia-closed', hidden: true }, t('closed'));
    root.replaceChildren(section, respond, closedNote);

    function setClosed(closed) {
      if (closed && parentId != null) closeReply(false);
      root.classList.toggle('mg-is-closed', closed);
      respond.hidden = closed;
      closedNote.hidden = !closed;
    }

    function say(message, bad) {
      status.textContent = message || '';
      status.classList.toggle('mg-bad', !!bad);
    }

    function setError(key, message) {
      const f = fields[key];
      f.error.textContent = message || '';
      f.error.hidden = !message;
      if (message) {
        f.control.setAttribute('aria-invalid', 'true');
        f.control.setAttribute('aria-describedby', f.error.id);
      } else {
        f.control.removeAttribute('aria-invalid');
        f.control.removeAttribute('aria-describedby');
      }
    }

    // --- rendering comments

    function render(c, pending) {
      const parent = c.parent_id != null ? nodes.get(c.parent_id) : null;
      let depth = 0;
      let into = list;
      let irt = null;
      if (parent) {
        if (parent.depth + 1 < MAX_DEPTH) {
          depth = parent.depth + 1;
          if (!parent.kids) parent.li.append((parent.kids = h('ol', { class: 'mg-children' })));
          into = parent.kids;
        } else {
          depth = parent.depth;
          into = parent.li.parentElement;
          irt = h('span', { class: 'mg-irt' }, t('inReplyTo', { name: parent.name }));
        }
      }
      const site = c.website && httpUrl(c.website);
      const name = site ? h('a', { href: site.href, rel: 'nofollow ugc' }, c.name) : c.name;
      const created = new Date(c.created_at);
      const anchor = `marginalia-${pending ? 'pending' : 'comment'}-${c.id}`;
      const date = isNaN(created) ? null : h('a', { class: 'mg-date', href: '#' + anchor, title: t('permalink') },
        h('time', { datetime: c.created_at, title: dateFormat.format(created) }, when(created)));
      // Readers write in any script: names and bodies take their own direction.
      const body = h('div', { class: 'mg-body', dir: 'auto' });
      body.append(safeHtml(c.body_html));
      const article = h('article', { class: 'mg-article', tabindex: '-1', 'aria-label': c.name },
        h('header', { class: 'mg-meta' }, h('span', { class: 'mg-name', dir: 'auto' }, name), irt, date),
        body);
      const li = h('li', { class: 'mg-comment' + (pending ? ' mg-pending' : ''), id: anchor, 'data-id': c.id }, article);
      if (pending) {
        article.append(h('p', { class: 'mg-awaiting' }, t('awaiting')));
        pendingNodes.set(c.id, li);
      } else {
        const button = h('button', { type: 'button', class: 'mg-link mg-reply', 'aria-label': t('replyLabel', { name: c.name }) }, t('reply'));
        const node = { id: c.id, li, article, depth, name: c.name, kids: null };
        button.addEventListener('click', () => openReply(node, button));
        article.append(h('div', { class: 'mg-actions' }, button));
        nodes.set(c.id, node);
      }
      into.append(li);
      return li;
    }

    // Own pending comments: dropped once published or a week old.
    function showPending() {
      const now = Date.now();
      const kept = [];
      for (const p of [].concat(load(PENDING_KEY) || [])) {
        if (!p || typeof p !== 'object' || !(now - p.saved_at < WEEK)) continue;
        if (p.uri === uri && nodes.has(p.id)) {
          pendingNodes.get(p.id)?.remove();
          pendingNodes.delete(p.id);
          continue;
        }
        kept.push(p);
        if (p.uri !== uri) continue;
        pendingNodes.get(p.id)?.remove();
        pendingNodes.delete(p.id);
        render(p, true);
      }
      store(PENDING_KEY, kept.length ? kept : null);
    }

    async function page(after, prefetched) {
      if (busy) return;
      busy = true;
      more.setAttribute('aria-disabled', 'true');
      section.setAttribute('aria-busy', 'true');
      const firstNew = list.querySelectorAll('.mg-comment').length;
      try {
        const r = await (prefetched || fetch(threadUrl(uri, pageSize, after), { credentials: 'omit' }));
        if (!r.ok) throw new Error(r.status);
        const data = await r.json();
        for (const c of data.comments) if (!nodes.has(c.id)) render(c, false);
        next = data.next;
        setClosed(data.closed === true);
        heading.textContent = data.total ? t('comments', { count: data.total }) : t('noComments');
        note.hidden = true;
        showPending();
        more.hidden = !next;
        if (after) list.querySelectorAll('.mg-comment:not(.mg-pending) > .mg-article')[firstNew]?.focus();
      } catch {
        if (!after) heading.textContent = t('loadError');
        note.hidden = false;
        note.replaceChildren(after ? t('loadError') + ' ' : '', h('button', {
          type: 'button', class: 'mg-link',
          onclick: () => { note.hidden = true; page(after); },
        }, t('retry')));
        if (!after) showPending();
      } finally {
        busy = false;
        more.removeAttribute('aria-disabled');
        section.setAttribute('aria-busy', 'false');
      }
    }

    // --- replying

    function openReply(node, button) {
      parentId = node.id;
      replyButton = button;
      node.article.after(respond);
      title.textContent = t('leaveReplyTo', { name: node.name });
      cancel.hidden = false;
      say('');
      fields.body.control.focus();
    }

    function closeReply(refocus) {
      const button = replyButton;
      parentId = null;
      replyButton = null;
      root.append(respond);
      title.textContent = t('leaveReply');
      cancel.hidden = true;
      if (refocus && button && button.isConnected) button.focus();
    }

    // --- submitting

    function check(v) {
      const errors = {};
      const label = (key) => fields[key].label;
      for (const [key, max] of [['body', 10000], ['name', 80], ['email', 254]]) {
        if (!v[key]) errors[key] = t('errRequired', { field: label(key) });
        else if (chars(v[key]) > max) errors[key] = t('errTooLong', { field: label(key), count: max });
        else if ((key === 'body' ? CONTROL_BODY : CONTROL).test(v[key])) errors[key] = t('errControl', { field: label(key) });
      }
      if (!errors.email && !EMAIL.test(v.email)) errors.email = t('errEmail');
      if (v.website) {
        if (chars(v.website) > 500) errors.website = t('errTooLong', { field: label('website'), count: 500 });
        else if (/[\s\u0000-\u001f\u007f-\u009f]/.test(v.website) || !httpUrl(v.website)) errors.website = t('errWebsite');
      }
      return errors;
    }

    function showErrors(errors) {
      let first = null;
      for (const key of ['body', 'name', 'email', 'website']) {
        if (!errors[key]) continue;
        setError(key, errors[key]);
        first = first || fields[key].control;
      }
      first?.focus();
    }

    async function submit(event) {
      event.preventDefault();
      if (submitButton.getAttribute('aria-disabled')) return;
      const v = {};
      for (const key in fields) {
        setError(key, null);
        v[key] = fields[key].control.value.trim();
      }
      say('');
      const errors = check(v);
      if (Object.keys(errors).length) {
        say(t('errFix'), true);
        showErrors(errors);
        return;
      }
      const payload = { uri, name: v.name, email: v.email, body: v.body };
      if (v.website) payload.website = v.website;
      if (parentId != null) payload.parent_id = parentId;
      if (notify.checked) payload.notify = true;
      if (formToken) payload.form_token = formToken;
      if (honeypot.value) payload.homepage = honeypot.value;
      payload.lang = lang; // mail to this reader is written in the widget's language

      submitButton.setAttribute('aria-disabled', 'true');
      submitButton.textContent = t('posting');
      form.setAttribute('aria-busy', 'true');
      try {
        let r;
        try {
          r = await fetch(new URL('comments', API), {
            method: 'POST',
            // Messages in the widget's language (safelisted header: no preflight).
            headers: { 'Content-Type': 'application/json', 'Accept-Language': lang },
            body: JSON.stringify(payload),
            credentials: 'omit',
          });
        } catch {
          say(t('errNetwork'), true);
          return;
        }
        const data = await r.json().catch(() => ({}));
        if (r.status === 202) {
          store(AUTHOR_KEY, save.checked ? { name: v.name, email: v.email, website: v.website } : null);
          const own = {
            id: data.id, uri, parent_id: data.parent_id ?? payload.parent_id ?? null,
            name: data.name, website: data.website, body_html: data.body_html,
            created_at: data.created_at, saved_at: Date.now(),
          };
          store(PENDING_KEY, [].concat(load(PENDING_KEY) || []).filter((p) => p && p.id !== own.id).concat(own));
          fields.body.control.value = '';
          notify.checked = false; // each comment is its own request for replies
          fetchFormToken(); // the form is shown afresh for the next comment
          closeReply(false);
          const li = render(own, true);
          say(t('thanks'));
          li.firstChild.focus();
        } else if (r.status === 422 && data.fields) {
          const errors = {};
          const general = [];
          for (const [key, message] of Object.entries(data.fields)) {
            if (fields[key]) errors[key] = t('errServerField', { field: fields[key].label, message });
            else general.push(key === 'parent_id' ? t('errParent') : `${key}: ${message}`);
          }
          say([t('errFix'), ...general].join(' '), true);
          showErrors(errors);
        } else if (r.status === 403 && data.error === 'closed') {
          // Closed meanwhile: the form stays, so the text can be copied.
          say(t('closed'), true);
        } else if (r.status === 429) {
          const secs = Math.max(1, parseInt(r.headers.get('Retry-After'), 10) || 60);
          say(secs < 60 ? t('errRateSeconds', { count: secs }) : t('errRateMinutes', { count: Math.ceil(secs / 60) }), true);
        } else {
          say(t('errServer', { message: data.message || `HTTP ${r.status}` }), true);
        }
      } finally {
        submitButton.removeAttribute('aria-disabled');
        submitButton.textContent = t('postComment');
        form.removeAttribute('aria-busy');
      }
    }

    page(null, first);
  }

  async function start() {
    const root = document.getElementById('marginalia-thread');
    const mine = root && !root.hasAttribute('data-marginalia-ready');
    if (mine) root.setAttribute('data-marginalia-ready', '');
    const [lang, locale] = negotiate([root && root.dataset.lang, SCRIPT && SCRIPT.dataset.lang, CFG.lang,
      document.documentElement.lang, ...(navigator.languages || [navigator.language])]);
    const uri = (root && root.dataset.uri) || CFG.uri || location.pathname;
    const pageSize = parseInt((root && root.dataset.pageSize) || CFG.pageSize, 10) || 0;
    // The thread and the catalog load in parallel.
    const first = mine ? fetch(threadUrl(uri, pageSize), { credentials: 'omit' }) : null;
    first?.catch(() => {});
    let catalog = { ...EN };
    let shown = lang;
    if (lang !== 'en') {
      try {
        const r = await fetch(new URL(`embed/locales/${lang}.json`, SCRIPT_URL), { credentials: 'omit' });
        if (!r.ok) throw new Error(r.status);
        catalog = { ...catalog, ...(await r.json()) };
      } catch {
        shown = 'en';
      }
    }
    const categories = new Intl.PluralRules(shown).resolvedOptions().pluralCategories;
    for (const data of [SCRIPT && SCRIPT.dataset, CFG.strings, root && root.dataset]) override(catalog, data, categories);
    const t = makeT(catalog, shown, shown === lang ? locale : 'en');
    if (mine) {
      addStyles();
      widget(root, t, { lang: shown, locale: shown === lang ? locale : 'en', uri, pageSize, first });
    }
    fillCounts(t);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
