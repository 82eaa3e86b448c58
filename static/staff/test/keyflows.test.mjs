// The staff key flows (static/staff/keyflows.js, epochflows.js) checked by a
// reader built from the library alone: what the org admin and staff browsers
// post must verify as a client (TrustStore + ManifestVerifier + unwrapKey +
// openMessage) would verify it.
import assert from 'node:assert/strict';
import test from 'node:test';

import * as C from '../../crypto/index.js';
import * as K from '../keyflows.js';
import * as E from '../epochflows.js';

const { bytes, certs, keys, wrap, primitives } = C;
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
  const link = E.inviteLink('https://portal.example', { token: 'tok' }, R, 'FRKFP');
  assert.equal(link, `https://portal.example/accept#t=tok&r=${bytes.b64url(R)}&frk=FRKFP`);
  const fromServer = E.inviteLink('x', { link: 'https://p.example/#t=abc' }, R, 'FP');
  assert.equal(fromServer, `https://p.example/#t=abc&r=${bytes.b64url(R)}&frk=FP`);
  const href = E.mailtoHref('ann@example.com', 'Welcome', 'Hello,\nopen {portal_link} today', link);
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

