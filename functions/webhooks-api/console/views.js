// The console's views. Each is `async (ctx) => void`, drawing into ctx.view; everything shown
// comes from the API and is inserted as text (dom.js). A route the API does not offer (an older
// relay) shows its 404 in the view's alert, naming the route.

import { api, ApiError, session } from './api.js';
import { copyButton, field, fill, h, isoToLocal, localToIso, pretty, uid, when } from './dom.js';
import { schemes } from './snippets.js';

const enc = encodeURIComponent;
const hookPath = (id) => `/console/webhooks/${enc(id)}`;

// The secret of the last create or rotate, shown once by the next webhook view and then dropped
// (memory only: a reload or another view forgets it, as the API does).
let shownOnce = null;

function describe(e) {
  return e instanceof ApiError ? e.describe() : `Something went wrong: ${e && e.message}`;
}

function heading(ctx, text, ...after) {
  ctx.title(text);
  ctx.view.append(h('h1', {}, text), ...after);
}

function crumbs(...items) {
  return h(
    'nav',
    { 'aria-label': 'Breadcrumb', class: 'crumbs' },
    h(
      'ol',
      {},
      items.map(([text, href]) => h('li', {}, href ? h('a', { href }, text) : h('span', { 'aria-current': 'page' }, text))),
    ),
  );
}

function status(text, kind = 'info') {
  return h('p', { class: `note ${kind}`, role: 'status' }, text);
}

function badge(text, kind) {
  return h('span', { class: `badge ${kind || text}` }, text);
}

