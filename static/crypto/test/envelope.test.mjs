// Message envelopes: every AAD field bound, moved/replayed messages rejected,
// staff-only content unreadable to clients, writers refuse stale epochs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromUtf8, utf8 } from '../bytes.js';
import { decode, encode } from '../encoding.js';
import { AAD, CTYPE, ENVELOPE, ReplayGuard, SIG_INPUT, VIS, decodeBody, encodeBody, openMessage, sealMessage } from '../envelope.js';
import { epochCommit } from '../kdf.js';
import { ManifestVerifier, ZERO_HASH, createManifest } from '../manifest.js';
import { ed25519Sign } from '../primitives.js';
import { FIRM, MATTER, NOW, makeWorld } from './world.mjs';
import { rejectsWith } from './helpers.mjs';

const w = await makeWorld('envelopes');
const mek = w.rand(32);
const verifier = new ManifestVerifier(w.trust);
const m1 = await createManifest(
  { firm: FIRM, matter: MATTER, epoch: 1, prevHash: ZERO_HASH, fekVersion: 1, shareHistory: false, tsMs: NOW,
    members: [{ user: 'client-1', kid: w.users['client-1'].kid, role: 2 }, { user: 'bot-1', kid: w.users['bot-1'].kid, role: 3 }],
    commit: await epochCommit(mek, FIRM, MATTER, 1) },
  w.users['staff-1'].signer,
);
await verifier.accept(m1.manifest, FIRM, MATTER, NOW);
const VIEW = { firm: FIRM, matter: MATTER, thread: 't-1' };
const header = (who, over = {}) => ({
  firm: FIRM, matter: MATTER, thread: 't-1', parent: null, sender: who, senderKid: w.users[who].kid, epoch: 1,
  vis: VIS.PORTAL, ctype: CTYPE.BODY, tsMs: NOW, ...over,
});
const body = encodeBody({
  subject: 'Visa application', text: 'Please upload your passport.',
  attachments: [{ att_id: new Uint8Array(16).fill(1), fk: new Uint8Array(32).fill(2), ct_sha256: new Uint8Array(32).fill(3), size: 5, name: 'a.pdf', mime: 'application/pdf' }],
});
const staffKeys = async () => ({ mek, fir: w.fek.fir, fekVersion: 1 });
const clientKeys = async ({ vis }) => (vis === VIS.PORTAL ? { mek } : {});
const ctx = (keys = staffKeys) => ({ trust: w.trust, verifier, replay: new ReplayGuard(), nowMs: NOW, keys });

test('seal and open a body as staff and as a client member', async () => {
  const s = await sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer, { verifier });
  const r = await openMessage(s.envelope, VIEW, ctx(clientKeys));
  assert.equal(r.body.subject, 'Visa application');
  assert.equal(r.body.attachments[0].name, 'a.pdf');
  assert.equal(r.senderRole, 1);
  const c = await sealMessage(header('client-1'), body, { mek }, w.users['client-1'].signer, { verifier });
  assert.deepEqual(decodeBody((await openMessage(c.envelope, VIEW, ctx())).plaintext).text, 'Please upload your passport.');
  const b = await sealMessage(header('bot-1', { ctype: CTYPE.TEXT }), utf8('Phase: lodged'), { mek }, w.users['bot-1'].signer, { verifier });
  const rb = await openMessage(b.envelope, VIEW, ctx());
  assert.equal(rb.senderRole, 3); // shown as a system update because the certificate says bot
  assert.equal(fromUtf8(rb.plaintext), 'Phase: lodged');
});

