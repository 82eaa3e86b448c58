// Known answers from the standards' own tables, shared with the Python tests
// through tests/vectors/standards.json: RFC 5869, RFC 7748 (incl. iterated
// and low-order points), RFC 8032 §7.1, RFC 9180, Argon2id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from '../bytes.js';
import { argon2idRaw } from '../argon2.js';
import * as hpke from '../hpke.js';
import * as p from '../primitives.js';
import { checkX25519Public } from '../keys.js';
import { readJson, rejectsWith } from './helpers.mjs';

const S = readJson('tests/vectors/standards.json');

test('standards.json has every table', () => {
  for (const k of ['hkdf', 'x25519', 'x25519_iterated', 'x25519_low_order', 'ed25519', 'argon2id', 'hpke']) {
    assert.ok(Array.isArray(S[k]) && S[k].length > 0, `missing ${k}`);
  }
});

test('RFC 5869 HKDF-SHA256', async () => {
  for (const v of S.hkdf) {
    assert.equal(toHex(await p.hkdfExtract(fromHex(v.salt), fromHex(v.ikm))), v.prk);
    assert.equal(toHex(await p.hkdf(fromHex(v.ikm), fromHex(v.salt), fromHex(v.info), v.L)), v.okm);
  }
});

test('RFC 7748 X25519, iterated, and low-order points rejected', async () => {
  for (const v of S.x25519) assert.equal(toHex(await p.x25519(fromHex(v.scalar), fromHex(v.u))), v.out);
  const nine = new Uint8Array(32);
  nine[0] = 9;
  let k = nine;
  let u = nine;
  let done = 0;
  for (const v of [...S.x25519_iterated].sort((a, b) => a.iterations - b.iterations)) {
    for (; done < v.iterations; done++) [k, u] = [await p.x25519(k, u), k];
    assert.equal(toHex(k), v.out, `after ${v.iterations} iterations`);
  }
  const sk = fromHex(S.x25519[0].scalar);
  for (const lo of S.x25519_low_order) {
    await rejectsWith(assert, p.x25519(sk, fromHex(lo)), 'crypto_low_order');
    await rejectsWith(assert, checkX25519Public(fromHex(lo)), 'crypto_low_order');
  }
});

test('RFC 8032 7.1 Ed25519', async () => {
  for (const v of S.ed25519) {
    assert.equal(toHex(await p.ed25519Public(fromHex(v.sk))), v.pk);
    assert.equal(toHex(await p.ed25519Sign(fromHex(v.sk), fromHex(v.msg))), v.sig);
    assert.equal(await p.ed25519Verify(fromHex(v.pk), fromHex(v.msg), fromHex(v.sig)), true);
  }
});

test('RFC 9180 HPKE base mode, DHKEM(X25519)/HKDF-SHA256/AES-256-GCM', async () => {
  for (const v of S.hpke) {
    if (v.ikmE) assert.equal(toHex((await hpke.deriveKeyPair(fromHex(v.ikmE))).sk), v.skEm);
    if (v.ikmR) assert.equal(toHex((await hpke.deriveKeyPair(fromHex(v.ikmR))).pk), v.pkRm);
    const { sharedSecret, enc } = await hpke.encap(fromHex(v.pkRm), fromHex(v.skEm));
    assert.equal(toHex(enc), v.enc);
    assert.equal(toHex(sharedSecret), v.shared_secret);
    assert.equal(toHex(await hpke.decap(fromHex(v.enc), fromHex(v.skRm))), v.shared_secret);
    const ks = await hpke.keySchedule(sharedSecret, fromHex(v.info));
    assert.equal(toHex(ks.key), v.key);
    assert.equal(toHex(ks.baseNonce), v.base_nonce);
    // the first encryption uses sequence number 0: single-shot seal/open
    const e0 = v.encryptions[0];
    assert.equal(e0.nonce, v.base_nonce);
    const s = await hpke.seal(fromHex(v.pkRm), fromHex(v.info), fromHex(e0.pt), fromHex(e0.aad), { skE: fromHex(v.skEm) });
    assert.equal(toHex(s.ct), e0.ct);
    assert.equal(toHex(await hpke.open(fromHex(v.skRm), fromHex(v.enc), fromHex(v.info), fromHex(e0.ct), fromHex(e0.aad))), e0.pt);
    // later encryptions: the same AEAD key with nonce = base_nonce XOR seq
    for (const e of v.encryptions.slice(1)) {
      assert.equal(toHex(await p.aesGcmEncrypt(ks.key, fromHex(e.nonce), fromHex(e.pt), fromHex(e.aad))), e.ct);
    }
    const bad = fromHex(e0.ct);
    bad[0] ^= 1;
    await rejectsWith(assert, hpke.open(fromHex(v.skRm), fromHex(v.enc), fromHex(v.info), bad, fromHex(e0.aad)), 'crypto_decrypt');
  }
});

test('Argon2id (v 0x13) vectors through the vendored library', async () => {
  let checked = 0;
  for (const v of S.argon2id) {
    if (v.password === '') {
      // hash-wasm refuses an empty password (rtp1 never derives from one: backup.js refuses it too)
      await assert.rejects(argon2idRaw({ password: new Uint8Array(0), salt: fromHex(v.salt), memoryKiB: v.m_kib,
        iterations: v.t, parallelism: v.p, length: v.length }));
      continue;
    }
    checked++;
    const out = await argon2idRaw({
      password: fromHex(v.password), salt: fromHex(v.salt), memoryKiB: v.m_kib, iterations: v.t, parallelism: v.p, length: v.length,
    });
    assert.equal(toHex(out), v.out, `m=${v.m_kib} t=${v.t} p=${v.p}`);
  }
  assert.ok(checked >= 3, 'at least three Argon2id vectors checked');
});
