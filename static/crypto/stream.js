// The STREAM core of rtp1 attachments (age/Tink style): plaintext is cut into
// 64 KiB chunks; chunk i is AES-256-GCM with nonce = i as 11-byte big-endian ‖
// last-chunk flag (0x00 or 0x01) and the attachment header as AAD. Only the
// final chunk carries flag 1, so truncation, reordering, a missing or extra
// final chunk and trailing bytes all fail authentication or a length check.
//
// Chunking rule (docs/security.md): every chunk but the last holds exactly
// CHUNK bytes of plaintext; the last holds 0..CHUNK bytes and is empty only
// for an empty file. The encryptor therefore holds back one full chunk until
// it knows whether more data follows. Both objects are incremental: memory is
// bounded by about two chunks, whatever the attachment size.

import { concat } from './bytes.js';
import { check, recode } from './errors.js';
import { GCM_TAG, aesGcmDecrypt, aesGcmEncrypt, aesKey } from './primitives.js';

export const CHUNK = 65536;
export const CT_CHUNK = CHUNK + GCM_TAG;
const MAX_CHUNKS = 2 ** 53; // counter stays a safe integer (11 bytes allow more)

/** Nonce of chunk i: 11-byte big-endian counter ‖ flag byte. */
export function chunkNonce(i, last) {
  if (!Number.isSafeInteger(i) || i < 0 || i >= MAX_CHUNKS) throw new RangeError('chunk counter out of range');
  const n = new Uint8Array(12);
  let v = i;
  for (let k = 10; k >= 0 && v > 0; k--) {
    n[k] = v % 256;
    v = Math.floor(v / 256);
  }
  n[11] = last ? 1 : 0;
  return n;
}

/** Ciphertext length of a plaintext of n bytes, header excluded. */
export function sealedLength(n) {
  const chunks = n === 0 ? 1 : Math.ceil(n / CHUNK);
  return n + chunks * GCM_TAG;
}

/** Incremental encryptor: push() plaintext pieces, then finish(); each returns ciphertext bytes. */
export class ChunkSealer {
  /** @param {CryptoKey|Uint8Array} key 32-byte chunk key @param {Uint8Array} aad header */
  constructor(key, aad) {
    this._key = key;
    this._aad = aad;
    this._buf = new Uint8Array(CHUNK);
    this._fill = 0;
    this._i = 0;
    this._done = false;
  }

  async _k() {
    if (!(typeof CryptoKey !== 'undefined' && this._key instanceof CryptoKey)) this._key = await aesKey(this._key);
    return this._key;
  }

  /** Feed plaintext; returns the ciphertext of every chunk now known not to be the last. */
  async push(data) {
    if (this._done) throw new Error('sealer already finished');
    const out = [];
    let o = 0;
    while (o < data.length) {
      if (this._fill === CHUNK) {
        // more data follows a full buffer: it is not the last chunk
        out.push(await aesGcmEncrypt(await this._k(), chunkNonce(this._i++, false), this._buf, this._aad));
        this._fill = 0;
      }
      const n = Math.min(CHUNK - this._fill, data.length - o);
      this._buf.set(data.subarray(o, o + n), this._fill);
      this._fill += n;
      o += n;
    }
    return out.length === 1 ? out[0] : concat(...out);
  }

  /** Seal the held-back data as the last chunk. */
  async finish() {
    if (this._done) throw new Error('sealer already finished');
    this._done = true;
    return aesGcmEncrypt(await this._k(), chunkNonce(this._i++, true), this._buf.subarray(0, this._fill), this._aad);
  }
}

/** Incremental decryptor: push() ciphertext pieces, then finish(); throws CryptoInvalid on any tampering. */
export class ChunkOpener {
  constructor(key, aad) {
    this._key = key;
    this._aad = aad;
    this._buf = new Uint8Array(CT_CHUNK + 1);
    this._fill = 0;
    this._i = 0;
    this._done = false;
    this.plaintextLength = 0;
  }

