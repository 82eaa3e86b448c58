// Epoch manifests and the verifier state: chain, rollback, gap, members.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROLE } from '../certs.js';
import { epochCommit } from '../kdf.js';
import { ManifestVerifier, ZERO_HASH, createManifest } from '../manifest.js';
import { FIRM, MATTER, NOW, makeWorld } from './world.mjs';
import { rejectsWith } from './helpers.mjs';

const w = await makeWorld('manifests');
const member = (n) => ({ user: n, kid: w.users[n].kid, role: w.users[n].role });

async function mk(epoch, prevHash, members, creator = 'staff-1', over = {}) {
  const mek = w.rand(32);
  return createManifest(
    {
      firm: FIRM, matter: MATTER, epoch, prevHash, fekVersion: 1, members, shareHistory: false, tsMs: NOW + epoch,
      commit: await epochCommit(mek, FIRM, MATTER, epoch), ...over,
    },
    w.users[creator].signer,
  );
}

test('a chain of epochs is accepted; re-delivery is a no-op; state never moves back', async () => {
  const v = new ManifestVerifier(w.trust);
  const m1 = await mk(1, ZERO_HASH, [member('client-1'), member('client-2')]);
  const m2 = await mk(2, m1.hash, [member('client-1')], 'custodian');
  const m3 = await mk(3, m2.hash, [member('client-1'), member('bot-1')]);
  await v.accept(m1.manifest, FIRM, MATTER, NOW);
  await v.accept(m1.manifest, FIRM, MATTER, NOW);
  await v.accept(m2.manifest, FIRM, MATTER, NOW);
  assert.equal(v.isMember(FIRM, MATTER, 'client-2', w.users['client-2'].kid), false);
  assert.equal(v.isMemberAt(FIRM, MATTER, 1, 'client-2', w.users['client-2'].kid), true);
  await rejectsWith(assert, v.accept(m1.manifest, FIRM, MATTER, NOW), 'crypto_rollback');
  await v.accept(m3.manifest, FIRM, MATTER, NOW);
  assert.equal(v.state(FIRM, MATTER).epoch, 3);
  await rejectsWith(assert, v.accept(m2.manifest, FIRM, MATTER, NOW), 'crypto_rollback');
  // a different manifest for epoch 3 (fork) is a rollback too
  const fork = await mk(3, m2.hash, [member('client-1')]);
  await rejectsWith(assert, v.accept(fork.manifest, FIRM, MATTER, NOW), 'crypto_rollback');
  const gap = await mk(5, m3.hash, [member('client-1')]);
  await rejectsWith(assert, v.accept(gap.manifest, FIRM, MATTER, NOW), 'crypto_epoch_gap');
  const broken = await mk(4, m1.hash, [member('client-1')]);
  await rejectsWith(assert, v.accept(broken.manifest, FIRM, MATTER, NOW), 'crypto_chain');
  assert.equal(v.state(FIRM, MATTER).epoch, 3);
  await rejectsWith(assert, v.accept(m3.manifest, FIRM, 'M-0002', NOW), 'crypto_wrong_context');
});

test('uncertified, wrongly-roled or out-of-scope members and creators are rejected', async () => {
  const v = new ManifestVerifier(w.trust);
  const ghost = { user: 'ghost', kid: new Uint8Array(16).fill(1), role: ROLE.client };
  await rejectsWith(assert, v.accept((await mk(1, ZERO_HASH, [ghost])).manifest, FIRM, MATTER, NOW), 'crypto_uncertified');
  const substituted = { ...member('client-1'), kid: w.users['client-2'].kid };
  await rejectsWith(assert, v.accept((await mk(1, ZERO_HASH, [substituted])).manifest, FIRM, MATTER, NOW), 'crypto_uncertified');
  const wrongRole = { ...member('client-1'), role: ROLE.bot };
  await rejectsWith(assert, v.accept((await mk(1, ZERO_HASH, [wrongRole])).manifest, FIRM, MATTER, NOW), 'crypto_uncertified');
  const outOfScope = await createManifest(
    { firm: FIRM, matter: 'M-0002', epoch: 1, prevHash: ZERO_HASH, fekVersion: 1, members: [member('bot-1')],
      shareHistory: false, tsMs: NOW, commit: new Uint8Array(32) },
    w.users['staff-1'].signer,
  );
  await rejectsWith(assert, v.accept(outOfScope.manifest, FIRM, 'M-0002', NOW), 'crypto_uncertified');
  for (const creator of ['client-1', 'bot-1']) {
    await rejectsWith(assert, v.accept((await mk(1, ZERO_HASH, [], creator)).manifest, FIRM, MATTER, NOW), 'crypto_uncertified');
  }
  await rejectsWith(assert, v.accept((await mk(2, ZERO_HASH, [])).manifest, FIRM, MATTER, NOW), 'crypto_chain');
  await rejectsWith(assert, v.accept((await mk(1, new Uint8Array(32).fill(1), [])).manifest, FIRM, MATTER, NOW), 'crypto_chain');
  await rejectsWith(assert, mk(1, ZERO_HASH, [{ ...member('staff-2') }]), 'crypto_encoding'); // staff are never members
  assert.equal(v.state(FIRM, MATTER), undefined);
});

