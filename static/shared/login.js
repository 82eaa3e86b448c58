// Links into the portal: `#token=` (a login link -> an HttpOnly session
// cookie), `#invite=` / `#t=` and `#setup=` (read here, used by
// shared/accept.js), with an invite's `r` (secret) and `frk` (root fingerprint).
//
// The fragment never reaches the server (browsers do not send it), and we
// drop it from the address bar and the session history *before* using it,
// so the credential does not linger in the URL, in a bookmark or in a
// screenshot of the page — even if the exchange then fails.

import { api, setCsrfToken } from './http.js';
import { forgetKeys } from './keysession.js';

// The secrets a link may carry in its fragment: a demo/API login link
// (`#token=`), a client's portal invitation (`#invite=`) and a staff
// member's setup link (`#setup=`).
const LINK_KINDS = ['token', 'invite', 'setup'];

/**
 * The link secret of the URL fragment as `{kind, secret}`, or null. A
 * fragment holding a secret is removed from the address bar either way;
 * any other fragment (an in-page anchor, a staff route) stays.
 */
export function takeFragmentLink(loc = window.location, hist = window.history) {
  const hash = loc.hash.startsWith('#') ? loc.hash.slice(1) : loc.hash;
  if (!hash) return null;
  const params = new URLSearchParams(hash);
  // `#t=` is the end-to-end invite link of docs/keys.md (`t` the token, `r` the
  // invite secret, `frk` the firm root fingerprint): an invitation.
  const kind = params.has('t') ? 'invite' : LINK_KINDS.find((k) => params.has(k));
  if (!kind) return null;
  // replaceState, not `location.hash = ''`: no new history entry and no
  // trailing '#', and the Back button cannot bring the secret back.
  hist.replaceState(hist.state, '', loc.pathname + loc.search);
  const secret = params.get(kind) || params.get('t');
  if (!secret) return null;
  const link = { kind, secret };
  for (const extra of ['r', 'frk', 'd']) if (params.get(extra)) link[extra] = params.get(extra);
  return link;
}

/** The login-link token of the URL fragment, or null (see takeFragmentLink). */
export function takeFragmentToken(loc = window.location, hist = window.history) {
  const link = takeFragmentLink(loc, hist);
  return link && link.kind === 'token' ? link.secret : null;
}

/** POST /api/v1/session: uses the login link up; the server sets the HttpOnly session cookie. */
export async function exchangeToken(token) {
  const data = await api('POST', '/api/v1/session', { token }, { session: false });
  return data.principal;
}

/** DELETE /api/v1/session: revokes this session (and any exchanged from it) and clears the cookie. */
export async function logout() {
  try {
    await api('DELETE', '/api/v1/session');
  } finally {
    // signing out forgets the keys on this device, whatever the server answered
    await forgetKeys();
  }
  setCsrfToken(null);
}
