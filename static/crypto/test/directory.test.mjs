// A malicious directory (the part of a server a client trusts for keys and
// membership): it serves what honest staff produced, then lies. The client
// logic below only uses library calls; each lie must be rejected or flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, utf8 } from '../bytes.js';
import { ROLE, TrustStore, issueCert } from '../certs.js';
import { CTYPE, ReplayGuard, VIS, encodeBody, openMessage, sealMessage } from '../envelope.js';
import { decryptAttachment, encryptAttachment } from '../attachment.js';
import { epochCommit } from '../kdf.js';
import { uikFromSeeds } from '../keys.js';
import { ManifestVerifier, ZERO_HASH, createManifest } from '../manifest.js';
import { KIND, unwrapKey, wrapKey } from '../wrap.js';
import { FIRM, MATTER, NOW, makeWorld } from './world.mjs';
import { rejectsWith } from './helpers.mjs';

const w = await makeWorld('directory');
const staff = w.users['staff-1'];
const c1 = w.users['client-1'];
const c2 = w.users['client-2'];
const member = (u) => ({ user: u.id, kid: u.kid, role: u.role });

/** What honest staff publish: epochs 1 (c1, c2) and 2 (c2 removed), wraps, a message with a file. */
async function honestHistory() {
  const mek1 = w.rand(32);
  const mek2 = w.rand(32);
  const m1 = await createManifest({ firm: FIRM, matter: MATTER, epoch: 1, prevHash: ZERO_HASH, fekVersion: 1,
    members: [member(c1), member(c2)], shareHistory: false, tsMs: NOW, commit: await epochCommit(mek1, FIRM, MATTER, 1) }, staff.signer);
  const m2 = await createManifest({ firm: FIRM, matter: MATTER, epoch: 2, prevHash: m1.hash, fekVersion: 1,
    members: [member(c1)], shareHistory: false, tsMs: NOW + 1, commit: await epochCommit(mek2, FIRM, MATTER, 2) }, staff.signer);
  const wctx = (u, epoch) => ({ firm: FIRM, matter: MATTER, epoch, kind: KIND.MEK, recipient: u.id, recipientKid: u.kid, recipientXPk: u.xPk });
  const staffView = new ManifestVerifier(w.trust); // the writer's own verified epochs
  await staffView.accept(m1.manifest, FIRM, MATTER, NOW);
  await staffView.accept(m2.manifest, FIRM, MATTER, NOW);
  const wrap1 = await wrapKey(wctx(c1, 1), mek1, staff.signer);
  const wrap2 = await wrapKey(wctx(c1, 2), mek2, staff.signer);
  const file = await encryptAttachment(utf8('passport scan'), w.rand);
  const { fk, attId } = file;
  assert.deepEqual(file.blob.subarray(5, 21), attId);
  const body = encodeBody({ subject: 'Docs', text: 'see file', attachments: [
    { att_id: attId, fk, ct_sha256: file.ctSha256, size: file.size, name: 'passport.pdf', mime: 'application/pdf' }] });
  const msg = await sealMessage({ firm: FIRM, matter: MATTER, thread: 't-1', parent: null, sender: staff.id, senderKid: staff.kid,
    epoch: 2, vis: VIS.PORTAL, ctype: CTYPE.BODY, tsMs: NOW + 2 }, body, { mek: mek2 }, staff.signer, { verifier: staffView });
  return { mek1, mek2, m1, m2, wrap1, wrap2, wctx, file, msg };
}

/** A client (client-1) that pinned the FRK from its invite link and trusts nothing else. */
function newClient() {
  const trust = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  return { trust, verifier: new ManifestVerifier(trust), replay: new ReplayGuard() };
}

async function loadCerts(client, certs) {
  for (const c of certs) await client.trust.addCert(c, NOW);
}

const h = await honestHistory();

