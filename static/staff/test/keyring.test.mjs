// The browser keyring (static/shared/keyring.js, keysync.js) against a
// malicious-server double: `fetch` answers the key directory with records the
// staff flows (keyflows.js, epochflows.js) made, then with what a server that
// lies would serve. What must hold: the root is pinned only from my backup or
// at my first certified sync (and then sealed into my backup), a lower
// revocation list or escrow version is a rollback nothing is taken from, and
// a shorter or forked matter chain blocks writing until a good sync.
import assert from 'node:assert/strict';
import test from 'node:test';

import * as C from '../../crypto/index.js';
import * as K from '../keyflows.js';
import * as E from '../epochflows.js';
import { resealBackup } from '../../shared/keybackup.js';
import { Keyring, createIdentity } from '../../shared/keyring.js';

const { bytes, certs, keys, primitives, backup } = C;
const FIRM = 'demo';
const REF = 'AAAA0002';
const b64 = bytes.b64url;

let served = {};
globalThis.fetch = async (path) => {
  const body = served[path];
  return new Response(JSON.stringify(body ?? { error: { code: 'not_found' } }), { status: body ? 200 : 404 });
};

async function firmWorld() {
  const now = Date.now();
  const { seed, frk } = await K.newFirmRoot();
  const signer = { id: certs.FRK_ISSUER, kid: frk.kid, edSk: await primitives.ed25519PrivateKey(seed, false) };
  const uik = await keys.generateUik();
  const admin = { ...uik, id: 's1' };
  const out = await K.firmSetup({ firm: FIRM, frk: signer, me: admin, nowMs: now });
  const firm = (list = out.list, withCert = true) => ({
    frk: b64(frk.record),
    revocations: { list: b64(list), client: [] },
    escrow: [b64(out.escrow.record)],
    certs: withCert ? [b64(out.cert)] : [],
    wraps: out.escrow.wraps.map(b64),
  });
  return { now, frk, signer, admin, out, firm };
}

function keyringOf(w) {
  const state = { v: 1, frkFingerprint: null, pinSealed: false, keys: {}, revocationVersion: 0, escrowVersion: 0, matters: {} };
  return new Keyring({ firm: FIRM, user: 's1', identity: w.admin, state });
}

test('an unpinned staff device trusts no served root until its own certificate verifies; then the pin is sealed into the backup', async () => {
  const w = await firmWorld();
  const kr = keyringOf(w);
  const sealed = [];
  kr.pinSealer = async (fp) => sealed.push(fp);
  served = { '/api/v1/keys/firm': w.firm(w.out.list, false) };
  assert.deepEqual(await kr.syncFirm(), { ready: false });
  assert.equal(kr.frkFingerprint, null);
  assert.equal(kr.trust, null);
  assert.ok(kr.problems.some((p) => p.what === 'unpinned'));

  served = { '/api/v1/keys/firm': w.firm() };
  assert.deepEqual(await kr.syncFirm(), { ready: true });
  assert.ok(bytes.bytesEqual(kr.frkFingerprint, w.frk.fingerprint));
  assert.equal(sealed.length, 1);
  assert.ok(bytes.bytesEqual(sealed[0], w.frk.fingerprint));
  assert.equal(kr.state.pinSealed, true);

  // from now on another root is refused, even one that certifies me
  const other = await firmWorld();
  served = { '/api/v1/keys/firm': other.firm() };
  await assert.rejects(kr.syncFirm(), (err) => err.code === 'crypto_wrong_context');
});

test('the re-sealed backup opens with the same password and carries the pin', async () => {
  const pending = await createIdentity({ firm: FIRM, user: 's1' });
  const kdf = { salt: b64(bytes.randomBytes(16)), m_kib: backup.MIN_PARAMS.mKib, t: backup.MIN_PARAMS.t, p: 1 };
  const made = await pending.createBackup('a long enough password', kdf);
  const before = await backup.openBackup(made.backup, 'a long enough password', { firm: FIRM, user: 's1' });
  assert.ok(before.frkFingerprint.every((b) => b === 0)); // made before the firm had a root
  const fp = bytes.randomBytes(32);
  const again = await resealBackup({ firm: FIRM, user: 's1', backupBytes: made.backup, kek: made.kek, frkFingerprint: fp });
  const after = await backup.openBackup(again, 'a long enough password', { firm: FIRM, user: 's1' });
  assert.ok(bytes.bytesEqual(after.frkFingerprint, fp));
  assert.ok(bytes.bytesEqual(after.xSk, before.xSk));
  await assert.rejects(resealBackup({ firm: FIRM, user: 's2', backupBytes: made.backup, kek: made.kek, frkFingerprint: fp }));
});

