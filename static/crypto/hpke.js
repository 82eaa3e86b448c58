// RFC 9180 HPKE, base mode only, one suite: DHKEM(X25519, HKDF-SHA256)
// (0x0020), HKDF-SHA256 (0x0001), AES-256-GCM (0x0002); single-shot seal/open
// (sequence number 0). Written over WebCrypto because browsers ship no HPKE.
// The ephemeral key is injectable so golden vectors are deterministic.
// rtp1 always passes an empty aad (Python's `cryptography` HPKE has no aad
// argument): all context goes into `info`.

import { concat, randomBytes, u16, utf8 } from './bytes.js';
import { check } from './errors.js';
import { aesGcmDecrypt, aesGcmEncrypt, hkdfExpand, hkdfExtract, x25519, x25519Public } from './primitives.js';

export const KEM_ID = 0x0020;
export const KDF_ID = 0x0001;
export const AEAD_ID = 0x0002;
export const N_ENC = 32;
export const N_PK = 32;
export const N_SK = 32;
const N_K = 32;
const N_N = 12;
const N_H = 32;
const N_SECRET = 32;

const V1 = utf8('HPKE-v1');
const KEM_SUITE = concat(utf8('KEM'), u16(KEM_ID));
const HPKE_SUITE = concat(utf8('HPKE'), u16(KEM_ID), u16(KDF_ID), u16(AEAD_ID));
const EMPTY = new Uint8Array(0);

function labeledExtract(suite, salt, label, ikm) {
  return hkdfExtract(salt, concat(V1, suite, utf8(label), ikm));
}

function labeledExpand(suite, prk, label, info, length) {
  return hkdfExpand(prk, concat(u16(length), V1, suite, utf8(label), info), length);
}

/** DeriveKeyPair(ikm) for DHKEM(X25519): returns {sk, pk} (RFC 9180 §7.1.3). */
export async function deriveKeyPair(ikm) {
  const prk = await labeledExtract(KEM_SUITE, EMPTY, 'dkp_prk', ikm);
  const sk = await labeledExpand(KEM_SUITE, prk, 'sk', EMPTY, N_SK);
  return { sk, pk: await x25519Public(sk) };
}

async function extractAndExpand(dh, kemContext) {
  const prk = await labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dh);
  return labeledExpand(KEM_SUITE, prk, 'shared_secret', kemContext, N_SECRET);
}

/** Encap(pkR) with an optional injected ephemeral private key skE. */
export async function encap(pkR, skE) {
  check(pkR instanceof Uint8Array && pkR.length === N_PK, 'crypto_encoding', 'HPKE recipient key must be 32 bytes');
  const eph = skE ?? randomBytes(N_SK);
  const enc = await x25519Public(eph);
  const dh = await x25519(eph, pkR); // rejects low-order pkR
  return { sharedSecret: await extractAndExpand(dh, concat(enc, pkR)), enc };
}

/** Decap(enc, skR); pkR may be passed to save one scalar multiplication. */
export async function decap(enc, skR, pkR) {
  check(enc instanceof Uint8Array && enc.length === N_ENC, 'crypto_encoding', 'HPKE enc must be 32 bytes');
  const dh = await x25519(skR, enc); // rejects low-order enc
  const pk = pkR ?? (await x25519Public(skR));
  return extractAndExpand(dh, concat(enc, pk));
}

/** KeySchedule for mode_base: returns {key, baseNonce, exporterSecret, keyScheduleContext, secret}. */
export async function keySchedule(sharedSecret, info) {
  const pskIdHash = await labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = await labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', info);
  const ctx = concat(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = await labeledExtract(HPKE_SUITE, sharedSecret, 'secret', EMPTY);
  return {
    keyScheduleContext: ctx,
    secret,
    key: await labeledExpand(HPKE_SUITE, secret, 'key', ctx, N_K),
    baseNonce: await labeledExpand(HPKE_SUITE, secret, 'base_nonce', ctx, N_N),
    exporterSecret: await labeledExpand(HPKE_SUITE, secret, 'exp', ctx, N_H),
  };
}

/** Export(exporter_context, L) from a context's exporter secret. */
export function exportSecret(exporterSecret, exporterContext, length) {
  return labeledExpand(HPKE_SUITE, exporterSecret, 'sec', exporterContext, length);
}

/**
 * Single-shot base-mode seal: returns {enc, ct}. `opts.skE` injects the
 * ephemeral private key (tests and golden vectors only).
 */
export async function seal(pkR, info, plaintext, aad = EMPTY, opts = {}) {
  const { sharedSecret, enc } = await encap(pkR, opts.skE);
  const { key, baseNonce } = await keySchedule(sharedSecret, info);
  return { enc, ct: await aesGcmEncrypt(key, baseNonce, plaintext, aad) };
}

/** Single-shot base-mode open; throws CryptoInvalid on any failure. */
export async function open(skR, enc, info, ct, aad = EMPTY, pkR = undefined) {
  check(ct instanceof Uint8Array && ct.length >= 16, 'crypto_encoding', 'HPKE ciphertext shorter than a tag');
  const sharedSecret = await decap(enc, skR, pkR);
  const { key, baseNonce } = await keySchedule(sharedSecret, info);
  return aesGcmDecrypt(key, baseNonce, ct, aad);
}
