// Generate an rtp1 golden-vector directory from a seed (docs/security.md §13)
// with the JavaScript library. It builds the same small firm as the Python
// generator (root key, staff, clients, bots, escrow key, a matter with three
// epochs) and draws randomness in the same order, so with the same seed the
// two languages write the same bytes; only "generator" differs.
// Tooling only: uses node:fs.

import fs from 'node:fs';
import path from 'node:path';
import { concat, fromHex, toHex, u32, utf8 } from '../bytes.js';
import { compareBytes, encode } from '../encoding.js';
import { deterministicRng } from '../rng.js';
import { D, attachmentKey, epochCommit, internalKey, messageKey } from '../kdf.js';
import { hkdf, ed25519Sign, sha256 } from '../primitives.js';
import { fekFromSecret, fingerprintLink, fingerprintText, frkFromSeed, keyFile, uikFromSeeds } from '../keys.js';
import { CERT, CERT_TBS, FLAG, FRK_ISSUER, ROLE, issueCert, issueRevocation } from '../certs.js';
import { MANIFEST, MANIFEST_TBS, MEMBER, ZERO_HASH } from '../manifest.js';
import { FEK_RECIPIENT, FIRM_MATTER, KIND, WRAP, WRAP_SIG, wrapInfo, wrapKey } from '../wrap.js';
import { AAD, CTYPE, ENVELOPE, SIG_INPUT, VIS, encodeBody, sealEnvelope } from '../envelope.js';
import { CHUNK, HEADER_LEN, attachmentHeader, encryptAttachment } from '../attachment.js';
import { CT_CHUNK } from '../stream.js';
import { FILES, pattern } from './verify.mjs';
import * as lc from './lifecycle_vectors.mjs';
import * as acct from './account_vectors.mjs';

export const DEFAULT_SEED = Uint8Array.from({ length: 32 }, (_, i) => i);
const FIRM = 'firm-1';
const MATTER = 'M-0001';
const OTHER_MATTER = 'M-0002';
const THREAD = 'thread-1';
const NOW_MS = 1_790_000_000_000;
const DAY_MS = 86_400_000;
const ATTACHMENT_SIZES = [0, 1, 65535, 65536, 65537, 5 * 1024 * 1024];
const INLINE_BLOB_MAX = 65537 + 1024;
const LOW_ORDER_POINT = new Uint8Array(32);
// sealEnvelope requires the writer's ManifestVerifier; vectors deliberately seal under any
// epoch (the reject cases are what a reader must refuse), so they state the epoch directly
const SMALL_ORDER_ED25519 = Uint8Array.of(1, ...new Uint8Array(31)); // y = 1: the identity point
const USERS = [
  // [user, role, flags, scopes, issuer]
  ['staff-1', ROLE.staff, FLAG.CERTIFY_CLIENTS, [], 'frk'],
  ['staff-2', ROLE.staff, 0, [], 'frk'],
  ['bot-1', ROLE.bot, 0, [MATTER], 'frk'],
  ['custodian', ROLE.bot, FLAG.CUSTODIAN, [], 'frk'],
  ['client-1', ROLE.client, 0, [], 'staff-1'],
  ['client-2', ROLE.client, 0, [], 'staff-1'],
];
const ROLE_OF = Object.fromEntries(USERS.map(([u, r]) => [u, r]));
const EPOCH_MEMBERS = { 1: ['client-1', 'bot-1'], 2: ['client-1', 'client-2', 'bot-1'], 3: ['client-1', 'bot-1'] };
const h = toHex;

class World {
  static async create(seed) {
    const w = new World();
    w.rng = deterministicRng(seed);
    w.frk = await frkFromSeed(w.rng(32));
    w.ids = {};
    for (const [user] of USERS) {
      const k = await uikFromSeeds(w.rng(32), w.rng(32));
      w.ids[user] = { ...k, signer: { id: user, kid: k.kid, edSk: k.edSk } };
    }
    w.fek = await fekFromSecret(FIRM, 1, w.rng(32), w.rng(32));
    w.meks = { 1: w.rng(32), 2: w.rng(32), 3: w.rng(32) };
    w.certs = {};
    return w;
  }

  signer(name) {
    return name === 'frk' ? { id: FRK_ISSUER, kid: this.frk.kid, edSk: this.frk.edSk } : this.ids[name].signer;
  }

