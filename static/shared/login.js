// The login link `https://portal/#token=...` -> an HttpOnly session cookie.
//
// The fragment never reaches the server (browsers do not send it), and we
// drop it from the address bar and the session history *before* using it,
// so the credential does not linger in the URL, in a bookmark or in a
// screenshot of the page — even if the exchange then fails.

import { api, setCsrfToken } from './http.js';

/** The token of the URL fragment, or null; the fragment is removed either way. */
export function takeFragmentToken(loc = window.location, hist = window.history) {
  const hash = loc.hash.startsWith('#') ? loc.hash.slice(1) : loc.hash;
  if (!hash) return null;
  const token = new URLSearchParams(hash).get('token');
  // replaceState, not `location.hash = ''`: no new history entry and no
  // trailing '#', and the Back button cannot bring the token back.
  hist.replaceState(hist.state, '', loc.pathname + loc.search);
  return token || null;
}

/** POST /api/v1/session: uses the login link up; the server sets the HttpOnly session cookie. */
export async function exchangeToken(token) {
  const data = await api('POST', '/api/v1/session', { token }, { session: false });
  return data.principal;
}

/** DELETE /api/v1/session: revokes this session (and any exchanged from it) and clears the cookie. */
export async function logout() {
  await api('DELETE', '/api/v1/session');
  setCsrfToken(null);
}
