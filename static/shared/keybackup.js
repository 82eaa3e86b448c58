// The server-held key backup as the sign-in meets it: opened with the sign-in's
// KEK when its salt and parameters match the backup's (one Argon2id, not two),
// else with the password; and sealed again under the same KEK with a new pinned
// root (docs/keys.md "Where the root pin comes from"). Seeds are wiped after use.

import * as C from '../crypto/index.js';
import { bytesEqual, fromB64url } from '../crypto/bytes.js';
import { CryptoInvalid } from '../crypto/errors.js';

const { backup } = C;

export function bytesOf(b64) {
  return typeof b64 === 'string' ? fromB64url(b64) : b64;
}

/** Overwrite secret bytes we no longer need (best effort: JS may hold copies). */
export function wipe(...arrays) {
  for (const a of arrays) if (a instanceof Uint8Array) a.fill(0);
}

/** The backup's AES key from the sign-in's Argon2 output when its salt and parameters match. */
function kekFits(blob, kdf) {
  if (!kdf) return false;
  const h = backup.backupHeader(blob);
  return bytesEqual(h.salt, fromB64url(kdf.salt)) && h.m_kib === kdf.m_kib && h.t === kdf.t && h.p === kdf.p;
}

/** `blob` opened with `kek`: its parsed envelope `b`, the plaintext `pt` and its fields `r` (wipe pt). */
async function openWithKek(blob, kek, firm, user) {
  const b = C.encoding.decode(backup.BACKUP, blob);
  if (b.header.firm !== firm || b.header.user !== user) {
    throw new CryptoInvalid('crypto_wrong_context', 'backup of another user');
  }
  const pt = await C.primitives.aesGcmDecrypt(kek, b.nonce, b.ct, b.header.raw);
  return { b, pt, r: C.encoding.decode(backup.BACKUP_PLAINTEXT, pt) };
}

/** The seeds and pinned root of `backupBytes` (CryptoInvalid when it is not this user's or does not open). */
export async function decryptBackup({ firm, user, password, kdf, backupBytes, kek }) {
  const blob = bytesOf(backupBytes);
  if (kek && kekFits(blob, kdf)) {
    const { pt, r } = await openWithKek(blob, kek, firm, user);
    wipe(pt);
    return { xSk: r.x_sk, edSk: r.ed_sk, frkFingerprint: r.frk_fingerprint };
  }
  return backup.openBackup(blob, password, { firm, user });
}

/**
 * The backup `backupBytes` sealed again under the same key `kek` (the
 * sign-in's, same salt and parameters) with `frkFingerprint` as its pinned
 * root: the seeds are decrypted, re-encrypted with a fresh nonce, wiped.
 */
export async function resealBackup({ firm, user, backupBytes, kek, frkFingerprint }) {
  const { b, pt, r } = await openWithKek(bytesOf(backupBytes), kek, firm, user);
  const next = C.encoding.encode(backup.BACKUP_PLAINTEXT, { x_sk: r.x_sk, ed_sk: r.ed_sk, frk_fingerprint: frkFingerprint });
  const nonce = C.bytes.randomBytes(12);
  const ct = await C.primitives.aesGcmEncrypt(kek, nonce, next, b.header.raw);
  wipe(pt, next, r.x_sk, r.ed_sk);
  return C.encoding.encode(backup.BACKUP, { header: b.header.raw, nonce, ct });
}
