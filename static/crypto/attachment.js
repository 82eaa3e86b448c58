// Streamed attachments (docs/security.md §9): blob = header ‖ STREAM chunks,
// header = "RTA1" ‖ u8(1) ‖ att_id, chunk key = HKDF(FK, salt=att_id,
// D("rtp1/att")). Incremental encrypt/decrypt objects and TransformStreams
// keep memory at about two chunks: a 5 MiB file is never held twice. The
// whole-blob SHA-256 (the descriptor's ct_sha256) is computed on the fly.

import { bytesEqual, concat, ctEqual, randomBytes, utf8 } from './bytes.js';
import { check } from './errors.js';
import { attachmentKey } from './kdf.js';
import { aesKey } from './primitives.js';
import { Sha256 } from './sha256.js';
import { CHUNK, ChunkOpener, ChunkSealer, sealedLength } from './stream.js';

export const VERSION = 1;
export const HEADER_LEN = 21;
export { CHUNK };

/** header = "RTA1" ‖ u8(1) ‖ att_id (16 bytes). */
export function attachmentHeader(attId) {
  check(attId instanceof Uint8Array && attId.length === 16, 'crypto_encoding', 'att_id must be 16 bytes');
  return concat(utf8('RTA1'), Uint8Array.of(VERSION), attId);
}

/** len(blob) = 21 + size + 16 * max(1, ceil(size / 65536)). */
export function blobLength(size) {
  return HEADER_LEN + sealedLength(size);
}

/**
 * Incremental encryptor. Use `await AttachmentEncryptor.create()`: it draws its
 * own (attId, fk) (read `.attId` and `.fk` for the descriptor), so a caller can
 * never hand it a pair used before — a reused pair repeats every chunk nonce
 * under one key. Only golden vectors inject a deterministic `rand`.
 */
export class AttachmentEncryptor {
  static async create(rand = randomBytes) {
    const { attId, fk } = newAttachmentIds(rand);
    const header = attachmentHeader(attId);
    check(fk instanceof Uint8Array && fk.length === 32, 'crypto_encoding', 'file keys are 32 bytes');
    const key = await aesKey(await attachmentKey(fk, attId));
    return new AttachmentEncryptor(header, key, attId, fk);
  }

  constructor(header, key, attId, fk) {
    this.header = header;
    this.attId = attId;
    this.fk = fk;
    this._sealer = new ChunkSealer(key, header);
    this._hash = new Sha256(); // the header is hashed with the first output
    this._started = false;
    this.size = 0;
  }

  _out(bytes) {
    const out = this._started ? bytes : concat(this.header, bytes);
    this._started = true;
    this._hash.update(out);
    return out;
  }

  /** Feed plaintext; returns blob bytes ready to send (the header comes first). */
  async push(data) {
    this.size += data.length;
    return this._out(await this._sealer.push(data));
  }

  /** Returns {bytes: the remaining blob bytes, ctSha256, size}. */
  async finish() {
    const bytes = this._out(await this._sealer.finish());
    return { bytes, ctSha256: this._hash.digest(), size: this.size };
  }
}

/**
 * Incremental decryptor for an expected attachment (att_id and ct_sha256 from
 * the descriptor; the hash is required: without it, whoever holds fk could
 * splice chunks of two blobs made under one (fk, att_id)). Plaintext released
 * by push() is authenticated chunk by chunk but final only after finish().
 */
export class AttachmentDecryptor {
  static async create(fk, attId, ctSha256, expectSize = null) {
    check(ctSha256 instanceof Uint8Array && ctSha256.length === 32, 'crypto_encoding',
      'ct_sha256 (32 bytes) is required to open an attachment');
    const header = attachmentHeader(attId);
    const key = await aesKey(await attachmentKey(fk, attId));
    return new AttachmentDecryptor(header, key, ctSha256, expectSize);
  }

  constructor(header, key, ctSha256, expectSize) {
    this.header = header;
    this._expectedHash = ctSha256;
    this._expectSize = expectSize;
    this._opener = new ChunkOpener(key, header);
    this._hash = new Sha256();
    this._head = new Uint8Array(0);
    this._headerOk = false;
    this.size = 0;
  }

