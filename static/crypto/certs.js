// Certificates and revocations (docs/security.md §5) and the TrustStore that
// a client keeps: the pinned firm root key, the certificates it verified and
// the revocations it knows. Staff and bot certificates are signed by the FRK,
// client certificates by a staff member holding CERTIFY_CLIENTS.

import { bytesEqual, toHex } from './bytes.js';
import { decode, encode, schema } from './encoding.js';
import { CryptoInvalid, check } from './errors.js';
import { checkEd25519Public } from './edwards.js';
import { checkX25519Public, fingerprintOf, frkRecord, uikKid } from './keys.js';
import { ed25519Sign, ed25519Verify } from './primitives.js';

export const ROLE = Object.freeze({ staff: 1, client: 2, bot: 3 });
export const ROLE_NAME = Object.freeze({ 1: 'staff', 2: 'client', 3: 'bot' });
export const FLAG = Object.freeze({ CERTIFY_CLIENTS: 0x1, CUSTODIAN: 0x2 });
export const FRK_ISSUER = '#frk';
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

export const CERT_TBS = schema('RTC1', [
  ['firm', 'id'],
  ['role', { type: 'u8', enum: [1, 2, 3] }],
  ['user', 'id'],
  ['x_pk', 'b32'],
  ['ed_pk', 'b32'],
  ['serial', 'u64'],
  ['issued_at_ms', 'u64'],
  ['expires_at_ms', 'u64'],
  ['flags', { type: 'u32', mask: 0x3 }],
  ['scopes', { list: 'id', sorted: true }],
  ['issuer', 'id'],
  ['issuer_kid', 'b16'],
]);
export const CERT = schema('RTCX', [
  ['tbs', { rec: CERT_TBS }],
  ['sig', 'b64'],
]);
export const REVOCATION_TBS = schema('RTV1', [
  ['firm', 'id'],
  ['user', 'id'],
  ['kid', 'b16'],
  ['serial', 'u64'],
  ['revoked_at_ms', 'u64'],
  ['issuer', 'id'],
  ['issuer_kid', 'b16'],
]);
export const REVOCATION = schema('RTVX', [
  ['rtbs', { rec: REVOCATION_TBS }],
  ['sig', 'b64'],
]);

// The firm's revocation list (docs/keys.md): FRK-signed, versioned, time-bound, so a
// server cannot withhold a revocation unnoticed. left/superseded keep what the key signed
// before revoked_at valid; compromised invalidates everything the key ever signed.
export const REASON = Object.freeze({ left: 1, superseded: 2, compromised: 3 });
export const REVOCATION_ENTRY = schema('RTLE', [
  ['user', 'id'],
  ['kid', 'b16'],
  ['revoked_at_ms', 'u64'],
  ['reason', { type: 'u8', enum: [1, 2, 3] }],
]);
export const REVOCATION_LIST_TBS = schema('RTL1', [
  ['firm', 'id'],
  ['version', 'u32'],
  ['issued_at_ms', 'u64'],
  ['next_update_ms', 'u64'],
  ['entries', { list: { rec: REVOCATION_ENTRY }, sorted: true }],
]);
export const REVOCATION_LIST = schema('RTLX', [
  ['tbs', { rec: REVOCATION_LIST_TBS }],
  ['sig', 'b64'],
]);

/** Rules no schema can say (same as Python): one entry per key, next_update not before issue. */
function checkListShape(t) {
  check(Number(t.next_update_ms) >= Number(t.issued_at_ms), 'crypto_encoding', 'next_update is before issued_at');
  const keys = new Set(t.entries.map((e) => certKey(e.user, e.kid)));
  check(keys.size === t.entries.length, 'crypto_encoding', 'a key is on the revocation list twice');
}

/**
 * The to-be-signed RTL1 bytes of p: {firm, version, issuedAtMs, nextUpdateMs,
 * entries: [{user, kid, revokedAtMs, reason (1 left, 2 superseded, 3 compromised)}]}.
 */
export function encodeRevocationList(p) {
  const t = {
    firm: p.firm,
    version: p.version,
    issued_at_ms: p.issuedAtMs,
    next_update_ms: p.nextUpdateMs,
    entries: p.entries.map((e) => ({ user: e.user, kid: e.kid, revoked_at_ms: e.revokedAtMs, reason: e.reason })),
  };
  checkListShape(t);
  return encode(REVOCATION_LIST_TBS, t);
}