  kid(user) {
    return this.ids[user].kid;
  }
}

async function caseKeys(w) {
  const cases = [{
    name: 'frk', type: 'frk', firm: FIRM, ed_sk: h(w.frk.edSk), ed_pk: h(w.frk.edPk), record: h(w.frk.record),
    fingerprint: h(w.frk.fingerprint), kid: h(w.frk.kid), fingerprint_text: fingerprintText(w.frk.fingerprint),
    link: fingerprintLink(w.frk.fingerprint),
  }];
  for (const [user, role] of USERS) {
    const k = w.ids[user];
    cases.push({
      name: user, type: 'uik', firm: FIRM, user, role, x_sk: h(k.xSk), x_pk: h(k.xPk), ed_sk: h(k.edSk),
      ed_pk: h(k.edPk), record: h(k.record), fingerprint: h(k.fingerprint), kid: h(k.kid),
      key_file: h(keyFile(FIRM, user, k)),
    });
  }
  const f = w.fek;
  cases.push({
    name: 'fek-1', type: 'fek', firm: FIRM, version: f.version, x_sk: h(f.xSk), x_pk: h(f.xPk), fir: h(f.fir),
    record: h(f.record), kid: h(f.kid),
  });
  const attId = w.rng(16);
  const code = w.rng(16);
  const argonOut = w.rng(64);
  const id = (s) => utf8(s);
  const kdfs = [
    ['msg', w.meks[1], new Uint8Array(0), 'rtp1/msg', [id(FIRM), id(MATTER), u32(1)]],
    ['internal', f.fir, new Uint8Array(0), 'rtp1/internal', [id(FIRM), id(MATTER), u32(1)]],
    ['att', w.rng(32), attId, 'rtp1/att', []],
    ['login', argonOut, new Uint8Array(0), 'rtp1/login', []],
    ['kek', argonOut, new Uint8Array(0), 'rtp1/kek', []],
    ['rec', code, new Uint8Array(0), 'rtp1/rec', [id(FIRM), id('client-1')]],
  ];
  for (const [name, ikm, salt, label, ctx] of kdfs) {
    const info = D(label, ...ctx);
    cases.push({
      name: `kdf-${name}`, type: 'kdf', ikm: h(ikm), salt: h(salt), label, ctx: ctx.map(h), info: h(info), length: 32,
      okm: h(await hkdf(ikm, salt, info, 32)),
    });
  }
  cases.push({
    name: 'commit-1', type: 'commit', mek: h(w.meks[1]), firm: FIRM, matter: MATTER, epoch: 1,
    input: h(D('rtp1/commit', FIRM, MATTER, u32(1))), commit: h(await epochCommit(w.meks[1], FIRM, MATTER, 1)),
  });
  return cases;
}

function certCase(name, subject, issuer, tbsObj, tbs, sig) {
  return {
    name, subject, issuer, firm: tbsObj.firm, role: tbsObj.role, user: tbsObj.user, x_pk: h(tbsObj.xPk),
    ed_pk: h(tbsObj.edPk), serial: tbsObj.serial, issued_at_ms: tbsObj.issuedAtMs, expires_at_ms: tbsObj.expiresAtMs,
    flags: tbsObj.flags, scopes: [...tbsObj.scopes].sort(), issuer_id: tbsObj.issuerId, issuer_kid: h(tbsObj.issuerKid),
    tbs: h(tbs), sig: h(sig), cert: h(encode(CERT, { tbs, sig })), now_ms: NOW_MS, expect: 'ok',
  };
}

function certBody(w, user, role, flags, scopes, issuer, serial) {
  const k = w.ids[user];
  const s = w.signer(issuer);
  return {
    firm: FIRM, role, user, xPk: k.xPk, edPk: k.edPk, serial, issuedAtMs: NOW_MS - DAY_MS,
    expiresAtMs: NOW_MS + 365 * DAY_MS, flags, scopes, issuerId: s.id, issuerKid: s.kid,
  };
}

function tbsOf(b) {
  return encode(CERT_TBS, {
    firm: b.firm, role: b.role, user: b.user, x_pk: b.xPk, ed_pk: b.edPk, serial: b.serial, issued_at_ms: b.issuedAtMs,
    expires_at_ms: b.expiresAtMs, flags: b.flags, scopes: b.scopes, issuer: b.issuerId, issuer_kid: b.issuerKid,
  });
}