test('a revocation list older than the one this browser saw is a rollback: nothing of that answer is used', async () => {
  const w = await firmWorld();
  const kr = keyringOf(w);
  served = { '/api/v1/keys/firm': w.firm() };
  await kr.syncFirm();
  const v2 = await K.resignedList(FIRM, w.signer, K.listFacts(w.out.list), Date.now());
  served = { '/api/v1/keys/firm': w.firm(v2) };
  await kr.syncFirm();
  assert.equal(kr.state.revocationVersion, 2);
  assert.equal(kr.state.escrowVersion, 1);
  const good = kr.trust;
  served = { '/api/v1/keys/firm': w.firm(w.out.list) };
  assert.deepEqual(await kr.syncFirm(), { ready: false });
  assert.ok(kr.problems.some((p) => p.what === 'revocations' && p.code === 'crypto_rollback'));
  assert.equal(kr.trust, good); // the previous verified state stays; the served one is dropped
  assert.equal(kr.trust.revocationList.version, 2);
  // an escrow version that went back (the server hides a rotation) is the same
  kr.state.escrowVersion = 2;
  served = { '/api/v1/keys/firm': w.firm(v2) };
  assert.deepEqual(await kr.syncFirm(), { ready: false });
  assert.ok(kr.problems.some((p) => p.what === 'escrow' && p.code === 'crypto_rollback'));
});

test('a newer revocation list another tab saw, taken in while a firm sync verifies a served older one, is still a rollback', async () => {
  const w = await firmWorld();
  const kr = keyringOf(w);
  served = { '/api/v1/keys/firm': w.firm() };
  await kr.syncFirm();
  assert.equal(kr.state.revocationVersion, 1);
  // a save of this tab (trustmerge.js) lands while the served list verifies: another tab saw version 2
  const verify = certs.TrustStore.prototype.setRevocationList;
  certs.TrustStore.prototype.setRevocationList = async function (...args) {
    const list = await verify.apply(this, args);
    kr.state.revocationVersion = 2;
    return list;
  };
  try {
    assert.deepEqual(await kr.syncFirm(), { ready: false });
  } finally {
    certs.TrustStore.prototype.setRevocationList = verify;
  }
  assert.equal(kr.state.revocationVersion, 2);
  assert.ok(kr.problems.some((p) => p.what === 'revocations' && p.code === 'crypto_rollback'));
});

test('a shorter or forked chain than this device remembered blocks writing until a good sync', async () => {
  const w = await firmWorld();
  const kr = keyringOf(w);
  served = { '/api/v1/keys/firm': w.firm() };
  await kr.syncFirm();
  const fek = { ...w.out.fek, version: 1 };
  const base = { firm: FIRM, matter: REF, me: w.admin, fek, members: [], shareHistory: true, nowMs: Date.now() };
  const e1 = await E.nextEpoch({ ...base, prev: null });
  const e2 = await E.nextEpoch({ ...base, prev: { epoch: 1, hash: e1.hash } });
  const fork = await E.nextEpoch({ ...base, prev: { epoch: 1, hash: e1.hash }, shareHistory: false });
  const matter = (eps) => ({
    certs: [],
    revocations: [],
    manifests: eps.map((e) => b64(e.manifest)),
    head: b64(eps[eps.length - 1].head),
    wraps: eps.flatMap((e) => e.wraps.map(b64)),
  });
  const path = `/api/v1/keys/matters/${REF}`;
  served = { '/api/v1/keys/firm': w.firm(), [path]: matter([e1, e2]) };
  assert.equal((await kr.syncMatter(REF)).epoch, 2);
  assert.ok((await kr.seal(REF, 't1', { text: 'hello' })).length > 0);
  // the same chain again in the same page (a keys event, a staff flow's re-sync) stays writable
  assert.deepEqual((await kr.syncMatter(REF)).problems, []);
  assert.equal(kr.writeBlock(REF), null);
  assert.ok((await kr.seal(REF, 't1', { text: 'hello' })).length > 0);
  // a fork of a verified epoch served in the same page is refused too
  served[path] = matter([e1, fork]);
  await kr.syncMatter(REF);
  assert.equal(kr.writeBlock(REF), 'crypto_chain');

  for (const [eps, code] of [[[e1], 'crypto_rollback'], [[e1, fork], 'crypto_chain']]) {
    await kr.syncFirm(); // a later visit: the chain is verified again from its first epoch
    served[path] = matter(eps);
    await kr.syncMatter(REF);
    assert.equal(kr.writeBlock(REF), code);
    assert.ok(kr.problems.some((p) => p.scope === REF && p.code === code));
    await assert.rejects(kr.seal(REF, 't1', { text: 'under the old epoch' }), (err) => err.code === code);
  }

  await kr.syncFirm();
  served[path] = matter([e1, e2]);
  await kr.syncMatter(REF);
  assert.equal(kr.writeBlock(REF), null);
  assert.ok((await kr.seal(REF, 't1', { text: 'hello again' })).length > 0);
});

