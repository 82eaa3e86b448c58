// rtp1 key types (docs/security.md §4): public records, fingerprints (SHA-256
// of the public record), key ids (first 16 bytes), the human FRK fingerprint,
// user identity keys, the firm escrow key and key files.

import { b64url, fromB64url, randomBytes } from './bytes.js';
import { base32 } from './base32.js';
import { decode, encode, schema } from './encoding.js';
import { check } from './errors.js';
import { derive } from './kdf.js';
import { ed25519Public, ed25519Sign, ed25519Verify, sha256, x25519, x25519Public } from './primitives.js';

export const FRK_RECORD = schema('RTKR', [['ed_pk', 'b32']]);
export const UIK_RECORD = schema('RTKU', [
  ['x_pk', 'b32'],
  ['ed_pk', 'b32'],
]);
export const FEK_RECORD = schema('RTKE', [
  ['firm', 'id'],
  ['version', 'u32'],
  ['x_pk', 'b32'],
]);
// The FRK's word on which X25519 key is the FEK of a version: a firm-key wrap whose FEK
// differs is refused, so a staff member cannot hand out an escrow key of their own making.
export const ESCROW_TBS = schema('RTF1', [
  ['firm', 'id'],
  ['version', { type: 'u32', min: 1 }],
  ['x_pk', 'b32'],
  ['created_at_ms', 'u64'],
]);
export const ESCROW = schema('RTFX', [
  ['tbs', { rec: ESCROW_TBS }],
  ['sig', 'b64'],
]);
export const INVITE_SECRET_LEN = 32;
export const KEY_FILE = schema('RTUK', [
  ['firm', 'id'],
  ['user', 'id'],
  ['x_sk', 'b32'],
  ['ed_sk', 'b32'],
]);

const P25519 = (1n << 255n) - 19n;

/** The fixed scalar of the low-order check: 0x01 ‖ 0^31 (clamping clears the cofactor). */
const CHECK_SCALAR = (() => {
  const b = new Uint8Array(32);
  b[0] = 1;
  return b;
})();

/**
 * Reject low-order X25519 public keys received from anyone (certificates,
 * wraps): X25519(c, pk) must not be all zero. Throws crypto_low_order.
 */
export async function checkX25519Public(pk) {
  check(pk instanceof Uint8Array && pk.length === 32, 'crypto_encoding', 'X25519 public key must be 32 bytes');
  await x25519(CHECK_SCALAR, pk); // first, so every low-order encoding is crypto_low_order
  // then canonical: u < 2^255 - 19 (top bit clear). A certified key has one encoding: its kid
  // hashes the bytes and HPKE's kem_context uses them (same rule as Python)
  let u = 0n;
  for (let i = 31; i >= 0; i--) u = (u << 8n) | BigInt(pk[i]);
  check(u < P25519, 'crypto_encoding', 'non-canonical X25519 public key');
}

/** {fingerprint (32 bytes), kid (16 bytes)} of a public record. */
export async function fingerprintOf(record) {
  const fingerprint = await sha256(record);
  return { fingerprint, kid: fingerprint.slice(0, 16) };
}

export function frkRecord(edPk) {
  return encode(FRK_RECORD, { ed_pk: edPk });
}

export function uikRecord(xPk, edPk) {
  return encode(UIK_RECORD, { x_pk: xPk, ed_pk: edPk });
}

export function fekRecord(firm, version, xPk) {
  return encode(FEK_RECORD, { firm, version, x_pk: xPk });
}

export async function uikKid(xPk, edPk) {
  return (await fingerprintOf(uikRecord(xPk, edPk))).kid;
}

/** Human format: base32 of the first 20 bytes, 8 groups of 4 separated by spaces. */
export function fingerprintText(fingerprint) {
  check(fingerprint instanceof Uint8Array && fingerprint.length === 32, 'crypto_encoding', 'fingerprint is 32 bytes');
  return base32(fingerprint.subarray(0, 20)).match(/.{4}/g).join(' ');
}

/** The invite-link fragment value `frk=` (base64url, no padding, full fingerprint). */
export function fingerprintLink(fingerprint) {
  check(fingerprint instanceof Uint8Array && fingerprint.length === 32, 'crypto_encoding', 'fingerprint is 32 bytes');
  return b64url(fingerprint);
}