async function signedCert(w, b, issuer) {
  const tbs = tbsOf(b);
  return { tbs, sig: await ed25519Sign(w.signer(issuer).edSk, tbs) };
}

async function caseCerts(w) {
  const cases = [];
  let serial = 1;
  for (const [user, role, flags, scopes, issuer] of USERS) {
    const b = certBody(w, user, role, flags, scopes, issuer, serial++);
    const c = await issueCert({ ...b, issuedAtMs: b.issuedAtMs, expiresAtMs: b.expiresAtMs }, w.signer(issuer));
    w.certs[user] = { body: b, ...c };
    cases.push(certCase(`cert-${user}`, user, issuer, b, c.tbs, c.sig));
  }
  const reject = (name, subject, issuer, b, tbs, sig, error) =>
    cases.push({ ...certCase(name, subject, issuer, b, tbs, sig), expect: 'reject', error });
  let b = certBody(w, 'client-2', ROLE.client, 0, [], 'staff-2', 100);
  let s = await signedCert(w, b, 'staff-2');
  reject('reject-client-cert-by-plain-staff', 'client-2', 'staff-2', b, s.tbs, s.sig, 'crypto_uncertified');
  const good = w.certs['client-1'];
  b = { ...good.body, user: 'client-9' };
  reject('reject-cert-field-changed', 'client-1', 'staff-1', b, tbsOf(b), good.sig, 'crypto_signature');
  b = { ...certBody(w, 'client-2', ROLE.client, 0, [], 'staff-1', 101), issuedAtMs: NOW_MS - 10 * DAY_MS, expiresAtMs: NOW_MS - DAY_MS };
  s = await signedCert(w, b, 'staff-1');
  reject('reject-cert-expired', 'client-2', 'staff-1', b, s.tbs, s.sig, 'crypto_uncertified');
  b = { ...certBody(w, 'client-2', ROLE.client, 0, [], 'staff-1', 102), xPk: LOW_ORDER_POINT };
  s = await signedCert(w, b, 'staff-1');
  reject('reject-cert-low-order-key', 'client-2', 'staff-1', b, s.tbs, s.sig, 'crypto_low_order');
  // a small-order Ed25519 key (the identity point verifies any message with R = identity, S = 0)
  b = { ...certBody(w, 'client-2', ROLE.client, 0, [], 'staff-1', 104), edPk: SMALL_ORDER_ED25519 };
  s = await signedCert(w, b, 'staff-1');
  reject('reject-cert-small-order-ed25519-key', 'client-2', 'staff-1', b, s.tbs, s.sig, 'crypto_low_order');
  b = certBody(w, 'staff-2', ROLE.staff, 0, [], 'staff-1', 103);
  s = await signedCert(w, b, 'staff-1');
  reject('reject-staff-cert-by-staff', 'staff-2', 'staff-1', b, s.tbs, s.sig, 'crypto_uncertified');
  const rv = { firm: FIRM, user: 'staff-2', kid: w.kid('staff-2'), serial: 2, revokedAtMs: NOW_MS - 1000 };
  const r = await issueRevocation(rv, w.signer('frk'));
  cases.push({
    name: 'revoke-staff-2', type: 'revocation', issuer: 'frk', firm: FIRM, user: rv.user, kid: h(rv.kid),
    serial: rv.serial, revoked_at_ms: rv.revokedAtMs, issuer_id: FRK_ISSUER, issuer_kid: h(w.frk.kid),
    rtbs: h(r.rtbs), sig: h(r.sig), revocation: h(r.revocation), now_ms: NOW_MS, expect: 'ok',
  });
  return cases;
}

const members = (w, users) => users.map((u) => ({ user: u, kid: w.kid(u), role: ROLE_OF[u] }));

async function manifestCase(name, m, mek, p, expect = 'ok', error = null, verifierMatter = MATTER) {
  const c = {
    name, firm: p.firm, matter: p.matter, verifier_matter: verifierMatter, epoch: p.epoch, prev_hash: h(p.prevHash),
    fek_version: p.fekVersion,
    members: p.members.map((x) => ({ user: x.user, kid: h(x.kid), role: x.role }))
      .sort((a, b) => cmpMember(a, b)),
    share_history: p.shareHistory, creator: p.creator, creator_kid: h(p.creatorKid), ts_ms: p.tsMs, mek: h(mek),
    commit: h(p.commit), tbs: h(m.tbs), sig: h(m.sig), manifest: h(m.manifest), hash: h(await sha256(m.tbs)),
    now_ms: NOW_MS, expect,
  };
  if (error) c.error = error;
  return c;
}

