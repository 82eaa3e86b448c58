// Certificates, revocations and the revocation list (docs/security.md §5), and
// the TrustStore that a client keeps: the pinned firm root key, the
// certificates it verified, the revocations and escrow records it knows. Staff
// and bot certificates are signed by the FRK, client certificates by a staff
// member holding CERTIFY_CLIENTS or an unscoped custodian bot.

import { bytesEqual, toHex } from './bytes.js';
import { decode, encode, schema } from './encoding.js';
import { CryptoInvalid, check } from './errors.js';
import { checkEd25519Public } from './edwards.js';
import { checkX25519Public, fingerprintOf, frkRecord, uikKid, verifyEscrowRecord } from './keys.js';
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
  const now = Number(nowMs); // a u64 time beyond 2^53 decodes as a BigInt; far future either way
  return Number(t.issued_at_ms) <= now + CLOCK_SKEW_MS && (t.expires_at_ms === 0 || now < Number(t.expires_at_ms));
}

/**
 * What a client trusts: the pinned FRK public key of one firm, the
 * certificates it verified, the revocations and escrow records it knows.
 *
 * Lifecycle (docs/security.md §5): no certificate is usable without a fresh
 * FRK-signed revocation list (crypto_stale), so a server cannot withhold a
 * revocation unnoticed. Each use names the time of the signed object (atMs: a
 * manifest's or message's ts_ms): expiry and a non-compromise revocation (left,
 * superseded, a client revocation) end a key's use from then on but keep its
 * history verifiable; compromised ends it for everything. A client
 * certificate's issuer is checked again at every use. Same rules as Python's
 * rtportal/crypto/trust.py.
 */
export class TrustStore {
  /** @param {{firm: string, frkEdPk: Uint8Array}} p */
  constructor({ firm, frkEdPk }) {
    check(frkEdPk instanceof Uint8Array && frkEdPk.length === 32, 'crypto_encoding', 'FRK public key is 32 bytes');
    this.firm = firm;
    this.frkEdPk = frkEdPk;
    this.frkKid = null;
    this._certs = new Map();
    this._revoked = new Map(); // client revocations (RTV1): key -> {reason, at}
    this._list = null; // the current revocation list (decoded) and its entries by key
    this._listEntries = new Map();
    this._escrow = new Map(); // version -> decoded escrow record
  }

  async _frkKid() {
    if (!this.frkKid) this.frkKid = (await fingerprintOf(frkRecord(this.frkEdPk))).kid;
    return this.frkKid;
  }

  /** Verify the FRK-signed list and make it current: never an older version, never stale. */
  async setRevocationList(bytes, nowMs) {
    const l = await verifyRevocationList(bytes, this.frkEdPk);
    check(l.firm === this.firm, 'crypto_wrong_context', 'revocation list of another firm');
    if (this._list) {
      check(l.version >= this._list.version, 'crypto_rollback', `revocation list ${l.version} is older than ${this._list.version}`);
      check(l.version > this._list.version || bytesEqual(l.tbs, this._list.tbs), 'crypto_rollback',
        `two different revocation lists of version ${l.version}`);
    }
    check(Number.isSafeInteger(nowMs), 'crypto_encoding', 'setRevocationList needs the current time in ms');
    check(nowMs <= l.next_update_ms, 'crypto_stale', 'the revocation list is past its next_update');
    this._list = l;
    this._listEntries = new Map(l.entries.map((e) => [certKey(e.user, e.kid), { reason: e.reason, at: e.revoked_at_ms }]));
    return l;
  }

  /** The current revocation list (decoded), or null. */
  get revocationList() {
    return this._list;
  }

  _checkFresh(nowMs) {
    check(this._list !== null, 'crypto_stale', 'no revocation list yet: no certificate is usable');
    check(nowMs <= this._list.next_update_ms, 'crypto_stale', 'the revocation list is past its next_update');
  }

