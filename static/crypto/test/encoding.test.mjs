// Canonical encoding: round trips and every non-canonical form rejected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, fromHex, toHex, u16 } from '../bytes.js';
import { decode, encode, rawRecord, schema } from '../encoding.js';
import { D } from '../kdf.js';
import { deterministicRng } from '../rng.js';
import { rejectsWith } from './helpers.mjs';

const S = schema('TST1', [
  ['a', 'u8'],
  ['b', 'u32'],
  ['c', 'u64'],
  ['d', 'bool'],
  ['e', 'id'],
  ['f', 'text'],
  ['g', 'b16'],
  ['h', 'opt-b16'],
  ['i', { list: 'id', sorted: true }],
  ['j', { type: 'bytes', long: true }],
  ['k', { type: 'u8', enum: [1, 2] }],
  ['l', { type: 'u32', mask: 3 }],
  ['m', 'ascii'],
]);

const sample = () => ({
  a: 7, b: 0xdeadbeef, c: 2 ** 53 - 1, d: true, e: 'matter-é', f: '', g: new Uint8Array(16).fill(9), h: null,
  i: ['b', 'a', 'ab'], j: new Uint8Array(70000).fill(1), k: 2, l: 3, m: 'rtp1/body',
});

test('D() matches the example of docs/security.md §3', () => {
  assert.equal(
    toHex(D('rtp1/msg', 'f1', 'M1', Uint8Array.of(0, 0, 0, 7))),
    '525444310008727470312f6d73670002663100024d31000400000007',
  );
});

test('encode/decode round trip; sorted lists are sorted; raw kept', () => {
  const b = encode(S, sample());
  const d = decode(S, b);
  assert.deepEqual(d.i, ['a', 'ab', 'b']);
  assert.equal(d.c, 2 ** 53 - 1);
  assert.equal(d.h, null);
  assert.equal(d.e, 'matter-é');
  assert.deepEqual(d.raw, b);
  assert.deepEqual(encode(S, d), b);
});

test('random round trips (property style, seeded)', () => {
  const rand = deterministicRng(fromHex('01'));
  for (let n = 0; n < 200; n++) {
    const r = rand(8);
    const v = {
      ...sample(),
      a: r[0], b: (r[1] << 16) | r[2], d: (r[3] & 1) === 1, g: rand(16), h: r[4] & 1 ? rand(16) : null,
      j: rand(r[5]), i: Array.from({ length: r[6] % 5 }, (_, k) => `id-${k}-${r[7]}`), f: 'x'.repeat(r[7]),
    };
    const b = encode(S, v);
    assert.deepEqual(encode(S, decode(S, b)), b);
  }
});

test('non-canonical encodings are rejected', async () => {
  const good = encode(S, sample());
  const bad = [];
  bad.push(concat(Uint8Array.from([0x54, 0x53, 0x54, 0x32]), good.subarray(4))); // wrong tag
  bad.push(concat(good, Uint8Array.of(0))); // trailing byte
  bad.push(good.subarray(0, good.length - 1)); // truncated
  const fields = (over) => encode(S, { ...sample(), ...over });
  // swap field a (u8) for a 2-byte value: rebuild by hand
  const a2 = concat(Uint8Array.from([0x54, 0x53, 0x54, 0x31]), u16(2), Uint8Array.of(0, 7), good.subarray(4 + 3));
  bad.push(a2);
  for (const b of bad) await rejectsWith(assert, async () => decode(S, b), 'crypto_encoding');
  // bool 02, unknown enum, unknown flag bit, invalid UTF-8, unsorted / duplicate list, opt-b16 of 3 bytes
  const T = schema('TST2', [['x', 'bytes']]);
  const mk = (tag, ...vals) => rawRecord(tag, vals);
  const B = schema('TSTB', [['v', 'bool']]);
  await rejectsWith(assert, async () => decode(B, mk('TSTB', Uint8Array.of(2))), 'crypto_encoding');
  const E = schema('TSTE', [['v', { type: 'u8', enum: [1, 2] }]]);
  await rejectsWith(assert, async () => decode(E, mk('TSTE', Uint8Array.of(3))), 'crypto_encoding');
  const F = schema('TSTF', [['v', { type: 'u32', mask: 3 }]]);
  await rejectsWith(assert, async () => decode(F, mk('TSTF', Uint8Array.of(0, 0, 0, 4))), 'crypto_encoding');
  const U = schema('TSTU', [['v', 'id']]);
  await rejectsWith(assert, async () => decode(U, mk('TSTU', Uint8Array.of(0xc3, 0x28))), 'crypto_encoding');
  await rejectsWith(assert, async () => decode(U, mk('TSTU', new Uint8Array(0))), 'crypto_encoding');
  const L = schema('TSTL', [['v', { list: 'id', sorted: true }]]);
  const item = (s) => concat(u16(s.length), new TextEncoder().encode(s));
  await rejectsWith(assert, async () => decode(L, mk('TSTL', concat(item('b'), item('a')))), 'crypto_encoding');
  await rejectsWith(assert, async () => decode(L, mk('TSTL', concat(item('a'), item('a')))), 'crypto_encoding');
  await rejectsWith(assert, async () => decode(L, mk('TSTL', Uint8Array.of(0, 5, 0x61))), 'crypto_encoding');
  const O = schema('TSTO', [['v', 'opt-b16']]);
  await rejectsWith(assert, async () => decode(O, mk('TSTO', new Uint8Array(3))), 'crypto_encoding');
  assert.deepEqual(decode(T, mk('TST2', Uint8Array.of(1))).x, Uint8Array.of(1));
  void fields;
});

test('encoder refuses out-of-range values', async () => {
  await rejectsWith(assert, async () => encode(S, { ...sample(), a: 256 }), 'crypto_encoding');
  await rejectsWith(assert, async () => encode(S, { ...sample(), e: '' }), 'crypto_encoding');
  await rejectsWith(assert, async () => encode(S, { ...sample(), e: 'x'.repeat(256) }), 'crypto_encoding');
  await rejectsWith(assert, async () => encode(S, { ...sample(), i: ['a', 'a'] }), 'crypto_encoding');
  await rejectsWith(assert, async () => encode(S, { ...sample(), m: 'has space' }), 'crypto_encoding');
  await rejectsWith(assert, async () => encode(S, { ...sample(), f: 'x'.repeat(65536) }), 'crypto_encoding');
  await rejectsWith(assert, async () => encode(S, { ...sample(), l: 4 }), 'crypto_encoding');
});