test('honest directory: the client follows the epochs, unwraps, reads and opens the file', async () => {
  const cl = newClient();
  await loadCerts(cl, [w.certs['staff-1'], w.certs['client-1'], w.certs['client-2']]);
  await cl.verifier.accept(h.m1.manifest, FIRM, MATTER, NOW);
  await cl.verifier.accept(h.m2.manifest, FIRM, MATTER, NOW);
  const mek2 = await unwrapKey(h.wrap2.wrap, h.wctx(c1, 2), c1, cl.trust, NOW, cl.verifier.manifestAt(FIRM, MATTER, 2).commit);
  const r = await openMessage(h.msg.envelope, { firm: FIRM, matter: MATTER, thread: 't-1' },
    { ...cl, nowMs: NOW, keys: async () => ({ mek: mek2 }) });
  const d = r.body.attachments[0];
  const pt = await decryptAttachment(d.fk, d.att_id, h.file.blob, d.ct_sha256, d.size);
  assert.equal(new TextDecoder().decode(pt), 'passport scan');
});

test('injects a member: an uncertified reader in a new manifest is rejected', async () => {
  const cl = newClient();
  await loadCerts(cl, [w.certs['staff-1'], w.certs['client-1'], w.certs['client-2']]);
  await cl.verifier.accept(h.m1.manifest, FIRM, MATTER, NOW);
  // the server made up its own key for "client-3" and signed a manifest with a key it controls
  const spy = await uikFromSeeds(new Uint8Array(32).fill(9), new Uint8Array(32).fill(8));
  const forged = await createManifest({ firm: FIRM, matter: MATTER, epoch: 2, prevHash: h.m1.hash, fekVersion: 1,
    members: [member(c1), { user: 'client-3', kid: spy.kid, role: ROLE.client }], shareHistory: true, tsMs: NOW,
    commit: new Uint8Array(32) }, staff.signer);
  await rejectsWith(assert, cl.verifier.accept(forged.manifest, FIRM, MATTER, NOW), 'crypto_uncertified');
  // and a certificate for the spy signed by a key the server holds is not accepted either
  const fake = await issueCert({ firm: FIRM, role: ROLE.client, user: 'client-3', xPk: spy.xPk, edPk: spy.edPk, serial: 1, issuedAtMs: NOW },
    { id: 'staff-1', kid: staff.kid, edSk: spy.edSk });
  await rejectsWith(assert, cl.trust.addCert(fake.cert, NOW), 'crypto_signature');
});

test('substitutes a public key: a wrap to the server\'s key, or a cert with a swapped key, is rejected', async () => {
  const cl = newClient();
  await loadCerts(cl, [w.certs['staff-1'], w.certs['client-1']]);
  // certificate of client-1 with the X25519 key replaced by the server's
  const spy = await uikFromSeeds(new Uint8Array(32).fill(7), new Uint8Array(32).fill(6));
  const { decode, encode } = await import('../encoding.js');
  const { CERT, CERT_TBS } = await import('../certs.js');
  const c = decode(CERT, w.certs['client-1']);
  const swapped = encode(CERT, { tbs: encode(CERT_TBS, { ...c.tbs, x_pk: spy.xPk }), sig: c.sig });
  // the issuer is known and valid, so the change shows as a bad signature
  await rejectsWith(assert, cl.trust.addCert(swapped, NOW), 'crypto_signature');
  // and the server cannot pass the swapped key off as client-1's kid either
  assert.throws(() => cl.trust.lookup('client-1', spy.kid, NOW), (e) => e.code === 'crypto_uncertified');
  // a wrap the server made to client-1's kid but under its own keys: signature/cert fails
  const forged = await wrapKey(h.wctx(c1, 1), h.mek1, { id: 'staff-1', kid: staff.kid, edSk: spy.edSk });
  await rejectsWith(assert, unwrapKey(forged.wrap, h.wctx(c1, 1), c1, cl.trust, NOW, new Uint8Array(32)), 'crypto_signature');
});

