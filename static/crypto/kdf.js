// rtp1 derivations (docs/security.md §3): one label per purpose, all over
// D(label, ctx…) = R("RTD1"; label, ctx…). An empty HKDF salt is 32 zero bytes.

import { u32, utf8 } from './bytes.js';
import { rawRecord } from './encoding.js';
import { check } from './errors.js';
import { hkdf, hmacSha256 } from './primitives.js';

export const LABELS = Object.freeze({
  msg: 'rtp1/msg',
  internal: 'rtp1/internal',
  att: 'rtp1/att',
  login: 'rtp1/login',
  kek: 'rtp1/kek',
  rec: 'rtp1/rec',
  commit: 'rtp1/commit',
});

const ZERO32 = new Uint8Array(32);

/** Encode an id context value (1..255 bytes of UTF-8) for D(). */
export function idBytes(s) {
  const b = utf8(s);
  check(b.length >= 1 && b.length <= 255, 'crypto_encoding', 'identifiers are 1..255 bytes');
  return b;
}

/** D(label, ctx…): ctx items are raw field values (Uint8Array) or id strings. */
export function D(label, ...ctx) {
  check(/^[\x21-\x7e]{1,64}$/.test(label), 'crypto_encoding', 'bad label');
  return rawRecord('RTD1', [utf8(label), ...ctx.map((c) => (typeof c === 'string' ? idBytes(c) : c))]);
}

/** derive(ikm, label, ctx…) with salt 0^32 (or the given salt) and L bytes. */
export async function derive(ikm, label, ctx = [], { salt = ZERO32, length = 32 } = {}) {
  return hkdf(ikm, salt.length ? salt : ZERO32, D(label, ...ctx), length);
}

export function messageKey(mek, firm, matter, epoch) {
  check(mek instanceof Uint8Array && mek.length === 32, 'crypto_encoding', 'MEK must be 32 bytes');
  return derive(mek, LABELS.msg, [firm, matter, u32(epoch)]);
}

export function internalKey(fir, firm, matter, fekVersion) {
  check(fir instanceof Uint8Array && fir.length === 32, 'crypto_encoding', 'FIR must be 32 bytes');
  return derive(fir, LABELS.internal, [firm, matter, u32(fekVersion)]);
}

export function attachmentKey(fk, attId) {
  check(fk instanceof Uint8Array && fk.length === 32, 'crypto_encoding', 'file key must be 32 bytes');
  check(attId instanceof Uint8Array && attId.length === 16, 'crypto_encoding', 'att_id must be 16 bytes');
  return derive(fk, LABELS.att, [], { salt: attId });
}

export function loginSecret(argonOut) {
  return derive(argonOut, LABELS.login);
}

export function backupKek(argonOut) {
  return derive(argonOut, LABELS.kek);
}

export function recoveryKey(code, firm, user) {
  check(code instanceof Uint8Array && code.length === 16, 'crypto_encoding', 'recovery code must be 16 bytes');
  return derive(code, LABELS.rec, [firm, user]);
}

/** The epoch commitment input D("rtp1/commit", firm, matter, epoch). */
export function commitInput(firm, matter, epoch) {
  return D(LABELS.commit, firm, matter, u32(epoch));
}

/** commit = HMAC-SHA256(MEK, D("rtp1/commit", firm, matter, epoch)). */
export function epochCommit(mek, firm, matter, epoch) {
  check(mek instanceof Uint8Array && mek.length === 32, 'crypto_encoding', 'MEK must be 32 bytes');
  return hmacSha256(mek, commitInput(firm, matter, epoch));
}
