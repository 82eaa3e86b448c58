// Thin, length-checked wrappers over WebCrypto for the primitives rtp1 uses:
// SHA-256, HMAC-SHA256, HKDF-SHA256 (RFC 5869), AES-256-GCM, X25519 (RFC 7748)
// and Ed25519 (RFC 8032). Raw 32-byte private seeds are imported through the
// PKCS#8 prefix because WebCrypto will not import raw private OKP keys.

import { concat, ctEqual, fromB64url, u8 } from './bytes.js';
import { CryptoInvalid, check } from './errors.js';

const subtle = globalThis.crypto.subtle;

const ZERO32 = new Uint8Array(32);
const PKCS8_X25519 = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const PKCS8_ED25519 = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const X25519_BASE = (() => {
  const b = new Uint8Array(32);
  b[0] = 9;
  return b;
})();

function need(b, n, what) {
  check(b instanceof Uint8Array, 'crypto_encoding', `${what} must be bytes`);
  check(b.length === n, 'crypto_encoding', `${what} must be ${n} bytes, got ${b.length}`);
}

// ---------------------------------------------------------------- hashes
export async function sha256(data) {
  return new Uint8Array(await subtle.digest('SHA-256', data));
}

async function hmacKey(key) {
  // WebCrypto refuses a zero-length HMAC key; HMAC pads keys with zeros to the
  // block size, so 32 zero bytes are the same key (RFC 5869 empty salt).
  return subtle.importKey('raw', key.length === 0 ? ZERO32 : key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

export async function hmacSha256(key, data) {
  return new Uint8Array(await subtle.sign('HMAC', await hmacKey(key), data));
}

/** Constant-time verification of an HMAC-SHA256 tag. */
export async function hmacVerify(key, data, tag) {
  return ctEqual(await hmacSha256(key, data), tag);
}

// ---------------------------------------------------------------- HKDF (RFC 5869)
export async function hkdfExtract(salt, ikm) {
  return hmacSha256(salt, ikm);
}

export async function hkdfExpand(prk, info, length) {
  if (!Number.isInteger(length) || length < 0 || length > 255 * 32) throw new RangeError('HKDF length');
  const key = await hmacKey(prk);
  const out = new Uint8Array(length);
  let t = new Uint8Array(0);
  for (let i = 1, o = 0; o < length; i++) {
    t = new Uint8Array(await subtle.sign('HMAC', key, concat(t, info, u8(i))));
    out.set(t.subarray(0, Math.min(32, length - o)), o);
    o += 32;
  }
  return out;
}

/** HKDF-SHA256; an empty salt means 32 zero bytes (RFC 5869 §2.2). */
export async function hkdf(ikm, salt, info, length) {
  return hkdfExpand(await hkdfExtract(salt, ikm), info, length);
}

// ---------------------------------------------------------------- AES-256-GCM
export const GCM_TAG = 16;
export const GCM_NONCE = 12;

/** Import a 32-byte AES-256-GCM key once (for many chunks). */
export async function aesKey(key) {
  if (typeof CryptoKey !== 'undefined' && key instanceof CryptoKey) return key;
  need(key, 32, 'AES-256 key');
  return subtle.importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

export async function aesGcmEncrypt(key, nonce, plaintext, aad) {
  need(nonce, GCM_NONCE, 'GCM nonce');
  const k = await aesKey(key);
  return new Uint8Array(
    await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, plaintext),
  );
}

export async function aesGcmDecrypt(key, nonce, ciphertext, aad) {
  need(nonce, GCM_NONCE, 'GCM nonce');
  check(ciphertext instanceof Uint8Array && ciphertext.length >= GCM_TAG, 'crypto_encoding', 'ciphertext shorter than a tag');
  const k = await aesKey(key);
  try {
    return new Uint8Array(
      await subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, ciphertext),
    );
  } catch {
    throw new CryptoInvalid('crypto_decrypt', 'AES-GCM authentication failed');
  }
}

// ---------------------------------------------------------------- X25519 (RFC 7748)
/** Import a raw 32-byte X25519 private key (any 32 bytes; clamping is done by X25519). */
export async function x25519PrivateKey(seed, extractable = false) {
  if (typeof CryptoKey !== 'undefined' && seed instanceof CryptoKey) return seed;
  need(seed, 32, 'X25519 private key');
  return subtle.importKey('pkcs8', concat(PKCS8_X25519, seed), { name: 'X25519' }, extractable, ['deriveBits']);
}

async function x25519PublicKey(pub) {
  need(pub, 32, 'X25519 public key');
  return subtle.importKey('raw', pub, { name: 'X25519' }, true, []);
}

/**
 * X25519(priv, pub). An all-zero result (a low-order or small-subgroup peer
 * key) is rejected with code "crypto_low_order", whatever the platform does.
 */
export async function x25519(priv, pub) {
  const sk = await x25519PrivateKey(priv);
  const pk = await x25519PublicKey(pub);
  let out;
  try {
    out = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pk }, sk, 256));
  } catch {
    // WebCrypto implementations that follow the Secure Curves draft throw on an all-zero secret.
    throw new CryptoInvalid('crypto_low_order', 'X25519 produced no shared secret');
  }
  check(!ctEqual(out, ZERO32), 'crypto_low_order', 'X25519 shared secret is all zero');
  return out;
}

/** X25519 public key for a 32-byte private key. */
export async function x25519Public(seed) {
  need(seed, 32, 'X25519 private key');
  return x25519(seed, X25519_BASE);
}

// ---------------------------------------------------------------- Ed25519 (RFC 8032)
export async function ed25519PrivateKey(seed, extractable = false) {
  if (typeof CryptoKey !== 'undefined' && seed instanceof CryptoKey) return seed;
  need(seed, 32, 'Ed25519 seed');
  return subtle.importKey('pkcs8', concat(PKCS8_ED25519, seed), { name: 'Ed25519' }, extractable, ['sign']);
}

/** Ed25519 public key for a 32-byte seed (through a JWK export of an extractable import). */
export async function ed25519Public(seed) {
  need(seed, 32, 'Ed25519 seed');
  const k = await ed25519PrivateKey(seed, true);
  const jwk = await subtle.exportKey('jwk', k);
  return fromB64url(jwk.x);
}

export async function ed25519Sign(seed, message) {
  const k = await ed25519PrivateKey(seed);
  return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, k, message));
}

// Imported Ed25519 public keys by the identity of their bytes: a certificate's ed_pk is one
// array for every message its holder signed, so a page verifying 1,000 messages imports the
// key once, not 1,000 times. The bytes are kept and compared, so a reused array is never
// verified against a stale key.
const ED_PUBLIC = new WeakMap();

async function ed25519PublicKey(pub) {
  const known = ED_PUBLIC.get(pub);
  if (known && ctEqual(known.bytes, pub)) return known.key;
  const key = await subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
  ED_PUBLIC.set(pub, { bytes: pub.slice(), key });
  return key;
}

/** True iff sig is a valid Ed25519 signature of message by pub (lengths checked first). */
export async function ed25519Verify(pub, message, sig) {
  if (!(pub instanceof Uint8Array) || pub.length !== 32) return false;
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return false;
  try {
    return await subtle.verify({ name: 'Ed25519' }, await ed25519PublicKey(pub), sig, message);
  } catch {
    return false;
  }
}