test('pinning a later epoch (join without history), then chaining from it', async () => {
  const v = new ManifestVerifier(w.trust);
  const m1 = await mk(1, ZERO_HASH, []);
  const m2 = await mk(2, m1.hash, [member('client-1')]);
  v.pin(FIRM, MATTER, 1, m1.hash);
  await v.accept(m2.manifest, FIRM, MATTER, NOW);
  assert.equal(v.state(FIRM, MATTER).epoch, 2);
});

test('any single bit flip of a manifest is rejected', async () => {
  const m = (await mk(1, ZERO_HASH, [member('client-1')])).manifest;
  for (let i = 0; i < m.length * 8; i += 3) {
    const t = new Uint8Array(m);
    t[i >> 3] ^= 1 << (i & 7);
    const v = new ManifestVerifier(w.trust);
    await assert.rejects(v.accept(t, FIRM, MATTER, NOW), (e) => e.name === 'CryptoInvalid', `bit ${i}`);
  }
});

test('a custodian bot scoped to other matters may not sign this matter\'s manifest', async () => {
  const { FLAG, issueCert } = await import('../certs.js');
  const k = w.users['client-2']; // any key pair; certified here as a scoped custodian bot
  const scoped = await issueCert({ firm: FIRM, role: ROLE.bot, user: 'cust-2', xPk: k.xPk, edPk: k.edPk, serial: 50,
    issuedAtMs: NOW, flags: FLAG.CUSTODIAN, scopes: ['M-0002'] }, w.frkIssuer);
  await w.trust.addCert(scoped.cert, NOW);
  w.users['cust-2'] = { ...k, id: 'cust-2', signer: { id: 'cust-2', kid: k.kid, edSk: k.edSk } };
  const v = new ManifestVerifier(w.trust);
  await rejectsWith(assert, v.accept((await mk(1, ZERO_HASH, [], 'cust-2')).manifest, FIRM, MATTER, NOW), 'crypto_uncertified');
  const other = await createManifest({ firm: FIRM, matter: 'M-0002', epoch: 1, prevHash: ZERO_HASH, fekVersion: 1, members: [],
    shareHistory: false, tsMs: NOW, commit: new Uint8Array(32) }, w.users['cust-2'].signer);
  assert.equal((await v.accept(other.manifest, FIRM, 'M-0002', NOW)).epoch, 1);
  assert.equal(v.state(FIRM, MATTER), undefined);
});

test('pin option: a fully verified first manifest at a later epoch (as Python pin=True)', async () => {
  const m1 = await mk(1, ZERO_HASH, []);
  const m2 = await mk(2, m1.hash, [member('client-1')]);
  const m3 = await mk(3, m2.hash, [member('client-1')]);
  const plain = new ManifestVerifier(w.trust);
  await rejectsWith(assert, plain.accept(m2.manifest, FIRM, MATTER, NOW), 'crypto_chain');
  assert.equal(plain.state(FIRM, MATTER), undefined);
  const v = new ManifestVerifier(w.trust);
  await v.accept(m2.manifest, FIRM, MATTER, NOW, { pin: true });
  assert.equal(v.manifestAt(FIRM, MATTER, 2).epoch, 2);
  await rejectsWith(assert, v.accept(m1.manifest, FIRM, MATTER, NOW, { pin: true }), 'crypto_rollback');
  await v.accept(m3.manifest, FIRM, MATTER, NOW);
  assert.equal(v.state(FIRM, MATTER).epoch, 3);
  // still fully verified: an uncertified member is refused even when pinning
  const ghost = { user: 'ghost', kid: new Uint8Array(16).fill(1), role: ROLE.client };
  await rejectsWith(assert, new ManifestVerifier(w.trust).accept((await mk(4, m3.hash, [ghost])).manifest, FIRM, MATTER, NOW, { pin: true }), 'crypto_uncertified');
});

test('a pin()ned hash: its manifest delivered later is verified and remembered for reading', async () => {
  const m1 = await mk(1, ZERO_HASH, [member('client-1')]);
  const v = new ManifestVerifier(w.trust);
  v.pin(FIRM, MATTER, 1, m1.hash);
  assert.equal(v.manifestAt(FIRM, MATTER, 1), undefined);
  await v.accept(m1.manifest, FIRM, MATTER, NOW);
  assert.equal(v.isMemberAt(FIRM, MATTER, 1, 'client-1', w.users['client-1'].kid), true);
});
