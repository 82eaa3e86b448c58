// The staff browser's key administration as pure functions over static/crypto
// (docs/keys.md "Flows"): each takes the keys and the verified state it needs
// and returns the records to post, so screens only fetch, call and post, and
// Node tests run every flow without a page. Signers are {id, kid, edSk}: the
// FRK's edSk may be a non-extractable CryptoKey (static/staff/frkstore.js);
// a staff identity is what the keyring unlocked ({id, kid, edSk, xPk, ...}).

import * as C from '../crypto/index.js';
import { principalOf, userId } from '../shared/keyids.js';
import { KEYS } from '../shared/strings_staff.js';

const { bytes, certs, keys, wrap } = C;

export const DAY_MS = 24 * 60 * 60 * 1000;
/** A revocation list is valid 30 days; the org admin's browser re-signs it past half its life. */
export const REVOCATION_LIFE_MS = 30 * DAY_MS;
/** Staff browsers refresh a matter's epoch head older than this (the library's bound is 90 days). */
export const HEAD_REFRESH_MS = 30 * DAY_MS;

/** rtp1 ids of principals (static/shared/keyids.js): staff `s<id>`, clients `c<id>`. */
export const staffUser = (id) => userId('staff', Number(id));
export const clientUser = (contactId) => userId('contact', Number(contactId));
export const contactOf = (user) => {
  const p = principalOf(user);
  return p && p.kind === 'contact' ? p.id : null;
};

const b64 = (b) => bytes.b64url(b);

// ---------------------------------------------------------------- firm root key

/**
 * A new firm root key. Returns {seed, frk}: `seed` goes into the key file
 * (and nowhere else: the caller drops it after the download), `frk` is the
 * public part with fingerprint and human text.
 */
export async function newFirmRoot(rand = bytes.randomBytes) {
  const seed = rand(32);
  const frk = await keys.frkFromSeed(seed);
  return { seed, frk: { ...frk, text: keys.fingerprintText(frk.fingerprint), link: keys.fingerprintLink(frk.fingerprint) } };
}

const KEY_FILE_HEAD = 'rtportal firm root key';

/** The downloadable FRK key file: a short text a person can print and keep offline. */
export function frkKeyFileText(firm, frk, seed) {
  return [
    `${KEY_FILE_HEAD} (rtp1)`,
    KEYS.keyFileWarning,
    `firm: ${firm}`,
    `fingerprint: ${frk.text}`,
    `seed: ${b64(seed)}`,
    '',
  ].join('\n');
}

/** Read a key file back: {firm, seed, frk}; throws on anything else. */
export async function readFrkKeyFile(text) {
  const field = (name) => {
    const m = new RegExp(`^${name}: (.+)$`, 'm').exec(text);
    if (!m) throw new C.CryptoInvalid('crypto_encoding', `key file has no ${name}`);
    return m[1].trim();
  };
  if (!String(text).startsWith(KEY_FILE_HEAD)) throw new C.CryptoInvalid('crypto_encoding', 'not a firm root key file');
  const seed = bytes.fromB64url(field('seed'));
  if (seed.length !== 32) throw new C.CryptoInvalid('crypto_encoding', 'key file seed is 32 bytes');
  const frk = await keys.frkFromSeed(seed);
  const out = { firm: field('firm'), seed, frk: { ...frk, text: keys.fingerprintText(frk.fingerprint) } };
  if (field('fingerprint') !== out.frk.text) throw new C.CryptoInvalid('crypto_encoding', 'key file fingerprint');
  return out;
}

// ---------------------------------------------------------------- firm keys

/** A staff certificate signed by the FRK, allowed to certify clients. */
export async function staffCert(firm, frk, user, staff, nowMs) {
  const { cert } = await certs.issueCert(
    {
      firm,
      role: 'staff',
      user,
      xPk: staff.xPk,
      edPk: staff.edPk,
      serial: nowMs,
      issuedAtMs: nowMs,
      flags: certs.FLAG.CERTIFY_CLIENTS,
    },
    frk,
  );
  return cert;
}

/** A new FEK/FIR of `version`: {xSk, fir, xPk, kid, record, version}. */
export async function newFirmKeys(firm, version, rand = bytes.randomBytes) {
  return keys.fekFromSecret(firm, version, rand(32), rand(32));
}

/** The firm keys (kind 2) wrapped to each staff member [{user, kid, xPk}] by `wrapper` ({id, kid, edSk}). */
async function firmWraps(firm, fek, staff, wrapper) {
  const plain = bytes.concat(fek.xSk, fek.fir);
  const out = [];
  for (const s of staff) {
    const ctx = {
      firm,
      matter: wrap.FIRM_MATTER,
      epoch: fek.version,
      kind: wrap.KIND.FIRM,
      recipient: s.user,
      recipientKid: s.kid,
      recipientXPk: s.xPk,
    };
    out.push((await wrap.wrapKey(ctx, plain, wrapper)).wrap);
  }
  return out;
}

