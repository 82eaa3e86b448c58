// Known answers for the WebCrypto wrappers and negative cases (lengths, low order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, ctEqual, fromHex, toHex, u64, readUint } from '../bytes.js';
import * as p from '../primitives.js';
import { rejectsWith } from './helpers.mjs';

test('RFC 5869 A.1 HKDF-SHA256', async () => {
  const ikm = fromHex('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b');
  const salt = fromHex('000102030405060708090a0b0c');
  const info = fromHex('f0f1f2f3f4f5f6f7f8f9');
  assert.equal(toHex(await p.hkdfExtract(salt, ikm)), '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5');
  assert.equal(
    toHex(await p.hkdf(ikm, salt, info, 42)),
    '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  );
});

test('RFC 5869 A.3 empty salt is 32 zero bytes', async () => {
  const ikm = fromHex('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b');
  assert.equal(
    toHex(await p.hkdf(ikm, new Uint8Array(0), new Uint8Array(0), 42)),
    '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  );
});

test('RFC 7748 5.2 X25519 and 6.1 Diffie-Hellman', async () => {
  const a = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const b = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  assert.equal(toHex(await p.x25519Public(a)), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  const bp = await p.x25519Public(b);
  assert.equal(toHex(bp), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  assert.equal(toHex(await p.x25519(a, bp)), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
});

test('X25519 low-order points are rejected', async () => {
  const sk = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const lowOrder = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ];
  for (const h of lowOrder) await rejectsWith(assert, p.x25519(sk, fromHex(h)), 'crypto_low_order');
});

test('wrong lengths are rejected before use', async () => {
  await rejectsWith(assert, p.x25519(new Uint8Array(31), new Uint8Array(32)), 'crypto_encoding');
  await rejectsWith(assert, p.x25519(new Uint8Array(32), new Uint8Array(33)), 'crypto_encoding');
  await rejectsWith(assert, p.ed25519Sign(new Uint8Array(31), new Uint8Array(0)), 'crypto_encoding');
  await rejectsWith(assert, p.aesGcmEncrypt(new Uint8Array(16), new Uint8Array(12), new Uint8Array(0)), 'crypto_encoding');
  await rejectsWith(assert, p.aesGcmDecrypt(new Uint8Array(32), new Uint8Array(12), new Uint8Array(15)), 'crypto_encoding');
  await rejectsWith(assert, p.aesGcmDecrypt(new Uint8Array(32), new Uint8Array(11), new Uint8Array(16)), 'crypto_encoding');
  assert.equal(await p.ed25519Verify(new Uint8Array(31), new Uint8Array(0), new Uint8Array(64)), false);
  assert.equal(await p.ed25519Verify(new Uint8Array(32), new Uint8Array(0), new Uint8Array(63)), false);
});

test('RFC 8032 7.1 Ed25519 TEST 1 and TEST 3', async () => {
  const cases = [
    ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
     'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '',
     'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
    ['c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
     'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', 'af82',
     '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a'],
  ];
  for (const [sk, pk, msg, sig] of cases) {
    assert.equal(toHex(await p.ed25519Public(fromHex(sk))), pk);
    assert.equal(toHex(await p.ed25519Sign(fromHex(sk), fromHex(msg))), sig);
    assert.equal(await p.ed25519Verify(fromHex(pk), fromHex(msg), fromHex(sig)), true);
    const bad = fromHex(sig);
    bad[0] ^= 1;
    assert.equal(await p.ed25519Verify(fromHex(pk), fromHex(msg), bad), false);
  }
});

test('AES-256-GCM round trip; any bit flip of ct or aad fails', async () => {
  const key = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(12).fill(1);
  const aad = Uint8Array.of(1, 2, 3);
  const ct = await p.aesGcmEncrypt(key, nonce, Uint8Array.of(9, 9, 9), aad);
  assert.deepEqual(await p.aesGcmDecrypt(key, nonce, ct, aad), Uint8Array.of(9, 9, 9));
  for (let i = 0; i < ct.length * 8; i += 5) {
    const c = new Uint8Array(ct);
    c[i >> 3] ^= 1 << (i & 7);
    await rejectsWith(assert, p.aesGcmDecrypt(key, nonce, c, aad), 'crypto_decrypt');
  }
  await rejectsWith(assert, p.aesGcmDecrypt(key, nonce, ct, Uint8Array.of(1, 2, 4)), 'crypto_decrypt');
});

test('ctEqual and integer helpers', () => {
  assert.equal(ctEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  assert.equal(ctEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
  assert.equal(ctEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)), false);
  assert.equal(ctEqual(new Uint8Array(0), new Uint8Array(0)), true);
  assert.equal(toHex(u64(2 ** 40 + 5)), '0000010000000005');
  assert.equal(readUint(u64(123n), 8), 123n);
  assert.equal(toHex(concat(Uint8Array.of(1), Uint8Array.of(), Uint8Array.of(2))), '0102');
  assert.throws(() => fromHex('0g'));
});

test('fromHex is strict: lowercase pairs only', () => {
  assert.deepEqual(fromHex('00ff10'), Uint8Array.of(0, 255, 16));
  for (const bad of ['00FF', '0', 'zz', '00 ff', '0x00', ' 00']) assert.throws(() => fromHex(bad), TypeError, bad);
});
