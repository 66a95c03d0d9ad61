// marginalia moderation page (/admin). Plain script, no dependencies, loaded under a strict CSP.
//
// Its texts come from /admin/locales/TAG.json for the browser's language (else English): the
// elements of admin.html name their message in data-i18n (data-i18n-aria-label, -placeholder).
//
// The token typed into the login form is traded for an HttpOnly, SameSite=Strict session cookie
// (POST /api/admin/session) and never stored; every API call sends the session's CSRF token in
// X-CSRF-Token. Comment text from readers is inserted as text; only the server-sanitized
// body_html goes in as HTML.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 50;
  const STATUSES = ['pending', 'approved', 'rejected', 'spam'];
  const NEW_STATUS = { approve: 'approved', reject: 'rejected', spam: 'spam', pending: 'pending' };
  // The languages of /admin/locales/TAG.json (as the widget's); ar and he are right to left.
  const LANGS = ['en', 'de', 'fr', 'es', 'pt-BR', 'pt-PT', 'it', 'nl', 'pl', 'tr', 'ru', 'ar', 'he', 'ja', 'zh-Hans'];
  const RTL = ['ar', 'he'];
  const ALIAS = { pt: 'pt-BR', zh: 'zh-Hans', 'zh-cn': 'zh-Hans', 'zh-sg': 'zh-Hans' };

  let csrf = null;
  let filter = { status: 'pending', uri: '' };
  let items = []; // { id, comment, li, check }
  let current = -1;
  let next = null;
  const parents = new Map(); // id -> Promise<comment | null>

  // Set by useLanguage() before anything is shown.
  let catalog = {};
  let plural = new Intl.PluralRules('en');
  let number = new Intl.NumberFormat('en');
  let dateFormat = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });
  let relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

  // The first of the browser's languages with a catalog, by truncation (de-AT → de), else en.
  function negotiate(tags) {
    for (let tag of tags) {
      try {
        tag = Intl.getCanonicalLocales(String(tag))[0];
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

  async function loadCatalog(lang) {
    const r = await fetch(`/admin/locales/${lang}.json`, { credentials: 'same-origin' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json();
  }

  // The message `key` as a list of strings and nodes: {name} placeholders take vars.name (a node,
  // a number formatted for the language, or text); a plural message picks its form for `count`.
  function parts(key, vars = {}, count = vars.count) {
    let message = catalog[key] ?? key;
    if (typeof message === 'object') message = message[plural.select(count)] ?? message.other;
    return String(message).split(/\{(\w+)\}/).map((part, i) => {
      if (i % 2 === 0) return part;
      const value = vars[part];
      if (value == null) return `{${part}}`;
      return typeof value === 'number' ? number.format(value) : value;
    });
  }
  const t = (key, vars) => parts(key, vars).join('');

  // Chooses the language, loads its catalog (English if that fails) and translates the page.
  async function useLanguage() {
    const [lang, locale] = negotiate(navigator.languages || [navigator.language]);
    let shown = lang;
    try {
      catalog = await loadCatalog(lang);
    } catch {
      shown = 'en';
      catalog = await loadCatalog('en').catch(() => ({}));
    }
    const intl = shown === lang ? locale : 'en';
    plural = new Intl.PluralRules(shown);
    number = new Intl.NumberFormat(intl);
    dateFormat = new Intl.DateTimeFormat(intl, { dateStyle: 'medium', timeStyle: 'short' });
    relative = new Intl.RelativeTimeFormat(intl, { numeric: 'auto' });
    document.documentElement.lang = shown;
    document.documentElement.dir = RTL.includes(shown) ? 'rtl' : 'ltr';
    document.title = t('pageTitle');
    for (const el of document.querySelectorAll('[data-i18n]')) {
      if (!catalog[el.dataset.i18n]) continue; // keep the English of the page
      // Child elements marked data-slot="name" stand for {name} in the message.
      const slots = Object.fromEntries([...el.querySelectorAll('[data-slot]')].map((c) => [c.dataset.slot, c]));
      el.replaceChildren(...parts(el.dataset.i18n, slots));
    }
    for (const attr of ['aria-label', 'placeholder']) {
      for (const el of document.querySelectorAll(`[data-i18n-${attr}]`)) {
        const key = el.getAttribute(`data-i18n-${attr}`);
        if (catalog[key]) el.setAttribute(attr, t(key));
      }
    }
  }

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    el.append(...kids.filter((kid) => kid != null)); // strings become text nodes
    return el;
  }

  function ago(date) {
    const secs = (date.getTime() - Date.now()) / 1000;
    for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]]) {
      if (Math.abs(secs) >= size) return relative.format(Math.round(secs / size), unit);
    }
    return relative.format(0, 'second');
  }

  function timeEl(iso) {
    const date = new Date(iso);
    return h('time', { datetime: iso, title: iso }, `${dateFormat.format(date)} (${ago(date)})`);
  }

  function say(message, bad) {
    const el = $('status');
    el.textContent = message || '';
    el.classList.toggle('bad', !!bad);
  }

  // ------------------------------------------------------------------ API

  class Offline extends Error {}

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (csrf) headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      throw new Offline(t('offline'));
    }
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    if (r.status === 401 && csrf && path !== '/api/admin/session') {
      showLogin(t('sessionEnded'));
    }
    return { ok: r.ok, status: r.status, data, retryAfter: parseInt(r.headers.get('Retry-After'), 10) || 0 };
  }

  const message = (res) => (res.data && res.data.message) || `HTTP ${res.status}`;

  // ---------------------------------------------------------------- session

  function showLogin(notice) {
    csrf = null;
    items = [];
    current = -1;
    $('list').replaceChildren();
    for (const id of ['queue', 'logout', 'who', 'pending-count']) $(id).hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = notice || '';
    document.title = t('pageTitle');
    $('token').focus();
  }

  function loggedIn(session, focusQueue) {
    csrf = session.csrf_token;
    $('login').hidden = true;
    for (const id of ['queue', 'logout', 'who', 'pending-count']) $(id).hidden = false;
    $('who').textContent = t('loggedInAs', { name: session.moderator });
    readHash();
    refreshStats();
    loadNotifications();
    loadRules();
    loadList(false).then(() => {
      if (focusQueue) (items[0] ? items[0].li : $('queue-title')).focus();
    });
  }

  async function login(event) {
    event.preventDefault();
    const input = $('token');
    const error = $('login-error');
    const token = input.value.trim();
    if (!token) {
      error.textContent = t('tokenMissing');
      input.focus();
      return;
    }
    const button = $('login-button');
    button.disabled = true;
    error.textContent = '';
    try {
      const res = await api('POST', '/api/admin/session', { token });
      if (res.ok && res.data && res.data.csrf_token) {
        input.value = '';
        loggedIn(res.data, true);
      } else if (res.status === 401) {
        error.textContent = t('tokenInvalid');
        input.select();
      } else if (res.status === 429) {
        error.textContent = t('tooManyAttempts', { count: res.retryAfter || 60 });
      } else {
        error.textContent = t('loginFailed', { message: message(res) });
      }
    } catch (e) {
      error.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  async function logout() {
    try {
      await api('DELETE', '/api/admin/session');
    } catch { /* the cookie is dropped below either way */ }
    showLogin(t('loggedOut'));
  }

  // ------------------------------------------------------------------ stats

  async function refreshStats() {
    try {
      const res = await api('GET', '/api/admin/stats');
      if (!res.ok || !res.data) return;
      const n = res.data.pending;
      $('pending-count').replaceChildren(...parts('pendingCount', { count: h('span', { id: 'pending-number' }, number.format(n)) }, n));
      document.title = (n ? `(${number.format(n)}) ` : '') + t('pageTitle');
    } catch { /* shown again on the next refresh */ }
  }

  // ------------------------------------------------------------------- list

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const status = params.get('status');
    filter = { status: STATUSES.includes(status) ? status : 'pending', uri: params.get('uri') || '' };
    $('filter-status').value = filter.status;
    $('filter-uri').value = filter.uri;
  }

  function applyFilters(event) {
    event.preventDefault();
    const uri = $('filter-uri').value.trim();
    const error = $('filter-error');
    if (uri && (uri[0] !== '/' || /[\s\u0000-\u001f\u007f-\u009f]/.test(uri) || [...uri].length > 500)) {
      error.textContent = t('filterPageInvalid');
      $('filter-uri').setAttribute('aria-invalid', 'true');
      $('filter-uri').focus();
      return;
    }
    error.textContent = '';
    $('filter-uri').removeAttribute('aria-invalid');
    filter = { status: $('filter-status').value, uri };
    const hash = new URLSearchParams(filter.uri ? filter : { status: filter.status }).toString();
    history.replaceState(null, '', hash === 'status=pending' ? location.pathname : '#' + hash);
    loadList(false);
  }

  async function loadList(append) {
    const status = filter.status[0].toUpperCase() + filter.status.slice(1);
    $('queue-title').textContent = t(`title${status}${filter.uri ? 'On' : ''}`, { uri: filter.uri });
    const query = new URLSearchParams({ status: filter.status, limit: PAGE_SIZE });
    if (filter.uri) query.set('uri', filter.uri);
    if (append && next) query.set('after', next);
    $('list').setAttribute('aria-busy', 'true');
    try {
      const res = await api('GET', '/api/admin/comments?' + query);
      if (!csrf) return;
      if (!res.ok) {
        say(t('loadFailed', { message: message(res) }), true);
        return;
      }
      if (!append) {
        items = [];
        current = -1;
        $('list').replaceChildren();
        say('');
      }
      const firstNew = items.length;
      for (const comment of res.data.comments) addItem(comment);
      next = res.data.next;
      $('more').hidden = !next;
      if (current < 0 && items.length) setCurrent(0, false);
      if (append && items[firstNew]) setCurrent(firstNew, true);
      updateEmpty();
      updateSelection();
    } catch (e) {
      say(e.message, true);
    } finally {
      $('list').removeAttribute('aria-busy');
    }
  }

  function field(label, ...value) {
    return [h('dt', {}, label), h('dd', {}, ...(value.length && value[0] != null && value[0] !== '' ? value : ['—']))];
  }

  function body(html, tag) {
    const el = h(tag || 'div', { class: 'body' });
    el.innerHTML = html; // sanitized server-side to a small allow-list, and the CSP forbids scripts
    return el;
  }

  // The learning filter's score and the tokens that weighed most, each with
  // its own spam probability (near 100 % says spam, near 0 % says not).
  function spamScore(c) {
    if (typeof c.spam_score !== 'number') return null;
    const percent = new Intl.NumberFormat(number.resolvedOptions().locale, { style: 'percent', maximumFractionDigits: 1 });
    const clues = (Array.isArray(c.spam_clues) ? c.spam_clues : []).map((clue) =>
      h('code', { class: clue.probability >= 0.5 ? 'clue spammy' : 'clue hammy' }, `${clue.token} ${percent.format(clue.probability)}`));
    return h('span', { class: 'score' }, h('strong', {}, percent.format(c.spam_score)), ...clues.flatMap((clue) => [' ', clue]));
  }

  function addItem(c) {
    const check = h('input', { type: 'checkbox', class: 'select', 'aria-label': t('selectComment', { id: String(c.id), name: c.name }) });
    const website = c.website ? h('a', { href: c.website, rel: 'nofollow noopener noreferrer', target: '_blank' }, c.website) : null;
    const moderated = !c.moderated_at ? []
      : c.moderated_by ? parts('moderatedBy', { time: timeEl(c.moderated_at), name: c.moderated_by }) : [timeEl(c.moderated_at)];
    const parentBox = c.parent_id != null ? h('div', { class: 'parent' }, h('p', { class: 'parent-label muted' }, t('parentLoading', { id: String(c.parent_id) }))) : null;
    // A comment in spam can also go back to the queue.
    const acts = c.status === 'spam' ? ['approve', 'pending', 'reject', 'delete'] : ['approve', 'reject', 'spam', 'delete'];
    const actions = h('div', { class: 'actions', role: 'group', 'aria-label': t('moderateComment', { id: String(c.id) }) },
      ...acts.map((act) => h('button', { type: 'button', class: `act ${act}`, 'data-act': act }, t(act))));
    const reasons = Array.isArray(c.reasons) && c.reasons.length ? c.reasons.join(', ') : null;
    const score = spamScore(c);
    const li = h('li', { class: `item status-${c.status}`, tabindex: '-1', 'data-id': c.id, 'aria-labelledby': `c${c.id}-title` },
      h('div', { class: 'head' },
        check,
        h('h3', { id: `c${c.id}-title` }, h('span', { class: 'name' }, c.name), h('span', { class: 'id muted' }, ` #${c.id}`)),
        h('span', { class: `badge ${c.status}` }, t('status' + c.status[0].toUpperCase() + c.status.slice(1)))),
      h('dl', { class: 'meta' },
        ...field(t('metaEmail'), c.email ? h('a', { href: `mailto:${c.email}` }, c.email) : null),
        ...field(t('metaWebsite'), website),
        ...field(t('metaPage'), c.uri ? h('code', {}, c.uri) : null),
        ...field(t('metaTime'), timeEl(c.created_at)),
        ...field(t('metaIp'), c.ip),
        ...field(t('metaUserAgent'), c.user_agent),
        ...(reasons ? field(t('metaReasons'), h('span', { class: 'reasons' }, reasons)) : []),
        ...(score ? field(t('metaSpamScore'), score) : []),
        ...(moderated.length ? field(t('metaModerated'), ...moderated) : [])),
      parentBox,
      body(c.body_html),
      actions);
    // The comment's whole thread: close or open it to new comments.
    const threadActions = h('div', { class: 'thread-actions', role: 'group', 'aria-label': t('threadOf', { id: String(c.id) }) },
      h('button', { type: 'button', class: 'thread-close', 'data-thread': 'close' }, t('closeThread')),
      h('button', { type: 'button', class: 'thread-open', 'data-thread': 'open' }, t('openThread')));
    li.append(threadActions);
    threadActions.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-thread]');
      if (button) decideThread(c.uri, button.dataset.thread, threadActions);
    });
    const item = { id: c.id, comment: c, li, check };
    items.push(item);
    check.addEventListener('change', updateSelection);
    actions.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-act]');
      if (button) act(item, button.dataset.act);
    });
    li.addEventListener('click', () => setCurrent(items.indexOf(item), false));
    li.addEventListener('focusin', () => setCurrent(items.indexOf(item), false));
    $('list').append(li);
    if (parentBox) showParent(parentBox, c.parent_id);
  }

  async function showParent(box, id) {
    if (!parents.has(id)) {
      parents.set(id, api('GET', `/api/admin/comments/${id}`)
        .then((res) => (res.ok ? res.data : null))
        .catch(() => undefined));
    }
    const parent = await parents.get(id);
    if (parent === undefined) parents.delete(id); // a network error: try again next time
    if (parent) {
      box.replaceChildren(
        h('p', { class: 'parent-label muted' }, ...parts('parentLabel', {
          name: h('strong', {}, parent.name), id: String(parent.id),
          status: t('status' + parent.status[0].toUpperCase() + parent.status.slice(1)),
        })),
        body(parent.body_html, 'blockquote'));
    } else {
      box.replaceChildren(h('p', { class: 'parent-label muted' },
        t(parent === null ? 'parentGone' : 'parentFailed', { id: String(id) })));
    }
  }

  function updateEmpty() {
    const empty = $('empty');
    empty.hidden = items.length > 0;
    empty.textContent = t(filter.status === 'pending' ? 'emptyPending' : 'emptyOther');
  }

  function setCurrent(index, focus) {
    if (index < 0 || index >= items.length) return;
    for (const item of items) {
      item.li.classList.remove('current');
      item.li.removeAttribute('aria-current');
    }
    current = index;
    const li = items[index].li;
    li.classList.add('current');
    li.setAttribute('aria-current', 'true');
    if (focus) {
      li.focus({ preventScroll: true });
      li.scrollIntoView({ block: 'nearest' });
    }
  }

  function removeItem(item) {
    const index = items.indexOf(item);
    if (index < 0) return;
    // Disabling the clicked button during the request sends focus to <body>: count that as inside.
    const active = document.activeElement;
    const hadFocus = !active || active === document.body || item.li.contains(active);
    items.splice(index, 1);
    item.li.remove();
    if (items.length) setCurrent(Math.min(index, items.length - 1), hadFocus);
    else {
      current = -1;
      if (hadFocus) $('queue-title').focus();
    }
    updateEmpty();
    updateSelection();
  }

  // ---------------------------------------------------------------- actions

  async function request(item, action) {
    const res = action === 'delete'
      ? await api('DELETE', `/api/admin/comments/${item.id}`)
      : await api('POST', `/api/admin/comments/${item.id}/${action}`);
    if (res.ok || res.status === 404) {
      if (res.status === 404 || action === 'delete' || NEW_STATUS[action] !== filter.status) removeItem(item);
      return res.status === 404 ? 'gone' : 'done';
    }
    if (res.status === 403) await recheck();
    throw new Error(message(res));
  }

  async function act(item, action) {
    if (!item || item.busy || !csrf) return;
    const done = action[0].toUpperCase() + action.slice(1);
    const vars = { id: String(item.id), name: item.comment.name };
    if (action === 'delete' && !window.confirm(t('confirmDelete', vars))) return;
    const buttons = item.li.querySelectorAll('button');
    item.busy = true;
    buttons.forEach((b) => (b.disabled = true));
    try {
      const outcome = await request(item, action);
      say(t(outcome === 'gone' ? 'commentGone' : `done${done}`, vars));
    } catch (e) {
      say(t(`fail${done}`, { ...vars, message: e.message }), true);
    } finally {
      item.busy = false;
      buttons.forEach((b) => (b.disabled = false));
      refreshStats();
    }
  }

  async function bulk(action) {
    const chosen = items.filter((item) => item.check.checked);
    if (!chosen.length) return;
    let done = 0;
    const failed = [];
    for (const item of chosen) {
      try {
        await request(item, action);
        done += 1;
      } catch (e) {
        failed.push(`#${item.id} (${e.message})`);
      }
    }
    const summary = t({ approve: 'bulkApprove', reject: 'bulkReject', spam: 'bulkSpam', pending: 'bulkPending' }[action], { count: done });
    say(failed.length ? `${summary} ${t('bulkFailed', { list: failed.join(', ') })}` : summary, failed.length > 0);
    refreshStats();
    updateSelection();
  }

  // Closes or opens a whole thread (POST /api/admin/threads/close|open?uri=…).
  async function decideThread(uri, verb, group) {
    const buttons = group.querySelectorAll('button');
    buttons.forEach((b) => (b.disabled = true));
    try {
      const res = await api('POST', `/api/admin/threads/${verb}?` + new URLSearchParams({ uri }));
      if (res.ok) say(t(res.data && res.data.closed ? 'threadClosed' : 'threadOpened', { uri }));
      else {
        if (res.status === 403) await recheck();
        say(t('threadFailed', { uri, message: message(res) }), true);
      }
    } catch (e) {
      say(t('threadFailed', { uri, message: e.message }), true);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  // Moves a thread's comments to another uri (POST /api/admin/threads/rename).
  async function renameThread(event) {
    event.preventDefault();
    const result = $('rename-result');
    const from = $('rename-from').value.trim();
    const to = $('rename-to').value.trim();
    try {
      const res = await api('POST', '/api/admin/threads/rename', { from, to });
      if (res.ok) {
        result.textContent = t('renamed', { count: res.data.moved, from, to });
        loadList(false);
      } else {
        const fields = res.data && res.data.fields;
        const detail = fields ? Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('; ') : message(res);
        result.textContent = t('renameFailed', { message: detail });
      }
    } catch (e) {
      result.textContent = e.message;
    }
  }

  // A 403 on an admin call means the CSRF token no longer matches the session: fetch it again.
  async function recheck() {
    const res = await api('GET', '/api/admin/session').catch(() => null);
    if (res && res.ok && res.data) csrf = res.data.csrf_token;
    else showLogin(t('sessionEnded'));
  }

  function updateSelection() {
    const n = items.filter((item) => item.check.checked).length;
    $('selected-count').textContent = t('selectedCount', { count: n });
    $('bulk-approve').disabled = n === 0;
    $('bulk-reject').disabled = n === 0;
    $('bulk-spam').disabled = n === 0;
    $('bulk-pending').disabled = n === 0;
    // In the spam folder: back to the queue instead of "spam", and a way to empty it.
    $('bulk-spam').hidden = filter.status === 'spam';
    $('bulk-pending').hidden = filter.status !== 'spam';
    $('empty-spam').hidden = filter.status !== 'spam' || items.length === 0;
    const all = $('select-all');
    all.checked = n > 0 && n === items.length;
    all.indeterminate = n > 0 && n < items.length;
  }

  function selectAll() {
    const on = $('select-all').checked;
    for (const item of items) item.check.checked = on;
    updateSelection();
  }

  // -------------------------------------------------------------- shortcuts

  function typing(target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable || target.closest('textarea, select')) return true;
    return target.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(target.type);
  }

  function shortcut(e) {
    if ($('queue').hidden || e.ctrlKey || e.metaKey || e.altKey || e.repeat || typing(e.target)) return;
    const item = items[current];
    switch (e.key) {
      case 'j': setCurrent(current < 0 ? 0 : current + 1, true); break;
      case 'k': setCurrent(current < 0 ? 0 : current - 1, true); break;
      case 'a': act(item, 'approve'); break;
      case 'r': act(item, 'reject'); break;
      case 's': act(item, 'spam'); break;
      case 'x':
        if (!item) return;
        item.check.checked = !item.check.checked;
        updateSelection();
        break;
      default: return;
    }
    e.preventDefault();
  }

  // ------------------------------------------------------------------ spam

  async function emptySpam() {
    if (!csrf || !window.confirm(t('confirmEmptySpam'))) return;
    try {
      const res = await api('DELETE', '/api/admin/comments?status=spam');
      if (!res.ok) throw new Error(message(res));
      say(t('emptiedSpam', { count: res.data.deleted }));
      if (filter.status === 'spam') loadList(false);
    } catch (e) {
      say(t('emptyFailed', { message: e.message }), true);
    } finally {
      refreshStats();
    }
  }

  const lines = (text) => text.split('\n').map((line) => line.trim()).filter(Boolean);

  async function loadRules() {
    const res = await api('GET', '/api/admin/rules').catch(() => null);
    if (!res || !res.ok || !res.data) return;
    $('rules-mode').value = res.data.moderation;
    $('rules-links').value = res.data.hold_links;
    $('rules-held').value = res.data.held_words.join('\n');
    $('rules-blocked').value = res.data.blocked_words.join('\n');
  }

  async function saveRules(event) {
    event.preventDefault();
    const result = $('rules-result');
    const rules = {
      moderation: $('rules-mode').value,
      hold_links: Number($('rules-links').value),
      held_words: lines($('rules-held').value),
      blocked_words: lines($('rules-blocked').value),
    };
    try {
      const res = await api('PUT', '/api/admin/rules', rules);
      if (res.ok) {
        result.textContent = t('rulesSaved');
        loadRules();
      } else {
        const fields = res.data && res.data.fields ? Object.entries(res.data.fields).map(([k, v]) => `${k}: ${v}`).join('; ') : '';
        result.textContent = t('rulesFailed', { message: fields || message(res) });
      }
    } catch (e) {
      result.textContent = e.message;
    }
  }

  // ---------------------------------------------------------- notifications

  // What is configured (the server never sends a password, key or webhook URL).
  async function loadNotifications() {
    const res = await api('GET', '/api/admin/notifications').catch(() => null);
    const list = $('notify-settings');
    if (!res || !res.ok || !res.data) {
      list.replaceChildren(h('dt', {}, t('settings')), h('dd', {}, t('settingsUnreadable')));
      return;
    }
    const s = res.data;
    const mail = s.mail && {
      server: s.mail.server, from: s.mail.from, security: s.mail.security === 'none' ? t('unencrypted') : s.mail.security,
    };
    const rows = [
      ['settingMail', mail ? t(s.mail.authenticated ? 'mailValueLogin' : 'mailValue', mail) : t('notConfigured', { variable: 'MARGINALIA_SMTP_URL' })],
      ['settingModerators', s.moderators.length ? s.moderators.join(', ') : t('nobody', { variable: 'MARGINALIA_NOTIFY_EMAILS' })],
      ['settingPerHour', t('perHourValue', { number: s.per_hour })],
      ['settingLinkTtl', t('linkTtlValue', { count: Math.round(s.link_ttl_seconds / 3600) })],
      ['settingWebhooks', s.webhooks ? `${s.webhooks.hosts.join(', ')} (${s.webhooks.format})` : t('notConfigured', { variable: 'MARGINALIA_WEBHOOK_URLS' })],
    ];
    list.replaceChildren(...rows.flatMap(([term, value]) => [h('dt', {}, t(term)), h('dd', {}, value)]));
    $('test-mail').hidden = !s.mail;
  }

  async function sendTestMail(event) {
    event.preventDefault();
    const result = $('test-result');
    const to = $('test-to').value.trim();
    if (!to) {
      result.textContent = t('testNoAddress');
      return;
    }
    try {
      const res = await api('POST', '/api/admin/notifications/test', { to });
      result.textContent = res.ok
        ? t('testQueued', { to })
        : (res.data && res.data.fields && res.data.fields.to) || message(res);
    } catch (e) {
      result.textContent = e.message;
    }
  }

  // ------------------------------------------------------------------ start

  async function start() {
    const session = api('GET', '/api/admin/session'); // asked for while the catalog loads
    session.catch(() => {});
    await useLanguage();
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    $('filters').addEventListener('submit', applyFilters);
    $('select-all').addEventListener('change', selectAll);
    $('bulk-approve').addEventListener('click', () => bulk('approve'));
    $('bulk-reject').addEventListener('click', () => bulk('reject'));
    $('bulk-spam').addEventListener('click', () => bulk('spam'));
    $('bulk-pending').addEventListener('click', () => bulk('pending'));
    $('empty-spam').addEventListener('click', emptySpam);
    $('rules-form').addEventListener('submit', saveRules);
    $('more').addEventListener('click', () => loadList(true));
    $('test-mail').addEventListener('submit', sendTestMail);
    $('rename').addEventListener('submit', renameThread);
    document.addEventListener('keydown', shortcut);
    window.addEventListener('hashchange', () => {
      if (csrf && /^#?(status=|$)/.test(location.hash)) {
        readHash();
        loadList(false);
      }
    });
    try {
      const res = await session;
      if (res.ok && res.data && res.data.csrf_token) loggedIn(res.data, false);
      else showLogin('');
    } catch {
      showLogin(t('offline'));
    }
  }

  start();
})();
