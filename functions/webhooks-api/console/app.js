// The console's shell: the router (History API: every view has its own /console/… URL, which the
// server answers with index.html, so a reload or a deep link lands on the same view), the sign-in
// gate and the navigation. The views are in views.js.

import { session, setUnauthorizedHandler } from './api.js';
import { fill, h } from './dom.js';
import * as views from './views.js';

const ROUTES = [
  [/^\/console\/?$/, views.home],
  [/^\/console\/sign-in$/, views.signIn, { public: true }],
  [/^\/console\/webhooks$/, views.webhooks],
  [/^\/console\/webhooks\/new$/, views.createWebhook],
  [/^\/console\/webhooks\/(wh_[A-Za-z0-9]+)$/, views.webhook],
  [/^\/console\/webhooks\/(wh_[A-Za-z0-9]+)\/edit$/, views.editWebhook],
  [/^\/console\/webhooks\/(wh_[A-Za-z0-9]+)\/deliveries$/, views.deliveries],
  [/^\/console\/webhooks\/(wh_[A-Za-z0-9]+)\/deliveries\/([A-Za-z0-9_-]+)$/, views.attempt],
  [/^\/console\/webhooks\/(wh_[A-Za-z0-9]+)\/replay$/, views.replay],
  [/^\/console\/webhooks\/(wh_[A-Za-z0-9]+)\/verify$/, views.verify],
  [/^\/console\/events$/, views.events],
  [/^\/console\/event-types$/, views.eventTypes],
  [/^\/console\/dlq$/, views.dlq],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOut = document.getElementById('sign-out');
let first = true;
// A one-shot message for the next view (e.g. why the user is back on sign-in). Never the key.
let flash = null;
let current = null;

export function go(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function render() {
  if (current) current.abort();
  current = new AbortController();
  const url = new URL(window.location.href);
  const path = url.pathname.replace(/\/+$/, '') || '/console';
  let match = null;
  let view = views.notFound;
  let opts = {};
  for (const [re, v, o] of ROUTES) {
    match = path.match(re);
    if (match) {
      view = v;
      opts = o || {};
      break;
    }
  }
  const signedIn = Boolean(session.key());
  if (!signedIn && !opts.public) {
    const next = url.pathname + url.search;
    go(`/console/sign-in${next.startsWith('/console/sign-in') ? '' : `?next=${encodeURIComponent(next)}`}`, { replace: true });
    return;
  }
  nav.hidden = !signedIn;
  signOut.hidden = !signedIn;
  markCurrentLink(url.pathname);

  // Each view draws into its own container: a view still awaiting the API when the user moves on
  // writes into a detached node, never over the next view.
  const alert = h('div', { class: 'alert', role: 'alert', hidden: true });
  const container = h('div', { class: 'view' }, alert);
  main.replaceChildren(container);
  const ctx = {
    view: container,
    params: match ? match.slice(1) : [],
    query: url.searchParams,
    signal: current.signal,
    go,
    flash: takeFlash(),
    title(t) {
      document.title = `${t} · webex-relay console`;
    },
    alert(message, kind = 'error') {
      alert.hidden = false;
      alert.className = `alert ${kind}`;
      fill(alert, message);
    },
    clearAlert() {
      alert.hidden = true;
      alert.replaceChildren();
    },
  };
  Promise.resolve(view(ctx))
    .catch((e) => ctx.alert(e && e.describe ? e.describe() : `Something went wrong: ${e && e.message}`))
    .finally(() => {
      // Move focus to the new view's heading (screen readers announce it), except on first load.
      if (!first && container.isConnected) {
        const h1 = container.querySelector('h1');
        if (h1 && !container.contains(document.activeElement)) {
          h1.setAttribute('tabindex', '-1');
          h1.focus();
        }
      }
      first = false;
    });
}

function takeFlash() {
  const f = flash;
  flash = null;
  return f;
}

function markCurrentLink(pathname) {
  for (const a of nav.querySelectorAll('a')) {
    const href = a.getAttribute('href');
    if (pathname === href || pathname.startsWith(`${href}/`)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Same-origin /console/ links navigate in place (a plain click only: a modified click opens a tab).
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, window.location.href);
  if (url.origin !== window.location.origin || !url.pathname.startsWith('/console')) return;
  e.preventDefault();
  go(url.pathname + url.search + url.hash);
});

window.addEventListener('popstate', render);

signOut.addEventListener('click', () => {
  session.clear();
  flash = { kind: 'info', text: 'Signed out. The key was removed from this tab.' };
  go('/console/sign-in');
});

setUnauthorizedHandler((err) => {
  session.clear();
  flash = {
    kind: 'error',
    text: `The API refused the key (401 ${err.error}): it is wrong, revoked or expired. Sign in with a valid key.`,
  };
  const url = new URL(window.location.href);
  const next = url.pathname.startsWith('/console/sign-in') ? url.searchParams.get('next') : url.pathname + url.search;
  go(`/console/sign-in${next ? `?next=${encodeURIComponent(next)}` : ''}`, { replace: true });
});

render();
