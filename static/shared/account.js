// Signing in with a password (docs/access.md "Accounts and sign-in"): the
// browser asks for the account's Argon2id salt and parameters, derives the
// login secret (static/crypto/backup.js passwordKeys) and sends only that.
// Also: the firm this browser signs in to, changing the password, sign-out.

import { DEFAULT_PARAMS, MIN_PARAMS, passwordKeys } from '../crypto/backup.js';
import { b64url, fromB64url, randomBytes } from '../crypto/bytes.js';
import { api, setCsrfToken } from './http.js';
import { backupForNewPassword, forgetKeys, setSessionFirm } from './keysession.js';

// Writes made before there is a session: no CSRF token to look up first.
const NO_SESSION = { session: false };
const FIRM_KEY = 'rtp.firm';
const EMAIL_KEY = 'rtp.email';

function recall(key) {
  try {
    return window.localStorage.getItem(key);
  } catch (err) {
    return null; // storage off (private mode, some webviews): nothing remembered
  }
}

function remember(key, value) {
  try {
    if (value) window.localStorage.setItem(key, value);
  } catch (err) {
    // storage off: the user types it next time
  }
}

/** The firm of this page: `?firm=` (then remembered), else the one remembered, else null. */
export function currentFirm(loc = window.location) {
  const firm = new URLSearchParams(loc.search).get('firm');
  if (firm) {
    remember(FIRM_KEY, firm);
    return firm;
  }
  return recall(FIRM_KEY);
}

export const rememberedEmail = () => recall(EMAIL_KEY);

/** The browser's Argon2id parameters of a server `kdf` object. */
function params(kdf) {
  return { mKib: kdf.m_kib, t: kdf.t, p: kdf.p };
}

/** The base64url login secret of `password` under the server's `kdf` ({salt, m_kib, t, p}). */
export async function loginSecret(password, kdf) {
  return (await passwordSecrets(password, kdf)).secret;
}

/**
 * One Argon2id run: the base64url login secret and the key backup's
 * encryption key (docs/security.md §10), so unlocking the keys after sign-in
 * costs no second second of Argon2id.
 */
export async function passwordSecrets(password, kdf) {
  const keys = await passwordKeys(password, fromB64url(kdf.salt), params(kdf));
  keys.argon2Out.fill(0);
  return { secret: b64url(keys.loginSecret), kek: keys.kek };
}

/**
 * A new `kdf` (fresh 16-byte salt) for a new password; parameters from `base` or the
 * defaults, never below the library's floor (MIN_PARAMS: passwordKeys refuses weaker ones).
 */
export function newKdf(base) {
  return {
    alg: 'argon2id',
    salt: b64url(randomBytes(16)),
    m_kib: Math.max((base && base.m_kib) || DEFAULT_PARAMS.mKib, MIN_PARAMS.mKib),
    t: Math.max((base && base.t) || DEFAULT_PARAMS.t, MIN_PARAMS.t),
    p: Math.max((base && base.p) || DEFAULT_PARAMS.p, MIN_PARAMS.p),
  };
}

function firmField(firm) {
  return firm ? { firm } : {};
}

/** The login secret of `email`'s account: prelogin, then Argon2id in this browser (~1 s). */
export async function secretFor(firm, email, password) {
  const { kdf } = await api('POST', '/api/v1/prelogin', { ...firmField(firm), email }, NO_SESSION);
  return { kdf, ...(await passwordSecrets(password, kdf)) };
}

/**
 * POST /api/v1/signin; remembers the firm, the email and the CSRF token. Resolves with the
 * answer. `extra` {totp_setup: true} asks an account that must enrol an
 * authenticator to email it its key instead (answer `{totp_setup: {emailed: true}}`).
 */
export async function signIn(firm, email, secret, totp, extra = {}) {
  const body = { ...firmField(firm), email, login_secret: secret, ...extra };
  if (totp) body.totp = totp;
  const data = await api('POST', '/api/v1/signin', body, NO_SESSION);
  if (data && data.totp_setup) return data; // an enrolment started: no session yet
  setCsrfToken(data.csrf_token);
  remember(FIRM_KEY, firm);
  remember(EMAIL_KEY, email);
  return data;
}

/** After an accepted invitation or setup link: remember who this browser signs in as. */
export function rememberAccount(firm, email) {
  remember(FIRM_KEY, firm);
  remember(EMAIL_KEY, email);
}

/** GET /api/v1/me; keeps its CSRF token for this page's writes, and remembers the firm. */
export async function whoAmI() {
  const data = await api('GET', '/api/v1/me');
  setCsrfToken(data.csrf_token);
  if (data.firm && typeof data.firm.slug === 'string') {
    remember(FIRM_KEY, data.firm.slug);
    setSessionFirm(data.firm.slug);
  }
  return data.principal;
}

/** POST /api/v1/me/password: the current password's secret, then a new salt and secret. */
export async function changePassword(firm, email, current, next) {
  const { kdf, secret } = await secretFor(firm, email, current);
  const fresh = newKdf(kdf);
  const body = { current_login_secret: secret, kdf: fresh, login_secret: await loginSecret(next, fresh) };
  // the key backup is encrypted under the password: it changes with it
  const keyBackup = await backupForNewPassword(current, next, fresh);
  if (keyBackup) body.key_backup = keyBackup;
  const data = await api('POST', '/api/v1/me/password', body);
  if (data && data.csrf_token) setCsrfToken(data.csrf_token);
  return data;
}

/** DELETE /api/v1/sessions: every session of this account ends. */
export async function signOutEverywhere() {
  await api('DELETE', '/api/v1/sessions');
  setCsrfToken(null);
  await forgetKeys();
}
