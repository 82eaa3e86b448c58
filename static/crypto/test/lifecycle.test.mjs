// Key lifecycle rules of the verifier (docs/keys.md, issue 11 review findings
// 1-7), the same cases as tests/test_crypto_lifecycle.py: a withheld or stale
// revocation list, departed and compromised staff keys, a self-made escrow key,
// a removed client still writing, history after people leave, hidden epochs and
// forks, the invite handover, the custodian bot's rights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../bytes.js';
import { FLAG, REASON, ROLE, TrustStore, issueCert, issueRevocation, signRevocationList } from '../certs.js';
import { CTYPE, ReplayGuard, VIS, encodeBody, openMessage, sealEnvelope, sealMessage } from '../envelope.js';
import { epochCommit } from '../kdf.js';
import { fekFromSecret, identityFromInviteSecret, signEscrowRecord, uikFromSeeds } from '../keys.js';
import { HEAD_MAX_AGE_MS, ManifestVerifier, ZERO_HASH, createManifest, signHead } from '../manifest.js';
import { sasCode, signHandover, verifyHandover } from '../recovery.js';
import { FIRM_MATTER, KIND, unwrapKey, wrapKey } from '../wrap.js';
import { DAY, FIRM, MATTER, NOW, makeWorld, newTrust, revocationList } from './world.mjs';
import { rejectsWith } from './helpers.mjs';

const HOUR = 3_600_000;
const w = await makeWorld('lifecycle');
const U = w.users;
const member = (n) => ({ user: n, kid: U[n].kid, role: U[n].role });
let serial = 100;

/** A trust store with the world's certificates, the given list (default: empty v1). */
async function storeWith(list = w.revocations, extraCerts = []) {
  const t = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  // certificates first: storing needs no list, and one revoked later is stored all the same
  for (const c of [...Object.values(w.certs), ...extraCerts]) await t.addCert(c, NOW);
  await t.setRevocationList(list, NOW);
  for (const r of w.escrow) await t.addEscrowRecord(r);
  return t;
}

const listWith = (entries, version = 2) => revocationList(w.frk, { version, entries });
const entry = (n, reason, at) => ({ user: n, kid: U[n].kid, revokedAtMs: at, reason });

async function clientCert(name, key, issuerName, issuedAtMs = NOW - DAY) {
  return (await issueCert({ firm: FIRM, role: ROLE.client, user: name, xPk: key.xPk, edPk: key.edPk, serial: serial++,
    issuedAtMs }, U[issuerName].signer)).cert;
}

/** A chain of epochs of MATTER: specs [{members, creator, tsMs, fekVersion}]. */
async function chainOf(specs) {
  let prev = ZERO_HASH;
  const out = [];
  for (const [i, s] of specs.entries()) {
    const mek = w.rand(32);
    const m = await createManifest({ firm: FIRM, matter: MATTER, epoch: i + 1, prevHash: prev, fekVersion: s.fekVersion ?? 1,
      members: s.members.map(member), shareHistory: false, tsMs: s.tsMs ?? NOW,
      commit: await epochCommit(mek, FIRM, MATTER, i + 1) }, U[s.creator ?? 'staff-1'].signer);
    prev = m.hash;
    out.push({ ...m, mek, epoch: i + 1 });
  }
  return out;
}

async function verifierWith(trust, chain, { head = true } = {}) {
  const v = new ManifestVerifier(trust);
  for (const m of chain) await v.accept(m.manifest, FIRM, MATTER, NOW);
  if (head && chain.length) {
    const last = chain[chain.length - 1];
    await v.acceptHead((await signHead({ firm: FIRM, matter: MATTER, epoch: last.epoch, hash: last.hash, tsMs: NOW },
      U['staff-1'].signer)).head, FIRM, MATTER, NOW);
  }
  return v;
}

