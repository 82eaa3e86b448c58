// The staff key flows (static/staff/keyflows.js, epochflows.js) checked by a
// reader built from the library alone: what the org admin and staff browsers
// post must verify as a client (TrustStore + ManifestVerifier + unwrapKey +
// openMessage) would verify it.
import assert from 'node:assert/strict';
import test from 'node:test';

import * as C from '../../crypto/index.js';
import * as K from '../keyflows.js';
import * as E from '../epochflows.js';

const { bytes, certs, keys, wrap, manifest, envelope, primitives } = C;
const FIRM = 'demo';
const MATTER = 'AAAA0002';
const NOW = 1_790_000_000_000;

/** An FRK signer whose private key is a non-extractable CryptoKey, as frkstore.js keeps it. */
async function frkSigner() {
  const { seed, frk } = await K.newFirmRoot();
  const edSk = await primitives.ed25519PrivateKey(seed, false);
  return { seed, frk, signer: { id: certs.FRK_ISSUER, kid: frk.kid, edSk } };
}

async function staffIdentity(id) {
  const uik = await keys.generateUik();
  return { id: K.staffUser(id), kid: uik.kid, xSk: uik.xSk, edSk: uik.edSk, xPk: uik.xPk, edPk: uik.edPk, record: uik.record };
}

test('the FRK key file names the firm and fingerprint and reads back to the same key', async () => {
  const { seed, frk } = await K.newFirmRoot();
  assert.match(frk.text, /^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/);
  const text = K.frkKeyFileText(FIRM, frk, seed);
  assert.ok(text.includes(`fingerprint: ${frk.text}`));
  const back = await K.readFrkKeyFile(text);
  assert.equal(back.firm, FIRM);
  assert.ok(bytes.bytesEqual(back.frk.edPk, frk.edPk));
  await assert.rejects(K.readFrkKeyFile(text.replace(/fingerprint: \S+/, 'fingerprint: AAAA')), /fingerprint/);
  await assert.rejects(K.readFrkKeyFile('hello'), /not a firm root key file/);
});

test('approving a pending staff member: an FRK certificate that may certify clients and the firm keys', async () => {
  const { frk, signer } = await frkSigner();
  const admin = await staffIdentity(1);
  const newcomer = await staffIdentity(7);
  const fek = await K.newFirmKeys(FIRM, 1);
  const trust = new certs.TrustStore({ firm: FIRM, frkEdPk: frk.edPk });
  // the library's order: a fresh revocation list and the FRK-signed escrow record first
  await trust.setRevocationList(await K.revocationList(FIRM, signer, 1, [], NOW), NOW);
  await trust.addEscrowRecord(await K.escrowRecord(FIRM, fek, signer, NOW));
  await trust.addCert(await K.staffCert(FIRM, signer, admin.id, admin, NOW), NOW);

  const pending = { staff_id: 7, public_keys: bytes.b64url(newcomer.record) };
  const key = await K.pendingKey(pending);
  assert.ok(bytes.bytesEqual(key.kid, newcomer.kid));
  const out = await K.approveStaff({ firm: FIRM, frk: signer, fek, me: admin, pending, nowMs: NOW });
  assert.equal(out.fingerprint, key.text);
  const cert = await trust.addCert(out.certs[0], NOW);
  assert.equal(cert.user, 's7');
  assert.equal(cert.flags & certs.FLAG.CERTIFY_CLIENTS, certs.FLAG.CERTIFY_CLIENTS);
  const expected = { firm: FIRM, matter: wrap.FIRM_MATTER, epoch: 1, kind: wrap.KIND.FIRM, recipient: 's7', recipientKid: newcomer.kid };
  const plain = await wrap.unwrapKey(out.wraps[0], expected, newcomer, trust, NOW);
  assert.ok(bytes.bytesEqual(plain, bytes.concat(fek.xSk, fek.fir)));
  // another staff member cannot open the wrap meant for s7
  await assert.rejects(wrap.unwrapKey(out.wraps[0], { ...expected, recipient: 's1', recipientKid: admin.kid }, admin, trust, NOW));
});