  /** An FRK-signed escrow record (RTF1); the newest version is what writers require. */
  async addEscrowRecord(bytes) {
    const r = await verifyEscrowRecord(bytes, this.frkEdPk);
    check(r.firm === this.firm, 'crypto_wrong_context', 'escrow record of another firm');
    const known = this._escrow.get(r.version);
    check(!known || bytesEqual(known.tbs, r.tbs), 'crypto_chain', `two different escrow records of version ${r.version}`);
    this._escrow.set(r.version, r);
    return r;
  }

  /** The verified escrow record of a FEK version; else crypto_uncertified. */
  escrowRecord(version) {
    const r = this._escrow.get(version);
    check(r !== undefined, 'crypto_uncertified', `no FRK-signed escrow record of version ${version}`);
    return r;
  }

  /** The newest escrow version known (0 if none). */
  get newestEscrowVersion() {
    return Math.max(0, ...this._escrow.keys());
  }

  /** The strongest revocation known for a key: compromise (at 0) first, else the earliest. */
  _revocation(user, kid) {
    const k = certKey(user, kid);
    const found = [this._listEntries.get(k), this._revoked.get(k)].filter(Boolean);
    if (!found.length) return null;
    if (found.some((f) => f.reason === REASON.compromised)) return { reason: REASON.compromised, at: 0 };
    return found.reduce((a, b) => (b.at < a.at ? b : a));
  }

  /** Is any revocation of (user, kid) known? */
  isRevoked(user, kid) {
    return this._revocation(user, kid) !== null;
  }

  _checkNotRevoked(user, kid, atMs) {
    const r = this._revocation(user, kid);
    if (!r) return;
    if (r.reason === REASON.compromised) throw new CryptoInvalid('crypto_revoked', `key of ${user} is compromised`);
    if (Number(atMs) >= r.at) throw new CryptoInvalid('crypto_revoked', `key of ${user} is revoked since ${r.at}`);
  }

  /**
   * The issuer of a client certificate, usable when it issued: a CERTIFY_CLIENTS
   * staff member or an unscoped custodian bot; leaving later does not undo what
   * it issued, a compromise does.
   */
  _checkIssuer(t) {
    const issuer = this._certs.get(certKey(t.issuer, t.issuer_kid));
    check(issuer !== undefined, 'crypto_uncertified', `no certificate for the issuer ${t.issuer}`);
    const certifier = issuer.role === ROLE.staff && (issuer.flags & FLAG.CERTIFY_CLIENTS) !== 0;
    const custodian = issuer.role === ROLE.bot && (issuer.flags & FLAG.CUSTODIAN) !== 0 && issuer.scopes.length === 0;
    check(certifier || custodian, 'crypto_uncertified', 'issuer may not certify clients');
    this._checkNotRevoked(issuer.user, issuer.kid, t.issued_at_ms);
    check(certValidAt(issuer, t.issued_at_ms), 'crypto_uncertified', "issuer's certificate was not valid when it issued");
    return issuer;
  }