export function fingerprintFromLink(s) {
  let b;
  try {
    b = fromB64url(s);
  } catch {
    b = null;
  }
  check(b !== null && b.length === 32, 'crypto_encoding', 'frk link value must be 32 bytes of base64url');
  return b;
}

/** The firm root key from its 32-byte Ed25519 seed. */
export async function frkFromSeed(edSk) {
  const edPk = await ed25519Public(edSk);
  const record = frkRecord(edPk);
  return { type: 'frk', edSk, edPk, record, ...(await fingerprintOf(record)) };
}

/** A user identity key (X25519 + Ed25519) from its two 32-byte private parts. */
export async function uikFromSeeds(xSk, edSk) {
  const xPk = await x25519Public(xSk);
  const edPk = await ed25519Public(edSk);
  const record = uikRecord(xPk, edPk);
  return { type: 'uik', xSk, edSk, xPk, edPk, record, ...(await fingerprintOf(record)) };
}

/** A fresh UIK; `rand(n)` may be injected for deterministic vectors. */
export async function generateUik(rand = randomBytes) {
  return uikFromSeeds(rand(32), rand(32));
}

/** The firm escrow key (X25519) of a version, with its firm internal root FIR. */
export async function fekFromSecret(firm, version, xSk, fir) {
  check(fir instanceof Uint8Array && fir.length === 32, 'crypto_encoding', 'FIR must be 32 bytes');
  const xPk = await x25519Public(xSk);
  const record = fekRecord(firm, version, xPk);
  return { type: 'fek', firm, version, xSk, xPk, fir, record, ...(await fingerprintOf(record)) };
}

/** Key file for bots and fixtures: R("RTUK"; firm, user, x_sk, ed_sk). */
export function keyFile(firm, user, uik) {
  return encode(KEY_FILE, { firm, user, x_sk: uik.xSk, ed_sk: uik.edSk });
}

export async function readKeyFile(bytes) {
  const f = decode(KEY_FILE, bytes);
  return { firm: f.firm, user: f.user, ...(await uikFromSeeds(f.x_sk, f.ed_sk)) };
}

/** The FEK/FIR pair from the 64-byte plaintext of a kind-2 wrap (FEK x_sk ‖ FIR). */
export async function fekFromWrapped(firm, version, plaintext) {
  check(plaintext instanceof Uint8Array && plaintext.length === 64, 'crypto_encoding', 'firm keys are 64 bytes');
  return fekFromSecret(firm, version, plaintext.slice(0, 32), plaintext.slice(32));
}

/**
 * The invited client's identity key from the link secret R (docs/keys.md):
 * seeds = derive(R, "rtp1/invite", firm, user), 64 bytes (x_sk ‖ ed_sk).
 */
export async function identityFromInviteSecret(secret, firm, user) {
  check(secret instanceof Uint8Array && secret.length === INVITE_SECRET_LEN, 'crypto_encoding', 'invite secret is 32 bytes');
  const seeds = await derive(secret, 'rtp1/invite', [firm, user], { length: 64 });
  return uikFromSeeds(seeds.slice(0, 32), seeds.slice(32));
}

/** Sign an escrow record p: {firm, version, xPk, createdAtMs} with the FRK ({edSk}). Returns {tbs, sig, record}. */
export async function signEscrowRecord(p, frk) {
  await checkX25519Public(p.xPk);
  const tbs = encode(ESCROW_TBS, { firm: p.firm, version: p.version, x_pk: p.xPk, created_at_ms: p.createdAtMs });
  const sig = await ed25519Sign(frk.edSk, tbs);
  return { tbs, sig, record: encode(ESCROW, { tbs, sig }) };
}

/** Strictly decode an RTFX record: {firm, version, x_pk, created_at_ms, sig, tbs}. */
export function decodeEscrowRecord(bytes) {
  const r = decode(ESCROW, bytes);
  return { ...r.tbs, tbs: r.tbs.raw, sig: r.sig };
}

/** Decode, check the FEK public key and the FRK signature. */
export async function verifyEscrowRecord(bytes, frkEdPk) {
  const r = decodeEscrowRecord(bytes);
  await checkX25519Public(r.x_pk);
  check(await ed25519Verify(frkEdPk, r.tbs, r.sig), 'crypto_signature', 'escrow record signature');
  return r;
}