test('an own-mail link carries r and frk in the fragment; the mailto body holds the link', () => {
  const R = new Uint8Array(32).fill(7);
  const link = E.inviteLink('https://portal.example/?firm=demo', 'tok', R, 'FRKFP');
  assert.equal(link, `https://portal.example/?firm=demo#t=tok&r=${bytes.b64url(R)}&frk=FRKFP`);
  const href = E.mailtoHref('ann@example.com', 'Welcome', `Hello,\nopen ${link} today`, link);
  assert.ok(href.startsWith('mailto:ann%40example.com?subject=Welcome&body='));
  assert.ok(decodeURIComponent(href.split('&body=')[1]).includes(`open ${link} today`));
  assert.ok(decodeURIComponent(E.mailtoHref('a@b.c', 'S', 'no field', link).split('&body=')[1]).endsWith(link));
});

test('a client certificate is scoped to the matter and verifies under the staff certificate', async () => {
  const { frk, signer } = await frkSigner();
  const me = await staffIdentity(1);
  const trust = new certs.TrustStore({ firm: FIRM, frkEdPk: frk.edPk });
  await trust.addCert(await K.staffCert(FIRM, signer, me.id, me, NOW), NOW);
  const client = await keys.generateUik();
  const c = await trust.addCert(await E.clientCert(FIRM, MATTER, me, 'c12', client, NOW), NOW);
  assert.deepEqual([...c.scopes], [MATTER]);
  assert.equal(c.role, certs.ROLE.client);
});

test('the verification code compares digits only', () => {
  assert.equal(E.digits('123 456'), '123456');
  assert.equal(E.digits(' 12-34 56 '), '123456');
});

test('head age and revocation list half-life', () => {
  assert.equal(E.headIsOld(NOW - 31 * K.DAY_MS, NOW), true);
  assert.equal(E.headIsOld(NOW - 29 * K.DAY_MS, NOW), false);
  const facts = { issuedAtMs: NOW, nextUpdateMs: NOW + K.REVOCATION_LIFE_MS };
  assert.equal(K.listNeedsResign(facts, NOW + 14 * K.DAY_MS), false);
  assert.equal(K.listNeedsResign(facts, NOW + 15 * K.DAY_MS), true);
});

test('contact ids from client ids', () => {
  assert.equal(K.clientUser(12), 'c12');
  assert.equal(K.contactOf('c12'), 12);
  assert.equal(K.contactOf('s12'), null);
});


// ---------------------------------------------------------------- full flows, read back as a client would

/** A client's reader: pinned FRK, staff certificates, the chain of the matter. */
async function reader(frk, certList, firmOut) {
  const trust = new certs.TrustStore({ firm: FIRM, frkEdPk: frk.edPk });
  // the library's order: a fresh revocation list and the escrow records before any certificate is used
  await trust.setRevocationList(firmOut.list, NOW);
  await trust.addEscrowRecord(firmOut.escrow.record);
  for (const c of certList) await trust.addCert(c, NOW);
  return { trust, verifier: new manifest.ManifestVerifier(trust) };
}

async function setUpFirm() {
  const root = await frkSigner();
  const admin = await staffIdentity(1);
  const out = await K.firmSetup({ firm: FIRM, frk: root.signer, me: admin, nowMs: NOW });
  // the admin's keyring's trust after the set-up (what the invite round's writer view builds on)
  const { trust } = await reader(root.frk, [out.cert], out);
  return { ...root, admin, out, trust };
}