function memberBytes(m) {
  return encode(MEMBER, { user: m.user, kid: typeof m.kid === 'string' ? fromHex(m.kid) : m.kid, role: m.role });
}

function cmpMember(a, b) {
  return compareBytes(memberBytes(a), memberBytes(b));
}

async function caseManifests(w) {
  const staff = w.ids['staff-1'];
  const chain = {};
  let prev = ZERO_HASH;
  const body = async (epoch, users, prevHash, mek, matter = MATTER) => ({
    firm: FIRM, matter, epoch, prevHash, fekVersion: 1, members: members(w, users), shareHistory: epoch === 2,
    creator: 'staff-1', creatorKid: staff.kid, tsMs: NOW_MS - (10 - epoch) * 60_000,
    commit: await epochCommit(mek, FIRM, matter, epoch),
  });
  const sign = async (p, signerName = 'staff-1') => {
    const tbs = encode(MANIFEST_TBS, {
      firm: p.firm, matter: p.matter, epoch: p.epoch, prev_hash: p.prevHash, fek_version: p.fekVersion,
      members: p.members, share_history: p.shareHistory, creator: p.creator, creator_kid: p.creatorKid, ts_ms: p.tsMs,
      commit: p.commit,
    });
    const sig = await ed25519Sign(w.ids[signerName].edSk, tbs);
    return { tbs, sig, manifest: encode(MANIFEST, { tbs, sig }), hash: await sha256(tbs) };
  };
  const bodies = {};
  for (const e of [1, 2, 3]) {
    bodies[e] = await body(e, EPOCH_MEMBERS[e], prev, w.meks[e]);
    chain[e] = await sign(bodies[e]);
    prev = chain[e].hash;
  }
  const cases = [await manifestCase('epoch-1', chain[1], w.meks[1], bodies[1])];
  const mallory = await uikFromSeeds(w.rng(32), w.rng(32));
  let p = await body(2, EPOCH_MEMBERS[2], chain[1].hash, w.meks[2]);
  p = { ...p, members: [...p.members, { user: 'mallory', kid: mallory.kid, role: ROLE.client }] };
  cases.push(await manifestCase('reject-uncertified-member', await sign(p), w.meks[2], p, 'reject', 'crypto_uncertified'));
  cases.push(await manifestCase('epoch-2', chain[2], w.meks[2], bodies[2]));
  const otherMek = w.rng(32);
  p = await body(1, ['client-1', 'client-2'], ZERO_HASH, otherMek);
  cases.push(await manifestCase('reject-rollback', await sign(p), otherMek, p, 'reject', 'crypto_rollback'));
  cases.push(await manifestCase('epoch-3', chain[3], w.meks[3], bodies[3]));
  cases.push(await manifestCase('epoch-3-again', chain[3], w.meks[3], bodies[3]));
  const m4 = w.rng(32);
  p = await body(5, ['client-1'], chain[3].hash, m4);
  cases.push(await manifestCase('reject-epoch-gap', await sign(p), m4, p, 'reject', 'crypto_epoch_gap'));
  p = await body(4, ['client-1'], chain[1].hash, m4);
  cases.push(await manifestCase('reject-broken-chain', await sign(p), m4, p, 'reject', 'crypto_chain'));
  p = { ...(await body(4, ['client-1'], chain[3].hash, m4)), creator: 'client-1', creatorKid: w.kid('client-1') };
  cases.push(await manifestCase('reject-signed-by-client', await sign(p, 'client-1'), m4, p, 'reject', 'crypto_uncertified'));
  p = await body(4, ['client-1'], chain[3].hash, m4);
  const good4 = await sign(p);
  const p2 = { ...p, members: members(w, ['client-1', 'client-2']) };
  const t2 = (await sign(p2)).tbs;
  const tampered = { tbs: t2, sig: good4.sig, manifest: encode(MANIFEST, { tbs: t2, sig: good4.sig }) };
  cases.push(await manifestCase('reject-member-added-after-signing', tampered, m4, p2, 'reject', 'crypto_signature'));
  p = await body(4, ['client-1'], chain[3].hash, m4, OTHER_MATTER);
  cases.push(await manifestCase('reject-other-matter', await sign(p), m4, p, 'reject', 'crypto_wrong_context'));
  return { cases, bodies, chain };
}

