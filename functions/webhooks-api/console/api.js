// The API client: the key lives in sessionStorage only (gone when the tab closes; never in a URL,
// a cookie or a log), is sent as `Authorization: Bearer`, and a 401 signs the user out.

const KEY = 'webex-relay.console.apiKey';
const BASE = '/api/hooks';

export const session = {
  key() {
    try {
      return sessionStorage.getItem(KEY);
    } catch {
      return null;
    }
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    try {
      sessionStorage.removeItem(KEY);
    } catch {
      /* storage disabled: nothing to clear */
    }
  },
};

/** An API answer other than 2xx, with the API's {error, detail, field}. */
export class ApiError extends Error {
  constructor(status, body, retryAfter, method, path) {
    const b = body && typeof body === 'object' ? body : {};
    super(b.detail || `HTTP ${status}`);
    this.status = status;
    this.error = b.error || (status ? `http_${status}` : 'network');
    this.detail = b.detail || '';
    this.field = b.field || null;
    this.retryAfter = retryAfter;
    this.method = method;
    this.path = path;
  }

  /** One line for a banner: "GET /api/hooks/… → 404 not_found: No such route." */
  describe() {
    const what = this.status ? `${this.status} ${this.error}` : this.error;
    const retry = this.retryAfter ? ` Retry after ${this.retryAfter} s.` : '';
    return `${this.method} ${BASE}${this.path} → ${what}: ${this.detail}${retry}`;
  }
}

let onUnauthorized = () => {};
/** What a 401 does (the app signs out and shows the sign-in view). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** `api('GET', '/webhooks', undefined, {limit: 50})` → the parsed JSON (null for 204). */
export async function api(method, path, body, query) {
  const key = session.key();
  let url = BASE + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const shown = url.slice(BASE.length);
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, { error: 'network', detail: `the API could not be reached (${e.message})` }, null, method, shown);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: 'bad_response', detail: `the answer is not JSON (HTTP ${res.status})` };
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data, res.headers.get('Retry-After'), method, shown);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return data;
}