test('firm set-up: self-certified admin, escrow v1 wrapped to the admin, first revocation list for 30 days', async () => {
  const { frk, admin, out } = await setUpFirm();
  const { trust } = await reader(frk, [out.cert], out);
  const list = await certs.verifyRevocationList(out.list, frk.edPk);
  assert.equal(list.version, 1);
  assert.equal(list.entries.length, 0);
  assert.equal(Number(list.next_update_ms), NOW + 30 * K.DAY_MS);
  const escrow = await keys.verifyEscrowRecord(out.escrow.record, frk.edPk);
  assert.equal(escrow.version, 1);
  assert.ok(bytes.bytesEqual(escrow.x_pk, out.fek.xPk));
  const expected = { firm: FIRM, matter: wrap.FIRM_MATTER, epoch: 1, kind: wrap.KIND.FIRM, recipient: 's1', recipientKid: admin.kid };
  const plain = await wrap.unwrapKey(out.escrow.wraps[0], expected, admin, trust, NOW);
  assert.ok(bytes.bytesEqual(plain.slice(32), out.fek.fir));
  const facts = K.listFacts(out.list);
  assert.equal(K.listNeedsResign(facts, NOW + 16 * K.DAY_MS), true);
  const next = K.listFacts(await K.resignedList(FIRM, (await frkSigner()).signer, facts, NOW + 16 * K.DAY_MS));
  assert.equal(next.version, 2);
});

test('invite round: the client derives its key from R, verifies the chain, unwraps the MEK and reads the welcome', async () => {
  const { frk, admin, out, trust: adminTrust } = await setUpFirm();
  const sent = await E.inviteBundle({
    firm: FIRM, matter: MATTER, me: admin, trust: (await reader(frk, [out.cert], out)).trust, fek: out.fek, prev: null, members: [], shareHistory: true, nowMs: NOW,
    delivery: 'own_mail',
    invites: [
      { contactId: 12, subject: 'Welcome', text: 'Hello Ann' },
      { contactId: 13, subject: 'Welcome', text: 'Hello Bob' },
    ],
  });
  assert.equal(sent.crypto.delivery, 'own_mail');
  assert.equal(sent.crypto.secrets, undefined); // own-mail secrets never go to the server
  assert.equal(sent.crypto.epoch.wraps.length, 3); // #fek + two clients
  // Ann's browser: derive, verify, unwrap, read
  const ann = await keys.identityFromInviteSecret(sent.secrets[12], FIRM, 'c12');
  const { trust, verifier } = await reader(frk, [out.cert, ...sent.crypto.certs.map((c) => bytes.fromB64url(c))], out);
  const tbs = await verifier.accept(bytes.fromB64url(sent.crypto.epoch.manifest), FIRM, MATTER, NOW);
  assert.deepEqual(tbs.members.map((m) => m.user), ['c12', 'c13']);
  const head = manifest.decodeHead(bytes.fromB64url(sent.crypto.epoch.head));
  assert.equal(head.epoch, 1);
  const annWrap = sent.crypto.epoch.wraps.map((w) => bytes.fromB64url(w)).find((w) => C.encoding.decode(wrap.WRAP, w).info.recipient === 'c12');
  const mek = await wrap.unwrapKey(annWrap, { firm: FIRM, matter: MATTER, epoch: 1, kind: 1, recipient: 'c12', recipientKid: ann.kid }, ann, trust, NOW, tbs.commit);
  const msg = await envelope.openMessage(bytes.fromB64url(sent.crypto.welcome[12]), { firm: FIRM, matter: MATTER, thread: 'welcome-12' }, {
    trust, verifier, replay: new envelope.ReplayGuard(), nowMs: NOW, keys: async () => ({ mek }),
  });
  assert.equal(envelope.decodeBody(msg.plaintext ?? msg.body ?? msg.bytes).text, 'Hello Ann');
});