function wrapCase(name, wr, wrapper, recipient, ctx, key, ephSk, commit, expect = 'ok', error = null, expectCtx = null) {
  const c = {
    name, wrapper, recipient, firm: ctx.firm, matter: ctx.matter, epoch: ctx.epoch, kind: ctx.kind,
    recipient_id: ctx.recipient, recipient_kid: h(ctx.recipientKid), info: h(wr.info), eph_sk: h(ephSk),
    enc: h(wr.enc), ct: h(wr.ct), sig_input: h(wr.sigInput), sig: h(wr.sig), wrap: h(wr.wrap), key: h(key),
    commit: commit ? h(commit) : null, now_ms: NOW_MS, expect,
  };
  if (error) c.error = error;
  if (expectCtx) {
    c.expect_context = {
      firm: expectCtx.firm, matter: expectCtx.matter, epoch: expectCtx.epoch, kind: expectCtx.kind,
      recipient_id: expectCtx.recipient, recipient_kid: h(expectCtx.recipientKid),
    };
  }
  return c;
}

async function caseWraps(w, bodies) {
  const cases = [];
  const mk = async (wrapper, recipient, epoch, kind = KIND.MEK, key = null) => {
    let ctx;
    if (recipient === 'fek-1') {
      ctx = { firm: FIRM, matter: MATTER, epoch, kind, recipient: FEK_RECIPIENT, recipientKid: w.fek.kid, recipientXPk: w.fek.xPk };
    } else {
      const matter = kind === KIND.FIRM ? FIRM_MATTER : MATTER;
      ctx = { firm: FIRM, matter, epoch, kind, recipient, recipientKid: w.kid(recipient), recipientXPk: w.ids[recipient].xPk };
    }
    const k = key ?? (kind === KIND.FIRM ? concat(w.fek.xSk, w.fek.fir) : w.meks[epoch]);
    const eph = w.rng(32);
    return { wr: await wrapKey(ctx, k, w.ids[wrapper].signer, { ephSk: eph }), key: k, eph, ctx };
  };
  for (const e of [1, 2, 3]) {
    for (const r of ['fek-1', ...EPOCH_MEMBERS[e]]) {
      const x = await mk('staff-1', r, e);
      cases.push(wrapCase(`mek-e${e}-${r}`, x.wr, 'staff-1', r, x.ctx, x.key, x.eph, bodies[e].commit));
    }
  }
  let x = await mk('staff-1', 'custodian', 1, KIND.FIRM);
  cases.push(wrapCase('firm-keys-v1-custodian', x.wr, 'staff-1', 'custodian', x.ctx, x.key, x.eph, null));
  const commit1 = bodies[1].commit;
  x = await mk('staff-1', 'client-1', 1);
  const rej = (name, y, wrapper, error, expectCtx = null) =>
    cases.push(wrapCase(name, y.wr, wrapper, 'client-1', y.ctx, y.key, y.eph, commit1, 'reject', error, expectCtx));
  rej('reject-other-recipient', x, 'staff-1', 'crypto_wrong_context', { ...x.ctx, recipient: 'client-2', recipientKid: w.kid('client-2') });
  rej('reject-other-epoch', x, 'staff-1', 'crypto_wrong_context', { ...x.ctx, epoch: 2 });
  rej('reject-other-matter', x, 'staff-1', 'crypto_wrong_context', { ...x.ctx, matter: OTHER_MATTER });
  rej('reject-wrapper-not-staff', await mk('client-2', 'client-1', 1), 'client-2', 'crypto_uncertified');
  rej('reject-wrapper-plain-bot', await mk('bot-1', 'client-1', 1), 'bot-1', 'crypto_uncertified');
  const otherKey = w.rng(32);
  rej('reject-commitment-mismatch', await mk('staff-1', 'client-1', 1, KIND.MEK, otherKey), 'staff-1', 'crypto_commitment');
  x = await mk('staff-1', 'client-1', 1);
  const ct = new Uint8Array(x.wr.ct);
  ct[0] ^= 1;
  const fields = { info: x.wr.info, wrapper: 'staff-1', wrapper_kid: w.kid('staff-1'), enc: x.wr.enc, ct };
  const flipped = { ...x.wr, ct, sigInput: encode(WRAP_SIG, fields), wrap: encode(WRAP, { ...fields, sig: x.wr.sig }) };
  rej('reject-ct-flipped', { ...x, wr: flipped }, 'staff-1', 'crypto_signature');
  const ctx = { firm: FIRM, matter: MATTER, epoch: 1, kind: KIND.MEK, recipient: 'client-1', recipientKid: w.kid('client-1') };
  const info = wrapInfo(ctx);
  const lf = { info, wrapper: 'staff-1', wrapper_kid: w.kid('staff-1'), enc: LOW_ORDER_POINT, ct: w.rng(48) };
  const sigInput = encode(WRAP_SIG, lf);
  const sig = await ed25519Sign(w.ids['staff-1'].edSk, sigInput);
  const low = { info, enc: lf.enc, ct: lf.ct, sigInput, sig, wrap: encode(WRAP, { ...lf, sig }) };
  cases.push(wrapCase('reject-low-order-enc', low, 'staff-1', 'client-1', ctx, new Uint8Array(32), new Uint8Array(32),
    commit1, 'reject', 'crypto_low_order'));
  return cases;
}