test('moves a message to another thread or matter; replays it', async () => {
  const cl = newClient();
  await loadCerts(cl, [w.certs['staff-1'], w.certs['client-1'], w.certs['client-2']]);
  const ctx = { ...cl, nowMs: NOW, keys: async () => ({ mek: h.mek2 }) };
  // before the epoch's manifest is verified, nothing of that epoch is read
  await rejectsWith(assert, openMessage(h.msg.envelope, { firm: FIRM, matter: MATTER, thread: 't-1' }, ctx), 'crypto_wrong_context');
  await cl.verifier.accept(h.m1.manifest, FIRM, MATTER, NOW);
  await cl.verifier.accept(h.m2.manifest, FIRM, MATTER, NOW);
  await rejectsWith(assert, openMessage(h.msg.envelope, { firm: FIRM, matter: MATTER, thread: 't-2' }, ctx), 'crypto_wrong_context');
  await rejectsWith(assert, openMessage(h.msg.envelope, { firm: FIRM, matter: 'M-0009', thread: 't-1' }, ctx), 'crypto_wrong_context');
  await openMessage(h.msg.envelope, { firm: FIRM, matter: MATTER, thread: 't-1' }, ctx);
  await rejectsWith(assert, openMessage(h.msg.envelope, { firm: FIRM, matter: MATTER, thread: 't-1' }, ctx), 'crypto_replay');
});

test('swaps an attachment blob: the descriptor hash catches it', async () => {
  const d = { fk: h.file.fk, att_id: h.file.attId };
  const same = (n) => (n === 16 ? d.att_id : d.fk); // only an injected rng can reuse a pair
  const other = await encryptAttachment(utf8('something else'), same);
  await rejectsWith(assert, decryptAttachment(d.fk, d.att_id, other.blob, h.file.ctSha256), 'crypto_attachment');
  const otherAtt = await encryptAttachment(utf8('passport scan'), (n) => (n === 16 ? new Uint8Array(16).fill(0xee) : d.fk));
  await rejectsWith(assert, decryptAttachment(d.fk, d.att_id, otherAtt.blob, h.file.ctSha256), 'crypto_attachment');
});

test('after client-2 is removed: stale epoch, rollback and old wraps are refused', async () => {
  // client-2's view: it saw epoch 2 (where it is no longer a member)
  const cl = newClient();
  await loadCerts(cl, [w.certs['staff-1'], w.certs['client-1'], w.certs['client-2']]);
  await cl.verifier.accept(h.m1.manifest, FIRM, MATTER, NOW);
  await cl.verifier.accept(h.m2.manifest, FIRM, MATTER, NOW);
  assert.equal(cl.verifier.isMember(FIRM, MATTER, c2.id, c2.kid), false); // flagged: removed
  // the server serves epoch 1 again (stale) to make someone write under it
  await rejectsWith(assert, cl.verifier.accept(h.m1.manifest, FIRM, MATTER, NOW), 'crypto_rollback');
  await rejectsWith(assert, sealMessage({ firm: FIRM, matter: MATTER, thread: 't-1', parent: null, sender: c1.id, senderKid: c1.kid,
    epoch: 1, vis: VIS.PORTAL, ctype: CTYPE.TEXT, tsMs: NOW }, utf8('hi'), { mek: h.mek1 }, c1.signer, { verifier: cl.verifier }), 'crypto_stale_epoch');
  // a message client-2 writes under epoch 2 (which it cannot hold) is not from a member
  const fake = await sealMessage({ firm: FIRM, matter: MATTER, thread: 't-1', parent: null, sender: c2.id, senderKid: c2.kid,
    epoch: 2, vis: VIS.PORTAL, ctype: CTYPE.TEXT, tsMs: NOW }, utf8('hi'), { mek: h.mek2 }, c2.signer, { verifier: cl.verifier });
  await rejectsWith(assert, openMessage(fake.envelope, { firm: FIRM, matter: MATTER, thread: 't-1' },
    { ...cl, nowMs: NOW, keys: async () => ({ mek: h.mek2 }) }), 'crypto_uncertified');
  // replaying client-1's epoch-1 wrap as if it were epoch 2
  await rejectsWith(assert, unwrapKey(h.wrap1.wrap, h.wctx(c1, 2), c1, cl.trust, NOW, cl.verifier.manifestAt(FIRM, MATTER, 2).commit), 'crypto_wrong_context');
  void concat;
});