  async push(data) {
    this._hash.update(data);
    let rest = data;
    if (!this._headerOk) {
      const need = HEADER_LEN - this._head.length;
      this._head = concat(this._head, rest.subarray(0, need));
      rest = rest.subarray(need);
      if (this._head.length < HEADER_LEN) return new Uint8Array(0);
      check(bytesEqual(this._head, this.header), 'crypto_attachment', 'attachment header is not the expected one');
      this._headerOk = true;
    }
    const out = rest.length ? await this._opener.push(rest) : new Uint8Array(0);
    this.size += out.length;
    if (this._expectSize !== null) {
      check(this.size <= this._expectSize, 'crypto_attachment', 'attachment longer than its descriptor says');
    }
    return out;
  }

  /** The last plaintext bytes; throws crypto_attachment on truncation, extension or hash mismatch. */
  async finish() {
    check(this._headerOk, 'crypto_attachment', 'attachment shorter than its header');
    const last = await this._opener.finish();
    this.size += last.length;
    if (this._expectSize !== null) {
      check(this.size === this._expectSize, 'crypto_attachment', 'attachment size differs from its descriptor');
    }
    const digest = this._hash.digest();
    check(ctEqual(digest, this._expectedHash), 'crypto_attachment', 'attachment blob hash mismatch');
    this.ctSha256 = digest;
    return last;
  }
}

/**
 * Encrypting TransformStream (plaintext in, blob out) under a fresh (attId, fk),
 * returned with it; `result` resolves to {ctSha256, size} when the stream closes.
 */
export async function encryptStream(rand = randomBytes) {
  const enc = await AttachmentEncryptor.create(rand);
  let resolve;
  let reject;
  const result = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const ts = new TransformStream({
    async transform(chunk, controller) {
      try {
        const out = await enc.push(chunk);
        if (out.length) controller.enqueue(out);
      } catch (e) {
        reject(e);
        throw e;
      }
    },
    async flush(controller) {
      try {
        const { bytes, ctSha256, size } = await enc.finish();
        controller.enqueue(bytes);
        resolve({ ctSha256, size });
      } catch (e) {
        reject(e);
        throw e;
      }
    },
  });
  return { readable: ts.readable, writable: ts.writable, result, attId: enc.attId, fk: enc.fk };
}

/**
 * Decrypting TransformStream (blob in, plaintext out). It errors with
 * CryptoInvalid on tampering; only a clean close proves the file complete,
 * so a consumer keeps the output provisional until then.
 */
export async function decryptStream(fk, attId, ctSha256, expectedSize = null) {
  const dec = await AttachmentDecryptor.create(fk, attId, ctSha256, expectedSize);
  return new TransformStream({
    async transform(chunk, controller) {
      const out = await dec.push(chunk);
      if (out.length) controller.enqueue(out);
    },
    async flush(controller) {
      const last = await dec.finish();
      if (last.length) controller.enqueue(last);
    },
  });
}

/** One-shot helpers for small files: {attId, fk, blob, ctSha256, size} under a fresh (attId, fk). */
export async function encryptAttachment(plaintext, rand = randomBytes) {
  const enc = await AttachmentEncryptor.create(rand);
  const a = await enc.push(plaintext);
  const { bytes, ctSha256, size } = await enc.finish();
  return { attId: enc.attId, fk: enc.fk, blob: concat(a, bytes), ctSha256, size };
}

export async function decryptAttachment(fk, attId, blob, ctSha256, expectSize = null) {
  const dec = await AttachmentDecryptor.create(fk, attId, ctSha256, expectSize);
  const a = await dec.push(blob);
  const b = await dec.finish();
  return concat(a, b);
}

/** A fresh attachment id and file key (attId drawn first, as Python's new_attachment). */
export function newAttachmentIds(rand = randomBytes) {
  const attId = rand(16);
  return { attId, fk: rand(32) };
}