function percent(rate) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)} %`;
}

function ms(v) {
  return v === null || v === undefined ? '—' : `${v} ms`;
}

function dl(rows) {
  return h(
    'dl',
    { class: 'facts' },
    rows.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]),
  );
}

function table(caption, headers, rows) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows),
    ),
  );
}

function code(text, label) {
  return h('pre', { class: 'code', tabindex: '0', 'aria-label': label }, h('code', {}, text));
}

async function getWebhook(ctx, id) {
  return api('GET', `/webhooks/${enc(id)}`);
}

async function catalogue() {
  const r = await api('GET', '/event-types');
  return r.data || [];
}

/** Shows a 422's message next to its field (`eventTypes[1]` → eventTypes); false if no such field. */
function showFieldError(form, err) {
  for (const p of form.querySelectorAll('.field-error')) {
    p.hidden = true;
    p.replaceChildren();
  }
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  if (!(err instanceof ApiError) || !err.field) return false;
  const name = err.field.split(/[.[]/)[0];
  const box = form.querySelector(`.field[data-field="${CSS.escape(name)}"]`);
  if (!box) return false;
  const p = box.querySelector('.field-error');
  fill(p, `${err.detail} (${err.status} ${err.error}, field ${err.field})`);
  p.hidden = false;
  const input = box.querySelector('input, select, textarea');
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
  return true;
}

function busy(form, on) {
  for (const b of form.querySelectorAll('button')) b.disabled = on;
  form.setAttribute('aria-busy', on ? 'true' : 'false');
}

// ---------------------------------------------------------------------------------------------
// Sign-in

export async function home(ctx) {
  ctx.go('/console/webhooks', { replace: true });
}

export async function signIn(ctx) {
  ctx.title('Sign in');
  const input = h('input', {
    type: 'password',
    name: 'apiKey',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'wrk_…',
  });
  const form = h(
    'form',
    { method: 'post', action: '/console/sign-in', class: 'card narrow', novalidate: true },
    field('API key', input, 'Kept in this tab only (sessionStorage) and sent to this relay\'s API; never in a URL or a cookie.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')),
  );
  ctx.view.append(h('h1', {}, 'Sign in'), h('p', {}, 'Manage your webhooks, their delivery logs, tests and replays.'), form);
  if (ctx.flash) ctx.alert(ctx.flash.text, ctx.flash.kind);
  if (session.key()) ctx.view.append(status('This tab is signed in already; signing in again replaces the key.'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showFieldError(form, new ApiError(0, { error: 'required', detail: 'Type your API key.', field: 'apiKey' }, null, '', ''));
      return;
    }
    session.set(key);
    input.value = '';
    busy(form, true);
    try {
      await api('GET', '/webhooks', undefined, { limit: 1 });
      const next = ctx.query.get('next');
      ctx.go(next && next.startsWith('/console/') && !next.startsWith('/console/sign-in') ? next : '/console/webhooks');
    } catch (err) {
      // A 401 has already signed out and re-drawn this view with its message.
      if (err.status !== 401) {
        session.clear();
        busy(form, false);
        ctx.alert(`The key could not be checked: ${describe(err)}`);
      }
    }
  });
  input.focus();
}

// ---------------------------------------------------------------------------------------------
// Webhooks

export async function webhooks(ctx) {
  heading(ctx, 'Webhooks', h('p', {}, h('a', { href: '/console/webhooks/new', class: 'button' }, 'New webhook')));
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', '/webhooks', undefined, { limit: 250, cursor });
    items.push(...(page.data || []));
    cursor = page.nextCursor;
  } while (cursor && items.length < 1000);
  if (!items.length) {
    ctx.view.append(status('No webhooks yet. Create one to start receiving events.'));
    return;
  }
  const rateCells = new Map();
  const rows = items.map((w) => {
    const rate = h('td', { class: 'num' }, '…');
    rateCells.set(w.id, rate);
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, h('a', { href: hookPath(w.id) }, w.name)),
      h('td', { class: 'url' }, w.url),
      h('td', {}, h('ul', { class: 'plain' }, w.eventTypes.map((t) => h('li', {}, t)))),
      h('td', {}, w.enabled ? 'yes' : 'no'),
      h('td', {}, badge(w.status), w.disabledReason ? h('span', { class: 'small' }, ` ${w.disabledReason}`) : null),
      rate,
      h('td', {}, h('a', { href: `${hookPath(w.id)}/deliveries` }, 'Deliveries', h('span', { class: 'visually-hidden' }, ` of ${w.name}`))),
    );
  });
  ctx.view.append(
    table('Your webhooks (success rate: the last 24 hours of delivery attempts)', ['Name', 'URL', 'Event types', 'Enabled', 'Health', 'Success (24 h)', 'Log'], rows),
  );
  let failed = null;
  await Promise.all(
    items.map(async (w) => {
      try {
        const s = await api('GET', `/webhooks/${enc(w.id)}/stats`);
        const d = (s.windows && s.windows['24h']) || {};
        fill(rateCells.get(w.id), d.attempts ? `${percent(d.successRate)} of ${d.attempts}` : 'no attempts');
      } catch (e) {
        fill(rateCells.get(w.id), '—');
        failed = failed || e;
      }
    }),
  );
  if (failed) ctx.alert(`Success rates are unavailable: ${describe(failed)}`, 'warning');
}

export async function webhook(ctx) {
  const [id] = ctx.params;
  const w = await getWebhook(ctx, id);
  heading(ctx, w.name);
  const v = ctx.view;
  v.insertBefore(crumbs(['Webhooks', '/console/webhooks'], [w.name]), v.firstChild.nextSibling);
  if (shownOnce && shownOnce.id === w.id) {
    v.append(secretPanel(shownOnce));
    shownOnce = null;
  }
  v.append(
    h(
      'ul',
      { class: 'links' },
      h('li', {}, h('a', { href: `${hookPath(id)}/deliveries` }, 'Delivery log')),
      h('li', {}, h('a', { href: `${hookPath(id)}/replay` }, 'Replay a time window')),
      h('li', {}, h('a', { href: `${hookPath(id)}/verify` }, 'Verification snippets')),
      h('li', {}, h('a', { href: `${hookPath(id)}/edit` }, 'Edit')),
    ),
    dl([
      ['Id', w.id],
      ['URL', w.url],
      ['Event types', w.eventTypes.join(', ')],
      ['Enabled', w.enabled ? 'yes' : 'no'],
      ['Health', badge(w.status)],
      w.disabledReason ? ['Disabled because', w.disabledReason] : null,
      ['Rate limit', `${w.rateLimitPerMinute} a minute`],
      ['Ordering', w.ordering],
      w.filter ? ['Payload filter', code(JSON.stringify(w.filter, null, 2), 'Payload filter')] : null,
      ['Created', when(w.createdAt)],
      ['Updated', when(w.updatedAt)],
    ]),
  );
  const statsBox = h('section', { 'aria-labelledby': 'stats-h' }, h('h2', { id: 'stats-h' }, 'Delivery statistics'));
  v.append(statsBox, actions(ctx, w));
  try {
    const s = await api('GET', `/webhooks/${enc(id)}/stats`);
    const rows = ['1h', '24h'].map((k) => {
      const d = (s.windows && s.windows[k]) || {};
      return h(
        'tr',
        {},
        h('th', { scope: 'row' }, k === '1h' ? 'Last hour' : 'Last 24 hours'),
        h('td', { class: 'num' }, String(d.attempts ?? 0)),
        h('td', { class: 'num' }, percent(d.successRate)),
        h('td', { class: 'num' }, ms(d.p50Ms)),
        h('td', { class: 'num' }, ms(d.p95Ms)),
        h('td', {}, when(d.lastSuccessAt)),
        h('td', {}, when(d.lastFailureAt)),
      );
    });
    statsBox.append(table('Attempts by window', ['Window', 'Attempts', 'Success rate', 'p50', 'p95', 'Last success', 'Last failure'], rows));
  } catch (e) {
    statsBox.append(h('p', { class: 'note warning', role: 'alert' }, `Statistics are unavailable: ${describe(e)}`));
  }
}

function secretPanel(s) {
  const input = h('input', { type: 'text', readonly: true, value: s.secret, class: 'secret', spellcheck: 'false', autocomplete: 'off' });
  return h(
    'section',
    { class: 'card secret-panel', 'aria-labelledby': 'secret-h' },
    h('h2', { id: 'secret-h' }, s.rotated ? 'New signing secret' : 'Signing secret'),
    h('p', {}, 'Shown this once: copy it to your receiver now. The relay keeps no readable copy; a lost secret is replaced by rotating.'),
    field('Secret', input),
    copyButton('Copy secret', () => input.value),
    s.previousSecretExpiresAt ? h('p', {}, `The previous secret keeps signing deliveries (a second webhook-signature) until ${when(s.previousSecretExpiresAt)}.`) : null,
  );
}

function actions(ctx, w) {
  const out = h('div', { class: 'msg' });
  const box = h('section', { 'aria-labelledby': 'actions-h' }, h('h2', { id: 'actions-h' }, 'Actions'), out);

  // Send a test.
  const testBtn = h('button', { type: 'button' }, 'Send a test event');
  testBtn.addEventListener('click', async () => {
    testBtn.disabled = true;
    try {
      const r = await api('POST', `/webhooks/${enc(w.id)}/test`);
      fill(out, status(['Test event ', h('code', {}, r.eventId), ' queued. ', h('a', { href: `${hookPath(w.id)}/deliveries` }, 'See the delivery log'), '.']));
    } catch (e) {
      fill(out, h('p', { class: 'note error', role: 'alert' }, `The test was refused: ${describe(e)}`));
    } finally {
      testBtn.disabled = false;
    }
  });

  // Rotate the secret.
  const grace = h('input', { type: 'number', name: 'gracePeriodSeconds', min: '0', max: '604800', step: '1', value: '86400', inputmode: 'numeric' });
  const rotate = h(
    'form',
    { class: 'inline-form', method: 'post', action: '/console/webhooks' },
    field('Grace period (seconds)', grace, 'How long the old secret still signs deliveries: 0 to 604800 (7 days); 0 retires it now (after a leak).'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Rotate secret')),
  );
  rotate.addEventListener('submit', async (e) => {
    e.preventDefault();
    busy(rotate, true);
    try {
      const body = grace.value === '' ? {} : { gracePeriodSeconds: Number(grace.value) };
      const r = await api('POST', `/webhooks/${enc(w.id)}/rotate-secret`, body);
      shownOnce = { id: w.id, secret: r.secret, previousSecretExpiresAt: r.previousSecretExpiresAt, rotated: true };
      ctx.go(hookPath(w.id), { replace: true });
    } catch (err) {
      busy(rotate, false);
      if (!showFieldError(rotate, err)) fill(out, h('p', { class: 'note error', role: 'alert' }, `The rotation was refused: ${describe(err)}`));
    }
  });

  // Delete, after a confirmation (a modal <dialog>: focus stays in it, Escape cancels).
  const confirmBtn = h('button', { type: 'button', class: 'danger' }, 'Delete');
  const cancelBtn = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const dlgTitle = uid('dlg');
  const dialog = h(
    'dialog',
    { 'aria-labelledby': dlgTitle },
    h('h2', { id: dlgTitle }, 'Delete this webhook?'),
    h('p', {}, 'The webhook ', h('strong', {}, w.name), ' stops receiving events at once; its delivery log goes with it. This cannot be undone.'),
    h('div', { class: 'actions' }, cancelBtn, confirmBtn),
  );
  const delBtn = h('button', { type: 'button', class: 'danger' }, 'Delete webhook…');
  delBtn.addEventListener('click', () => {
    dialog.showModal();
    cancelBtn.focus();
  });
  cancelBtn.addEventListener('click', () => dialog.close());
  confirmBtn.addEventListener('click', async () => {
    confirmBtn.disabled = true;
    try {
      await api('DELETE', `/webhooks/${enc(w.id)}`);
      dialog.close();
      ctx.go('/console/webhooks');
    } catch (e) {
      confirmBtn.disabled = false;
      dialog.close();
      fill(out, h('p', { class: 'note error', role: 'alert' }, `The delete was refused: ${describe(e)}`));
    }
  });

  box.append(
    h('div', { class: 'actions' }, testBtn),
    h('h3', {}, 'Rotate the signing secret'),
    rotate,
    h('h3', {}, 'Delete'),
    h('div', { class: 'actions' }, delBtn),
    dialog,
  );
  return box;
}

export async function createWebhook(ctx) {
  heading(ctx, 'New webhook');
  ctx.view.insertBefore(crumbs(['Webhooks', '/console/webhooks'], ['New']), ctx.view.firstChild.nextSibling);
  await webhookForm(ctx, null);
}

export async function editWebhook(ctx) {
  const [id] = ctx.params;
  const w = await getWebhook(ctx, id);
  heading(ctx, `Edit ${w.name}`);
  ctx.view.insertBefore(crumbs(['Webhooks', '/console/webhooks'], [w.name, hookPath(id)], ['Edit']), ctx.view.firstChild.nextSibling);
  await webhookForm(ctx, w);
}

async function webhookForm(ctx, w) {
  const types = await catalogue();
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '200', value: w ? w.name : '', autocomplete: 'off' });
  const url = h('input', { type: 'url', name: 'url', required: true, maxlength: '2048', value: w ? w.url : '', placeholder: 'https://receiver.example.com/hooks', autocomplete: 'off' });
  const chosen = new Set(w ? w.eventTypes : []);
  const boxes = types.map((t) => {
    const cb = h('input', { type: 'checkbox', name: 'eventTypes', value: t.name, checked: chosen.has(t.name), id: uid('et') });
    return h('div', { class: 'check' }, cb, h('label', { for: cb.id }, h('code', {}, t.name), ' — ', t.description));
  });
  const typesErr = uid('et-err');
  const typesSet = h(
    'fieldset',
    { class: 'field', 'data-field': 'eventTypes', 'aria-describedby': typesErr },
    h('legend', {}, 'Event types'),
    boxes,
    h('p', { class: 'field-error', id: typesErr, hidden: true }),
  );
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: w ? w.enabled : true, id: uid('en') });
  const rate = h('input', { type: 'number', name: 'rateLimitPerMinute', min: '1', max: '100', step: '1', value: w ? w.rateLimitPerMinute : '', inputmode: 'numeric', placeholder: '100' });
  const ordering = h(
    'select',
    { name: 'ordering' },
    h('option', { value: 'none', selected: !w || w.ordering === 'none' }, 'none'),
    h('option', { value: 'per-call', selected: w && w.ordering === 'per-call' }, 'per-call (a call\'s events in order)'),
  );
  const filter = h('textarea', { name: 'filter', rows: '4', spellcheck: 'false', value: w && w.filter ? JSON.stringify(w.filter, null, 2) : '' });
  const secret = w ? null : h('input', { type: 'password', name: 'secret', autocomplete: 'new-password', spellcheck: 'false' });
  const submit = h('button', { type: 'submit' }, w ? 'Save changes' : 'Create webhook');
  const form = h(
    'form',
    { method: 'post', action: '/console/webhooks', class: 'card', novalidate: true },
    field('Name', name),
    field('Target URL', url, 'Where deliveries are POSTed (https).'),
    typesSet,
    h('div', { class: 'field check', 'data-field': 'enabled' }, enabled, h('label', { for: enabled.id }, 'Enabled'), h('p', { class: 'field-error', hidden: true })),
    field('Rate limit (deliveries a minute)', rate, 'Optional; 1 to 100, default 100.'),
    field('Ordering', ordering),
    field('Payload filter (JSON, optional)', filter, 'Dotted paths to conditions, e.g. {"data.personality": "terminator"}; empty for none.'),
    secret ? field('Custom secret (optional)', secret, 'Leave empty to have a whsec_ secret generated (recommended).') : null,
    h('div', { class: 'actions' }, submit, w ? h('a', { href: hookPath(w.id), class: 'button secondary' }, 'Cancel') : null),
  );
  ctx.view.append(form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    ctx.clearAlert();
    const body = {
      name: name.value,
      url: url.value,
      eventTypes: boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value),
      enabled: enabled.checked,
      ordering: ordering.value,
    };
    if (rate.value !== '') body.rateLimitPerMinute = Number(rate.value);
    if (filter.value.trim()) {
      try {
        body.filter = JSON.parse(filter.value);
      } catch (err) {
        showFieldError(form, new ApiError(0, { error: 'invalid_json', detail: `Not valid JSON: ${err.message}`, field: 'filter' }, null, '', ''));
        return;
      }
    } else if (w && w.filter) {
      body.filter = null;
    }
    if (secret && secret.value) body.secret = secret.value;
    busy(form, true);
    try {
      if (w) {
        // Only what changed: an untouched field stays exactly as it is.
        const changed = {};
        for (const [k, v] of Object.entries(body)) if (JSON.stringify(v) !== JSON.stringify(w[k] ?? null)) changed[k] = v;
        await api('PATCH', `/webhooks/${enc(w.id)}`, changed);
        ctx.go(hookPath(w.id));
      } else {
        const r = await api('POST', '/webhooks', body);
        shownOnce = { id: r.id, secret: r.secret, rotated: false };
        ctx.go(hookPath(r.id));
      }
    } catch (err) {
      busy(form, false);
      if (!showFieldError(form, err)) ctx.alert(`The webhook was not saved: ${describe(err)}`);
    }
  });
  name.focus();
}

// ---------------------------------------------------------------------------------------------
// Deliveries

const LIVE_MS = 2000;

export async function deliveries(ctx) {
  const [id] = ctx.params;
  const q = ctx.query;
  const [w, types] = await Promise.all([getWebhook(ctx, id), catalogue().catch(() => [])]);
  heading(ctx, `Deliveries of ${w.name}`);
  ctx.view.insertBefore(crumbs(['Webhooks', '/console/webhooks'], [w.name, hookPath(id)], ['Deliveries']), ctx.view.firstChild.nextSibling);

  const st = h(
    'select',
    { name: 'status' },
    [['', 'any'], ['succeeded', 'succeeded'], ['failed', 'failed']].map(([v, t]) => h('option', { value: v, selected: q.get('status') === v || (!q.get('status') && !v) }, t)),
  );
  const typeNames = [...new Set([...w.eventTypes, ...types.map((t) => t.name)])];
  const et = h(
    'select',
    { name: 'eventType' },
    h('option', { value: '' }, 'any'),
    typeNames.map((t) => h('option', { value: t, selected: q.get('eventType') === t }, t)),
  );
  const since = h('input', { type: 'datetime-local', name: 'since', value: isoToLocal(q.get('since')) });
  const until = h('input', { type: 'datetime-local', name: 'until', value: isoToLocal(q.get('until')) });
  const filters = h(
    'form',
    { class: 'filters', method: 'get', action: `${hookPath(id)}/deliveries`, role: 'search', 'aria-label': 'Filter deliveries' },
    field('Status', st),
    field('Event type', et),
    field('Since (your time)', since),
    field('Until (your time)', until),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply filters'), h('a', { href: `${hookPath(id)}/deliveries`, class: 'button secondary' }, 'Clear')),
  );
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (st.value) p.set('status', st.value);
    if (et.value) p.set('eventType', et.value);
    if (localToIso(since.value)) p.set('since', localToIso(since.value));
    if (localToIso(until.value)) p.set('until', localToIso(until.value));
    const s = p.toString();
    ctx.go(`${hookPath(id)}/deliveries${s ? `?${s}` : ''}`);
  });

  const cursor = q.get('cursor');
  const live = h('input', { type: 'checkbox', id: uid('live'), checked: !cursor });
  const liveBox = h('div', { class: 'check' }, live, h('label', { for: live.id }, 'Refresh every 2 seconds'));
  const results = h('div', { 'aria-live': 'polite' });
  ctx.view.append(filters, cursor ? null : liveBox, results);

  const query = {
    limit: q.get('limit') || 25,
    cursor,
    status: q.get('status'),
    eventType: q.get('eventType'),
    since: q.get('since'),
    until: q.get('until'),
  };
  let lastKey = '';
  const load = async () => {
    const page = await api('GET', `/webhooks/${enc(id)}/deliveries`, undefined, query);
    const key = JSON.stringify(page);
    if (key === lastKey) return; // unchanged: keep the DOM (and the user's focus) as it is
    lastKey = key;
    // Re-drawing under a focused link would drop the focus: wait until it is elsewhere.
    if (results.contains(document.activeElement)) {
      lastKey = '';
      return;
    }
    const rows = (page.data || []).map((d) =>
      h(
        'tr',
        { 'data-status': d.status },
        h('td', {}, h('a', { href: `${hookPath(id)}/deliveries/${enc(d.id)}` }, when(d.at), h('span', { class: 'visually-hidden' }, ` attempt ${d.attempt} of ${d.eventType}`))),
        h('td', {}, d.eventType),
        h('td', { class: 'num' }, String(d.attempt)),
        h('td', {}, badge(d.status)),
        h('td', { class: 'num' }, d.statusCode ? String(d.statusCode) : '—'),
        h('td', { class: 'num' }, ms(d.durationMs)),
        h('td', {}, d.errorClass || '—'),
      ),
    );
    const pager = h('p', { class: 'pager' });
    if (cursor) pager.append(h('a', { href: pageUrl(id, q, null) }, 'First page'), ' ');
    if (page.nextCursor) pager.append(h('a', { href: pageUrl(id, q, page.nextCursor), rel: 'next' }, 'Next page'));
    fill(
      results,
      rows.length
        ? table('Attempts, newest first', ['At', 'Event type', 'Attempt', 'Status', 'HTTP', 'Duration', 'Error class'], rows)
        : status(page.nextCursor ? 'No matching attempts in this part of the log; the next page reads on.' : cursor ? 'No more attempts.' : 'No attempts match (yet). Send a test from the webhook\'s page.'),
      pager,
    );
  };
  await load();
  const timer = setInterval(() => {
    if (!results.isConnected) {
      clearInterval(timer);
      return;
    }
    if (live.checked) {
      load().then(ctx.clearAlert, (e) => ctx.alert(`The delivery log could not be refreshed: ${describe(e)}`));
    }
  }, LIVE_MS);
}

function pageUrl(id, q, cursor) {
  const p = new URLSearchParams(q);
  if (cursor) p.set('cursor', cursor);
  else p.delete('cursor');
  const s = p.toString();
  return `${hookPath(id)}/deliveries${s ? `?${s}` : ''}`;
}

// Operational events (docs/operational-events.md): delivered like any other, never logged.
const NOT_LOGGED = new Set([
  'webhook:failing',
  'webhook:disabled',
  'webhook:recovered',
  'delivery:dead-lettered',
  'webex:webhook-reactivated',
  'webex:token-refresh-failed',
  'presence:throttled',
]);

// `bodyUnavailable` of an attempt without `body` (docs/webhooks-api.md).
const BODY_UNAVAILABLE = {
  expired: 'The body is no longer in the event log (it expired).',
  not_recorded: 'The body was not recorded with this attempt (a test or operational body over 4 KiB).',
  not_sent: 'Nothing was sent: the attempt was skipped.',
};

export async function attempt(ctx) {
  const [id, attemptId] = ctx.params;
  const [w, d] = await Promise.all([getWebhook(ctx, id), api('GET', `/webhooks/${enc(id)}/deliveries/${enc(attemptId)}`)]);
  heading(ctx, `Attempt ${d.attempt} of ${d.eventType}`);
  ctx.view.insertBefore(
    crumbs(['Webhooks', '/console/webhooks'], [w.name, hookPath(id)], ['Deliveries', `${hookPath(id)}/deliveries`], [`Attempt ${d.attempt}`]),
    ctx.view.firstChild.nextSibling,
  );
  const out = h('div', { class: 'msg' });
  const resend = h('button', { type: 'button' }, 'Resend this event');
  resend.addEventListener('click', async () => {
    resend.disabled = true;
    try {
      const r = await api('POST', `/webhooks/${enc(id)}/events/${enc(d.eventId)}/resend`);
      fill(out, status(['Resent: delivery ', h('code', {}, r.deliveryId || d.deliveryId), ' queued. ', h('a', { href: `${hookPath(id)}/deliveries` }, 'Watch the delivery log'), '.']));
    } catch (e) {
      fill(out, h('p', { class: 'note error', role: 'alert' }, `The resend was refused: ${describe(e)}`));
    } finally {
      resend.disabled = false;
    }
  });
  // Test and operational events are not kept in the event log, so they cannot be resent (the API
  // would answer 404); for a test, a new one does the job.
  const isTest = d.eventType === 'webhook:test';
  const notLogged = isTest || NOT_LOGGED.has(d.eventType);
  const again = h('button', { type: 'button' }, 'Send a new test event');
  again.addEventListener('click', async () => {
    again.disabled = true;
    try {
      const r = await api('POST', `/webhooks/${enc(id)}/test`);
      fill(out, status(['Test event ', h('code', {}, r.eventId), ' queued. ', h('a', { href: `${hookPath(id)}/deliveries` }, 'Watch the delivery log'), '.']));
    } catch (e) {
      fill(out, h('p', { class: 'note error', role: 'alert' }, `The test was refused: ${describe(e)}`));
    } finally {
      again.disabled = false;
    }
  });
  const headers = Array.isArray(d.requestHeaders) ? d.requestHeaders : [];
  ctx.view.append(
    notLogged
      ? h(
          'div',
          { class: 'actions' },
          isTest ? again : null,
          h('span', { class: 'small' }, `${isTest ? 'Test' : 'Operational'} events are not kept in the event log, so this one cannot be resent.`),
        )
      : h('div', { class: 'actions' }, resend),
    out,
    dl([
      ['Status', badge(d.status)],
      ['HTTP status', d.statusCode ? String(d.statusCode) : null],
      ['Error class', d.errorClass],
      ['Error', d.error],
      ['At', when(d.at)],
      ['Duration', ms(d.durationMs)],
      ['Attempt', String(d.attempt)],
      ['Event', d.eventId],
      ['Delivery id (webhook-id)', d.deliveryId],
      ['Attempt id', d.id],
      d.traceId ? ['Trace id', d.traceId] : null,
    ]),
    h('h2', {}, 'Request headers'),
    headers.length
      ? table('Headers sent (never a secret)', ['Name', 'Value'], headers.map(([k, val]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'mono' }, val))))
      : status('This attempt has no recorded request headers.'),
    h('h2', {}, 'Request body'),
    d.body === null || d.body === undefined ? status(BODY_UNAVAILABLE[d.bodyUnavailable] || 'The body is not available.') : code(pretty(d.body), 'Request body'),
    h('h2', {}, 'Response'),
    d.responseSnippet ? code(d.responseSnippet, 'Response snippet (first KiB)') : status('No response body was recorded.'),
  );
}

// ---------------------------------------------------------------------------------------------
// Replay

export async function replay(ctx) {
  const [id] = ctx.params;
  const w = await getWebhook(ctx, id);
  heading(ctx, `Replay events to ${w.name}`);
  ctx.view.insertBefore(crumbs(['Webhooks', '/console/webhooks'], [w.name, hookPath(id)], ['Replay']), ctx.view.firstChild.nextSibling);
  const now = Date.now();
  const since = h('input', { type: 'datetime-local', name: 'since', required: true, value: isoToLocal(ctx.query.get('since') || new Date(now - 3600e3).toISOString()) });
  const until = h('input', { type: 'datetime-local', name: 'until', required: true, value: isoToLocal(ctx.query.get('until') || new Date(now + 60e3).toISOString()) });
  const out = h('div', { class: 'msg' });
  const form = h(
    'form',
    { method: 'post', action: `${hookPath(id)}/replay`, class: 'card', novalidate: true },
    h('p', {}, 'Re-queues, for this webhook only, the events of your org in [since, until) whose type it subscribes to (at most 14 days).'),
    field('Since (your time)', since),
    field('Until (your time)', until),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Replay window')),
  );
  ctx.view.append(form, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    busy(form, true);
    try {
      const r = await api('POST', `/webhooks/${enc(id)}/replay`, { since: localToIso(since.value), until: localToIso(until.value) });
      const parts = [`Queued ${r.queued} event${r.queued === 1 ? '' : 's'}.`];
      if (r.skippedTooLarge) parts.push(` ${r.skippedTooLarge} too large for the queue were skipped.`);
      if (r.truncated) parts.push(` The window holds more: replay again from ${when(r.nextSince)}.`);
      fill(out, status([...parts, ' ', h('a', { href: `${hookPath(id)}/deliveries` }, 'Watch the delivery log'), '.'], 'success'));
      if (r.truncated && r.nextSince) since.value = isoToLocal(r.nextSince);
    } catch (err) {
      if (!showFieldError(form, err)) {
        const why = err.status === 429 ? 'The replay quota refused it' : 'The replay was refused';
        fill(out, h('p', { class: 'note error', role: 'alert' }, `${why}: ${describe(err)}`));
      }
    } finally {
      busy(form, false);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Verification snippets

export async function verify(ctx) {
  const [id] = ctx.params;
  const w = await getWebhook(ctx, id);
  heading(ctx, `Verify deliveries of ${w.name}`);
  ctx.view.insertBefore(crumbs(['Webhooks', '/console/webhooks'], [w.name, hookPath(id)], ['Verification']), ctx.view.firstChild.nextSibling);
  ctx.view.append(
    h(
      'p',
      {},
      'Every delivery is signed three ways with the webhook\'s secret; check one. HMAC the raw request body bytes exactly as received, before any JSON parsing, and compare in constant time. During a secret rotation ',
      h('code', {}, 'webhook-signature'),
      ' carries a signature for the new and the retiring secret; the hex headers use the new one.',
    ),
  );
  for (const s of schemes(w.id)) {
    const hid = uid('scheme');
    ctx.view.append(
      h(
        'section',
        { class: 'scheme', 'aria-labelledby': hid, 'data-scheme': s.key },
        h('h2', { id: hid }, s.name),
        table('Headers', ['Header', 'Meaning'], s.headers.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, h('code', {}, k)), h('td', {}, v)))),
        h('h3', {}, 'Python'),
        h('div', { class: 'snippet', 'data-lang': 'python' }, code(s.python, `${s.name}: Python`), copyButton(`Copy the Python code`, () => s.python)),
        h('h3', {}, 'Node'),
        h('div', { class: 'snippet', 'data-lang': 'node' }, code(s.node, `${s.name}: Node`), copyButton(`Copy the Node code`, () => s.node)),
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Events

export async function eventTypes(ctx) {
  heading(ctx, 'Event types', h('p', {}, 'What a webhook can subscribe to, each with an example of the exact body a receiver gets.'));
  const types = await catalogue();
  for (const t of types) {
    const hid = uid('type');
    ctx.view.append(
      h(
        'section',
        { class: 'event-type', 'aria-labelledby': hid },
        h('h2', { id: hid }, h('code', {}, t.name)),
        h('p', {}, t.description),
        h('details', {}, h('summary', {}, 'Example payload'), code(JSON.stringify(t.example, null, 2), `Example payload of ${t.name}`)),
        t.filterExamples && t.filterExamples.length
          ? h(
              'details',
              {},
              h('summary', {}, 'Example payload filters'),
              h('ul', {}, t.filterExamples.map((f) => h('li', {}, f.description, code(JSON.stringify(f.filter), `Filter: ${f.description}`)))),
            )
          : null,
      ),
    );
  }
}

export async function events(ctx) {
  const q = ctx.query;
  heading(ctx, 'Event log', h('p', {}, 'Your org\'s events, newest first, as the relay logged them (kept for the event log\'s retention).'));
  // Only the types the log keeps: the API refuses the others (422 eventType).
  const types = (await catalogue().catch(() => [])).filter((t) => t.name !== 'webhook:test' && !NOT_LOGGED.has(t.name));
  const et = h('select', { name: 'eventType' }, h('option', { value: '' }, 'any'), types.map((t) => h('option', { value: t.name, selected: q.get('eventType') === t.name }, t.name)));
  const since = h('input', { type: 'datetime-local', name: 'since', value: isoToLocal(q.get('since')) });
  const until = h('input', { type: 'datetime-local', name: 'until', value: isoToLocal(q.get('until')) });
  const filters = h(
    'form',
    { class: 'filters', method: 'get', action: '/console/events', role: 'search', 'aria-label': 'Filter events' },
    field('Event type', et),
    field('Since (your time)', since),
    field('Until (your time)', until),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply filters'), h('a', { href: '/console/events', class: 'button secondary' }, 'Clear')),
  );
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (et.value) p.set('eventType', et.value);
    if (localToIso(since.value)) p.set('since', localToIso(since.value));
    if (localToIso(until.value)) p.set('until', localToIso(until.value));
    const s = p.toString();
    ctx.go(`/console/events${s ? `?${s}` : ''}`);
  });
  ctx.view.append(filters);
  const cursor = q.get('cursor');
  const page = await api('GET', '/events', undefined, {
    limit: 25,
    cursor,
    eventType: q.get('eventType'),
    since: q.get('since'),
    until: q.get('until'),
  });
  const rows = (page.data || []).map((ev) =>
    h(
      'tr',
      {},
      h('td', {}, when(ev.createdAt)),
      h('td', {}, ev.eventType),
      h('td', { class: 'mono' }, ev.id),
      h('td', {}, h('details', {}, h('summary', {}, 'Payload', h('span', { class: 'visually-hidden' }, ` of ${ev.id}`)), code(JSON.stringify(ev.payload, null, 2), `Payload of ${ev.id}`))),
    ),
  );
  const base = new URLSearchParams(q);
  const link = (c) => {
    const p = new URLSearchParams(base);
    if (c) p.set('cursor', c);
    else p.delete('cursor');
    const s = p.toString();
    return `/console/events${s ? `?${s}` : ''}`;
  };
  const pager = h('p', { class: 'pager' });
  if (cursor) pager.append(h('a', { href: link(null) }, 'First page'), ' ');
  if (page.nextCursor) pager.append(h('a', { href: link(page.nextCursor), rel: 'next' }, 'Next page'));
  // A page reads a bounded part of the log: an empty one with a next page means "none here yet".
  const none = page.nextCursor ? 'No matching events in this part of the log; the next page reads on.' : 'No events match.';
  ctx.view.append(rows.length ? table('Events, newest first', ['Created', 'Type', 'Id', 'Payload'], rows) : status(none), pager);
}

// ---------------------------------------------------------------------------------------------
// Dead-letter queue (admin keys)

export async function dlq(ctx) {
  heading(ctx, 'Dead-letter queue', h('p', {}, 'Deliveries that failed every retry wait here. Redriving moves your org\'s jobs back to the delivery queue with a fresh retry schedule. Admin keys only.'));
  let depth;
  try {
    depth = await api('GET', '/dlq');
  } catch (e) {
    if (e.status === 403) {
      ctx.alert(`This view needs an admin key: the API refused this one (403 ${e.error}: ${e.detail}). Ask your operator for an admin key (relay-keys create --admin).`);
      return;
    }
    throw e;
  }
  const n = depth.approximateMessages;
  ctx.view.append(dl([['Messages waiting (approximately, all orgs)', String(n)]]));
  const limit = h('input', { type: 'number', name: 'limit', min: '1', max: '1000', step: '1', value: '100', inputmode: 'numeric' });
  const out = h('div', { class: 'msg' });
  const form = h(
    'form',
    { method: 'post', action: '/console/dlq', class: 'card', novalidate: true },
    field('Messages to look at', limit, '1 to the relay\'s REDRIVE_MAX_PER_CALL (default 1000).'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Redrive')),
  );
  ctx.view.append(form, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    busy(form, true);
    try {
      const r = await api('POST', '/dlq/redrive', { limit: Number(limit.value || 100) });
      fill(out, status(`Moved ${r.moved} job${r.moved === 1 ? '' : 's'} back to the delivery queue; ${r.skipped} message${r.skipped === 1 ? ' was' : 's were'} not delivery jobs.`, 'success'));
    } catch (err) {
      if (!showFieldError(form, err)) fill(out, h('p', { class: 'note error', role: 'alert' }, `The redrive was refused: ${describe(err)}`));
    } finally {
      busy(form, false);
    }
  });
}

export async function notFound(ctx) {
  heading(ctx, 'Not found', h('p', {}, 'The console has no such page. ', h('a', { href: '/console/webhooks' }, 'Go to your webhooks'), '.'));
}
