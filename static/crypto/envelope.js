// Message envelopes (docs/security.md §8). The AAD binds every routing field
// (firm, matter, thread, msg_id, parent, sender, key id, epoch, visibility,
// time, content type); the reader rebuilds it from the firm/matter/thread it
// is showing, never from what the server says. Checks run in the spec's
// order and nothing is decrypted before all of them passed.

import { bytesEqual, randomBytes, toHex, utf8, fromUtf8 } from './bytes.js';
import { decode, encode, schema } from './encoding.js';
import { CryptoInvalid, check } from './errors.js';
import { FLAG, ROLE } from './certs.js';
import { internalKey, messageKey } from './kdf.js';
import { aesGcmDecrypt, aesGcmEncrypt, aesKey, ed25519Sign, ed25519Verify } from './primitives.js';

export const VIS = Object.freeze({ PORTAL: 0, STAFF: 1 });
export const CTYPE = Object.freeze({ BODY: 'rtp1/body', TEXT: 'rtp1/text' });

export const AAD = schema('RTM1', [
  ['v', { type: 'u8', eq: 1 }],
  ['firm', 'id'],
  ['matter', 'id'],
  ['thread', 'id'],
  ['msg_id', 'b16'],
  ['parent', 'opt-b16'],
  ['sender', 'id'],
  ['sender_kid', 'b16'],
  ['epoch', 'u32'],
  ['vis', { type: 'u8', enum: [0, 1] }],
  ['ts_ms', 'u64'],
  ['ctype', 'ascii'],
]);
export const SIG_INPUT = schema('RTMS', [
  ['aad', { rec: AAD }],
  ['nonce', 'b12'],
  ['ct', { type: 'bytes', long: true }],
]);
export const ENVELOPE = schema('RTMX', [
  ['aad', { rec: AAD }],
  ['nonce', 'b12'],
  ['ct', { type: 'bytes', long: true }],
  ['sig', 'b64'],
]);
export const ATTACHMENT_DESCRIPTOR = schema('RTAD', [
  ['att_id', 'b16'],
  ['fk', 'b32'],
  ['ct_sha256', 'b32'],
  ['size', 'u64'],
  ['name', 'text'],
  ['mime', 'text'],
]);
export const BODY = schema('RTB1', [
  ['subject', 'text'],
  ['text', { type: 'text', long: true }],
  ['attachments', { list: { rec: ATTACHMENT_DESCRIPTOR } }],
]);

/** Encode a message body {subject, text, attachments: [{att_id, fk, ct_sha256, size, name, mime}]}. */
export function encodeBody(body) {
  return encode(BODY, { subject: body.subject, text: body.text, attachments: body.attachments ?? [] });
}

export function decodeBody(bytes) {
  const b = decode(BODY, bytes);
  return { subject: b.subject, text: b.text, attachments: b.attachments.map((a) => ({ ...a })) };
}

function aadFields(f) {
  return {
    v: 1,
    firm: f.firm,
    matter: f.matter,
    thread: f.thread,
    msg_id: f.msgId ?? f.msg_id,
    parent: f.parent ?? null,
    sender: f.sender,
    sender_kid: f.senderKid ?? f.sender_kid,
    epoch: f.epoch,
    vis: f.vis,
    ts_ms: f.tsMs ?? f.ts_ms,
    ctype: f.ctype,
  };
}

/** The AAD record for these header fields. */
export function buildAad(f) {
  return encode(AAD, aadFields(f));
}

/**
 * The symmetric key of a message: vis 0 from the epoch's MEK, vis 1 from the
 * firm internal root FIR of the epoch manifest's fek_version.
 */