test('invite links are built on this page origin, never on a server url', () => {
  assert.equal(E.portalPage('demo', 'https://portal.example'), 'https://portal.example/?firm=demo');
  assert.equal(E.portalPage('a b', 'https://p.example'), 'https://p.example/?firm=a%20b');
});

test('my certificate stops counting once the revocation list names my key: certified() is null again', async () => {
  const w = await firmWorld();
  const kr = keyringOf(w);
  served = { '/api/v1/keys/firm': w.firm() };
  await kr.syncFirm();
  assert.ok(kr.certified());
  assert.ok(bytes.bytesEqual(kr.certified().kid, w.admin.kid));
  const facts = K.listFacts(w.out.list);
  const left = { user: 's1', kid: w.admin.kid, revokedAtMs: Date.now() - 1000, reason: 1 };
  const v2 = await K.resignedList(FIRM, w.signer, { ...facts, entries: [...facts.entries, left] }, Date.now());
  served = { '/api/v1/keys/firm': w.firm(v2) };
  await kr.syncFirm();
  assert.equal(kr.certified(), null);
  // a list that does not name it (another key of mine, long gone) leaves it certified
  const kr2 = keyringOf(w);
  const other = { ...left, kid: bytes.randomBytes(w.admin.kid.length) };
  const v2b = await K.resignedList(FIRM, w.signer, { ...facts, entries: [...facts.entries, other] }, Date.now());
  served = { '/api/v1/keys/firm': w.firm(v2b) };
  await kr2.syncFirm();
  assert.ok(kr2.certified());
});

test("a client's handover: the old key's revocation leaves the new key certified; a revocation of the key in use, once its certificate is known, does not", async () => {
  const w = await firmWorld();
  const fek = { ...w.out.fek, version: 1 };
  const [invite, fresh] = [await keys.generateUik(), await keys.generateUik()];
  const t0 = Date.now() - 60_000;
  const member = (k) => ({ user: 'c5', kid: k.kid, role: certs.ROLE.client, xPk: k.xPk });
  const certI = await E.clientCert(FIRM, REF, w.admin, 'c5', invite, t0);
  const e1 = await E.nextEpoch({ firm: FIRM, matter: REF, me: w.admin, fek, prev: null, members: [member(invite)], shareHistory: true, nowMs: t0 });
  const swap = await E.replaceClientKey({ firm: FIRM, matter: REF, me: w.admin, fek, prev: { epoch: 1, hash: e1.hash },
    members: [member(invite)], shareHistory: true, old: { user: 'c5', kid: invite.kid, serial: t0 }, key: fresh,
    history: [{ epoch: 1, mek: e1.mek }], nowMs: t0 + 1000 });
  const state = { v: 1, frkFingerprint: w.frk.fingerprint, pinSealed: true, keys: {}, revocationVersion: 0, escrowVersion: 0, matters: {} };
  const kr = new Keyring({ firm: FIRM, user: 'c5', identity: invite, next: fresh, state });
  const path = `/api/v1/keys/matters/${REF}`;
  const matter = (certList, revocations, eps) => ({
    certs: certList.map(b64),
    revocations: revocations.map(b64),
    manifests: eps.map((e) => b64(e.manifest)),
    head: b64(eps[eps.length - 1].head),
    wraps: eps.flatMap((e) => e.wraps.map(b64)),
  });
  served = { '/api/v1/keys/firm': w.firm(), [path]: matter([certI], [], [e1]) };
  await kr.syncFirm();
  await kr.syncMatter(REF);
  assert.ok(bytes.bytesEqual(kr.certified().kid, invite.kid));

  // staff confirmed the handover: the fresh key certified, the invite key revoked (superseded)
  served[path] = matter([certI, swap.cert], [swap.revocation], [e1, swap.epoch]);
  for (let i = 0; i < 3; i++) await kr.syncMatter(REF); // keys events: each matter sync reads them again
  assert.ok(bytes.bytesEqual(kr.certified().kid, fresh.kid));
  assert.ok(bytes.bytesEqual(kr.identity.kid, fresh.kid));
  assert.equal(kr.revocations.length, 1); // the same revocation served again is held once
  await kr.syncFirm(); // a firm sync (client certificates unknown there) leaves it as it is
  assert.ok(bytes.bytesEqual(kr.certified().kid, fresh.kid));

  // a server that serves the revocation without the new certificate: not certified
  const kr2 = new Keyring({ firm: FIRM, user: 'c5', identity: invite, next: fresh, state: { ...state, keys: {}, matters: {} } });
  served = { '/api/v1/keys/firm': w.firm(), [path]: matter([certI], [], [e1]) };
  await kr2.syncMatter(REF);
  assert.ok(kr2.certified());
  served[path] = matter([certI], [swap.revocation], [e1]);
  await kr2.syncMatter(REF);
  assert.equal(kr2.certified(), null);
});
