// Byte helpers shared by every rtp1 module: hex, UTF-8, fixed-width big-endian
// integers, concatenation, and a constant-time comparison for secrets.
// Plain ES module, no Node-only APIs (runs in Chromium and Node 20).

/** @typedef {Uint8Array} Bytes */

const enc = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF, as Python's bytes.decode("utf-8") does
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** @param {string} s @returns {Uint8Array} */
export function utf8(s) {
  return enc.encode(s);
}

/** Strict UTF-8 decode: invalid sequences throw instead of becoming U+FFFD. */
export function fromUtf8(b) {
  return dec.decode(b);
}

/** @param {Uint8Array} b @returns {string} lowercase hex */
export function toHex(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

/** @param {string} h @returns {Uint8Array} */
export function fromHex(h) {
  // strict: lowercase only, as docs/security.md §1 and the vectors write it (one value, one string)
  if (typeof h !== 'string' || h.length % 2 !== 0 || !/^[0-9a-f]*$/.test(h)) {
    throw new TypeError('invalid hex string');
  }
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

/** @param {...Uint8Array} parts */
export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function checkInt(n, max, what) {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`${what} out of range: ${n}`);
}

export function u8(n) {
  checkInt(n, 0xff, 'u8');
  return Uint8Array.of(n);
}

export function u16(n) {
  checkInt(n, 0xffff, 'u16');
  return Uint8Array.of(n >>> 8, n & 0xff);
}

export function u32(n) {
  checkInt(n, 0xffffffff, 'u32');
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** u64 big-endian from a number (<= 2^53-1) or bigint. */
export function u64(n) {
  const v = typeof n === 'bigint' ? n : BigInt(n);
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${n}`);
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError('u64 number not safe');
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  return b;
}

/** Read a big-endian unsigned integer of 1, 2, 4 or 8 bytes; u64 comes back as a bigint. */
export function readUint(b, width) {
  if (b.length !== width) throw new RangeError(`expected ${width} bytes, got ${b.length}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (width === 1) return dv.getUint8(0);
  if (width === 2) return dv.getUint16(0);
  if (width === 4) return dv.getUint32(0);
  if (width === 8) return dv.getBigUint64(0);
  throw new RangeError(`bad width ${width}`);
}

/**
 * Constant-time equality for secrets (MACs, commitments, proofs): the time
 * depends only on the lengths, never on where the first difference is.
 */
export function ctEqual(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) return false;
  if (a.length !== b.length) return false; // lengths are public
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Plain (non-secret) equality. */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A copy that owns its own ArrayBuffer (WebCrypto and transfers want exact buffers). */
export function copy(b) {
  return new Uint8Array(b);
}

/** Default randomness; every API that draws randomness also accepts an injected source. */
export function randomBytes(n) {
  const out = new Uint8Array(n);
  // getRandomValues is limited to 65536 bytes per call.
  for (let o = 0; o < n; o += 65536) globalThis.crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  return out;
}

export function isBytes(x) {
  return x instanceof Uint8Array;
}

export function b64url(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Strict base64url (no padding): only the URL alphabet, and canonical — atob
 * ignores non-zero trailing bits, so the result must re-encode to the input
 * (one value, one string; same rule as Python's recovery.code_from_link).
 */
export function fromB64url(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new TypeError('invalid base64url');
  const p = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(p);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (b64url(out) !== s) throw new TypeError('non-canonical base64url');
  return out;
}
