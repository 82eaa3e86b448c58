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
  }
}

/**
 * One request. `body` (an object) is sent as JSON: cookie-authenticated
 * writes need `Content-Type: application/json` (the API's CSRF rule).
 * A network failure is ApiError(0, 'network').
 */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
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
    throw new ApiError(
      response.status,
      typeof error.code === 'string' ? error.code : 'internal',
      typeof error.message === 'string' ? error.message : `HTTP ${response.status}`,
    );
  }
  return data;
}

/** One page of a matter's history; `query` holds `after` or `before`, and `limit`. */
export function historyPage(ref, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) params.set(key, String(value));
  return api('GET', `/api/v1/matters/${encodeURIComponent(ref)}/events?${params}`);
}