test('every single AAD field changed is rejected before decryption', async () => {
  const s = await sealMessage(header('staff-1', { parent: new Uint8Array(16).fill(4) }), body, { mek }, w.users['staff-1'].signer, { verifier });
  const e = decode(ENVELOPE, s.envelope);
  const a = { ...e.aad };
  const changes = {
    firm: ['firm-2', 'crypto_wrong_context'], matter: ['M-0002', 'crypto_wrong_context'], thread: ['t-2', 'crypto_wrong_context'],
    msg_id: [new Uint8Array(16).fill(9), 'crypto_signature'], parent: [null, 'crypto_signature'],
    sender: ['staff-2', 'crypto_uncertified'], sender_kid: [w.users['staff-2'].kid, 'crypto_uncertified'],
    epoch: [2, 'crypto_signature'], vis: [1, 'crypto_signature'], ts_ms: [NOW + 1, 'crypto_signature'],
    ctype: [CTYPE.TEXT, 'crypto_signature'], v: [2, 'crypto_encoding'],
  };
  for (const [k, [val, code]] of Object.entries(changes)) {
    let env;
    if (k === 'v') {
      const raw = new Uint8Array(s.envelope);
      raw[4 + 2 + 4 + 2] = 2; // RTMX tag, aad length, RTM1 tag, v length, v
      env = raw;
    } else {
      env = encode(ENVELOPE, { aad: { ...a, [k]: val }, nonce: e.nonce, ct: e.ct, sig: e.sig });
    }
    await rejectsWith(assert, openMessage(env, VIEW, ctx()), code);
  }
  // sender and sender_kid swapped consistently: the signature still fails
  const swapped = encode(ENVELOPE, { aad: { ...a, sender: 'staff-2', sender_kid: w.users['staff-2'].kid }, nonce: e.nonce, ct: e.ct, sig: e.sig });
  await rejectsWith(assert, openMessage(swapped, VIEW, ctx()), 'crypto_signature');
});

test('a message moved to another thread, even if re-signed fields match, is rejected', async () => {
  const s = await sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer, { verifier });
  await rejectsWith(assert, openMessage(s.envelope, { ...VIEW, thread: 't-2' }, ctx()), 'crypto_wrong_context');
  await rejectsWith(assert, openMessage(s.envelope, { ...VIEW, matter: 'M-0002' }, ctx()), 'crypto_wrong_context');
});

test('a replayed msg_id is rejected; a failed decrypt does not burn the id', async () => {
  const c = ctx();
  const s = await sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer, { verifier });
  await openMessage(s.envelope, VIEW, c);
  await rejectsWith(assert, openMessage(s.envelope, VIEW, c), 'crypto_replay');
  const s2 = await sealMessage(header('staff-1'), body, { mek: w.rand(32) }, w.users['staff-1'].signer, { verifier });
  await rejectsWith(assert, openMessage(s2.envelope, VIEW, c), 'crypto_decrypt');
  assert.equal(c.replay.seen(FIRM, MATTER, s2.msgId), false);
});

test('staff-only content: clients cannot derive the key, clients cannot write it', async () => {
  const n = await sealMessage(header('staff-1', { vis: VIS.STAFF, ctype: CTYPE.TEXT }), utf8('internal note'), { fir: w.fek.fir, fekVersion: 1 }, w.users['staff-1'].signer, { verifier });
  assert.equal(fromUtf8((await openMessage(n.envelope, VIEW, ctx())).plaintext), 'internal note');
  // a reader without the FIR (every client) is crypto_uncertified (docs/security.md §8 step 5, as in Python)
  await rejectsWith(assert, openMessage(n.envelope, VIEW, ctx(clientKeys)), 'crypto_uncertified');
  // even with the MEK, a vis=1 note never decrypts under the message key
  await rejectsWith(assert, openMessage(n.envelope, VIEW, ctx(async () => ({ mek, fir: mek, fekVersion: 1 }))), 'crypto_decrypt');
  const c = await sealMessage(header('client-1', { vis: VIS.STAFF }), body, { fir: w.fek.fir, fekVersion: 1 }, w.users['client-1'].signer, { verifier });
  await rejectsWith(assert, openMessage(c.envelope, VIEW, ctx()), 'crypto_uncertified');
});

test('non-member clients, out-of-scope bots, stale epochs', async () => {
  const c2 = await sealMessage(header('client-2'), body, { mek }, w.users['client-2'].signer, { verifier });
  await rejectsWith(assert, openMessage(c2.envelope, VIEW, ctx()), 'crypto_uncertified');
  // a client that skips its own writer check (a stub verifier): the reader still refuses
  const rogue = { state: () => ({ epoch: 1 }) };
  const b = await sealMessage({ ...header('bot-1'), matter: 'M-0002' }, body, { mek }, w.users['bot-1'].signer, { verifier: rogue });
  await rejectsWith(assert, openMessage(b.envelope, { ...VIEW, matter: 'M-0002' }, ctx()), 'crypto_uncertified');
  await rejectsWith(assert, sealMessage(header('staff-1', { epoch: 2 }), body, { mek }, w.users['staff-1'].signer, { verifier }), 'crypto_stale_epoch');
  // the verifier is required: without it nothing is sealed (a stale epoch would go unnoticed)
  await rejectsWith(assert, sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer), 'crypto_stale_epoch');
  await rejectsWith(assert, sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer, {}), 'crypto_stale_epoch');
  await rejectsWith(assert, sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer,
    { verifier: new ManifestVerifier(w.trust) }), 'crypto_stale_epoch');
});