test('portal delivery then the fresh key: handover + code -> new cert, old key revoked, next epoch, history re-wrapped', async () => {
  const { frk, admin, out, trust: adminTrust } = await setUpFirm();
  const sent = await E.inviteBundle({
    firm: FIRM, matter: MATTER, me: admin, trust: (await reader(frk, [out.cert], out)).trust, fek: out.fek, prev: null, members: [], shareHistory: true, nowMs: NOW,
    delivery: 'portal',
    invites: [{ contactId: 13, subject: 'S', text: 'T' }],
  });
  assert.deepEqual(Object.keys(sent.crypto.secrets), ['13']);
  assert.ok(bytes.bytesEqual(bytes.fromB64url(sent.crypto.secrets[13]), sent.secrets[13]));
  const invited = await keys.identityFromInviteSecret(bytes.fromB64url(sent.crypto.secrets[13]), FIRM, 'c13');
  const fresh = await keys.generateUik();
  const { handover } = await C.recovery.signHandover({ firm: FIRM, user: 'c13', xPk: fresh.xPk, edPk: fresh.edPk, tsMs: NOW }, invited);
  const code = await C.recovery.sasCode(FIRM, 'c13', fresh.xPk, fresh.edPk);
  const wrong = code === '000 000' ? '111 111' : '000 000';
  await assert.rejects(E.verifiedFreshKey(FIRM, 'c13', handover, invited, wrong), /code/);
  await assert.rejects(E.verifiedFreshKey(FIRM, 'c13', handover, fresh, code)); // not signed by the invite key
  const key = await E.verifiedFreshKey(FIRM, 'c13', handover, invited, code);
  assert.ok(bytes.bytesEqual(key.kid, fresh.kid));
  const member = { user: 'c13', kid: invited.kid, role: 2, xPk: invited.xPk, serial: NOW };
  const rep = await E.replaceClientKey({
    firm: FIRM, matter: MATTER, me: admin, fek: out.fek, prev: { epoch: 1, hash: sent.epoch.hash }, members: [member],
    shareHistory: true, old: member, key, history: [{ epoch: 1, mek: sent.epoch.mek }], nowMs: NOW + 1,
  });
  const { trust, verifier } = await reader(frk, [out.cert, bytes.fromB64url(sent.crypto.certs[0]), rep.cert], out);
  await verifier.accept(bytes.fromB64url(sent.crypto.epoch.manifest), FIRM, MATTER, NOW);
  const t2 = await verifier.accept(rep.epoch.manifest, FIRM, MATTER, NOW + 1);
  assert.equal(t2.epoch, 2);
  assert.ok(bytes.bytesEqual(t2.members[0].kid, fresh.kid));
  const back = await wrap.unwrapKey(bytes.fromB64url(rep.wraps[0]), { firm: FIRM, matter: MATTER, epoch: 1, kind: 1, recipient: 'c13', recipientKid: fresh.kid }, fresh, trust, NOW + 1, verifier.manifestAt(FIRM, MATTER, 1).commit);
  assert.ok(bytes.bytesEqual(back, sent.epoch.mek)); // history comes back to the fresh key
  const r = await trust.addRevocation(rep.revocation, NOW + 1);
  assert.ok(bytes.bytesEqual(r.kid, invited.kid));
  assert.equal(trust.isRevoked('c13', invited.kid), true);
});

test('removal: the next epoch leaves the client out; staff leaving: list v2 with reason left, FEK v2 to the rest', async () => {
  const { frk, signer, admin, out, trust: adminTrust } = await setUpFirm();
  const sent = await E.inviteBundle({
    firm: FIRM, matter: MATTER, me: admin, trust: (await reader(frk, [out.cert], out)).trust, fek: out.fek, prev: null, members: [], shareHistory: true, nowMs: NOW,
    delivery: 'own_mail',
    invites: [{ contactId: 12, subject: 'S', text: 'T' }],
  });
  const removed = await E.nextEpoch({ firm: FIRM, matter: MATTER, me: admin, fek: out.fek, prev: { epoch: 1, hash: sent.epoch.hash }, members: [], shareHistory: true, nowMs: NOW + 5 });
  assert.equal(removed.wraps.length, 1); // #fek only
  const bob = await staffIdentity(2);
  const facts = K.listFacts(out.list);
  const left = await K.staffLeaving({
    firm: FIRM, frk: signer, me: admin, facts, leaver: { user: 's2', kids: [bob.kid] },
    remaining: [{ user: 's1', kid: admin.kid, xPk: admin.xPk }], fekVersion: 1, nowMs: NOW + 9,
  });
  const list = await certs.verifyRevocationList(left.list, frk.edPk);
  assert.equal(list.version, 2);
  assert.equal(list.entries[0].user, 's2');
  assert.equal(list.entries[0].reason, certs.REASON.left);
  assert.equal(left.fek.version, 2);
  assert.equal(left.escrow.wraps.length, 1);
  const rekeyed = await E.nextEpoch({ firm: FIRM, matter: MATTER, me: admin, fek: left.fek, prev: { epoch: 2, hash: removed.hash }, members: [], shareHistory: true, nowMs: NOW + 10 });
  assert.equal(C.encoding.decode(manifest.MANIFEST, rekeyed.manifest).tbs.fek_version, 2);
  const head = await E.signHead(FIRM, MATTER, admin, 3, rekeyed.hash, NOW + 10);
  assert.equal(E.headTime(head), NOW + 10);
});

