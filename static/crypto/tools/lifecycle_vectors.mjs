// Golden vectors of the key lifecycle (docs/keys.md), generated and verified
// exactly as tests/support/crypto/vectors_lifecycle.py does (same bytes for the
// same seed). lifecycle.json (read right after keys.json: every later use of a
// certificate needs the revocation list): the FRK-signed revocation list and
// escrow record, an invite identity, a key handover with its sas code, and
// their rejections. Appended to other files: signed heads (manifests.json), a
// removed client writing under its old epoch (envelopes.json), a firm-key wrap
// of a self-made escrow key (wraps.json). New cases draw from their own RNG.
// Pure ES module (no Node APIs): the verifier half also runs in Chromium.

import { compareBytes, encode } from '../encoding.js';
import { concat, fromHex, toHex, utf8 } from '../bytes.js';
import { deterministicRng } from '../rng.js';
import { sha256Sync } from '../sha256.js';
import { ed25519Sign } from '../primitives.js';
import { messageKey } from '../kdf.js';
import {
  ESCROW, ESCROW_TBS, identityFromInviteSecret, uikFromSeeds,
} from '../keys.js';
import { REVOCATION_ENTRY, REVOCATION_LIST, REVOCATION_LIST_TBS } from '../certs.js';
import { HEAD, HEAD_TBS } from '../manifest.js';
import { HANDOVER, HANDOVER_TBS, sasCode, signHandover, verifyHandover } from '../recovery.js';
import { CTYPE, VIS, encodeBody, sealEnvelope } from '../envelope.js';
import { FIRM_MATTER, KIND, wrapKey } from '../wrap.js';

export const LIFECYCLE_FILE = 'lifecycle.json';
const DAY = 86_400_000;
const h = toHex;
const u = (x) => fromHex(x);

/** The RNG of the new cases: seeded by SHA-256(seed ‖ suffix ‖ "rtp1/lifecycle"), as in Python. */
export function lifecycleRng(seed, suffix = '') {
  return deterministicRng(sha256Sync(concat(seed, utf8(suffix), utf8('rtp1/lifecycle'))));
}

// ---- generation ---------------------------------------------------------------
function listTbs(b) {
  const entries = b.entries
    .map((e) => ({ user: e.user, kid: e.kid, revoked_at_ms: e.revokedAtMs, reason: e.reason }))
    .sort((x, y) => compareBytes(encode(REVOCATION_ENTRY, x), encode(REVOCATION_ENTRY, y)));
  const tbs = encode(REVOCATION_LIST_TBS, {
    firm: b.firm, version: b.version, issued_at_ms: b.issuedAtMs, next_update_ms: b.nextUpdateMs, entries,
  });
  return { tbs, entries };
}

async function listCase(w, name, signer, b, nowMs, error = '') {
  const { tbs, entries } = listTbs(b);
  const sig = await ed25519Sign(w.signer(signer).edSk, tbs);
  const c = {
    name, type: 'revocation_list', signer, firm: b.firm, version: b.version, issued_at_ms: b.issuedAtMs,
    next_update_ms: b.nextUpdateMs,
    entries: entries.map((e) => ({ user: e.user, kid: h(e.kid), revoked_at_ms: e.revoked_at_ms, reason: e.reason })),
    tbs: h(tbs), sig: h(sig), list: h(encode(REVOCATION_LIST, { tbs, sig })), now_ms: nowMs,
    expect: error ? 'reject' : 'ok',
  };
  if (error) c.error = error;
  return c;
}

async function escrowCase(w, name, signer, b, error = '') {
  const tbs = encode(ESCROW_TBS, { firm: b.firm, version: b.version, x_pk: b.xPk, created_at_ms: b.createdAtMs });
  const sig = await ed25519Sign(w.signer(signer).edSk, tbs);
  const c = {
    name, type: 'escrow', signer, firm: b.firm, version: b.version, x_pk: h(b.xPk), created_at_ms: b.createdAtMs,
    tbs: h(tbs), sig: h(sig), record: h(encode(ESCROW, { tbs, sig })), expect: error ? 'reject' : 'ok',
  };
  if (error) c.error = error;
  return c;
}