/** Sign a revocation list with the FRK ({edSk}). Returns {tbs, sig, list} (bytes). */
export async function signRevocationList(p, frk) {
  const tbs = encodeRevocationList(p);
  const sig = await ed25519Sign(frk.edSk, tbs);
  return { tbs, sig, list: encode(REVOCATION_LIST, { tbs, sig }) };
}

/** Strictly decode an RTLX record: {firm, version, issued_at_ms, next_update_ms, entries, sig, tbs}. */
export function decodeRevocationList(bytes) {
  const l = decode(REVOCATION_LIST, bytes);
  checkListShape(l.tbs);
  return { ...l.tbs, tbs: l.tbs.raw, sig: l.sig };
}

/** Decode and check the FRK signature (freshness and versions are TrustStore's). */
export async function verifyRevocationList(bytes, frkEdPk) {
  const l = decodeRevocationList(bytes);
  check(await ed25519Verify(frkEdPk, l.tbs, l.sig), 'crypto_signature', 'revocation list signature');
  return l;
}

function roleCode(role) {
  return typeof role === 'string' ? ROLE[role] : role;
}

/** Static rule on a tbs that needs no key (same as the Python encoder): clients carry no flags. */
function checkShape(t) {
  if (t.role === ROLE.client) check(t.flags === 0, 'crypto_encoding', 'client certificates carry no flags');
}

/**
 * Issue a certificate. `issuer` is {id: "#frk" | staff user id, kid, edSk}.
 * Returns {tbs, sig, cert} (bytes).
 */
export async function issueCert(p, issuer) {
  const tbsObj = {
    firm: p.firm,
    role: roleCode(p.role),
    user: p.user,
    x_pk: p.xPk,
    ed_pk: p.edPk,
    serial: p.serial,
    issued_at_ms: p.issuedAtMs,
    expires_at_ms: p.expiresAtMs ?? 0,
    flags: p.flags ?? 0,
    scopes: p.scopes ?? [],
    issuer: issuer.id,
    issuer_kid: issuer.kid,
  };
  checkShape(tbsObj);
  const tbs = encode(CERT_TBS, tbsObj);
  await checkX25519Public(tbsObj.x_pk); // as Python's certs.issue: never certify a weak key
  checkEd25519Public(tbsObj.ed_pk);
  const sig = await ed25519Sign(issuer.edSk, tbs);
  return { tbs, sig, cert: encode(CERT, { tbs, sig }) };
}

export async function issueRevocation(p, issuer) {
  const rtbs = encode(REVOCATION_TBS, {
    firm: p.firm,
    user: p.user,
    kid: p.kid,
    serial: p.serial,
    revoked_at_ms: p.revokedAtMs,
    issuer: issuer.id,
    issuer_kid: issuer.kid,
  });
  const sig = await ed25519Sign(issuer.edSk, rtbs);
  return { rtbs, sig, revocation: encode(REVOCATION, { rtbs, sig }) };
}

function certKey(user, kid) {
  return `${user}\u0000${toHex(kid)}`;
}

/** Time validity with 5 minutes of allowed clock skew. */
export function certValidAt(t, nowMs) {
  return t.issued_at_ms <= nowMs + CLOCK_SKEW_MS && (t.expires_at_ms === 0 || nowMs < t.expires_at_ms);
}

/**
 * What a client trusts: the pinned FRK public key of one firm, the
 * certificates it verified, the revocations it knows. Every lookup
 * re-checks time validity and revocation.
 */
export class TrustStore {
  /** @param {{firm: string, frkEdPk: Uint8Array}} p */
  constructor({ firm, frkEdPk }) {
    check(frkEdPk instanceof Uint8Array && frkEdPk.length === 32, 'crypto_encoding', 'FRK public key is 32 bytes');
    this.firm = firm;
    this.frkEdPk = frkEdPk;
    this.frkKid = null;
    this._certs = new Map();
    this._revoked = new Set();
  }

  async _frkKid() {
    if (!this.frkKid) this.frkKid = (await fingerprintOf(frkRecord(this.frkEdPk))).kid;
    return this.frkKid;
  }

  /** Is (user, kid) revoked? */
  isRevoked(user, kid) {
    return this._revoked.has(certKey(user, kid));
  }

