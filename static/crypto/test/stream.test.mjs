// The STREAM core: round trips around chunk boundaries, streaming through
// TransformStreams, and rejection of truncation, reordering, extension.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat } from '../bytes.js';
import { CHUNK, CT_CHUNK, ChunkOpener, ChunkSealer, chunkNonce, sealedLength } from '../stream.js';
import { rejectsWith } from './helpers.mjs';

const KEY = new Uint8Array(32).fill(3);
const AAD = Uint8Array.of(0x52, 0x54, 0x41, 0x31);

function pattern(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

async function seal(pt, pieces = 1) {
  const s = new ChunkSealer(KEY, AAD);
  const parts = [];
  const step = Math.max(1, Math.ceil(pt.length / pieces));
  for (let o = 0; o < pt.length; o += step) parts.push(await s.push(pt.subarray(o, o + step)));
  parts.push(await s.finish());
  return concat(...parts);
}

async function open(ct, pieces = 1) {
  const o = new ChunkOpener(KEY, AAD);
  const parts = [];
  const step = Math.max(1, Math.ceil(ct.length / pieces));
  for (let i = 0; i < ct.length; i += step) parts.push(await o.push(ct.subarray(i, i + step)));
  parts.push(await o.finish());
  return concat(...parts);
}

test('nonce layout: 11-byte big-endian counter and a flag byte', () => {
  assert.deepEqual(chunkNonce(0, false), new Uint8Array(12));
  assert.deepEqual(chunkNonce(258, true), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1));
});

test('round trip at chunk boundaries, in one or many pieces', async () => {
  for (const n of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 5]) {
    const pt = pattern(n);
    for (const pieces of [1, 3, 7]) {
      const ct = await seal(pt, pieces);
      assert.equal(ct.length, sealedLength(n), `length for ${n}`);
      assert.deepEqual(await open(ct, pieces), pt, `round trip ${n}/${pieces}`);
    }
  }
});

test('truncation, reordering, extension and trailing bytes are rejected', async () => {
  const pt = pattern(2 * CHUNK + 10);
  const ct = await seal(pt);
  const c0 = ct.subarray(0, CT_CHUNK);
  const c1 = ct.subarray(CT_CHUNK, 2 * CT_CHUNK);
  const c2 = ct.subarray(2 * CT_CHUNK);
  await rejectsWith(assert, open(concat(c0, c1)), 'crypto_attachment'); // last chunk dropped: c1 is not flagged last
  await rejectsWith(assert, open(concat(c1, c0, c2)), 'crypto_attachment'); // reordered
  await rejectsWith(assert, open(concat(c0, c1, c2, c2)), 'crypto_attachment'); // extended
  await rejectsWith(assert, open(concat(ct, Uint8Array.of(0))), 'crypto_attachment'); // trailing byte
  await rejectsWith(assert, open(ct.subarray(0, ct.length - 1)), 'crypto_attachment'); // cut inside the tag
  await rejectsWith(assert, open(new Uint8Array(0)), 'crypto_attachment');
  await rejectsWith(assert, open(ct.subarray(0, 10)), 'crypto_attachment');
  const other = new ChunkOpener(KEY, Uint8Array.of(1));
  await rejectsWith(assert, (async () => { await other.push(ct); await other.finish(); })(), 'crypto_attachment');
});

test('an empty last chunk after full chunks is rejected (never produced by the sealer)', async () => {
  const s = new ChunkSealer(KEY, AAD);
  // forge: full chunk flagged not-last, then an empty last chunk
  const { aesGcmEncrypt } = await import('../primitives.js');
  const c0 = await aesGcmEncrypt(KEY, chunkNonce(0, false), pattern(CHUNK), AAD);
  const c1 = await aesGcmEncrypt(KEY, chunkNonce(1, true), new Uint8Array(0), AAD);
  void s;
  await rejectsWith(assert, open(concat(c0, c1)), 'crypto_attachment');
});
