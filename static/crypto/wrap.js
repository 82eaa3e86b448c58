// Key wraps (docs/security.md §6): HPKE base mode to the recipient's X25519
// key with all context in `info`, signed by the wrapper (HPKE base mode does
// not authenticate the sender). Unwrapping checks, in order and before any
// decryption: encoding and lengths, the context the reader expects, the
// wrapper's certificate, the signature; then opens, then (kind 1) the epoch
// commitment in constant time.

import { bytesEqual, ctEqual } from './bytes.js';
import { decode, encode, schema } from './encoding.js';
import { check } from './errors.js';
import { FLAG, ROLE } from './certs.js';
import * as hpke from './hpke.js';
import { epochCommit } from './kdf.js';
import { ed25519Sign, ed25519Verify } from './primitives.js';

export const KIND = Object.freeze({ MEK: 1, FIRM: 2 });
export const FEK_RECIPIENT = '#fek';
export const FIRM_MATTER = '#firm';
const PT_LEN = { 1: 32, 2: 64 };

export const WRAP_INFO = schema('RTW1', [
  ['firm', 'id'],
  ['matter', 'id'],
  ['epoch', 'u32'],
  ['kind', { type: 'u8', enum: [1, 2] }],
  ['recipient', 'id'],
  ['recipient_kid', 'b16'],
]);
export const WRAP_SIG = schema('RTWS', [
  ['info', { rec: WRAP_INFO }],
  ['wrapper', 'id'],
  ['wrapper_kid', 'b16'],
  ['enc', 'b32'],
  ['ct', 'bytes'],
]);
export const WRAP = schema('RTWX', [
  ['info', { rec: WRAP_INFO }],
  ['wrapper', 'id'],
  ['wrapper_kid', 'b16'],
  ['enc', 'b32'],
  ['ct', 'bytes'],
  ['sig', 'b64'],
]);

/** info = R("RTW1"; firm, matter, epoch, kind, recipient, recipient_kid). */
export function wrapInfo(ctx) {
  return encode(WRAP_INFO, {
    firm: ctx.firm,
    matter: ctx.matter,
    epoch: ctx.epoch,
    kind: ctx.kind,
    recipient: ctx.recipient,
    recipient_kid: ctx.recipientKid,
  });
}

/**
 * Wrap `key` (MEK: 32 bytes, firm keys: 64) to a recipient.
 * ctx: {firm, matter, epoch, kind, recipient, recipientKid, recipientXPk};
 * wrapper: {id, kid, edSk}; opts.ephSk injects the HPKE ephemeral key.
 * Returns {info, enc, ct, sigInput, sig, wrap}.
 */
export async function wrapKey(ctx, key, wrapper, opts = {}) {
  check(key instanceof Uint8Array && key.length === PT_LEN[ctx.kind], 'crypto_encoding', 'wrapped key length');
  const info = wrapInfo(ctx);
  const { enc, ct } = await hpke.seal(ctx.recipientXPk, info, key, new Uint8Array(0), { skE: opts.ephSk });
  const fields = { info, wrapper: wrapper.id, wrapper_kid: wrapper.kid, enc, ct };
  const sigInput = encode(WRAP_SIG, fields);
  const sig = await ed25519Sign(wrapper.edSk, sigInput);
  return { info, enc, ct, sigInput, sig, wrap: encode(WRAP, { ...fields, sig }) };
}

/**
 * Unwrap as the reader. expected: {firm, matter, epoch, kind, recipient,
 * recipientKid}; me: {xSk, xPk?} (the recipient's X25519 private key);
 * trust: a TrustStore; nowMs: time for certificate validity;
 * commit: for kind 1, the 32-byte commitment of the epoch manifest.
 * Returns the key bytes.
 */
export async function unwrapKey(wrapBytes, expected, me, trust, nowMs, commit = null) {
  const w = decode(WRAP, wrapBytes);
  const kind = expected.kind;
  check(PT_LEN[kind] !== undefined, 'crypto_encoding', 'unknown wrap kind');
  check(w.ct.length === PT_LEN[w.info.kind] + 16, 'crypto_encoding', 'wrap ciphertext length for its kind');
  const info = wrapInfo(expected);
  check(bytesEqual(info, w.info.raw), 'crypto_wrong_context', 'wrap is for another context');
  const cert = trust.lookup(w.wrapper, w.wrapper_kid, nowMs);
  const custodianBot = cert.role === ROLE.bot && (cert.flags & FLAG.CUSTODIAN) !== 0;
  check(cert.role === ROLE.staff || custodianBot, 'crypto_uncertified', 'wrapper is not staff or a custodian bot');
  // a scoped certificate acts only in its matters, whatever its role (as Python's _check_wrapper)
  if (cert.scopes.length) {
    check(cert.scopes.includes(expected.matter), 'crypto_uncertified', 'matter outside the wrapper scope');
  }
  const sigInput = encode(WRAP_SIG, { info, wrapper: w.wrapper, wrapper_kid: w.wrapper_kid, enc: w.enc, ct: w.ct });
  check(await ed25519Verify(cert.ed_pk, sigInput, w.sig), 'crypto_signature', 'wrap signature');
  const key = await hpke.open(me.xSk, w.enc, info, w.ct, new Uint8Array(0), me.xPk);
  if (kind === KIND.MEK) {
    check(commit instanceof Uint8Array && commit.length === 32, 'crypto_commitment', 'no epoch commitment to check');
    const mine = await epochCommit(key, expected.firm, expected.matter, expected.epoch);
    check(ctEqual(mine, commit), 'crypto_commitment', 'MEK does not match the manifest commitment');
  }
  return key;
}
