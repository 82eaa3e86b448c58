// Recovery-code proof (docs/security.md §11): the client proves knowledge of
// the out-of-band recovery code R by an HMAC over its new public keys, keyed
// by derive(R, "rtp1/rec", firm, user). The server never sees R.

import { b64url, ctEqual, fromB64url, randomBytes } from './bytes.js';
import { base32, fromBase32 } from './base32.js';
import { decode, encode, schema } from './encoding.js';
import { check } from './errors.js';
import { recoveryKey } from './kdf.js';
import { hmacSha256 } from './primitives.js';

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