async function caseEnvelopes(w) {
  const ok = [];
  const bad = [];
  const firKey = await internalKey(w.fek.fir, FIRM, MATTER, 1);
  const seal = async (sender, epoch, pt, o = {}) => {
    const vis = o.vis ?? VIS.PORTAL;
    const hd = {
      firm: FIRM, matter: MATTER, thread: o.thread ?? THREAD, msgId: w.rng(16), parent: o.parent ?? null, sender,
      senderKid: w.kid(sender), epoch, vis, tsMs: o.ts ?? NOW_MS - 5000, ctype: o.ctype ?? CTYPE.BODY,
    };
    let keyName, key, keys;
    if (vis === VIS.STAFF) {
      keyName = 'fir';
      key = w.fek.fir;
      keys = { fir: w.fek.fir, fekVersion: 1 };
    } else {
      keyName = 'mek';
      key = w.meks[epoch];
      keys = { mek: key };
    }
    const nonce = w.rng(12);
    const s = await sealEnvelope(hd, pt, keys, w.ids[sender].signer, { nonce });
    return { hd, s, keyName, key, pt };
  };
  const envCase = (name, e, body, expect = 'ok', error = null, expectCtx = null) => {
    const { hd, s } = e;
    const c = {
      name, firm: hd.firm, matter: hd.matter, thread: hd.thread, msg_id: h(hd.msgId), parent: h(hd.parent ?? new Uint8Array(0)),
      sender: hd.sender, sender_kid: h(hd.senderKid), epoch: hd.epoch, vis: hd.vis, ts_ms: hd.tsMs, ctype: hd.ctype,
      key_name: e.keyName, key: h(e.key), msg_key: h(s.msgKey), nonce: h(s.nonce), plaintext: h(e.pt), aad: h(s.aad),
      sig_input: h(s.sigInput), ct: h(s.ct), sig: h(s.sig), envelope: h(s.envelope), now_ms: NOW_MS, expect,
    };
    if (body) {
      c.body = {
        subject: body.subject, text: body.text,
        attachments: (body.attachments ?? []).map((a) => ({
          att_id: h(a.att_id), fk: h(a.fk), ct_sha256: h(a.ct_sha256), size: a.size, name: a.name, mime: a.mime,
        })),
      };
    }
    if (error) c.error = error;
    if (expectCtx) c.expect_context = expectCtx;
    return c;
  };
  const blob = await encryptAttachment(utf8('x'), w.rng);
  const { attId, fk } = blob;
  const body1 = {
    subject: 'Visa application', text: 'Hello, here is my passport scan. Grüße ✓',
    attachments: [{ att_id: attId, fk, ct_sha256: blob.ctSha256, size: 1, name: 'passport.pdf', mime: 'application/pdf' }],
  };
  const e1 = await seal('client-1', 3, encodeBody(body1));
  ok.push(envCase('client-message', e1, body1));
  const body2 = { subject: '', text: 'Thanks, received.', attachments: [] };
  const e2 = await seal('staff-1', 3, encodeBody(body2), { parent: e1.hd.msgId });
  ok.push(envCase('staff-reply', e2, body2));
  const e3 = await seal('staff-1', 3, utf8('internal: check the passport expiry'), { vis: VIS.STAFF, ctype: CTYPE.TEXT });
  ok.push(envCase('staff-internal-note', e3, null));
  const body4 = { subject: '', text: 'Status: documents received (system update)', attachments: [] };
  ok.push(envCase('bot-update', await seal('bot-1', 3, encodeBody(body4)), body4));
  const body5 = { subject: 'Earlier', text: 'message from epoch 2', attachments: [] };
  // dated before epoch 3 left client-2 out (after it, a removed member writing: refused)
  ok.push(envCase('client-2-epoch-2', await seal('client-2', 2, encodeBody(body5), { ts: NOW_MS - 450_000 }), body5));

  bad.push(envCase('reject-replay', e1, null, 'reject', 'crypto_replay'));
  bad.push(envCase('reject-moved-thread', await seal('client-1', 3, utf8('moved')), null, 'reject', 'crypto_wrong_context',
    { firm: FIRM, matter: MATTER, thread: 'thread-2' }));
  bad.push(envCase('reject-moved-matter', await seal('client-1', 3, utf8('moved')), null, 'reject', 'crypto_wrong_context',
    { firm: FIRM, matter: OTHER_MATTER, thread: THREAD }));
  const base = await seal('client-1', 3, utf8('field'));
  const rewrites = [
    ['thread', { thread: 'thread-2' }],
    ['msg_id', { msgId: w.rng(16) }],
    ['parent', { parent: e2.hd.msgId }],
    ['epoch', { epoch: 2 }],
    ['ts_ms', { tsMs: base.hd.tsMs + 1 }],
    ['ctype', { ctype: CTYPE.TEXT }],
    ['sender', { sender: 'staff-1', senderKid: w.kid('staff-1') }],
  ];
  for (const [field, over] of rewrites) {
    const hd = { ...base.hd, ...over };
    const aad = encode(AAD, {
      v: 1, firm: hd.firm, matter: hd.matter, thread: hd.thread, msg_id: hd.msgId, parent: hd.parent, sender: hd.sender,
      sender_kid: hd.senderKid, epoch: hd.epoch, vis: hd.vis, ts_ms: hd.tsMs, ctype: hd.ctype,
    });
    const s = {
      ...base.s, aad, sigInput: encode(SIG_INPUT, { aad, nonce: base.s.nonce, ct: base.s.ct }),
      envelope: encode(ENVELOPE, { aad, nonce: base.s.nonce, ct: base.s.ct, sig: base.s.sig }),
    };
    bad.push(envCase(`reject-aad-${field}`, { ...base, hd, s }, null, 'reject', 'crypto_signature',
      { firm: FIRM, matter: MATTER, thread: hd.thread }));
  }
  bad.push(envCase('reject-sender-not-member', await seal('client-2', 3, utf8('removed')), null, 'reject', 'crypto_uncertified'));
  bad.push(envCase('reject-sender-revoked', await seal('staff-2', 3, utf8('revoked')), null, 'reject', 'crypto_revoked'));
  {
    const hd = {
      firm: FIRM, matter: MATTER, thread: THREAD, msgId: w.rng(16), parent: null, sender: 'client-1',
      senderKid: w.kid('client-1'), epoch: 3, vis: VIS.STAFF, tsMs: NOW_MS - 4000, ctype: CTYPE.TEXT,
    };
    const nonce = w.rng(12);
    const s = await sealEnvelope(hd, utf8('sneaky'), { fir: w.fek.fir, fekVersion: 1 }, w.ids['client-1'].signer,
      { nonce });
    bad.push(envCase('reject-client-staff-only', { hd, s, keyName: 'fir', key: w.fek.fir, pt: utf8('sneaky') }, null,
      'reject', 'crypto_uncertified'));
  }
  {
    const e = await seal('client-1', 3, utf8('flip'));
    const ct = new Uint8Array(e.s.ct);
    ct[0] ^= 0x80;
    const sigInput = encode(SIG_INPUT, { aad: e.s.aad, nonce: e.s.nonce, ct });
    const sig = await ed25519Sign(w.ids['client-1'].edSk, sigInput);
    const s = { ...e.s, ct, sigInput, sig, envelope: encode(ENVELOPE, { aad: e.s.aad, nonce: e.s.nonce, ct, sig }) };
    bad.push(envCase('reject-ct-flipped-resigned', { ...e, s }, null, 'reject', 'crypto_decrypt'));
  }
  void firKey;
  void messageKey;
  return [...ok, ...bad];
}

