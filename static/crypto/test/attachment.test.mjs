// Streamed attachments: sizes at chunk boundaries, a 5 MiB file through
// TransformStreams without buffering, and every tampering rejected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, toHex } from '../bytes.js';
import {
  AttachmentDecryptor, AttachmentEncryptor, CHUNK, HEADER_LEN, attachmentHeader, blobLength, decryptAttachment,
  decryptStream, encryptAttachment, encryptStream,
} from '../attachment.js';
import { sha256 } from '../primitives.js';
import { Sha256 } from '../sha256.js';
import { rejectsWith } from './helpers.mjs';

const FK = new Uint8Array(32).fill(0x42);
const ATT = new Uint8Array(16).fill(0x17);
// the encryptor draws its own (attId, fk); tests hand it these through an injected rng
const FIXED = (n) => (n === 16 ? ATT : FK);
const pattern = (n, from = 0) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (from + i) % 251;
  return b;
};

test('sizes 0, 1, 65535, 65536, 65537, 2*65536+1: length formula, hash, round trip', async () => {
  for (const n of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 1]) {
    const { blob, ctSha256, size } = await encryptAttachment(pattern(n), FIXED);
    assert.equal(blob.length, blobLength(n));
    assert.equal(size, n);
    assert.deepEqual(ctSha256, await sha256(blob));
    assert.deepEqual(blob.subarray(0, HEADER_LEN), attachmentHeader(ATT));
    assert.deepEqual(await decryptAttachment(FK, ATT, blob, ctSha256, n), pattern(n));
  }
  assert.equal(blobLength(0), 21 + 16);
  assert.equal(blobLength(65536), 21 + 65536 + 16);
  assert.equal(blobLength(65537), 21 + 65537 + 32);
});

test('5 MiB streams through TransformStreams in small pieces (never held in full)', async () => {
  const SIZE = 5 * 1024 * 1024;
  const PIECE = 10000; // not a multiple of the chunk size
  const source = () => {
    let produced = 0;
    return new ReadableStream({
      pull(controller) {
        if (produced >= SIZE) return controller.close();
        const n = Math.min(PIECE, SIZE - produced);
        controller.enqueue(pattern(n, produced));
        produced += n;
      },
    });
  };
  // the descriptor's ct_sha256 is required to decrypt: a first streamed pass yields it
  const first = await encryptStream(FIXED);
  await source().pipeThrough(first).pipeTo(new WritableStream());
  const { ctSha256: descriptorHash } = await first.result;
  const enc = await encryptStream(FIXED);
  assert.deepEqual([enc.attId, enc.fk], [ATT, FK]);
  const ctHash = new Sha256();
  let ctLen = 0;
  let maxPiece = 0;
  const tee = new TransformStream({
    transform(chunk, c) {
      ctHash.update(chunk);
      ctLen += chunk.length;
      maxPiece = Math.max(maxPiece, chunk.length);
      c.enqueue(chunk);
    },
  });
  const dec = await decryptStream(FK, ATT, descriptorHash, SIZE);
  const ptHash = new Sha256();
  const expectHash = new Sha256();
  let ptLen = 0;
  await source().pipeThrough(enc).pipeThrough(tee).pipeThrough(dec).pipeTo(
    new WritableStream({
      write(chunk) {
        ptHash.update(chunk);
        expectHash.update(pattern(chunk.length, ptLen));
        ptLen += chunk.length;
      },
    }),
  );
  const { ctSha256, size } = await enc.result;
  assert.equal(size, SIZE);
  assert.equal(ptLen, SIZE);
  assert.equal(ctLen, blobLength(SIZE));
  assert.ok(maxPiece <= 2 * (CHUNK + 16) + HEADER_LEN, `pieces stay chunk-sized (max ${maxPiece})`);
  assert.equal(toHex(ctHash.digest()), toHex(ctSha256));
  assert.equal(toHex(ptHash.digest()), toHex(expectHash.digest()));
});