export function keyForMessage(vis, { firm, matter, epoch, mek, fir, fekVersion }) {
  // codes as in docs/security.md §8 step 3 (and Python's Directory): a reader
  // without the epoch's MEK (e.g. a removed client) is crypto_wrong_context, a
  // reader without the FIR (every client) is crypto_uncertified
  if (vis === VIS.PORTAL) {
    check(mek instanceof Uint8Array, 'crypto_wrong_context', 'no epoch key for this message');
    return messageKey(mek, firm, matter, epoch);
  }
  check(fir instanceof Uint8Array && Number.isInteger(fekVersion), 'crypto_uncertified', 'no firm internal key');
  return internalKey(fir, firm, matter, fekVersion);
}

/**
 * Encrypt and sign a message. h: {firm, matter, thread, parent?, sender,
 * senderKid, epoch, vis, ctype, tsMs?, msgId?}; plaintext: bytes (an RTB1
 * body or UTF-8 text); keys: {mek} or {fir, fekVersion}; sender: {edSk}.
 * opts: {verifier (required), nonce, rand} – `verifier` is the writer's
 * ManifestVerifier: an epoch that is not the newest it verified is refused.
 */
export async function sealMessage(h, plaintext, keys, sender, opts = {}) {
  const rand = opts.rand ?? randomBytes;
  // the verifier is required: without it a writer could encrypt under an epoch a removal
  // replaced (Python's Directory.seal_message always checks its own state)
  check(opts.verifier && typeof opts.verifier.state === 'function', 'crypto_stale_epoch',
    'sealMessage needs the ManifestVerifier of the matter');
  const st = opts.verifier.state(h.firm, h.matter);
  check(st && st.epoch === h.epoch, 'crypto_stale_epoch', `epoch ${h.epoch} is not the newest verified one`);
  const fields = { ...h, msgId: h.msgId ?? rand(16), tsMs: h.tsMs ?? Date.now() };
  const aad = buildAad(fields);
  const msgKey = await keyForMessage(h.vis, { firm: h.firm, matter: h.matter, epoch: h.epoch, ...keys });
  const nonce = opts.nonce ?? rand(12);
  const ct = await aesGcmEncrypt(msgKey, nonce, plaintext, aad);
  const sigInput = encode(SIG_INPUT, { aad, nonce, ct });
  const sig = await ed25519Sign(sender.edSk, sigInput);
  return { msgId: fields.msgId, aad, nonce, ct, sigInput, sig, msgKey, envelope: encode(ENVELOPE, { aad, nonce, ct, sig }) };
}

// The AES key of (vis, firm, matter, epoch, fek version) derived and imported once per MEK or
// FIR array: every message of an epoch shares it, and HKDF + import per message was most of
// the cost of opening a thousand. Keyed by the array's identity, its bytes compared on use.
const OPENING_KEYS = new WeakMap();

function openingKey(vis, p) {
  const root = vis === VIS.PORTAL ? p.mek : p.fir;
  if (!(root instanceof Uint8Array)) return keyForMessage(vis, p); // throws the right code
  let entry = OPENING_KEYS.get(root);
  if (!entry || !bytesEqual(entry.bytes, root)) {
    entry = { bytes: root.slice(), keys: new Map() };
    OPENING_KEYS.set(root, entry);
  }
  const ctx = [vis, p.firm, p.matter, p.epoch, p.fekVersion].join('\u0000');
  if (!entry.keys.has(ctx)) {
    const made = keyForMessage(vis, p).then(aesKey);
    made.catch(() => entry.keys.delete(ctx));
    entry.keys.set(ctx, made);
  }
  return entry.keys.get(ctx);
}

/** Remembers the msg_ids accepted per (firm, matter): a replay is rejected. */
export class ReplayGuard {
  constructor() {
    this._seen = new Set();
  }

  _k(firm, matter, msgId) {
    return `${firm}\u0000${matter}\u0000${toHex(msgId)}`;
  }

  seen(firm, matter, msgId) {
    return this._seen.has(this._k(firm, matter, msgId));
  }

  record(firm, matter, msgId) {
    this._seen.add(this._k(firm, matter, msgId));
  }
}