async function caseAttachments(w, out, blobFiles) {
  const cases = [];
  for (const size of ATTACHMENT_SIZES) {
    const { attId, fk, blob, ctSha256 } = await encryptAttachment(pattern(size), w.rng);
    const c = {
      name: `att-${size}`, att_id: h(attId), fk: h(fk), size, plaintext: 'pattern', chunk_key: h(await attachmentKey(fk, attId)),
      header: h(attachmentHeader(attId)), blob_sha256: h(ctSha256), expect: 'ok',
    };
    if (blob.length <= INLINE_BLOB_MAX) c.blob = h(blob);
    else if (blobFiles && out) {
      const name = `att-${size}.bin`;
      fs.writeFileSync(path.join(out, name), blob);
      c.blob_file = name;
    }
    cases.push(c);
  }
  // rejections: order and truncation need two chunks (65536 + 5 bytes), the rest one byte
  cases.push(...(await attachmentRejects(w, CHUNK + 5, true)), ...(await attachmentRejects(w, 1, false)));
  return cases;
}

async function attachmentRejects(w, size, twoChunk) {
  const { attId, fk, blob, ctSha256 } = await encryptAttachment(pattern(size), w.rng);
  const hl = HEADER_LEN;
  const cc = CT_CHUNK;
  let variants;
  if (twoChunk) {
    const first = blob.subarray(hl, hl + cc);
    const last = blob.subarray(hl + cc);
    variants = {
      'truncated-last-chunk': blob.subarray(0, hl + cc),
      reordered: concat(blob.subarray(0, hl), last, first),
      'last-chunk-duplicated': concat(blob, last),
    };
  } else {
    const flip = new Uint8Array(blob);
    flip[hl + 3] ^= 1;
    variants = {
      'truncated-bytes': blob.subarray(0, blob.length - 1),
      extended: concat(blob, blob.subarray(hl)),
      'trailing-byte': concat(blob, Uint8Array.of(0)),
      're-headed': concat(attachmentHeader(w.rng(16)), blob.subarray(hl)),
      'header-only': blob.subarray(0, hl),
      'bit-flip': flip,
    };
  }
  const out = [];
  for (const [name, b] of Object.entries(variants)) {
    out.push({
      name: `reject-${name}-${size}`, att_id: h(attId), fk: h(fk), size, plaintext: 'pattern',
      chunk_key: h(await attachmentKey(fk, attId)), header: h(attachmentHeader(attId)), blob_sha256: h(ctSha256),
      blob: h(b), expect: 'reject', error: 'crypto_attachment',
    });
  }
  return out;
}

