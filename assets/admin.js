// marginalia moderation page (/admin). Plain script, no dependencies, loaded under a strict CSP.
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
  const DONE = { approve: 'approved', reject: 'rejected', spam: 'marked as spam', delete: 'deleted' };
  const NEW_STATUS = { approve: 'approved', reject: 'rejected', spam: 'spam' };

  let csrf = null;
  let filter = { status: 'pending', uri: '' };
  let items = []; // { id, comment, li, check }
  let current = -1;
  let next = null;
  const parents = new Map(); // id -> Promise<comment | null>

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

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
      throw new Offline('The server could not be reached. Check your connection and try again.');
    }
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    if (r.status === 401 && csrf && path !== '/api/admin/session') {
      showLogin('Your session has ended. Please log in again.');
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
    document.title = 'Moderation · marginalia';
    $('token').focus();
  }

  function loggedIn(session, focusQueue) {
    csrf = session.csrf_token;
    $('login').hidden = true;
    for (const id of ['queue', 'logout', 'who', 'pending-count']) $(id).hidden = false;
    $('who').textContent = `Logged in as ${session.moderator}`;
    readHash();
    refreshStats();
    loadNotifications();
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
      error.textContent = 'Enter your moderator token.';
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
        error.textContent = 'That token is not valid.';
        input.select();
      } else if (res.status === 429) {
        error.textContent = `Too many failed attempts. Try again in ${res.retryAfter || 60} seconds.`;
      } else {
        error.textContent = `Logging in failed: ${message(res)}.`;
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
    showLogin('You are logged out.');
  }

  // ------------------------------------------------------------------ stats

  async function refreshStats() {
    try {
      const res = await api('GET', '/api/admin/stats');
      if (!res.ok || !res.data) return;
      const n = res.data.pending;
      $('pending-number').textContent = String(n);
      document.title = (n ? `(${n}) ` : '') + 'Moderation · marginalia';
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
      error.textContent = 'A page is a path starting with / and without spaces, such as /2024/hello/.';
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
    const title = `${filter.status[0].toUpperCase()}${filter.status.slice(1)} comments` + (filter.uri ? ` on ${filter.uri}` : '');
    $('queue-title').textContent = title;
    const query = new URLSearchParams({ status: filter.status, limit: PAGE_SIZE });
    if (filter.uri) query.set('uri', filter.uri);
    if (append && next) query.set('after', next);
    $('list').setAttribute('aria-busy', 'true');
    try {
      const res = await api('GET', '/api/admin/comments?' + query);
      if (!csrf) return;
      if (!res.ok) {
        say(`The comments could not be loaded: ${message(res)}.`, true);
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

  function addItem(c) {
    const check = h('input', { type: 'checkbox', class: 'select', 'aria-label': `Select comment ${c.id} by ${c.name}` });
    const website = c.website ? h('a', { href: c.website, rel: 'nofollow noopener noreferrer', target: '_blank' }, c.website) : null;
    const moderated = c.moderated_at ? [timeEl(c.moderated_at), c.moderated_by ? ` by ${c.moderated_by}` : ''] : [];
    const parentBox = c.parent_id != null ? h('div', { class: 'parent' }, h('p', { class: 'parent-label muted' }, `In reply to comment ${c.parent_id} (loading…)`)) : null;
    const actions = h('div', { class: 'actions', role: 'group', 'aria-label': `Moderate comment ${c.id}` },
      ...['approve', 'reject', 'spam', 'delete'].map((act) => h('button', { type: 'button', class: `act ${act}`, 'data-act': act },
        act === 'spam' ? 'Spam' : act[0].toUpperCase() + act.slice(1))));
    const li = h('li', { class: `item status-${c.status}`, tabindex: '-1', 'data-id': c.id, 'aria-labelledby': `c${c.id}-title` },
      h('div', { class: 'head' },
        check,
        h('h3', { id: `c${c.id}-title` }, h('span', { class: 'name' }, c.name), h('span', { class: 'id muted' }, ` #${c.id}`)),
        h('span', { class: `badge ${c.status}` }, c.status)),
      h('dl', { class: 'meta' },
        ...field('Email', c.email ? h('a', { href: `mailto:${c.email}` }, c.email) : null),
        ...field('Website', website),
        ...field('Page', c.uri ? h('code', {}, c.uri) : null),
        ...field('Time', timeEl(c.created_at)),
        ...field('IP', c.ip),
        ...field('User agent', c.user_agent),
        ...(moderated.length ? field('Moderated', ...moderated) : [])),
      parentBox,
      body(c.body_html),
      actions);
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
        h('p', { class: 'parent-label muted' }, 'In reply to ', h('strong', {}, parent.name), ` (#${parent.id}, ${parent.status}):`),
        body(parent.body_html, 'blockquote'));
    } else {
      box.replaceChildren(h('p', { class: 'parent-label muted' },
        parent === null ? `In reply to comment #${id}, which no longer exists.` : `In reply to comment #${id} (it could not be loaded).`));
    }
  }

  function updateEmpty() {
    const empty = $('empty');
    empty.hidden = items.length > 0;
    empty.textContent = filter.status === 'pending' ? 'Nothing to moderate. The queue is clear.' : 'No comments here.';
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
    if (action === 'delete' && !window.confirm(`Delete comment #${item.id} by ${item.comment.name} for good? This cannot be undone.`)) return;
    const buttons = item.li.querySelectorAll('button');
    item.busy = true;
    buttons.forEach((b) => (b.disabled = true));
    try {
      const outcome = await request(item, action);
      say(outcome === 'gone' ? `Comment #${item.id} no longer exists.` : `Comment #${item.id} by ${item.comment.name} ${DONE[action]}.`);
    } catch (e) {
      say(`Comment #${item.id} could not be ${DONE[action]}: ${e.message}.`, true);
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
    say(`${done} ${done === 1 ? 'comment' : 'comments'} ${DONE[action]}.` + (failed.length ? ` Failed: ${failed.join(', ')}.` : ''), failed.length > 0);
    refreshStats();
    updateSelection();
  }

  // A 403 on an admin call means the CSRF token no longer matches the session: fetch it again.
  async function recheck() {
    const res = await api('GET', '/api/admin/session').catch(() => null);
    if (res && res.ok && res.data) csrf = res.data.csrf_token;
    else showLogin('Your session has ended. Please log in again.');
  }

  function updateSelection() {
    const n = items.filter((item) => item.check.checked).length;
    $('selected-count').textContent = `${n} selected`;
    $('bulk-approve').disabled = n === 0;
    $('bulk-reject').disabled = n === 0;
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

  // ---------------------------------------------------------- notifications

  // What is configured (the server never sends a password, key or webhook URL).
  async function loadNotifications() {
    const res = await api('GET', '/api/admin/notifications').catch(() => null);
    const list = $('notify-settings');
    if (!res || !res.ok || !res.data) {
      list.replaceChildren(h('dt', {}, 'Settings'), h('dd', {}, 'could not be read'));
      return;
    }
    const s = res.data;
    const rows = [
      ['Mail', s.mail ? `${s.mail.server} (${s.mail.security === 'none' ? 'unencrypted' : s.mail.security}${s.mail.authenticated ? ', with login' : ''}) as ${s.mail.from}` : 'not configured (MARGINALIA_SMTP_URL)'],
      ['Moderators mailed', s.moderators.length ? s.moderators.join(', ') : 'nobody (MARGINALIA_NOTIFY_EMAILS)'],
      ['Single mails per hour', `${s.per_hour}, then one digest per hour`],
      ['Links work for', `${Math.round(s.link_ttl_seconds / 3600)} hours`],
      ['Webhooks', s.webhooks ? `${s.webhooks.hosts.join(', ')} (${s.webhooks.format})` : 'not configured (MARGINALIA_WEBHOOK_URLS)'],
    ];
    list.replaceChildren(...rows.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
    $('test-mail').hidden = !s.mail;
  }

  async function sendTestMail(event) {
    event.preventDefault();
    const result = $('test-result');
    const to = $('test-to').value.trim();
    if (!to) {
      result.textContent = 'Enter an address.';
      return;
    }
    try {
      const res = await api('POST', '/api/admin/notifications/test', { to });
      result.textContent = res.ok
        ? `Queued. It should arrive at ${to} within a minute.`
        : (res.data && res.data.fields && res.data.fields.to) || message(res);
    } catch (e) {
      result.textContent = e.message;
    }
  }

  // ------------------------------------------------------------------ start

  async function start() {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    $('filters').addEventListener('submit', applyFilters);
    $('select-all').addEventListener('change', selectAll);
    $('bulk-approve').addEventListener('click', () => bulk('approve'));
    $('bulk-reject').addEventListener('click', () => bulk('reject'));
    $('more').addEventListener('click', () => loadList(true));
    $('test-mail').addEventListener('submit', sendTestMail);
    document.addEventListener('keydown', shortcut);
    window.addEventListener('hashchange', () => {
      if (csrf && /^#?(status=|$)/.test(location.hash)) {
        readHash();
        loadList(false);
      }
    });
    try {
      const res = await api('GET', '/api/admin/session');
      if (res.ok && res.data && res.data.csrf_token) loggedIn(res.data, false);
      else showLogin('');
    } catch (e) {
      showLogin(e.message);
    }
  }

  start();
})();