const hdr = (who, epoch, tsMs) => ({
  firm: FIRM, matter: MATTER, thread: 't-1', parent: null, sender: who, senderKid: U[who].kid, epoch, vis: VIS.PORTAL,
  ctype: CTYPE.BODY, tsMs,
});
const post = async (chain, who, epoch, tsMs) =>
  (await sealEnvelope(hdr(who, epoch, tsMs), encodeBody({ subject: '', text: who, attachments: [] }), { mek: chain[epoch - 1].mek },
    U[who].signer)).envelope;
const open = (env, trust, verifier, chain, nowMs = NOW) => openMessage(env, { firm: FIRM, matter: MATTER, thread: 't-1' }, {
  trust, verifier, replay: new ReplayGuard(), nowMs, keys: async ({ epoch }) => ({ mek: chain[epoch - 1].mek }),
});

// ---- finding 1: revocation cannot be withheld
test('no revocation list: certificates are stored but not usable (crypto_stale)', async () => {
  const t = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  await t.addCert(w.certs['staff-1'], NOW);
  await rejectsWith(assert, async () => t.lookup('staff-1', U['staff-1'].kid, NOW), 'crypto_stale');
});

test('a stale list is refused and a current one ages out in use', async () => {
  const t = await storeWith();
  await rejectsWith(assert, async () => t.lookup('staff-1', U['staff-1'].kid, NOW + 31 * DAY), 'crypto_stale');
  const stale = await revocationList(w.frk, { nextUpdateMs: NOW - 1 });
  await rejectsWith(assert, new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk }).setRevocationList(stale, NOW), 'crypto_stale');
});

test('an older, re-versioned or forged list is refused', async () => {
  const t = await storeWith(await listWith([entry('staff-2', REASON.compromised, NOW - HOUR)]));
  await rejectsWith(assert, t.setRevocationList(w.revocations, NOW), 'crypto_rollback');
  await rejectsWith(assert, t.setRevocationList(await listWith([]), NOW), 'crypto_rollback');
  const byStaff = (await signRevocationList({ firm: FIRM, version: 3, issuedAtMs: NOW, nextUpdateMs: NOW + DAY, entries: [] },
    U['staff-1'])).list;
  await rejectsWith(assert, t.setRevocationList(byStaff, NOW), 'crypto_signature');
  await rejectsWith(assert, async () => t.lookup('staff-2', U['staff-2'].kid, NOW), 'crypto_revoked');
});

test('a compromised staff key: its manifests and the clients it certified are refused', async () => {
  const k = await uikFromSeeds(w.rand(32), w.rand(32));
  const c3 = await clientCert('client-3', k, 'staff-1');
  const chain = await chainOf([{ members: ['client-1'], tsMs: NOW - DAY / 2 }]);
  const t = await storeWith(await listWith([entry('staff-1', REASON.compromised, NOW)]), [c3]);
  await rejectsWith(assert, new ManifestVerifier(t).accept(chain[0].manifest, FIRM, MATTER, NOW), 'crypto_revoked');
  await rejectsWith(assert, async () => t.lookup('client-3', k.kid, NOW), 'crypto_revoked');
});

test('a departed staff member: what it signed before leaving stays valid, nothing after', async () => {
  const leftAt = NOW - HOUR;
  const k = await uikFromSeeds(w.rand(32), w.rand(32));
  const c3 = await clientCert('client-3', k, 'staff-1');
  const t = await storeWith(await listWith([entry('staff-1', REASON.left, leftAt)]), [c3]);
  const before = await chainOf([{ members: ['client-1'], tsMs: leftAt - 1 }]);
  await new ManifestVerifier(t).accept(before[0].manifest, FIRM, MATTER, NOW);
  assert.equal(t.lookup('client-3', k.kid, NOW).user, 'client-3');
  const after = await chainOf([{ members: ['client-1'], tsMs: leftAt }]);
  await rejectsWith(assert, new ManifestVerifier(t).accept(after[0].manifest, FIRM, MATTER, NOW), 'crypto_revoked');
  const k4 = await uikFromSeeds(w.rand(32), w.rand(32));
  await rejectsWith(assert, t.addCert(await clientCert('client-4', k4, 'staff-1', leftAt + 1), NOW), 'crypto_revoked');
});