/** Write the vector files of §13 into outDir; returns their paths. */
export async function generate(outDir, seed = DEFAULT_SEED, { blobFiles = true } = {}) {
  fs.mkdirSync(outDir, { recursive: true });
  const w = await World.create(seed);
  const files = {};
  files['keys.json'] = await caseKeys(w);
  files['lifecycle.json'] = await lc.caseLifecycle(w, FIRM, NOW_MS, seed);
  files['certs.json'] = await caseCerts(w);
  const m = await caseManifests(w);
  const chain = Object.fromEntries([1, 2, 3].map((e) => [e, { ...m.bodies[e], hash: m.chain[e].hash }]));
  files['manifests.json'] = [...m.cases, ...(await lc.caseHeads(w, chain, NOW_MS, seed))];
  files['wraps.json'] = [...(await caseWraps(w, m.bodies)), ...(await lc.caseSelfMadeFek(w, NOW_MS, seed))];
  files['envelopes.json'] = [...(await caseEnvelopes(w)), ...(await lc.caseRemovedMember(w, chain, NOW_MS, seed))];
  files['attachments.json'] = await caseAttachments(w, outDir, blobFiles);
  files['backups.json'] = await acct.caseBackups(w, FIRM);
  files['recovery.json'] = await acct.caseRecovery(w, FIRM);
  const paths = [];
  for (const name of FILES) {
    const doc = { rtp1_vectors: 1, generator: 'js', file: name, seed: h(seed), cases: files[name] };
    const p = path.join(outDir, name);
    fs.writeFileSync(p, `${JSON.stringify(doc, null, 1)}\n`);
    paths.push(p);
  }
  return paths;
}