async function handoverCase(name, secret, ho, verifyUser, error = '') {
  const t = ho.fields;
  const c = {
    name, type: 'handover', secret: h(secret), firm: t.firm, user: t.user, verify_user: verifyUser,
    old_kid: h(t.old_kid), x_pk: h(t.x_pk), ed_pk: h(t.ed_pk), ts_ms: t.ts_ms, tbs: h(ho.tbs), sig: h(ho.sig),
    handover: h(ho.handover), sas: await sasCode(t.firm, t.user, t.x_pk, t.ed_pk), expect: error ? 'reject' : 'ok',
  };
  if (error) c.error = error;
  return c;
}

export async function caseLifecycle(w, firm, nowMs, seed) {
  const rng = lifecycleRng(seed);
  const entries = [
    { user: 'staff-0', kid: rng(16), revokedAtMs: nowMs - 2 * DAY, reason: 1 },
    { user: 'bot-0', kid: rng(16), revokedAtMs: nowMs - 3 * DAY, reason: 3 },
  ];
  const v1 = { firm, version: 1, issuedAtMs: nowMs - DAY, nextUpdateMs: nowMs + 30 * DAY, entries };
  const cases = [await listCase(w, 'revocation-list-v1', 'frk', v1, nowMs)];
  cases.push(await escrowCase(w, 'escrow-v1', 'frk', { firm, version: w.fek.version, xPk: w.fek.xPk, createdAtMs: nowMs - DAY }));
  const secret = rng(32);
  const invite = await identityFromInviteSecret(secret, firm, 'client-9');
  cases.push({
    name: 'invite-client-9', type: 'invite', secret: h(secret), firm, user: 'client-9', x_sk: h(invite.xSk),
    ed_sk: h(invite.edSk), x_pk: h(invite.xPk), ed_pk: h(invite.edPk), kid: h(invite.kid), expect: 'ok',
  });
  const fresh = await uikFromSeeds(rng(32), rng(32));
  const p = { firm, user: 'client-9', xPk: fresh.xPk, edPk: fresh.edPk, tsMs: nowMs };
  const good = await signHandover(p, invite);
  const fields = { firm, user: 'client-9', old_kid: invite.kid, x_pk: fresh.xPk, ed_pk: fresh.edPk, ts_ms: nowMs };
  cases.push(await handoverCase('handover-client-9', secret, { ...good, fields }, 'client-9'));
  const v2 = { ...v1, version: 2 };
  cases.push(await listCase(w, 'reject-list-signed-by-staff', 'staff-1', v2, nowMs, 'crypto_signature'));
  const stale = { ...v1, version: 2, issuedAtMs: nowMs - 40 * DAY, nextUpdateMs: nowMs - 1 };
  cases.push(await listCase(w, 'reject-list-stale', 'frk', stale, nowMs, 'crypto_stale'));
  cases.push(await listCase(w, 'reject-list-rollback', 'frk', { ...v1, version: 0, entries: [] }, nowMs, 'crypto_rollback'));
  const own = await uikFromSeeds(rng(32), rng(32));
  cases.push(await escrowCase(w, 'reject-escrow-signed-by-staff', 'staff-1',
    { firm, version: w.fek.version + 1, xPk: own.xPk, createdAtMs: nowMs }, 'crypto_signature'));
  cases.push(await handoverCase('reject-handover-other-user', secret, { ...good, fields }, 'client-8', 'crypto_recovery'));
  // the new key signs itself in
  const sig = await ed25519Sign(fresh.edSk, good.tbs);
  const forged = { tbs: good.tbs, sig, handover: encode(HANDOVER, { tbs: good.tbs, sig }), fields };
  cases.push(await handoverCase('reject-handover-not-by-old-key', secret, forged, 'client-9', 'crypto_signature'));
  return cases;
}

async function headCase(w, name, b, nowMs, error = '') {
  const tbs = encode(HEAD_TBS, {
    firm: b.firm, matter: b.matter, epoch: b.epoch, hash: b.hash, ts_ms: b.tsMs, signer: b.signer, signer_kid: w.kid(b.signer),
  });
  const sig = await ed25519Sign(w.ids[b.signer].edSk, tbs);
  const c = {
    name, type: 'head', firm: b.firm, matter: b.matter, epoch: b.epoch, hash: h(b.hash), ts_ms: b.tsMs, signer: b.signer,
    signer_kid: h(w.kid(b.signer)), tbs: h(tbs), sig: h(sig), head: h(encode(HEAD, { tbs, sig })), now_ms: nowMs,
    expect: error ? 'reject' : 'ok',
  };
  if (error) c.error = error;
  return c;
}

