// One rule each, in both languages (docs/security.md): the JavaScript half of
// the negative tests; tests/test_crypto_rules.py holds the same cases for Python.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, fromHex, fromUtf8, utf8 } from '../bytes.js';
import { CERT, CERT_TBS, ROLE, TrustStore, issueCert } from '../certs.js';
import { checkEd25519Public } from '../edwards.js';
import { decode, encode, schema } from '../encoding.js';
import { AttachmentEncryptor, HEADER_LEN, attachmentHeader, decryptAttachment, encryptAttachment } from '../attachment.js';
import { CHUNK, CT_CHUNK, chunkNonce } from '../stream.js';
import { attachmentKey, epochCommit } from '../kdf.js';
import { ManifestVerifier, ZERO_HASH, createManifest } from '../manifest.js';
import { CTYPE, ReplayGuard, VIS, encodeBody, openMessage, sealMessage } from '../envelope.js';
import { KIND, unwrapKey, wrapKey } from '../wrap.js';
import { aesGcmEncrypt, ed25519Sign, ed25519Verify, sha256 } from '../primitives.js';
import { FIRM, NOW, makeWorld } from './world.mjs';
import { rejectsWith } from './helpers.mjs';

const w = await makeWorld('rules');
const M1 = 'M-0001';
const M2 = 'M-0002';
// the 8 small-order points (canonical encodings), as in the Python test
const SMALL_ORDER = [
  `01${'00'.repeat(31)}`, `ec${'ff'.repeat(30)}7f`, '00'.repeat(32), `${'00'.repeat(31)}80`,
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
];
const NON_CANONICAL_ED = [`ee${'ff'.repeat(30)}7f`, `01${'00'.repeat(30)}80`];

/** A staff member certified for matter M2 only. */
const m2Staff = await (async () => {
  const k = w.users['staff-2'];
  const c = await issueCert({ firm: FIRM, role: ROLE.staff, user: 'staff-m2', xPk: k.xPk, edPk: k.edPk, serial: 50,
    issuedAtMs: NOW - 1000, scopes: [M2] }, w.frkIssuer);
  await w.trust.addCert(c.cert, NOW);
  return { cert: c.cert, signer: { id: 'staff-m2', kid: k.kid, edSk: k.edSk }, xPk: k.xPk };
})();

async function manifestBy(signer, matter, mek) {
  return createManifest({ firm: FIRM, matter, epoch: 1, prevHash: ZERO_HASH, fekVersion: 1, shareHistory: false, tsMs: NOW,
    members: [{ user: 'client-1', kid: w.users['client-1'].kid, role: ROLE.client }],
    commit: await epochCommit(mek, FIRM, matter, 1) }, signer);
}

// ---- 1. ids never silently change -------------------------------------------------------

test('a leading BOM or a control character in an id is refused; text keeps its BOM', async () => {
  const ID = schema('RTKT', [['id', 'id']]);
  const TEXT = schema('RTKX', [['t', 'text']]);
  for (const bad of ['\ufeffclient-1', '\ufeff', 'client\u0000-1', 'a\nb', 'tab\there', 'del\u007f', 'c1\u0085']) {
    await rejectsWith(assert, async () => encode(ID, { id: bad }), 'crypto_encoding');
    const raw = utf8(bad);
    const blob = concat(utf8('RTKT'), Uint8Array.of(raw.length >> 8, raw.length & 0xff), raw);
    await rejectsWith(assert, async () => decode(ID, blob), 'crypto_encoding');
  }
  // the default TextDecoder would have filed "\ufeffclient-1" as client-1
  assert.equal(new TextDecoder().decode(utf8('\ufeffclient-1')), 'client-1');
  assert.equal(decode(TEXT, encode(TEXT, { t: '\ufeffsubject' })).t, '\ufeffsubject');
  assert.equal(fromUtf8(utf8('\ufeffx')), '\ufeffx');
  assert.equal(decode(ID, encode(ID, { id: 'a\ufeffb' })).id, 'a\ufeffb'); // only a leading BOM is stripped by decoders
});

// ---- 3. certificate scope: one rule for every role --------------------------------------

