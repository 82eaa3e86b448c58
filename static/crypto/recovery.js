// Recovery-code proof (docs/security.md §11): the client proves knowledge of
// the out-of-band recovery code R by an HMAC over its new public keys, keyed
// by derive(R, "rtp1/rec", firm, user). The server never sees R.
// Key handover (RTK1): an invite-derived key signs the fresh key that replaces
// it; since the server may have known the invite key, both people also compare
// sasCode() of the fresh key by phone.

import { b64url, bytesEqual, ctEqual, fromB64url, randomBytes } from './bytes.js';
import { base32, fromBase32 } from './base32.js';
import { decode, encode, schema } from './encoding.js';
import { check } from './errors.js';
import { D, recoveryKey } from './kdf.js';
import { checkX25519Public, uikKid } from './keys.js';
import { ed25519Sign, ed25519Verify, hmacSha256, sha256 } from './primitives.js';

export const PROOF_INPUT = schema('RTRP', [
  ['firm', 'id'],
  ['user', 'id'],
  ['x_pk', 'b32'],
  ['ed_pk', 'b32'],
]);
export const PROOF = schema('RTRX', [
  ['firm', 'id'],
  ['user', 'id'],
  ['x_pk', 'b32'],
  ['ed_pk', 'b32'],
  ['proof', 'b32'],
]);

export function newRecoveryCode(rand = randomBytes) {
  return rand(16);
}

/** 26 base32 characters in groups of 4 separated by "-". */
export function recoveryCodeText(code) {
  check(code instanceof Uint8Array && code.length === 16, 'crypto_encoding', 'recovery code must be 16 bytes');
  return base32(code).match(/.{1,4}/g).join('-');
}

/** Parse a typed code: spaces and "-" removed, uppercased, exactly 16 bytes. */
export function parseRecoveryCode(text) {
  check(typeof text === 'string', 'crypto_encoding', 'recovery code must be text');
  // the same set as Python's parse_code: ASCII space, tab, CR, LF and "-" (\s would add Unicode spaces)
  const b = fromBase32(text.replace(/[ \t\r\n-]/g, '').toUpperCase());
  check(b !== null && b.length === 16, 'crypto_encoding', 'recovery code must decode to 16 bytes');
  return b;
}

/** The `r=` value of an invite-link fragment (base64url, no padding). */
export function recoveryCodeLink(code) {
  check(code instanceof Uint8Array && code.length === 16, 'crypto_encoding', 'recovery code must be 16 bytes');
  return b64url(code);
}

export function recoveryCodeFromLink(s) {
  let b = null;
  try {
    b = fromB64url(s);
  } catch {
    b = null;
  }
  check(b !== null && b.length === 16, 'crypto_encoding', 'r= must be 16 bytes of base64url');
  return b;
}

/** Build the proof for new public keys. Returns {rk, input, proof, transport}. */
export async function makeRecoveryProof(code, firm, user, xPk, edPk) {
  const rk = await recoveryKey(code, firm, user);
  const input = encode(PROOF_INPUT, { firm, user, x_pk: xPk, ed_pk: edPk });
  const proof = await hmacSha256(rk, input);
  return { rk, input, proof, transport: encode(PROOF, { firm, user, x_pk: xPk, ed_pk: edPk, proof }) };
}

/**
 * Verify a transported proof with the code the verifier knows, for the
 * expected firm and user. Returns {x_pk, ed_pk} (the keys to certify).
 */
export async function verifyRecoveryProof(transport, code, firm, user) {
  const t = decode(PROOF, transport);
  check(t.firm === firm && t.user === user, 'crypto_recovery', 'recovery proof is for another user');
  const { proof } = await makeRecoveryProof(code, firm, user, t.x_pk, t.ed_pk);
  check(ctEqual(proof, t.proof), 'crypto_recovery', 'recovery proof does not verify');
  return { x_pk: t.x_pk, ed_pk: t.ed_pk };
}

export const HANDOVER_TBS = schema('RTK1', [
  ['firm', 'id'],
  ['user', 'id'],
  ['old_kid', 'b16'],
  ['x_pk', 'b32'],
  ['ed_pk', 'b32'],
  ['ts_ms', 'u64'],
]);
export const HANDOVER = schema('RTKX', [
  ['tbs', { rec: HANDOVER_TBS }],
  ['sig', 'b64'],
]);

/**
 * The old key hands over to new public keys. p: {firm, user, xPk, edPk, tsMs};
 * old: {kid, edSk} (the invite key). Returns {tbs, sig, handover}.
 */
export async function signHandover(p, old) {
  await checkX25519Public(p.xPk);
  const tbs = encode(HANDOVER_TBS, {
    firm: p.firm, user: p.user, old_kid: old.kid, x_pk: p.xPk, ed_pk: p.edPk, ts_ms: p.tsMs,
  });
  const sig = await ed25519Sign(old.edSk, tbs);
  return { tbs, sig, handover: encode(HANDOVER, { tbs, sig }) };
}

/**
 * Verify a handover from old = {xPk, edPk} (the certified invite key of user).
 * Returns {firm, user, old_kid, x_pk, ed_pk, ts_ms} (the new keys to certify).
 */
export async function verifyHandover(bytes, old, firm, user) {
  const h = decode(HANDOVER, bytes);
  const t = h.tbs;
  check(t.firm === firm && t.user === user, 'crypto_recovery', 'handover is for another user');
  const oldKid = await uikKid(old.xPk, old.edPk);
  check(bytesEqual(t.old_kid, oldKid), 'crypto_recovery', 'handover is from another key');
  check(!bytesEqual(await uikKid(t.x_pk, t.ed_pk), oldKid), 'crypto_recovery', 'a handover names a new key');
  await checkX25519Public(t.x_pk);
  check(await ed25519Verify(old.edPk, t.raw, h.sig), 'crypto_signature', 'handover signature');
  return { ...t };
}

/**
 * Six digits "123 456" both people read out: SHA-256 of D("rtp1/sas", firm,
 * user, x_pk, ed_pk), first 8 bytes as an integer modulo 10^6 (as Python).
 */
export async function sasCode(firm, user, xPk, edPk) {
  check(xPk instanceof Uint8Array && xPk.length === 32 && edPk instanceof Uint8Array && edPk.length === 32,
    'crypto_encoding', 'public keys are 32 bytes');
  const d = await sha256(D('rtp1/sas', firm, user, xPk, edPk));
  const n = new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0) % 1000000n;
  const digits = n.toString().padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}
