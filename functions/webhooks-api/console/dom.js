// Building the page safely. Every value the console shows — webhook names, Webex bodies, receivers'
// answers — may be hostile, so nodes are only ever made with createElement and filled with text
// nodes: there is no innerHTML (or any other HTML sink) in the console, and the page's
// Content-Security-Policy (require-trusted-types-for 'script') makes the browser refuse one.

/**
 * h('a', {href: '/x', class: 'k', onClick: fn}, 'text', child…) → an element.
 * Strings and numbers become text nodes; null/undefined/false children are skipped; arrays are flattened.
 * Attributes are set with setAttribute (values as text); `on<Event>` keys add listeners.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'value') {
      el.value = String(v);
    } else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'required' || k === 'hidden') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idSeq = 0;
/** A fresh element id (labels, aria-describedby). */
export function uid(prefix) {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}

/** A labelled form field: {label, input, hint?, error slot}. `input` is an element with a name. */
export function field(label, input, hint) {
  const id = input.id || uid('f');
  input.id = id;
  const errId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const describedBy = [hintId, errId].filter(Boolean).join(' ');
  input.setAttribute('aria-describedby', describedBy);
  return h(
    'div',
    { class: 'field', 'data-field': input.name },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    input,
    h('p', { class: 'field-error', id: errId, hidden: true }),
  );
}

/** Pretty JSON when `text` is JSON, else the text as it is. Always returned as a string. */
export function pretty(text) {
  if (text === null || text === undefined) return '';
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** "2026-12-02 03:04:05 UTC" (or "—"). */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`;
}

/** A `datetime-local` input's value (the user's local time) as RFC 3339 UTC, or '' . */
export function localToIso(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** RFC 3339 → a `datetime-local` value in the user's local time. */
export function isoToLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A button that copies `getText()` to the clipboard and says so in a live region. */
export function copyButton(label, getText) {
  const status = h('span', { class: 'copy-status', role: 'status' });
  const btn = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onClick: async () => {
        try {
          await navigator.clipboard.writeText(getText());
          fill(status, 'Copied.');
        } catch {
          fill(status, 'Copying was refused by the browser: select the text and copy it.');
        }
      },
    },
    label,
  );
  return h('span', { class: 'copy' }, btn, ' ', status);
}