/** Appended to manifests.json; chain: {epoch: {firm, matter, hash}} with epochs 1..3. */
export async function caseHeads(w, chain, nowMs, seed) {
  const rng = lifecycleRng(seed, 'heads');
  const last = chain[3];
  const b = (epoch, hash, tsMs, signer = 'staff-1') => ({ firm: last.firm, matter: last.matter, epoch, hash, tsMs, signer });
  const ts = nowMs - 60_000;
  return [
    await headCase(w, 'head-e3', b(3, last.hash, ts), nowMs),
    await headCase(w, 'reject-head-stale', b(3, last.hash, nowMs - 91 * DAY), nowMs, 'crypto_stale'),
    await headCase(w, 'reject-head-fork', b(3, rng(32), ts), nowMs, 'crypto_chain'),
    await headCase(w, 'reject-head-behind', b(2, chain[2].hash, ts), nowMs, 'crypto_stale'),
    await headCase(w, 'reject-head-by-client', b(3, last.hash, ts, 'client-1'), nowMs, 'crypto_uncertified'),
  ];
}

/** Appended to envelopes.json: client-2, left out at epoch 3, writes under epoch 2 after it. */
export async function caseRemovedMember(w, chain, nowMs, seed) {
  const rng = lifecycleRng(seed, 'removed');
  const e2 = chain[2];
  const hd = {
    firm: e2.firm, matter: e2.matter, thread: 'thread-1', msgId: rng(16), parent: null, sender: 'client-2',
    senderKid: w.kid('client-2'), epoch: 2, vis: VIS.PORTAL, tsMs: chain[3].tsMs + 1000, ctype: CTYPE.BODY,
  };
  const pt = encodeBody({ subject: '', text: 'still here', attachments: [] });
  const s = await sealEnvelope(hd, pt, { mek: w.meks[2] }, w.ids['client-2'].signer, { nonce: rng(12) });
  const msgKey = await messageKey(w.meks[2], e2.firm, e2.matter, 2);
  return [{
    name: 'reject-removed-client-after-removal', firm: hd.firm, matter: hd.matter, thread: hd.thread, msg_id: h(hd.msgId),
    parent: '', sender: hd.sender, sender_kid: h(hd.senderKid), epoch: 2, vis: hd.vis, ts_ms: hd.tsMs, ctype: hd.ctype,
    key_name: 'mek', key: h(w.meks[2]), msg_key: h(msgKey), nonce: h(s.nonce), plaintext: h(pt), aad: h(s.aad),
    sig_input: h(s.sigInput), ct: h(s.ct), sig: h(s.sig), envelope: h(s.envelope), now_ms: nowMs, expect: 'reject',
    error: 'crypto_stale_epoch',
  }];
}

/** Appended to wraps.json: staff-1 wraps an escrow key of its own making as version 1. */
export async function caseSelfMadeFek(w, nowMs, seed) {
  const rng = lifecycleRng(seed, 'fek');
  const ctx = {
    firm: w.fek.firm, matter: FIRM_MATTER, epoch: w.fek.version, kind: KIND.FIRM, recipient: 'custodian',
    recipientKid: w.kid('custodian'), recipientXPk: w.ids.custodian.xPk,
  };
  const key = rng(64);
  const eph = rng(32);
  const wr = await wrapKey(ctx, key, w.ids['staff-1'].signer, { ephSk: eph });
  return [{
    name: 'reject-firm-wrap-self-made-fek', wrapper: 'staff-1', recipient: 'custodian', firm: ctx.firm, matter: ctx.matter,
    epoch: ctx.epoch, kind: ctx.kind, recipient_id: ctx.recipient, recipient_kid: h(ctx.recipientKid), info: h(wr.info),
    eph_sk: h(eph), enc: h(wr.enc), ct: h(wr.ct), sig_input: h(wr.sigInput), sig: h(wr.sig), wrap: h(wr.wrap), key: h(key),
    commit: null, now_ms: nowMs, expect: 'reject', error: 'crypto_uncertified',
  }];
}

