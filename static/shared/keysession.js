// Where sign-in, acceptance, password change and sign-out meet the keyring:
// which keyring belongs to the signed-in person, opening the key backup
// after sign-in with the key-encryption key of the same Argon2id run,
// registering a first identity (staff at their first sign-in), re-encrypting
// the backup under a new password, and forgetting the keys at sign-out.

import { b64url, fromB64url } from '../crypto/bytes.js';
import { backupHeader, createBackup as sealBackup, openBackup } from '../crypto/backup.js';
import { ApiError, api } from './http.js';
import { userId } from './keyids.js';
import { resealBackup } from './keybackup.js';
import { createIdentity, forgetAll, openKeyring, unlockWithPassword } from './keyring.js';

let current = null; // {firm, user, keyring}
let firmSlug = null;

/** The firm slug of the signed-in session (from GET /api/v1/me, asked once per page). */
async function sessionFirm() {
  if (!firmSlug) {
    const me = await api('GET', '/api/v1/me');
    firmSlug = me.firm && me.firm.slug;
  }
  return firmSlug;
}

/**
 * Give `keyring` the means to put its root pin into my server-held backup:
 * the sign-in's KEK and login secret, held in this closure only (this page's memory, never
 * stored; a reload or sign-out drops it, and the next sign-in seals a pin
 * this device holds). The seeds are decrypted only for the re-seal.
 */
function holdKek(keyring, kek, loginSecret) {
  if (!kek || !loginSecret) return;
  const { firm, user } = keyring;
  keyring.pinSealer = async (fingerprint) => {
    const mine = await api('GET', '/api/v1/keys/me');
    const backupBytes = await resealBackup({ firm, user, backupBytes: mine.backup, kek, frkFingerprint: fingerprint });
    // the server asks for the current login secret again (a session alone may not replace a backup)
    await api('PUT', '/api/v1/keys/me', { public_keys: mine.public_keys, backup: b64url(backupBytes), login_secret: loginSecret });
  };
}

/** Tell this module the firm of the session when the page already knows it (GET /api/v1/me). */
export function setSessionFirm(slug) {
  if (slug) firmSlug = slug;
}

/** The keyring of `principal` in this browser, or null (keys not on this device). */
export async function keyringFor(principal) {
  const firm = await sessionFirm();
  const user = userId(principal);
  // a keyring that stopped saving (another tab signed out, or in again) is opened
  // anew from the store: the record there, if any, is the newest
  if (current && current.firm === firm && current.user === user && !current.keyring.gone) return current.keyring;
  const keyring = await openKeyring({ firm, user });
  current = keyring ? { firm, user, keyring } : null;
  return keyring;
}

/** Use this keyring for the page from now on (after an acceptance made it). */
export function useKeyring(keyring) {
  current = { firm: keyring.firm, user: keyring.user, keyring };
  firmSlug = keyring.firm;
}

/**
 * After `POST /api/v1/signin` answered: open the key backup it carries with
 * `kek` (or the password), or, for a staff member without one, make the
 * identity, its backup under this password, and register it
 * (`PUT /api/v1/keys/me`: the approval queue). Returns the keyring or null
 * (an account from before end-to-end encryption: nothing to open).
 */
export async function keysAfterSignIn({ answer, password, kdf, kek, loginSecret }) {
  firmSlug = null;
  const firm = await sessionFirm();
  const principal = answer.principal;
  const user = userId(principal);
  if (answer.key_backup) {
    const keyring = await unlockWithPassword({ firm, user, password, kdf, backupBytes: answer.key_backup, kek });
    current = { firm, user, keyring };
    holdKek(keyring, kek, loginSecret);
    await keyring.sealPin(); // a pin this device made after the backup (no-op when it is in there)
    return keyring;
  }
  if (principal.kind !== 'staff') return null;
  const pending = await createIdentity({ firm, user });
  const made = await pending.createBackup(password, kdf);
  try {
    // the login secret of the same Argon2id run: the server asks for it again (a session alone may not replace keys)
    await api('PUT', '/api/v1/keys/me', {
      public_keys: b64url(pending.publicKeys),
      backup: b64url(made.backup),
      login_secret: made.loginSecret,
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null; // a server without the key directory
    throw err;
  }
  const keyring = await pending.store();
  current = { firm, user, keyring };
  holdKek(keyring, made.kek, made.loginSecret); // the pin comes at approval (first certified sync) and goes into the backup
  return keyring;
}

/**
 * The key backup under a new password (`POST /api/v1/me/password` sends it):
 * the stored backup opened with the current password, sealed again under the
 * new `kdf`. Null when the account has no backup.
 */
export async function backupForNewPassword(currentPassword, nextPassword, kdf) {
  let mine;
  try {
    mine = await api('GET', '/api/v1/keys/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
  if (!mine || !mine.backup) return null;
  const firm = await sessionFirm();
  const blob = fromB64url(mine.backup);
  const header = backupHeader(blob);
  const opened = await openBackup(blob, currentPassword, { firm, user: header.user });
  const made = await sealBackup({
    firm,
    user: header.user,
    password: nextPassword,
    xSk: opened.xSk,
    edSk: opened.edSk,
    // the pin this device made goes in if the backup had none yet
    frkFingerprint: current && current.keyring.frkFingerprint && !opened.frkFingerprint.some((b) => b !== 0)
      ? current.keyring.frkFingerprint
      : opened.frkFingerprint,
    salt: fromB64url(kdf.salt),
    params: { mKib: kdf.m_kib, t: kdf.t, p: kdf.p },
  });
  opened.xSk.fill(0);
  opened.edSk.fill(0);
  if (current) current.keyring.pinSealer = null; // the old password's KEK no longer opens the backup
  made.plaintext.fill(0);
  return b64url(made.blob);
}

/** Sign-out: the keys leave this browser (every identity it held: the page may not know whose). */
export async function forgetKeys() {
  const had = current;
  current = null;
  if (had) had.keyring.pinSealer = null;
  firmSlug = null;
  if (had) await had.keyring.forget();
  await forgetAll();
}