test('a staff certificate scoped to one matter may not sign, write or wrap in another', async () => {
  const mek = w.rand(32);
  const v = new ManifestVerifier(w.trust);
  const other = await manifestBy(m2Staff.signer, M1, mek);
  await rejectsWith(assert, v.accept(other.manifest, FIRM, M1, NOW), 'crypto_uncertified');
  const own = await manifestBy(m2Staff.signer, M2, mek);
  assert.equal((await v.accept(own.manifest, FIRM, M2, NOW)).epoch, 1);
  // a message in M1 from the M2-scoped staff member
  const ok = await manifestBy(w.users['staff-1'].signer, M1, mek);
  await v.accept(ok.manifest, FIRM, M1, NOW);
  const h = { firm: FIRM, matter: M1, thread: 't-1', parent: null, sender: 'staff-m2', senderKid: m2Staff.signer.kid, epoch: 1,
    vis: VIS.PORTAL, ctype: CTYPE.BODY, tsMs: NOW };
  const s = await sealMessage(h, encodeBody({ subject: '', text: 'x' }), { mek }, m2Staff.signer, { verifier: v });
  const ctx = { trust: w.trust, verifier: v, replay: new ReplayGuard(), nowMs: NOW, keys: async () => ({ mek }) };
  await rejectsWith(assert, openMessage(s.envelope, { firm: FIRM, matter: M1, thread: 't-1' }, ctx), 'crypto_uncertified');
  // a key wrap in M1 by the M2-scoped staff member
  const c1 = w.users['client-1'];
  const wctx = { firm: FIRM, matter: M1, epoch: 1, kind: KIND.MEK, recipient: c1.id, recipientKid: c1.kid, recipientXPk: c1.xPk };
  const wrap = await wrapKey(wctx, mek, m2Staff.signer);
  await rejectsWith(assert, unwrapKey(wrap.wrap, wctx, c1, w.trust, NOW, ok.commit), 'crypto_uncertified');
});

// ---- 4. a serial tie never widens a certificate -----------------------------------------

test('equal serial with different bytes is refused and the first kept; same bytes are a no-op', async () => {
  const t = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  const k = w.users['staff-2'];
  const narrow = await issueCert({ firm: FIRM, role: ROLE.staff, user: 'staff-x', xPk: k.xPk, edPk: k.edPk, serial: 7,
    issuedAtMs: NOW - 1000, scopes: [M2] }, w.frkIssuer);
  const wide = await issueCert({ firm: FIRM, role: ROLE.staff, user: 'staff-x', xPk: k.xPk, edPk: k.edPk, serial: 7,
    issuedAtMs: NOW - 1000, scopes: [] }, w.frkIssuer);
  const flagged = await issueCert({ firm: FIRM, role: ROLE.staff, user: 'staff-x', xPk: k.xPk, edPk: k.edPk, serial: 7,
    issuedAtMs: NOW - 1000, scopes: [M2], flags: 1 }, w.frkIssuer);
  await t.addCert(narrow.cert, NOW);
  await rejectsWith(assert, t.addCert(wide.cert, NOW), 'crypto_encoding');
  await rejectsWith(assert, t.addCert(flagged.cert, NOW), 'crypto_encoding');
  assert.deepEqual(t.lookup('staff-x', k.kid, NOW).scopes, [M2]);
  assert.equal(t.lookup('staff-x', k.kid, NOW).flags, 0);
  assert.deepEqual((await t.addCert(narrow.cert, NOW)).scopes, [M2]);
  const higher = await issueCert({ firm: FIRM, role: ROLE.staff, user: 'staff-x', xPk: k.xPk, edPk: k.edPk, serial: 107,
    issuedAtMs: NOW - 1000, scopes: [] }, w.frkIssuer);
  assert.deepEqual((await t.addCert(higher.cert, NOW)).scopes, []); // a higher serial still replaces
});

// ---- 5. small-order and non-canonical Ed25519 keys are never certified -------------------

test('a small-order Ed25519 key verifies any message, so it is refused', async () => {
  const identity = fromHex(SMALL_ORDER[0]);
  const forged = concat(identity, new Uint8Array(32)); // R = identity, S = 0
  for (const msg of ['pay 10', 'pay 10000']) assert.equal(await ed25519Verify(identity, utf8(msg), forged), true);
  for (const pk of SMALL_ORDER) await rejectsWith(assert, async () => checkEd25519Public(fromHex(pk)), 'crypto_low_order');
  for (const pk of NON_CANONICAL_ED) await rejectsWith(assert, async () => checkEd25519Public(fromHex(pk)), 'crypto_encoding');
  assert.deepEqual(checkEd25519Public(w.users['client-1'].edPk), w.users['client-1'].edPk);
});

