// Ed25519 public keys fit to certify: canonical, on the curve, not of small
// order (same rule as rtportal/crypto/edwards.py). A small-order public key
// makes one signature "verify" many messages; a non-canonical encoding gives
// one key two byte forms (two kids). issueCert and TrustStore.addCert refuse
// both. Only public data is involved, so plain BigInt arithmetic is fine.

import { check } from './errors.js';

const P = (1n << 255n) - 19n;

function mod(a) {
  const r = a % P;
  return r < 0n ? r + P : r;
}

function pow(b, e) {
  let r = 1n;
  let x = mod(b);
  let k = e;
  while (k > 0n) {
    if (k & 1n) r = (r * x) % P;
    x = (x * x) % P;
    k >>= 1n;
  }
  return r;
}

const inv = (a) => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

/** RFC 8032 §5.1.3 decoding, refusing every non-canonical form. */
function decodePoint(pk) {
  check(pk instanceof Uint8Array && pk.length === 32, 'crypto_encoding', 'Ed25519 public key must be 32 bytes');
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(pk[i]);
  const sign = n >> 255n;
  const y = n & ((1n << 255n) - 1n);
  check(y < P, 'crypto_encoding', 'non-canonical Ed25519 public key');
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
  if (mod(v * x * x - u) !== 0n) {
    x = mod(x * SQRT_M1);
    check(mod(v * x * x - u) === 0n, 'crypto_encoding', 'Ed25519 public key is not a curve point');
  }
  check(!(x === 0n && sign === 1n), 'crypto_encoding', 'non-canonical Ed25519 public key');
  if ((x & 1n) !== sign) x = P - x;
  return [x, y];
}

/** Affine doubling on -x^2 + y^2 = 1 + d x^2 y^2 (the denominators never vanish). */
function double([x, y]) {
  const xx = mod(x * x);
  const yy = mod(y * y);
  return [mod(2n * x * y * inv(mod(yy - xx))), mod((yy + xx) * inv(mod(2n - yy + xx)))];
}

/** Throws crypto_encoding (non-canonical, not a point) or crypto_low_order ([8]A = 0); returns pk. */
export function checkEd25519Public(pk) {
  let pt = decodePoint(pk);
  for (let i = 0; i < 3; i++) pt = double(pt);
  check(!(pt[0] === 0n && pt[1] === 1n), 'crypto_low_order', 'small-order Ed25519 public key');
  return pk;
}