/** The escrow record of `fek` signed by the FRK. */
export async function escrowRecord(firm, fek, frk, nowMs) {
  return (await keys.signEscrowRecord({ firm, version: fek.version, xPk: fek.xPk, createdAtMs: nowMs }, frk)).record;
}

/**
 * A revocation list `version` with `entries` [{user, kid, revokedAtMs, reason}],
 * valid REVOCATION_LIFE_MS from now.
 */
export async function revocationList(firm, frk, version, entries, nowMs) {
  const body = { firm, version, issuedAtMs: nowMs, nextUpdateMs: nowMs + REVOCATION_LIFE_MS, entries };
  return (await certs.signRevocationList(body, frk)).list;
}

/** The decoded list's {version, issuedAtMs, nextUpdateMs, entries} (entries as revocationList takes them). */
export function listFacts(listBytes) {
  const t = certs.decodeRevocationList(listBytes);
  const entries = t.entries.map((e) => ({ user: e.user, kid: e.kid, revokedAtMs: Number(e.revoked_at_ms), reason: e.reason }));
  return { version: t.version, issuedAtMs: Number(t.issued_at_ms), nextUpdateMs: Number(t.next_update_ms), entries };
}

/** Past half its life: the org admin's browser signs the next version with the same entries. */
export function listNeedsResign(facts, nowMs) {
  return nowMs >= facts.issuedAtMs + (facts.nextUpdateMs - facts.issuedAtMs) / 2;
}

/** The next list with the same entries (freshness only). */
export function resignedList(firm, frk, facts, nowMs) {
  return revocationList(firm, frk, facts.version + 1, facts.entries, nowMs);
}

/**
 * Firm set-up by the first org admin, after PUT /keys/root and PUT /keys/me:
 * {cert, escrow: {record, wraps}, list, fek}. `me` is the admin's identity
 * ({user, kid, xPk, edPk, edSk}).
 */
export async function firmSetup({ firm, frk, me, nowMs, rand }) {
  const cert = await staffCert(firm, frk, me.id, me, nowMs);
  const fek = await newFirmKeys(firm, 1, rand);
  const self = [{ user: me.id, kid: me.kid, xPk: me.xPk }];
  const escrow = { record: await escrowRecord(firm, fek, frk, nowMs), wraps: await firmWraps(firm, fek, self, me) };
  const list = await revocationList(firm, frk, 1, [], nowMs);
  return { cert, escrow, list, fek };
}

/**
 * Approving a staff member from GET /keys/pending: their certificate and the
 * current firm keys wrapped to them (POST /keys/certs {certs, wraps}).
 * `pending.public_keys` is the registered UIK public record (base64url).
 */
export async function approveStaff({ firm, frk, fek, me, pending, nowMs }) {
  const key = await pendingKey(pending);
  const staff = { ...key, user: staffUser(pending.staff_id) };
  const cert = await staffCert(firm, frk, staff.user, staff, nowMs);
  const wraps = await firmWraps(firm, fek, [staff], me);
  return { certs: [cert], wraps, fingerprint: key.text };
}

/** The UIK of a pending row: {xPk, edPk, kid, fingerprint, text}. */
export async function pendingKey(pending) {
  const raw = typeof pending.public_keys === 'string' ? bytes.fromB64url(pending.public_keys) : pending.public_keys;
  const rec = C.encoding.decode(keys.UIK_RECORD, raw);
  const { fingerprint, kid } = await keys.fingerprintOf(raw);
  return { xPk: rec.x_pk, edPk: rec.ed_pk, kid, fingerprint, text: keys.fingerprintText(fingerprint) };
}

/**
 * A staff member leaves: the next revocation list (their keys, reason left),
 * a new FEK/FIR version wrapped to the remaining staff [{user, kid, xPk}].
 * The matters' epochs follow one by one (nextEpoch with the new fek).
 */
export async function staffLeaving({ firm, frk, me, facts, leaver, remaining, fekVersion, nowMs, rand }) {
  const entries = [
    ...facts.entries,
    ...leaver.kids.map((kid) => ({ user: leaver.user, kid, revokedAtMs: nowMs, reason: certs.REASON.left })),
  ];
  const list = await revocationList(firm, frk, facts.version + 1, entries, nowMs);
  const fek = await newFirmKeys(firm, fekVersion + 1, rand);
  const escrow = { record: await escrowRecord(firm, fek, frk, nowMs), wraps: await firmWraps(firm, fek, remaining, me) };
  return { list, escrow, fek };
}