  /**
   * Verify a certificate (bytes) at time nowMs and remember it. Returns the
   * decoded tbs with `kid` (the certified key's id) added.
   */
  async addCert(certBytes, nowMs) {
    const c = decode(CERT, certBytes);
    const t = c.tbs;
    check(t.firm === this.firm, 'crypto_wrong_context', 'certificate of another firm');
    checkShape(t);
    await checkX25519Public(t.x_pk);
    checkEd25519Public(t.ed_pk); // a small-order key would verify any message
    let issuerPk;
    if (t.issuer === FRK_ISSUER) {
      check(t.role === ROLE.staff || t.role === ROLE.bot, 'crypto_uncertified', 'the FRK certifies staff and bots only');
      check(bytesEqual(t.issuer_kid, await this._frkKid()), 'crypto_uncertified', 'issued by another root key');
      issuerPk = this.frkEdPk;
    } else {
      check(t.role === ROLE.client, 'crypto_uncertified', 'staff and bot certificates come from the FRK');
      const issuer = this.lookup(t.issuer, t.issuer_kid, nowMs);
      check(issuer.role === ROLE.staff && (issuer.flags & FLAG.CERTIFY_CLIENTS) !== 0, 'crypto_uncertified',
        'issuer may not certify clients');
      issuerPk = issuer.ed_pk;
    }
    check(await ed25519Verify(issuerPk, t.raw, c.sig), 'crypto_signature', 'certificate signature');
    check(certValidAt(t, nowMs), 'crypto_uncertified', 'certificate not valid at this time');
    const kid = await uikKid(t.x_pk, t.ed_pk);
    check(!this.isRevoked(t.user, kid), 'crypto_revoked', 'certified key is revoked');
    // an older certificate of the same key (served again, e.g. with wider scopes or more
    // flags) never replaces a newer one this store has seen (as in Python)
    const known = this._certs.get(certKey(t.user, kid));
    if (known && known.serial > t.serial) return known;
    if (known && known.serial === t.serial) {
      // a serial names one certificate: the same bytes again are a no-op, other bytes (wider
      // scopes, more flags) are refused and the first is kept (never widen; as in Python)
      check(bytesEqual(decode(CERT, known.cert).tbs.raw, t.raw), 'crypto_encoding',
        'another certificate of this key with the same serial');
      return known;
    }
    const entry = Object.freeze({ ...t, kid, cert: c.raw });
    this._certs.set(certKey(t.user, kid), entry);
    return entry;
  }

  /** Verify and remember a revocation. */
  async addRevocation(bytes, nowMs) {
    const r = decode(REVOCATION, bytes);
    const t = r.rtbs;
    check(t.firm === this.firm, 'crypto_wrong_context', 'revocation of another firm');
    let issuerPk;
    if (t.issuer === FRK_ISSUER) {
      check(bytesEqual(t.issuer_kid, await this._frkKid()), 'crypto_uncertified', 'revoked by another root key');
      issuerPk = this.frkEdPk;
    } else {
      const issuer = this.lookup(t.issuer, t.issuer_kid, nowMs);
      check(issuer.role === ROLE.staff && (issuer.flags & FLAG.CERTIFY_CLIENTS) !== 0, 'crypto_uncertified',
        'issuer may not revoke');
      // the target must be a known client certificate: a revocation of a key not yet seen could
      // otherwise pre-revoke a staff or bot key that only the FRK may revoke (as in Python)
      const target = this._certs.get(certKey(t.user, t.kid));
      check(target !== undefined && target.role === ROLE.client, 'crypto_uncertified',
        'staff members revoke known client certificates only');
      issuerPk = issuer.ed_pk;
    }
    check(await ed25519Verify(issuerPk, t.raw, r.sig), 'crypto_signature', 'revocation signature');
    this._revoked.add(certKey(t.user, t.kid));
    return t;
  }

  /** The verified, unrevoked, currently valid certificate of (user, kid); else throws. */
  lookup(user, kid, nowMs) {
    check(kid instanceof Uint8Array && kid.length === 16, 'crypto_encoding', 'kid is 16 bytes');
    if (this.isRevoked(user, kid)) throw new CryptoInvalid('crypto_revoked', `key of ${user} is revoked`);
    const c = this._certs.get(certKey(user, kid));
    check(c !== undefined, 'crypto_uncertified', `no certificate for ${user}`);
    // the time is required: a forgotten nowMs must not silently skip expiry (Python requires it too)
    check(Number.isSafeInteger(nowMs), 'crypto_encoding', 'lookup needs the current time in ms');
    check(certValidAt(c, nowMs), 'crypto_uncertified', `certificate of ${user} not valid now`);
    return c;
  }
}