test('a client revocation ends use at revoked_at', async () => {
  const chain = await chainOf([{ members: ['client-1', 'client-2'], tsMs: NOW - DAY / 2 }]);
  const t = await storeWith();
  const v = await verifierWith(t, chain);
  const before = await post(chain, 'client-1', 1, NOW - HOUR - 1);
  const after = await post(chain, 'client-1', 1, NOW - HOUR);
  const rev = await issueRevocation({ firm: FIRM, user: 'client-1', kid: U['client-1'].kid, serial: 9, revokedAtMs: NOW - HOUR },
    U['staff-1'].signer);
  await t.addRevocation(rev.revocation, NOW);
  assert.equal((await open(before, t, v, chain)).header.sender, 'client-1');
  await rejectsWith(assert, open(after, t, v, chain), 'crypto_revoked');
});

// ---- finding 2: a departed staff member keeps reading
test('a firm-key wrap of a self-made escrow key is refused', async () => {
  const t = await storeWith();
  const to = U.custodian;
  const ctx = (version) => ({ firm: FIRM, matter: FIRM_MATTER, epoch: version, kind: KIND.FIRM, recipient: 'custodian',
    recipientKid: to.kid, recipientXPk: to.xPk });
  const fw = async (fek, wrapper) => (await wrapKey(ctx(fek.version), new Uint8Array([...fek.xSk, ...fek.fir]), U[wrapper].signer)).wrap;
  assert.equal((await unwrapKey(await fw(w.fek, 'staff-1'), ctx(1), to, t, NOW)).length, 64);
  const own = await fekFromSecret(FIRM, 1, w.rand(32), w.rand(32));
  await rejectsWith(assert, unwrapKey(await fw(own, 'staff-2'), ctx(1), to, t, NOW), 'crypto_uncertified');
  const own2 = await fekFromSecret(FIRM, 2, w.rand(32), w.rand(32));
  await rejectsWith(assert, unwrapKey(await fw(own2, 'staff-2'), ctx(2), to, t, NOW), 'crypto_uncertified');
  const forged = await signEscrowRecord({ firm: FIRM, version: 2, xPk: own2.xPk, createdAtMs: NOW }, U['staff-2']);
  await rejectsWith(assert, t.addEscrowRecord(forged.record), 'crypto_signature');
});

test('the writer refuses an epoch under an older escrow version (crypto_stale_epoch)', async () => {
  const t = await storeWith();
  const chain = await chainOf([{ members: ['client-1'] }]);
  const v = await verifierWith(t, chain);
  const seal = (c) => sealMessage(hdr('client-1', c.length, NOW), utf8('x'), { mek: c[c.length - 1].mek }, U['client-1'].signer,
    { verifier: v });
  await seal(chain);
  const fek2 = await fekFromSecret(FIRM, 2, w.rand(32), w.rand(32));
  await t.addEscrowRecord((await signEscrowRecord({ firm: FIRM, version: 2, xPk: fek2.xPk, createdAtMs: NOW }, w.frk)).record);
  await rejectsWith(assert, seal(chain), 'crypto_stale_epoch');
});

// ---- finding 3: a removed client can still post
for (const who of ['client-2', 'bot-1']) {
  test(`a removed member (${who}) writing under its old epoch after removal is refused`, async () => {
    const removedAt = NOW - HOUR;
    const chain = await chainOf([
      { members: ['client-1', 'client-2', 'bot-1'], tsMs: NOW - DAY / 2 }, { members: ['client-1'], tsMs: removedAt }]);
    const t = await storeWith();
    const v = await verifierWith(t, chain);
    assert.equal((await open(await post(chain, who, 1, removedAt - 1), t, v, chain)).header.sender, who);
    await rejectsWith(assert, open(await post(chain, who, 1, removedAt), t, v, chain), 'crypto_stale_epoch');
  });
}