/**
 * Open an envelope as a reader showing view = {firm, matter, thread}.
 * ctx: {trust (TrustStore), verifier (ManifestVerifier: the epoch's manifest must
 * have been accepted), replay (ReplayGuard), nowMs,
 * keys: ({epoch, vis, fekVersion}) => ({mek} | {fir})}; vis 1 uses the FIR of the
 * manifest's fek_version.
 * Returns {header, plaintext, body?, senderRole, senderCert}.
 */
export async function openMessage(envBytes, view, ctx) {
  // 1. strict decode (lengths: nonce 12, sig 64 by the schema; ct >= 16)
  const e = decode(ENVELOPE, envBytes);
  check(e.ct.length >= 16, 'crypto_encoding', 'ciphertext shorter than a tag');
  const a = e.aad;
  // 2. context: the AAD is rebuilt from the reader's view
  check(a.firm === view.firm && a.matter === view.matter && a.thread === view.thread, 'crypto_wrong_context',
    'message belongs to another firm, matter or thread');
  const aad = buildAad({ ...a, firm: view.firm, matter: view.matter, thread: view.thread });
  // 3. sender certificate: role, visibility, scope
  const cert = ctx.trust.lookup(a.sender, a.sender_kid, ctx.nowMs);
  if (cert.role === ROLE.client) check(a.vis === VIS.PORTAL, 'crypto_uncertified', 'clients cannot write staff-only content');
  // a scoped certificate acts only in its matters, whatever its role (as Python's _check_sender)
  if (cert.scopes.length) {
    check(cert.scopes.includes(view.matter), 'crypto_uncertified', 'sender not scoped to this matter');
  }
  // 4. signature over the rebuilt AAD (so a rewritten header field is crypto_signature)
  const sigInput = encode(SIG_INPUT, { aad, nonce: e.nonce, ct: e.ct });
  check(await ed25519Verify(cert.ed_pk, sigInput, e.sig), 'crypto_signature', 'message signature');
  // 5. the epoch's manifest was verified; membership in it
  const manifest = ctx.verifier ? ctx.verifier.manifestAt(view.firm, view.matter, a.epoch) : undefined;
  check(manifest !== undefined, 'crypto_wrong_context', `no verified manifest for epoch ${a.epoch}`);
  const isMember = manifest.members.some((m) => m.user === a.sender && bytesEqual(m.kid, a.sender_kid));
  // staff may always write; a client must be a member; a bot a member or a custodian
  if (cert.role === ROLE.client) check(isMember, 'crypto_uncertified', 'client sender is not a member of this epoch');
  if (cert.role === ROLE.bot) {
    check(isMember || (cert.flags & FLAG.CUSTODIAN) !== 0, 'crypto_uncertified', 'bot is not a member of this epoch');
  }
  // 6. replay, then decrypt, then record
  check(!ctx.replay.seen(view.firm, view.matter, a.msg_id), 'crypto_replay', 'msg_id seen before');
  // staff-only content is under the FIR of the version the verified manifest names, not one the caller picks
  const keys = await ctx.keys({ epoch: a.epoch, vis: a.vis, fekVersion: manifest.fek_version });
  const msgKey = await openingKey(a.vis, {
    firm: view.firm, matter: view.matter, epoch: a.epoch, ...keys, fekVersion: manifest.fek_version,
  });
  const plaintext = await aesGcmDecrypt(msgKey, e.nonce, e.ct, aad);
  let body;
  if (a.ctype === CTYPE.BODY) body = decodeBody(plaintext);
  else if (a.ctype === CTYPE.TEXT) {
    try {
      fromUtf8(plaintext);
    } catch {
      throw new CryptoInvalid('crypto_encoding', 'text message is not UTF-8');
    }
  }
  ctx.replay.record(view.firm, view.matter, a.msg_id);
  return {
    header: { ...a, parent: a.parent },
    plaintext,
    body,
    senderRole: cert.role,
    senderCert: cert,
  };
}

export { utf8, bytesEqual };
