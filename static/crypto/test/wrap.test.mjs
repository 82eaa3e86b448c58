// Key wraps: round trips for MEK and firm keys, and every wrong-context,
// uncertified, tampered and commitment case rejected before use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat } from '../bytes.js';
import { epochCommit } from '../kdf.js';
import { FEK_RECIPIENT, FIRM_MATTER, KIND, unwrapKey, wrapKey } from '../wrap.js';
import { FIRM, MATTER, NOW, makeWorld } from './world.mjs';
import { rejectsWith } from './helpers.mjs';

const w = await makeWorld('wraps');
const mek = w.rand(32);
const commit = await epochCommit(mek, FIRM, MATTER, 3);
const c1 = w.users['client-1'];
const ctxFor = (u, over = {}) => ({
  firm: FIRM, matter: MATTER, epoch: 3, kind: KIND.MEK, recipient: u.id, recipientKid: u.kid, recipientXPk: u.xPk, ...over,
});

test('MEK to a client and to the FEK; firm keys to staff', async () => {
  const a = await wrapKey(ctxFor(c1), mek, w.users['staff-1'].signer);
  assert.equal(a.ct.length, 48);
  assert.deepEqual(await unwrapKey(a.wrap, ctxFor(c1), c1, w.trust, NOW, commit), mek);
  const fekCtx = ctxFor(c1, { recipient: FEK_RECIPIENT, recipientKid: w.fek.kid, recipientXPk: w.fek.xPk });
  const b = await wrapKey(fekCtx, mek, w.users['custodian'].signer);
  assert.deepEqual(await unwrapKey(b.wrap, fekCtx, w.fek, w.trust, NOW, commit), mek);
  const s2 = w.users['staff-2'];
  const firmCtx = ctxFor(s2, { matter: FIRM_MATTER, epoch: 1, kind: KIND.FIRM });
  const firmKeys = concat(w.fek.xSk, w.fek.fir);
  const c = await wrapKey(firmCtx, firmKeys, w.users['staff-1'].signer);
  assert.equal(c.ct.length, 80);
  const got = await unwrapKey(c.wrap, firmCtx, s2, w.trust, NOW);
  assert.deepEqual(got, firmKeys);
  const { fekFromWrapped } = await import('../keys.js');
  const fek = await fekFromWrapped(FIRM, 1, got);
  assert.deepEqual(fek.kid, w.fek.kid);
  assert.deepEqual(fek.fir, w.fek.fir);
});

test('a wrap for another matter, epoch, kind or recipient is rejected', async () => {
  const a = await wrapKey(ctxFor(c1), mek, w.users['staff-1'].signer);
  for (const over of [{ matter: 'M-0002' }, { epoch: 4 }, { epoch: 2 }, { firm: 'firm-2' }, { recipient: 'client-2' }]) {
    await rejectsWith(assert, unwrapKey(a.wrap, ctxFor(c1, over), c1, w.trust, NOW, commit), 'crypto_wrong_context');
  }
  const c2 = w.users['client-2'];
  await rejectsWith(assert, unwrapKey(a.wrap, ctxFor(c2), c2, w.trust, NOW, commit), 'crypto_wrong_context');
  await rejectsWith(assert, unwrapKey(a.wrap, ctxFor(c1, { kind: KIND.FIRM }), c1, w.trust, NOW), 'crypto_wrong_context');
});

test('wrapped by a client, a non-custodian bot, or an unknown key: uncertified', async () => {
  for (const who of ['client-2', 'bot-1']) {
    const a = await wrapKey(ctxFor(c1), mek, w.users[who].signer);
    await rejectsWith(assert, unwrapKey(a.wrap, ctxFor(c1), c1, w.trust, NOW, commit), 'crypto_uncertified');
  }
  const forged = await wrapKey(ctxFor(c1), mek, { ...w.users['staff-1'].signer, edSk: new Uint8Array(32).fill(1) });
  await rejectsWith(assert, unwrapKey(forged.wrap, ctxFor(c1), c1, w.trust, NOW, commit), 'crypto_signature');
});

test('commitment mismatch, missing commitment, wrong lengths, low-order enc', async () => {
  const other = w.rand(32);
  const a = await wrapKey(ctxFor(c1), other, w.users['staff-1'].signer);
  await rejectsWith(assert, unwrapKey(a.wrap, ctxFor(c1), c1, w.trust, NOW, commit), 'crypto_commitment');
  await rejectsWith(assert, unwrapKey(a.wrap, ctxFor(c1), c1, w.trust, NOW, null), 'crypto_commitment');
  await rejectsWith(assert, wrapKey(ctxFor(c1), new Uint8Array(31), w.users['staff-1'].signer), 'crypto_encoding');
  // a wrap whose ephemeral key is a low-order point, correctly signed by a staff member
  const { encode } = await import('../encoding.js');
  const { WRAP, WRAP_SIG, wrapInfo } = await import('../wrap.js');
  const { ed25519Sign } = await import('../primitives.js');
  const fields = { info: wrapInfo(ctxFor(c1)), wrapper: 'staff-1', wrapper_kid: w.users['staff-1'].kid, enc: new Uint8Array(32), ct: new Uint8Array(48) };
  const sig = await ed25519Sign(w.users['staff-1'].edSk, encode(WRAP_SIG, fields));
  await rejectsWith(assert, unwrapKey(encode(WRAP, { ...fields, sig }), ctxFor(c1), c1, w.trust, NOW, commit), 'crypto_low_order');
  const short = encode(WRAP, { ...fields, ct: new Uint8Array(47), sig });
  await rejectsWith(assert, unwrapKey(short, ctxFor(c1), c1, w.trust, NOW, commit), 'crypto_encoding');
});

test('any single bit flip of a wrap is rejected', async () => {
  const a = (await wrapKey(ctxFor(c1), mek, w.users['staff-1'].signer)).wrap;
  for (let i = 0; i < a.length * 8; i += 5) {
    const t = new Uint8Array(a);
    t[i >> 3] ^= 1 << (i & 7);
    await assert.rejects(unwrapKey(t, ctxFor(c1), c1, w.trust, NOW, commit), (e) => e.name === 'CryptoInvalid', `bit ${i}`);
  }
});