// ---- finding 4: history survives people leaving and certificates expiring
test('a new device reads history after the creator left and a member expired', async () => {
  const t0 = NOW - 2 * HOUR;
  const expires = NOW - HOUR;
  const c1 = U['client-1'];
  const expiring = (await issueCert({ firm: FIRM, role: ROLE.client, user: 'client-1', xPk: c1.xPk, edPk: c1.edPk,
    serial: serial++, issuedAtMs: NOW - DAY, expiresAtMs: expires }, U['staff-1'].signer)).cert;
  const chain = await chainOf([{ members: ['client-1', 'client-2'], creator: 'staff-2', tsMs: t0 }]);
  const t = await storeWith(await listWith([entry('staff-2', REASON.left, expires)]), [expiring]);
  const v = await verifierWith(t, chain);
  assert.equal((await open(await post(chain, 'client-1', 1, t0 + 1), t, v, chain)).header.sender, 'client-1');
  await rejectsWith(assert, open(await post(chain, 'client-1', 1, NOW), t, v, chain), 'crypto_uncertified');
});

// ---- finding 5: stale epochs and forks
test('writing needs a fresh head of the current epoch; stale, behind, forked and foreign heads are refused', async () => {
  const t = await storeWith();
  const chain = await chainOf([{ members: ['client-1'] }, { members: ['client-1'] }]);
  const v = await verifierWith(t, chain.slice(0, 1), { head: false });
  const head = async (epoch, o = {}) => (await signHead({ firm: FIRM, matter: MATTER, epoch, hash: o.hash ?? chain[epoch - 1].hash,
    tsMs: o.tsMs ?? NOW }, U[o.signer ?? 'staff-1'].signer)).head;
  const seal = (epoch, tsMs = NOW) => sealMessage(hdr('client-1', epoch, tsMs), utf8('x'), { mek: chain[epoch - 1].mek },
    U['client-1'].signer, { verifier: v });
  await rejectsWith(assert, seal(1), 'crypto_stale'); // no head: newer epochs may be hidden
  await rejectsWith(assert, v.acceptHead(await head(1, { tsMs: NOW - HEAD_MAX_AGE_MS - 1 }), FIRM, MATTER, NOW), 'crypto_stale');
  await v.acceptHead(await head(1), FIRM, MATTER, NOW);
  await seal(1);
  await rejectsWith(assert, seal(1, NOW + HEAD_MAX_AGE_MS + 1), 'crypto_stale');
  await rejectsWith(assert, v.acceptHead(await head(1, { hash: new Uint8Array(32) }), FIRM, MATTER, NOW), 'crypto_chain');
  await rejectsWith(assert, v.acceptHead(await head(1, { signer: 'client-1' }), FIRM, MATTER, NOW), 'crypto_uncertified');
  await rejectsWith(assert, v.acceptHead(await head(1, { signer: 'bot-1' }), FIRM, MATTER, NOW), 'crypto_uncertified');
  await v.acceptHead(await head(2), FIRM, MATTER, NOW); // the server showed the head of epoch 2, not the epoch
  await rejectsWith(assert, seal(1), 'crypto_stale');
  await rejectsWith(assert, v.acceptHead(await head(1), FIRM, MATTER, NOW), 'crypto_stale');
  await v.accept(chain[1].manifest, FIRM, MATTER, NOW);
  await seal(2);
  // a head naming epoch 3 first, then a manifest 3 that differs from it: a fork
  const more = await chainOf([{ members: ['client-1'] }, { members: ['client-1'] }, { members: ['client-1'] }]);
  await v.acceptHead((await signHead({ firm: FIRM, matter: MATTER, epoch: 3, hash: new Uint8Array(32).fill(1), tsMs: NOW },
    U.custodian.signer)).head, FIRM, MATTER, NOW);
  await rejectsWith(assert, v.accept(more[2].manifest, FIRM, MATTER, NOW), 'crypto_chain');
});

