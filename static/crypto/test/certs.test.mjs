// Certificates: who may issue what, expiry, revocation, low-order keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CERT, CERT_TBS, FLAG, FRK_ISSUER, ROLE, TrustStore, issueCert, issueRevocation } from '../certs.js';
import { encode } from '../encoding.js';
import { ed25519Sign } from '../primitives.js';
import { uikFromSeeds } from '../keys.js';
import { FIRM, MATTER, NOW, makeWorld } from './world.mjs';
import { rejectsWith } from './helpers.mjs';

const w = await makeWorld('certs');
const fresh = async (n) => uikFromSeeds(new Uint8Array(32).fill(n), new Uint8Array(32).fill(n + 1));
const base = (k, over = {}) => ({
  firm: FIRM, role: ROLE.client, user: 'client-9', xPk: k.xPk, edPk: k.edPk, serial: 99, issuedAtMs: NOW, ...over,
});

test('the world verifies and lookups return role, flags, scopes', () => {
  const b = w.trust.lookup('bot-1', w.users['bot-1'].kid, NOW);
  assert.equal(b.role, ROLE.bot);
  assert.deepEqual(b.scopes, [MATTER]);
  assert.equal(w.trust.lookup('staff-1', w.users['staff-1'].kid, NOW).flags, FLAG.CERTIFY_CLIENTS);
});

test('client certified by a CERTIFY_CLIENTS staff member; not by others', async () => {
  const k = await fresh(1);
  const ok = await issueCert(base(k), w.users['staff-1'].signer);
  await w.trust.addCert(ok.cert, NOW);
  const t2 = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  for (const n of ['staff-1', 'staff-2', 'client-1']) await t2.addCert(w.certs[n], NOW);
  const bad1 = await issueCert(base(k), w.users['staff-2'].signer);
  await rejectsWith(assert, t2.addCert(bad1.cert, NOW), 'crypto_uncertified');
  const bad2 = await issueCert(base(k), w.users['client-1'].signer);
  await rejectsWith(assert, t2.addCert(bad2.cert, NOW), 'crypto_uncertified');
  // a staff certificate signed by a staff member, not the FRK
  const bad3 = await issueCert(base(k, { role: ROLE.staff, user: 'staff-9' }), w.users['staff-1'].signer);
  await rejectsWith(assert, t2.addCert(bad3.cert, NOW), 'crypto_uncertified');
  // a client certificate claiming the FRK issuer but signed by a staff key
  const bad4 = await issueCert(base(k), { ...w.users['staff-1'].signer, id: FRK_ISSUER, kid: w.frk.kid });
  await rejectsWith(assert, t2.addCert(bad4.cert, NOW), 'crypto_uncertified');
  const bad5 = await issueCert(base(k, { role: ROLE.staff, user: 'staff-9' }), { ...w.users['staff-1'].signer, id: FRK_ISSUER, kid: w.frk.kid });
  await rejectsWith(assert, t2.addCert(bad5.cert, NOW), 'crypto_signature');
});

test('another firm, expiry, future issue, revocation', async () => {
  const k = await fresh(3);
  const other = await issueCert(base(k, { firm: 'firm-2' }), w.users['staff-1'].signer);
  await rejectsWith(assert, w.trust.addCert(other.cert, NOW), 'crypto_wrong_context');
  const expired = await issueCert(base(k, { expiresAtMs: NOW - 1 }), w.users['staff-1'].signer);
  await rejectsWith(assert, w.trust.addCert(expired.cert, NOW), 'crypto_uncertified');
  const future = await issueCert(base(k, { issuedAtMs: NOW + 10 * 60 * 1000 }), w.users['staff-1'].signer);
  await rejectsWith(assert, w.trust.addCert(future.cert, NOW), 'crypto_uncertified');
  const skew = await issueCert(base(k, { issuedAtMs: NOW + 60 * 1000 }), w.users['staff-1'].signer);
  await w.trust.addCert(skew.cert, NOW);
  const rev = await issueRevocation(
    { firm: FIRM, user: 'client-9', kid: k.kid, serial: 99, revokedAtMs: NOW },
    w.users['staff-1'].signer,
  );
  await w.trust.addRevocation(rev.revocation, NOW);
  await rejectsWith(assert, async () => w.trust.lookup('client-9', k.kid, NOW), 'crypto_revoked');
  await rejectsWith(assert, w.trust.addCert(skew.cert, NOW), 'crypto_revoked');
  // staff are revoked by the FRK only
  const revStaff = await issueRevocation(
    { firm: FIRM, user: 'staff-2', kid: w.users['staff-2'].kid, serial: 2, revokedAtMs: NOW },
    w.users['staff-1'].signer,
  );
  await rejectsWith(assert, w.trust.addRevocation(revStaff.revocation, NOW), 'crypto_uncertified');
});

/** A certificate signed without issueCert's own key checks (an issuer that skips them). */
async function signAnyway(p, issuer) {
  const tbs = encode(CERT_TBS, {
    firm: p.firm, role: p.role, user: p.user, x_pk: p.xPk, ed_pk: p.edPk, serial: p.serial, issued_at_ms: p.issuedAtMs,
    expires_at_ms: p.expiresAtMs ?? 0, flags: p.flags ?? 0, scopes: p.scopes ?? [], issuer: issuer.id, issuer_kid: issuer.kid,
  });
  return { cert: encode(CERT, { tbs, sig: await ed25519Sign(issuer.edSk, tbs) }) };
}