test('any single bit flip of an envelope is rejected', async () => {
  const s = (await sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer, { verifier })).envelope;
  for (let i = 0; i < s.length * 8; i += 3) {
    const t = new Uint8Array(s);
    t[i >> 3] ^= 1 << (i & 7);
    await assert.rejects(openMessage(t, VIEW, ctx()), (e) => e.name === 'CryptoInvalid', `bit ${i}`);
  }
});

test('the signature covers RTMS(aad, nonce, ct) exactly', async () => {
  const s = await sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer, { verifier });
  assert.deepEqual(s.sigInput, encode(SIG_INPUT, { aad: s.aad, nonce: s.nonce, ct: s.ct }));
  assert.deepEqual(await ed25519Sign(w.users['staff-1'].edSk, s.sigInput), s.sig);
  assert.deepEqual(decode(AAD, s.aad).thread, 't-1');
});

test('bots: a member or a custodian may write; a non-member bot may not', async () => {
  const v2 = new ManifestVerifier(w.trust);
  const m = await createManifest(
    { firm: FIRM, matter: MATTER, epoch: 1, prevHash: ZERO_HASH, fekVersion: 1, shareHistory: false, tsMs: NOW,
      members: [{ user: 'client-1', kid: w.users['client-1'].kid, role: 2 }], commit: await epochCommit(mek, FIRM, MATTER, 1) },
    w.users['staff-1'].signer,
  );
  await v2.accept(m.manifest, FIRM, MATTER, NOW);
  const c = { ...ctx(), verifier: v2 };
  const b = await sealMessage(header('bot-1', { ctype: CTYPE.TEXT }), utf8('x'), { mek }, w.users['bot-1'].signer, { verifier });
  await rejectsWith(assert, openMessage(b.envelope, VIEW, c), 'crypto_uncertified');
  const cu = await sealMessage(header('custodian', { ctype: CTYPE.TEXT }), utf8('rotated'), { mek }, w.users['custodian'].signer, { verifier });
  assert.equal(fromUtf8((await openMessage(cu.envelope, VIEW, c)).plaintext), 'rotated');
});

test('no verified manifest for the epoch: nothing is read (crypto_wrong_context)', async () => {
  const s = await sealMessage(header('staff-1'), body, { mek }, w.users['staff-1'].signer, { verifier });
  await rejectsWith(assert, openMessage(s.envelope, VIEW, { ...ctx(), verifier: new ManifestVerifier(w.trust) }), 'crypto_wrong_context');
  await rejectsWith(assert, openMessage(s.envelope, VIEW, { ...ctx(), verifier: undefined }), 'crypto_wrong_context');
});

test('staff-only content uses the FIR version named by the verified manifest, not the caller', async () => {
  const n = await sealMessage(header('staff-1', { vis: VIS.STAFF, ctype: CTYPE.TEXT }), utf8('note'), { fir: w.fek.fir, fekVersion: 2 }, w.users['staff-1'].signer, { verifier });
  // sealed under version 2, but the manifest of epoch 1 says fek_version 1
  await rejectsWith(assert, openMessage(n.envelope, VIEW, ctx(async () => ({ fir: w.fek.fir, fekVersion: 2 }))), 'crypto_decrypt');
  let asked;
  const m = await sealMessage(header('staff-1', { vis: VIS.STAFF, ctype: CTYPE.TEXT }), utf8('note'), { fir: w.fek.fir, fekVersion: 1 }, w.users['staff-1'].signer, { verifier });
  await openMessage(m.envelope, VIEW, ctx(async (q) => { asked = q.fekVersion; return { fir: w.fek.fir }; }));
  assert.equal(asked, 1);
});