  /**
   * Verify a certificate (bytes) and remember it. Returns the decoded tbs with
   * `kid` (the certified key's id) added. An expired certificate, or one of a
   * key revoked (not compromised) after it was issued, is kept: old history
   * signed with it stays verifiable; lookup() decides each use by its time.
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
      issuerPk = this._checkIssuer(t).ed_pk;
    }
    check(await ed25519Verify(issuerPk, t.raw, c.sig), 'crypto_signature', 'certificate signature');
    check(Number.isSafeInteger(nowMs), 'crypto_encoding', 'addCert needs the current time in ms');
    check(Number(t.issued_at_ms) <= nowMs + CLOCK_SKEW_MS, 'crypto_uncertified', 'certificate issued in the future');
    check(certValidAt(t, t.issued_at_ms), 'crypto_uncertified', 'certificate expires before it is issued');
    const kid = await uikKid(t.x_pk, t.ed_pk);
    this._checkNotRevoked(t.user, kid, t.issued_at_ms);
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

  /**
   * Verify and remember a client revocation (RTV1): the key's use ends at
   * revoked_at_ms. Signed by a CERTIFY_CLIENTS staff member or an unscoped
   * custodian bot (known client certificates only), or by the FRK (any key;
   * then nothing the key signed stays valid: the FRK's usual channel is the list).
   */
  async addRevocation(bytes, nowMs) {
    const r = decode(REVOCATION, bytes);
    const t = r.rtbs;
    check(t.firm === this.firm, 'crypto_wrong_context', 'revocation of another firm');
    let issuerPk;
    let entry;
    if (t.issuer === FRK_ISSUER) {
      check(bytesEqual(t.issuer_kid, await this._frkKid()), 'crypto_uncertified', 'revoked by another root key');
      issuerPk = this.frkEdPk;
      entry = { reason: REASON.compromised, at: 0 };
    } else {
      const issuer = this.lookup(t.issuer, t.issuer_kid, nowMs, t.revoked_at_ms);
      const certifier = issuer.role === ROLE.staff && (issuer.flags & FLAG.CERTIFY_CLIENTS) !== 0;
      const custodian = issuer.role === ROLE.bot && (issuer.flags & FLAG.CUSTODIAN) !== 0 && issuer.scopes.length === 0;
      check(certifier || custodian, 'crypto_uncertified', 'issuer may not revoke');
      // the target must be a known client certificate: a revocation of a key not yet seen could
      // otherwise pre-revoke a staff or bot key that only the FRK may revoke (as in Python)
      const target = this._certs.get(certKey(t.user, t.kid));
      check(target !== undefined && target.role === ROLE.client, 'crypto_uncertified',
        'staff members revoke known client certificates only');
      issuerPk = issuer.ed_pk;
      entry = { reason: REASON.superseded, at: t.revoked_at_ms };
    }
    check(await ed25519Verify(issuerPk, t.raw, r.sig), 'crypto_signature', 'revocation signature');
    const k = certKey(t.user, t.kid);
    const known = this._revoked.get(k);
    if (!known || entry.at < known.at) this._revoked.set(k, entry); // a compromise is stored at 0
    return t;
  }

  /**
   * The certificate of (user, kid) if usable for an object made at atMs
   * (default: nowMs); nowMs is the reader's clock (the revocation list must be
   * fresh). Else throws crypto_stale, crypto_revoked or crypto_uncertified.
   */
  lookup(user, kid, nowMs, atMs = nowMs) {
    check(kid instanceof Uint8Array && kid.length === 16, 'crypto_encoding', 'kid is 16 bytes');
    // the time is required: a forgotten nowMs must not silently skip expiry (Python requires it too)
    check(Number.isSafeInteger(nowMs), 'crypto_encoding', 'lookup needs the current time in ms');
    check(Number.isSafeInteger(atMs) || typeof atMs === 'bigint', 'crypto_encoding', 'lookup needs the time of the object in ms');
    this._checkFresh(nowMs);
    this._checkNotRevoked(user, kid, atMs);
    const c = this._certs.get(certKey(user, kid));
    check(c !== undefined, 'crypto_uncertified', `no certificate for ${user}`);
    check(certValidAt(c, atMs), 'crypto_uncertified', `certificate of ${user} not valid at ${atMs}`);
    if (c.role === ROLE.client) this._checkIssuer(c);
    return c;
  }

  /**
   * For signatures without a time of their own (key wraps): usable now, or at
   * thenMs (the epoch's or escrow version's time) if it left or expired since.
   */
  lookupNowOrThen(user, kid, nowMs, thenMs) {
    try {
      return this.lookup(user, kid, nowMs);
    } catch (e) {
      if (!(e instanceof CryptoInvalid) || !['crypto_revoked', 'crypto_uncertified'].includes(e.code)) throw e;
      return this.lookup(user, kid, nowMs, thenMs);
    }
  }
}