test('a weak Ed25519 key is refused by issueCert and by TrustStore.addCert', async () => {
  const k = w.users['client-2'];
  for (const [pk, code] of [[SMALL_ORDER[0], 'crypto_low_order'], [SMALL_ORDER[4], 'crypto_low_order'],
    [NON_CANONICAL_ED[0], 'crypto_encoding']]) {
    const p = { firm: FIRM, role: ROLE.client, user: 'mallory', xPk: k.xPk, edPk: fromHex(pk), serial: 1, issuedAtMs: NOW - 1000 };
    await rejectsWith(assert, issueCert(p, w.users['staff-1'].signer), code);
    const s = w.users['staff-1'].signer;
    const tbs = encode(CERT_TBS, { firm: FIRM, role: ROLE.client, user: 'mallory', x_pk: k.xPk, ed_pk: fromHex(pk), serial: 1,
      issued_at_ms: NOW - 1000, expires_at_ms: 0, flags: 0, scopes: [], issuer: s.id, issuer_kid: s.kid });
    const cert = encode(CERT, { tbs, sig: await ed25519Sign(s.edSk, tbs) }); // an issuer skipping the check
    await rejectsWith(assert, w.trust.addCert(cert, NOW), code);
  }
});

// ---- 2 and 6. attachments: one chunk bound; ct_sha256 required; fresh ids ----------------

test('a final chunk of 65,537 bytes is refused (one bound, as Python)', async () => {
  const attId = new Uint8Array(16).fill(3);
  const fk = new Uint8Array(32).fill(4);
  const head = attachmentHeader(attId);
  const last = await aesGcmEncrypt(await attachmentKey(fk, attId), chunkNonce(0, true), new Uint8Array(CHUNK + 1), head);
  assert.equal(last.length, CT_CHUNK + 1);
  const blob = concat(head, last);
  await rejectsWith(assert, decryptAttachment(fk, attId, blob, await sha256(blob)), 'crypto_attachment');
});

test('ct_sha256 is required to decrypt; the encryptor draws fresh ids; a splice fails the hash', async () => {
  const a = await encryptAttachment(utf8('scan'));
  for (const missing of [undefined, null, new Uint8Array(0), new Uint8Array(31)]) {
    await rejectsWith(assert, decryptAttachment(a.fk, a.attId, a.blob, missing), 'crypto_encoding');
  }
  const e1 = await AttachmentEncryptor.create();
  const e2 = await AttachmentEncryptor.create();
  assert.notDeepEqual([e1.attId, e1.fk], [e2.attId, e2.fk]);
  // two files under one pair (only an injected, repeating rng can make that) splice cleanly
  // at the STREAM layer; the descriptor's ct_sha256 is what refuses the result
  const same = (n) => (n === 16 ? a.attId : a.fk);
  const one = await encryptAttachment(concat(new Uint8Array(CHUNK), utf8('one')), same);
  const two = await encryptAttachment(concat(new Uint8Array(CHUNK).fill(1), utf8('two')), same);
  const cut = HEADER_LEN + CT_CHUNK;
  const spliced = concat(two.blob.subarray(0, cut), one.blob.subarray(cut));
  for (const digest of [one.ctSha256, two.ctSha256]) {
    await rejectsWith(assert, decryptAttachment(a.fk, a.attId, spliced, digest), 'crypto_attachment');
  }
});

// ---- 7. a writer only writes under the newest verified epoch -----------------------------

test('sealMessage requires the writer\'s verifier', async () => {
  const mek = w.rand(32);
  const h = { firm: FIRM, matter: M1, thread: 't-1', parent: null, sender: 'staff-1', senderKid: w.users['staff-1'].kid,
    epoch: 1, vis: VIS.PORTAL, ctype: CTYPE.TEXT, tsMs: NOW };
  const signer = w.users['staff-1'].signer;
  await rejectsWith(assert, sealMessage(h, utf8('x'), { mek }, signer), 'crypto_stale_epoch');
  await rejectsWith(assert, sealMessage(h, utf8('x'), { mek }, signer, { verifier: new ManifestVerifier(w.trust) }),
    'crypto_stale_epoch');
});