  async _k() {
    if (!(typeof CryptoKey !== 'undefined' && this._key instanceof CryptoKey)) this._key = await aesKey(this._key);
    return this._key;
  }

  async _open(ct, last) {
    const k = await this._k();
    const nonce = chunkNonce(this._i++, last);
    // every chunk failure (reordered, truncated, extended, re-headed) is an attachment error
    return recode(() => aesGcmDecrypt(k, nonce, ct, this._aad), 'crypto_attachment', ['crypto_decrypt']);
  }

  /** Feed ciphertext; returns plaintext of every chunk known not to be the last. */
  async push(data) {
    if (this._done) throw new Error('opener already finished');
    const out = [];
    let o = 0;
    while (o < data.length) {
      if (this._fill === CT_CHUNK + 1) {
        // a byte beyond a full chunk exists, so that chunk is not the last one
        const ct = this._buf.subarray(0, CT_CHUNK);
        const pt = await this._open(ct, false);
        out.push(pt);
        this.plaintextLength += pt.length;
        this._buf[0] = this._buf[CT_CHUNK];
        this._fill = 1;
      }
      const n = Math.min(CT_CHUNK + 1 - this._fill, data.length - o);
      this._buf.set(data.subarray(o, o + n), this._fill);
      this._fill += n;
      o += n;
    }
    return out.length === 1 ? out[0] : concat(...out);
  }

  /** The remaining bytes must be exactly one last chunk. */
  async finish() {
    if (this._done) throw new Error('opener already finished');
    this._done = true;
    check(this._fill >= GCM_TAG, 'crypto_attachment', 'attachment ends without a final chunk');
    // one bound for every chunk, the last included: at most CHUNK bytes of plaintext (the
    // buffer holds CT_CHUNK + 1 bytes, and Python refuses a 65,537-byte final chunk too)
    check(this._fill <= CT_CHUNK, 'crypto_attachment', 'final chunk longer than 64 KiB');
    const ct = this._buf.subarray(0, this._fill);
    const pt = await this._open(ct, true);
    check(pt.length > 0 || this._i === 1, 'crypto_attachment', 'empty final chunk after data');
    this.plaintextLength += pt.length;
    return pt;
  }
}

/**
 * A TransformStream of plaintext -> ciphertext: emits `prefix` (the header)
 * first, then sealed chunks as they complete. Memory stays about one chunk.
 */
export function sealerTransform(sealer, prefix) {
  return new TransformStream({
    start(controller) {
      if (prefix && prefix.length) controller.enqueue(prefix);
    },
    async transform(chunk, controller) {
      const out = await sealer.push(chunk);
      if (out.length) controller.enqueue(out);
    },
    async flush(controller) {
      controller.enqueue(await sealer.finish());
    },
  });
}

/**
 * A TransformStream of ciphertext -> plaintext. The first `headerLength` bytes
 * are handed to `makeOpener(header)` (which checks the header and returns a
 * ChunkOpener, or throws); the rest is decrypted incrementally. The stream
 * errors with CryptoInvalid on any tampering, and only its successful close
 * proves the plaintext complete: consumers must not commit the output before.
 */
export function openerTransform(headerLength, makeOpener) {
  let header = new Uint8Array(0);
  let opener = null;
  return new TransformStream({
    async transform(chunk, controller) {
      let data = chunk;
      if (!opener) {
        const need = headerLength - header.length;
        header = concat(header, data.subarray(0, need));
        data = data.subarray(need);
        if (header.length < headerLength) return;
        opener = await makeOpener(header);
      }
      if (data.length) {
        const out = await opener.push(data);
        if (out.length) controller.enqueue(out);
      }
    },
    async flush(controller) {
      check(opener !== null, 'crypto_attachment', 'attachment shorter than its header');
      const last = await opener.finish();
      if (last.length) controller.enqueue(last);
    },
  });
}