// ---- verification -------------------------------------------------------------
/** An ok case of lifecycle.json: rebuild the bytes, then use them as a client does. v: the Verifier. */
export async function lifecycleOk(v, c, eq) {
  if (c.type === 'revocation_list') {
    const { tbs } = listTbs({
      firm: c.firm, version: c.version, issuedAtMs: c.issued_at_ms, nextUpdateMs: c.next_update_ms,
      entries: c.entries.map((e) => ({ user: e.user, kid: u(e.kid), revokedAtMs: e.revoked_at_ms, reason: e.reason })),
    });
    eq(tbs, u(c.tbs), 'tbs');
    eq(await ed25519Sign(v.signerSk(c.signer), tbs), u(c.sig), 'sig');
    eq(encode(REVOCATION_LIST, { tbs, sig: u(c.sig) }), u(c.list), 'list');
    await v.trust.setRevocationList(u(c.list), c.now_ms);
  } else if (c.type === 'escrow') {
    const tbs = encode(ESCROW_TBS, { firm: c.firm, version: c.version, x_pk: u(c.x_pk), created_at_ms: c.created_at_ms });
    eq(tbs, u(c.tbs), 'tbs');
    eq(await ed25519Sign(v.signerSk(c.signer), tbs), u(c.sig), 'sig');
    eq(encode(ESCROW, { tbs, sig: u(c.sig) }), u(c.record), 'record');
    if (v.fek && c.version === v.fek.version) eq(u(c.x_pk), u(v.fek.x_pk), 'escrow x_pk is the FEK of keys.json');
    await v.trust.addEscrowRecord(u(c.record));
  } else if (c.type === 'invite') {
    const k = await identityFromInviteSecret(u(c.secret), c.firm, c.user);
    eq([k.xSk, k.edSk, k.xPk, k.edPk, k.kid].map(h), [c.x_sk, c.ed_sk, c.x_pk, c.ed_pk, c.kid], 'invite key');
  } else if (c.type === 'handover') {
    const old = await identityFromInviteSecret(u(c.secret), c.firm, c.user);
    const tbs = encode(HANDOVER_TBS, {
      firm: c.firm, user: c.user, old_kid: u(c.old_kid), x_pk: u(c.x_pk), ed_pk: u(c.ed_pk), ts_ms: c.ts_ms,
    });
    eq(tbs, u(c.tbs), 'tbs');
    const mine = await signHandover({ firm: c.firm, user: c.user, xPk: u(c.x_pk), edPk: u(c.ed_pk), tsMs: c.ts_ms }, old);
    eq(mine.tbs, tbs, 'tbs signed');
    eq(mine.sig, u(c.sig), 'sig');
    eq(mine.handover, u(c.handover), 'handover');
    const got = await verifyHandover(u(c.handover), old, c.firm, c.verify_user);
    eq([got.x_pk, got.ed_pk].map(h), [c.x_pk, c.ed_pk], 'verified new key');
    eq(await sasCode(c.firm, c.user, u(c.x_pk), u(c.ed_pk)), c.sas, 'sas');
  } else {
    throw new Error(`unknown lifecycle case type ${c.type}`);
  }
}

export async function lifecycleReject(v, c) {
  if (c.type === 'revocation_list') return v.trust.setRevocationList(u(c.list), c.now_ms);
  if (c.type === 'escrow') return v.trust.addEscrowRecord(u(c.record));
  if (c.type === 'handover') {
    const old = await identityFromInviteSecret(u(c.secret), c.firm, c.user);
    return verifyHandover(u(c.handover), old, c.firm, c.verify_user);
  }
  throw new Error(`unknown lifecycle reject type ${c.type}`);
}

/** An ok head of manifests.json: rebuild, then accept as the matter's head. */
export async function headOk(v, c, eq) {
  const tbs = encode(HEAD_TBS, {
    firm: c.firm, matter: c.matter, epoch: c.epoch, hash: u(c.hash), ts_ms: c.ts_ms, signer: c.signer, signer_kid: u(c.signer_kid),
  });
  eq(tbs, u(c.tbs), 'tbs');
  eq(await ed25519Sign(v.user(c.signer).edSk, tbs), u(c.sig), 'sig');
  eq(encode(HEAD, { tbs, sig: u(c.sig) }), u(c.head), 'head');
  await v.manifests.acceptHead(u(c.head), c.firm, c.matter, c.now_ms);
}

export async function headReject(v, c) {
  await v.manifests.acceptHead(u(c.head), c.firm, c.matter, c.now_ms);
}