// ---- finding 6: invite identity, handover, verification code
test('invite key hands over to a fresh key; a server-chosen key shows another code', async () => {
  const invite = await identityFromInviteSecret(w.rand(32), FIRM, 'client-9');
  const cert = (await issueCert({ firm: FIRM, role: ROLE.client, user: 'client-9', xPk: invite.xPk, edPk: invite.edPk,
    serial: serial++, issuedAtMs: NOW - DAY }, U['staff-1'].signer)).cert;
  const t = await storeWith(w.revocations, [cert]);
  const c = t.lookup('client-9', invite.kid, NOW);
  const fresh = await uikFromSeeds(w.rand(32), w.rand(32));
  const evil = await uikFromSeeds(w.rand(32), w.rand(32));
  const ho = async (k) => (await signHandover({ firm: FIRM, user: 'client-9', xPk: k.xPk, edPk: k.edPk, tsMs: NOW }, invite)).handover;
  const got = await verifyHandover(await ho(fresh), { xPk: c.x_pk, edPk: c.ed_pk }, FIRM, 'client-9');
  const code = await sasCode(FIRM, 'client-9', fresh.xPk, fresh.edPk);
  assert.equal(await sasCode(FIRM, 'client-9', got.x_pk, got.ed_pk), code);
  const got2 = await verifyHandover(await ho(evil), { xPk: c.x_pk, edPk: c.ed_pk }, FIRM, 'client-9');
  assert.notEqual(await sasCode(FIRM, 'client-9', got2.x_pk, got2.ed_pk), code);
});

// ---- finding 7: the custodian bot certifies and revokes recovered clients
test('an unscoped custodian bot certifies and revokes clients', async () => {
  const k = await uikFromSeeds(w.rand(32), w.rand(32));
  const t = await storeWith(w.revocations, [await clientCert('client-9', k, 'custodian')]);
  assert.equal(t.lookup('client-9', k.kid, NOW).issuer, 'custodian');
  const rev = await issueRevocation({ firm: FIRM, user: 'client-9', kid: k.kid, serial: 1, revokedAtMs: NOW - 1 }, U.custodian.signer);
  await t.addRevocation(rev.revocation, NOW);
  await rejectsWith(assert, async () => t.lookup('client-9', k.kid, NOW), 'crypto_revoked');
});

test('scoped custodians, plain bots and plain staff cannot certify or revoke clients', async () => {
  const scoped = await uikFromSeeds(w.rand(32), w.rand(32));
  const scopedCert = (await issueCert({ firm: FIRM, role: ROLE.bot, user: 'scoped', xPk: scoped.xPk, edPk: scoped.edPk,
    serial: serial++, issuedAtMs: NOW - DAY, flags: FLAG.CUSTODIAN, scopes: [MATTER] }, w.frkIssuer)).cert;
  const t = await storeWith(w.revocations, [scopedCert]);
  const signers = { 'bot-1': U['bot-1'].signer, 'staff-2': U['staff-2'].signer, scoped: { id: 'scoped', kid: scoped.kid, edSk: scoped.edSk } };
  for (const [name, signer] of Object.entries(signers)) {
    const k = await uikFromSeeds(w.rand(32), w.rand(32));
    const cert = (await issueCert({ firm: FIRM, role: ROLE.client, user: 'client-9', xPk: k.xPk, edPk: k.edPk, serial: serial++,
      issuedAtMs: NOW - DAY }, signer)).cert;
    await rejectsWith(assert, t.addCert(cert, NOW), 'crypto_uncertified');
    const rev = await issueRevocation({ firm: FIRM, user: 'client-1', kid: U['client-1'].kid, serial: 1, revokedAtMs: NOW }, signer);
    await rejectsWith(assert, t.addRevocation(rev.revocation, NOW), 'crypto_uncertified', name);
  }
});

test('newTrust helper and the world agree (sanity)', async () => {
  const t = await newTrust(w);
  assert.equal(t.newestEscrowVersion, 1);
  assert.equal(t.revocationList.version, 1);
});