test('a second matter: the invite key binds to the identity certified in the first; it is certified for both, the wider certificate replaces the narrower', async () => {
  const { frk, admin, out } = await setUpFirm();
  const SECOND = 'BBBB0003';
  const identity = await keys.generateUik();
  const first = await E.clientCert(FIRM, MATTER, admin, 'c12', identity, NOW);
  const sent = await E.inviteBundle({
    firm: FIRM, matter: SECOND, me: admin, trust: (await reader(frk, [out.cert], out)).trust, fek: out.fek, prev: null, members: [], shareHistory: true, nowMs: NOW,
    delivery: 'portal',
    invites: [{ contactId: 12, subject: 'S', text: 'T' }],
  });
  const invited = await keys.identityFromInviteSecret(sent.secrets[12], FIRM, 'c12');
  const { handover } = await C.recovery.signHandover({ firm: FIRM, user: 'c12', xPk: identity.xPk, edPk: identity.edPk, tsMs: NOW }, invited);
  const { trust, verifier } = await reader(frk, [out.cert, first, bytes.fromB64url(sent.crypto.certs[0])], out);
  // a binding: the named key is the contact's certified identity
  const key = await E.boundKey(trust, FIRM, 'c12', handover, invited, NOW);
  assert.ok(key && bytes.bytesEqual(key.kid, identity.kid));
  assert.deepEqual([...key.scopes], [MATTER]);
  // signed by another key than the invite key in the epoch: refused; a fresh key: no binding
  await assert.rejects(E.boundKey(trust, FIRM, 'c12', handover, identity, NOW));
  const fresh = await keys.generateUik();
  const toFresh = (await C.recovery.signHandover({ firm: FIRM, user: 'c12', xPk: fresh.xPk, edPk: fresh.edPk, tsMs: NOW }, invited)).handover;
  assert.equal(await E.boundKey(trust, FIRM, 'c12', toFresh, invited, NOW), null);
  // another contact's identity is not theirs
  assert.equal(await E.boundKey(trust, FIRM, 'c13', handover, invited, NOW).catch(() => null), null);

  const member = { user: 'c12', kid: invited.kid, role: 2, xPk: invited.xPk, serial: NOW };
  const rep = await E.replaceClientKey({
    firm: FIRM, matter: SECOND, me: admin, fek: out.fek, prev: { epoch: 1, hash: sent.epoch.hash }, members: [member],
    shareHistory: true, old: member, key, history: [{ epoch: 1, mek: sent.epoch.mek }], nowMs: NOW + 1,
  });
  const widened = await trust.addCert(rep.cert, NOW + 1);
  assert.deepEqual([...widened.scopes], [MATTER, SECOND].sort());
  assert.ok(widened.serial > NOW);
  await verifier.accept(bytes.fromB64url(sent.crypto.epoch.manifest), FIRM, SECOND, NOW);
  const t2 = await verifier.accept(rep.epoch.manifest, FIRM, SECOND, NOW + 1);
  assert.ok(bytes.bytesEqual(t2.members[0].kid, identity.kid));
  const back = await wrap.unwrapKey(bytes.fromB64url(rep.wraps[0]), { firm: FIRM, matter: SECOND, epoch: 1, kind: 1, recipient: 'c12', recipientKid: identity.kid }, identity, trust, NOW + 1, verifier.manifestAt(FIRM, SECOND, 1).commit);
  assert.ok(bytes.bytesEqual(back, sent.epoch.mek)); // the second matter's history comes to the identity
  assert.ok(bytes.bytesEqual(trust.lookup('c12', identity.kid, NOW + 1).kid, identity.kid));
  assert.deepEqual([...trust.lookup('c12', identity.kid, NOW + 1).scopes], [MATTER, SECOND].sort());
});