test('low-order X25519 key in a certificate is rejected', async () => {
  const k = await fresh(5);
  await rejectsWith(assert, issueCert({ ...base(k), xPk: new Uint8Array(32) }, w.users['staff-1'].signer), 'crypto_low_order');
  const c = await signAnyway({ ...base(k), xPk: new Uint8Array(32) }, w.users['staff-1'].signer);
  await rejectsWith(assert, w.trust.addCert(c.cert, NOW), 'crypto_low_order');
});

test('a flipped bit anywhere in a certificate is rejected', async () => {
  const k = await fresh(7);
  const c = (await issueCert(base(k, { user: 'client-7' }), w.users['staff-1'].signer)).cert;
  for (let i = 0; i < c.length * 8; i += 7) {
    const t = new Uint8Array(c);
    t[i >> 3] ^= 1 << (i & 7);
    const fresh2 = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
    await fresh2.addCert(w.certs['staff-1'], NOW);
    await assert.rejects(fresh2.addCert(t, NOW), (e) => e.name === 'CryptoInvalid', `bit ${i}`);
  }
});

test('a staff revocation of a key the store has not seen is refused (it could be a staff key)', async () => {
  const t = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  await t.addCert(w.certs['staff-1'], NOW);
  const pre = await issueRevocation(
    { firm: FIRM, user: 'staff-2', kid: w.users['staff-2'].kid, serial: 2, revokedAtMs: NOW },
    w.users['staff-1'].signer,
  );
  await rejectsWith(assert, t.addRevocation(pre.revocation, NOW), 'crypto_uncertified');
  await t.addCert(w.certs['staff-2'], NOW); // the FRK-certified staff key is still usable
  assert.equal(t.lookup('staff-2', w.users['staff-2'].kid, NOW).role, ROLE.staff);
  // the FRK may revoke any key, seen or not
  const byRoot = await issueRevocation(
    { firm: FIRM, user: 'bot-7', kid: new Uint8Array(16).fill(7), serial: 7, revokedAtMs: NOW }, w.frkIssuer,
  );
  await t.addRevocation(byRoot.revocation, NOW);
  assert.equal(t.isRevoked('bot-7', new Uint8Array(16).fill(7)), true);
});

test('lookup needs the time: a forgotten nowMs does not skip expiry', async () => {
  const kid = w.users['staff-1'].kid;
  assert.equal(w.trust.lookup('staff-1', kid, NOW).role, ROLE.staff);
  await rejectsWith(assert, async () => w.trust.lookup('staff-1', kid), 'crypto_encoding');
  await rejectsWith(assert, async () => w.trust.lookup('staff-1', kid, '1700000000000'), 'crypto_encoding');
});

test('a non-canonical X25519 key (top bit set, or u >= p) in a certificate is rejected', async () => {
  const k = await fresh(9);
  const top = new Uint8Array(k.xPk);
  top[31] |= 0x80; // the same point, another encoding
  const plusP = new Uint8Array(32); // u = 2 + p (not low order)
  let v = 2n + (1n << 255n) - 19n;
  for (let i = 0; i < 32; i++, v >>= 8n) plusP[i] = Number(v & 0xffn);
  for (const xPk of [top, plusP]) {
    await rejectsWith(assert, issueCert({ ...base(k, { user: 'client-8' }), xPk }, w.users['staff-1'].signer), 'crypto_encoding');
    const c = await signAnyway({ ...base(k, { user: 'client-8' }), xPk }, w.users['staff-1'].signer);
    await rejectsWith(assert, w.trust.addCert(c.cert, NOW), 'crypto_encoding');
  }
  const ok = await issueCert(base(k, { user: 'client-8' }), w.users['staff-1'].signer);
  assert.equal((await w.trust.addCert(ok.cert, NOW)).user, 'client-8');
});

test('an older certificate of a key does not replace a newer one (serial)', async () => {
  const t = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  const b = w.users['bot-1'];
  const wide = await issueCert({ firm: FIRM, role: ROLE.bot, user: 'bot-1', xPk: b.xPk, edPk: b.edPk, serial: 10,
    issuedAtMs: NOW - 1000, scopes: [] }, w.frkIssuer);
  const narrow = await issueCert({ firm: FIRM, role: ROLE.bot, user: 'bot-1', xPk: b.xPk, edPk: b.edPk, serial: 11,
    issuedAtMs: NOW - 1000, scopes: ['M-0009'] }, w.frkIssuer);
  await t.addCert(narrow.cert, NOW);
  assert.deepEqual((await t.addCert(wide.cert, NOW)).scopes, ['M-0009']);
  assert.deepEqual(t.lookup('bot-1', b.kid, NOW).scopes, ['M-0009']);
  await t.addCert(narrow.cert, NOW); // same serial again: fine
  assert.equal(t.lookup('bot-1', b.kid, NOW).serial, 11);
});