test('truncated, reordered, extended, re-headed, swapped, trailing bytes: all rejected', async () => {
  const pt = pattern(2 * CHUNK + 100);
  const { blob, ctSha256 } = await encryptAttachment(pt, FIXED);
  const h = blob.subarray(0, HEADER_LEN);
  const c0 = blob.subarray(HEADER_LEN, HEADER_LEN + CHUNK + 16);
  const c1 = blob.subarray(HEADER_LEN + CHUNK + 16, HEADER_LEN + 2 * (CHUNK + 16));
  const c2 = blob.subarray(HEADER_LEN + 2 * (CHUNK + 16));
  const bad = {
    truncatedLastChunk: concat(h, c0, c1),
    truncatedInside: blob.subarray(0, blob.length - 1),
    headerOnly: h,
    shorterThanHeader: blob.subarray(0, 10),
    reordered: concat(h, c1, c0, c2),
    extended: concat(blob, c2),
    trailing: concat(blob, Uint8Array.of(0)),
  };
  for (const [name, b] of Object.entries(bad)) {
    // each blob's own hash: the STREAM structure alone refuses it
    await rejectsWith(assert, decryptAttachment(FK, ATT, b, await sha256(b)), 'crypto_attachment').catch((e) => {
      throw new Error(`${name}: ${e.message}`);
    });
  }
  // re-headed: the same chunks under another att_id's header, or the version byte changed
  const otherAtt = new Uint8Array(16).fill(0x18);
  await rejectsWith(assert, decryptAttachment(FK, otherAtt, blob, ctSha256), 'crypto_attachment');
  const v2 = new Uint8Array(blob);
  v2[4] = 2;
  await rejectsWith(assert, decryptAttachment(FK, ATT, v2, await sha256(v2)), 'crypto_attachment');
  // swapped: a different, valid blob of the same att_id and key, but the descriptor's hash is of the first
  const other = await encryptAttachment(pattern(100, 7), FIXED);
  await rejectsWith(assert, decryptAttachment(FK, ATT, other.blob, ctSha256), 'crypto_attachment');
  // wrong size vs descriptor
  await rejectsWith(assert, decryptAttachment(FK, ATT, blob, ctSha256, pt.length - 1), 'crypto_attachment');
  // wrong file key
  await rejectsWith(assert, decryptAttachment(new Uint8Array(32), ATT, blob, ctSha256), 'crypto_attachment');
});

test('encryptor and decryptor objects in arbitrary piece sizes', async () => {
  const pt = pattern(3 * CHUNK + 17);
  const enc = await AttachmentEncryptor.create(FIXED);
  const parts = [];
  for (let o = 0; o < pt.length; o += 777) parts.push(await enc.push(pt.subarray(o, o + 777)));
  const fin = await enc.finish();
  parts.push(fin.bytes);
  const blob = concat(...parts);
  const dec = await AttachmentDecryptor.create(FK, ATT, fin.ctSha256, pt.length);
  const out = [];
  for (let o = 0; o < blob.length; o += 4099) out.push(await dec.push(blob.subarray(o, o + 4099)));
  out.push(await dec.finish());
  assert.deepEqual(concat(...out), pt);
});

test('property: random sizes around chunk boundaries round-trip; any single bit flip is rejected', async () => {
  const { deterministicRng } = await import('../rng.js');
  const rand = deterministicRng(Uint8Array.of(0xa7));
  const r16 = () => { const b = rand(2); return (b[0] << 8) | b[1]; };
  for (let n = 0; n < 12; n++) {
    const boundary = CHUNK * (r16() % 3);
    const size = Math.max(0, boundary + (r16() % 64) - 32);
    const pt = rand(size);
    const { attId: att, fk, blob, ctSha256 } = await encryptAttachment(pt, rand);
    assert.deepEqual(await decryptAttachment(fk, att, blob, ctSha256, size), pt, `size ${size}`);
    const bit = (((r16() << 16) | r16()) >>> 0) % (blob.length * 8);
    const bad = new Uint8Array(blob);
    bad[bit >> 3] ^= 1 << (bit & 7);
    // with the flipped blob's own hash: the format alone must catch it
    await rejectsWith(assert, decryptAttachment(fk, att, bad, await sha256(bad)), 'crypto_attachment');
  }
});
