// Password-derived login secret and key backup (docs/security.md §10):
// out = Argon2id(password, salt, 64 MiB, t=3, p=1, 64 bytes); the login secret
// and the backup key-encryption key are two labelled HKDF derivations of it.
// Parameters travel in the backup header, which is the AEAD's AAD.

import { randomBytes, utf8 } from './bytes.js';
import { argon2idRaw } from './argon2.js';
import { decode, encode, schema } from './encoding.js';
import { check } from './errors.js';
import { backupKek, loginSecret } from './kdf.js';
import { aesGcmDecrypt, aesGcmEncrypt } from './primitives.js';

export const DEFAULT_PARAMS = Object.freeze({ mKib: 65536, t: 3, p: 1 });

export const BACKUP_HEADER = schema('RTBH', [
  ['v', { type: 'u8', eq: 1 }],
  ['firm', 'id'],
  ['user', 'id'],
  ['m_kib', 'u32'],
  ['t', 'u32'],
  ['p', 'u32'],
  ['salt', 'b16'],
]);
export const BACKUP_PLAINTEXT = schema('RTBP', [
  ['x_sk', 'b32'],
  ['ed_sk', 'b32'],
  ['frk_fingerprint', 'b32'],
]);
export const BACKUP = schema('RTBK', [
  ['header', { rec: BACKUP_HEADER }],
  ['nonce', 'b12'],
  ['ct', 'bytes'],
]);

// Upper bounds (docs/security.md §10): 4x the default memory, ~13x its work. A
// server-sent header must not make a browser tab allocate 1 GiB of wasm memory.
export const MAX_PARAMS = Object.freeze({ mKib: 262144, t: 10, p: 8 });
// Lower bounds (OWASP's Argon2id minimum, same as Python's MIN_M_KIB/MIN_T): the stored
// backup is an offline guessing oracle, so no server or header may ask for weaker ones.
export const MIN_PARAMS = Object.freeze({ mKib: 19456, t: 2, p: 1 });

/** Refuse weak or absurd parameters before any Argon2 work (a server could ask for 4 GiB, or t=1 and 8 KiB). */
export function checkParams({ mKib, t, p }) {
  check(Number.isInteger(p) && p >= MIN_PARAMS.p && p <= MAX_PARAMS.p, 'crypto_encoding', 'Argon2 p out of range');
  check(Number.isInteger(t) && t >= MIN_PARAMS.t && t <= MAX_PARAMS.t, 'crypto_encoding', 'Argon2 t out of range');
  check(Number.isInteger(mKib) && mKib >= Math.max(MIN_PARAMS.mKib, 8 * p) && mKib <= MAX_PARAMS.mKib,
    'crypto_encoding', 'Argon2 m out of range');
}

/** Argon2id(password, salt) -> 64 bytes, plus the login secret and KEK derived from it. */
export async function passwordKeys(password, salt, params = DEFAULT_PARAMS) {
  checkParams(params);
  const pw = typeof password === 'string' ? utf8(password) : password;
  // an empty password protects nothing (and the vendored Argon2 refuses it)
  check(pw instanceof Uint8Array && pw.length > 0, 'crypto_encoding', 'empty password');
  check(salt instanceof Uint8Array && salt.length === 16, 'crypto_encoding', 'salt must be 16 bytes');
  const out = await argon2idRaw({
    password: pw,
    salt,
    memoryKiB: params.mKib,
    iterations: params.t,
    parallelism: params.p,
    length: 64,
  });
  return { argon2Out: out, loginSecret: await loginSecret(out), kek: await backupKek(out) };
}

/**
 * Create a backup of a UIK and the pinned FRK fingerprint.
 * p: {firm, user, password, xSk, edSk, frkFingerprint, salt?, nonce?, params?}.
 * Returns {blob, header, plaintext, loginSecret, kek, argon2Out, salt, nonce}.
 */
export async function createBackup(p, rand = randomBytes) {
  const params = p.params ?? DEFAULT_PARAMS;
  const salt = p.salt ?? rand(16);
  const keys = await passwordKeys(p.password, salt, params);
  const header = encode(BACKUP_HEADER, {
    v: 1, firm: p.firm, user: p.user, m_kib: params.mKib, t: params.t, p: params.p, salt,
  });
  const plaintext = encode(BACKUP_PLAINTEXT, { x_sk: p.xSk, ed_sk: p.edSk, frk_fingerprint: p.frkFingerprint });
  const nonce = p.nonce ?? rand(12);
  const ct = await aesGcmEncrypt(keys.kek, nonce, plaintext, header);
  return { blob: encode(BACKUP, { header, nonce, ct }), header, plaintext, nonce, salt, ...keys };
}

/** The header of a stored backup (for the salt and parameters before login). */
export function backupHeader(blob) {
  const b = decode(BACKUP, blob);
  return b.header;
}

/**
 * Unlock a backup with the password, for the expected firm/user.
 * Returns {xSk, edSk, frkFingerprint, loginSecret, kek}.
 */
export async function openBackup(blob, password, expected = {}) {
  const b = decode(BACKUP, blob);
  const h = b.header;
  if (expected.firm !== undefined || expected.user !== undefined) {
    check(h.firm === expected.firm && h.user === expected.user, 'crypto_wrong_context', 'backup of another user');
  }
  check(b.ct.length >= 16, 'crypto_encoding', 'backup ciphertext too short');
  const keys = await passwordKeys(password, h.salt, { mKib: h.m_kib, t: h.t, p: h.p });
  const pt = await aesGcmDecrypt(keys.kek, b.nonce, b.ct, h.raw); // wrong password: crypto_decrypt
  const r = decode(BACKUP_PLAINTEXT, pt);
  return { xSk: r.x_sk, edSk: r.ed_sk, frkFingerprint: r.frk_fingerprint, loginSecret: keys.loginSecret, kek: keys.kek };
}
