// JSON calls to the portal's HTTP API (docs/api.md), same origin, cookie auth.
//
// Every error becomes an ApiError carrying the stable `code` of the API's
// error body, so callers branch on codes, never on English messages.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = {}; // the error body's `details` (e.g. `reason` of precondition_failed)
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// The session's CSRF token: every answer that carries `csrf_token` (sign-in,
// GET /api/v1/me, a session exchange) sets it; cookie-authenticated writes
// send it as X-CSRF-Token. Unknown before a write: read from /api/v1/me.
let csrfToken = null;

/** Remember the CSRF token of the session an answer names (or forget it: null). */
export function setCsrfToken(token) {
  csrfToken = typeof token === 'string' ? token : null;
}

async function ensureCsrf() {
  if (csrfToken !== null) return;
  try {
    await request('GET', '/api/v1/me');
  } catch (err) {
    // Not signed in: the write itself answers with the reason.
  }
}

/**
 * The headers of a write sent outside api() (an upload by XMLHttpRequest,
 * which alone reports upload progress): the session's CSRF token, read
 * again when `fresh` (the server said `csrf_failed`).
 */
export async function csrfHeaders(fresh = false) {
  if (fresh) csrfToken = null;
  await ensureCsrf();
  return csrfToken === null ? {} : { 'X-CSRF-Token': csrfToken };
}

/**
 * One request. `body` (an object) is sent as JSON; a write carries the
 * session's X-CSRF-Token (fetched once from /api/v1/me, and again once when
 * the server says `csrf_failed`: the session changed). Writes that need no
 * session (sign-in, a login or setup link) pass `{ session: false }`.
 * A network failure is ApiError(0, 'network').
 */
export async function api(method, path, body, { session = true } = {}) {
  if (!UNSAFE.has(method) || !session) return request(method, path, body);
  await ensureCsrf();
  try {
    return await request(method, path, body);
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'csrf_failed') throw err;
    csrfToken = null;
    await ensureCsrf();
    return request(method, path, body);
  }
}

async function request(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (UNSAFE.has(method) && csrfToken !== null) init.headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const error = data && typeof data === 'object' && data.error ? data.error : {};
    const failure = new ApiError(
      response.status,
      typeof error.code === 'string' ? error.code : 'internal',
      typeof error.message === 'string' ? error.message : `HTTP ${response.status}`,
    );
    if (error.details && typeof error.details === 'object') failure.details = error.details;
    throw failure;
  }
  if (data && typeof data === 'object' && typeof data.csrf_token === 'string') {
    csrfToken = data.csrf_token;
  }
  return data;
}

/** One page of a matter's history; `query` holds `after` or `before`, and `limit`. */
export function historyPage(ref, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) params.set(key, String(value));
  return api('GET', `/api/v1/matters/${encodeURIComponent(ref)}/events?${params}`);
}
