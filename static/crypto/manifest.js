// Epoch manifests (docs/security.md §7): who reads a matter in an epoch,
// signed by a staff member or custodian bot, chained by prev_hash. The
// ManifestVerifier remembers the last (epoch, hash) per matter, so a server
// cannot add a reader, skip or roll back an epoch, or fork the chain unseen.

import { bytesEqual, toHex } from './bytes.js';
import { decode, encode, schema } from './encoding.js';
import { CryptoInvalid, check } from './errors.js';
import { FLAG, ROLE } from './certs.js';
import { ed25519Sign, ed25519Verify, sha256 } from './primitives.js';

export const ZERO_HASH = new Uint8Array(32);

export const MEMBER = schema('RTEM', [
  ['user', 'id'],
  ['kid', 'b16'],
  // staff read through the FEK and are never members: role 1 is an encoding error
  ['role', { type: 'u8', enum: [2, 3] }],
]);
export const MANIFEST_TBS = schema('RTE1', [
  ['firm', 'id'],
  ['matter', 'id'],
  ['epoch', { type: 'u32', min: 1 }],
  ['prev_hash', 'b32'],
  ['fek_version', 'u32'],
  ['members', { list: { rec: MEMBER }, sorted: true }],
  ['share_history', 'bool'],
  ['creator', 'id'],
  ['creator_kid', 'b16'],
  ['ts_ms', 'u64'],
  ['commit', 'b32'],
]);
export const MANIFEST = schema('RTEX', [
  ['tbs', { rec: MANIFEST_TBS }],
  ['sig', 'b64'],
]);

// The signed latest-epoch head: a writer needs one of the current epoch no older than this,
// so a server hiding newer epochs (or forking the chain) is noticed even in a quiet matter.
export const HEAD_MAX_AGE_MS = 90 * 86_400_000;
export const HEAD_TBS = schema('RTH1', [
  ['firm', 'id'],
  ['matter', 'id'],
  ['epoch', { type: 'u32', min: 1 }],
  ['hash', 'b32'],
  ['ts_ms', 'u64'],
  ['signer', 'id'],
  ['signer_kid', 'b16'],
]);
export const HEAD = schema('RTHX', [
  ['tbs', { rec: HEAD_TBS }],
  ['sig', 'b64'],
]);

/** Sign a head p: {firm, matter, epoch, hash, tsMs}; signer: {id, kid, edSk}. Returns {tbs, sig, head}. */
export async function signHead(p, signer) {
  const tbs = encode(HEAD_TBS, {
    firm: p.firm, matter: p.matter, epoch: p.epoch, hash: p.hash, ts_ms: p.tsMs, signer: signer.id, signer_kid: signer.kid,
  });
  const sig = await ed25519Sign(signer.edSk, tbs);
  return { tbs, sig, head: encode(HEAD, { tbs, sig }) };
}

/** Strictly decode an RTHX record: {firm, matter, epoch, hash, ts_ms, signer, signer_kid, sig, tbs}. */
export function decodeHead(bytes) {
  const h = decode(HEAD, bytes);
  return { ...h.tbs, tbs: h.tbs.raw, sig: h.sig };
}

/**
 * Build and sign a manifest. p: {firm, matter, epoch, prevHash, fekVersion,
 * members: [{user, kid, role}], shareHistory, tsMs, commit};
 * creator: {id, kid, edSk}. Returns {tbs, sig, manifest, hash}.
 */
export async function createManifest(p, creator) {
  const tbs = encode(MANIFEST_TBS, {
    firm: p.firm,
    matter: p.matter,
    epoch: p.epoch,
    prev_hash: p.prevHash,
    fek_version: p.fekVersion,
    members: p.members.map((m) => ({ user: m.user, kid: m.kid, role: m.role })),
    share_history: p.shareHistory,
    creator: creator.id,
    creator_kid: creator.kid,
    ts_ms: p.tsMs,
    commit: p.commit,
  });
  const sig = await ed25519Sign(creator.edSk, tbs);
  return { tbs, sig, manifest: encode(MANIFEST, { tbs, sig }), hash: await sha256(tbs) };
}

/** hash(manifest) = SHA-256(tbs). */
export async function manifestHash(manifestBytes) {
  return sha256(decode(MANIFEST, manifestBytes).tbs.raw);
}

/**
 * Client-side manifest state: (last_epoch, last_hash) per (firm, matter),
 * plus the last accepted manifest (for membership and commitment lookups).
 */
export class ManifestVerifier {
  /** @param {import('./certs.js').TrustStore} trust */
  constructor(trust) {
    this.trust = trust;
    this._state = new Map();
    this._history = new Map(); // accepted manifests by (firm, matter, epoch)
  }

  _key(firm, matter) {
    return `${firm}\u0000${matter}`;
  }

  /** {epoch, hash, manifest} last accepted for the matter, or undefined. */
  state(firm, matter) {
    return this._state.get(this._key(firm, matter));
  }

  /** Trust on first use of a later epoch (member joining without history): pin (epoch, hash). */
  pin(firm, matter, epoch, hash) {
    this._state.set(this._key(firm, matter), { epoch, hash: new Uint8Array(hash), manifest: null });
  }

  /**
   * Verify a manifest for the expected (firm, matter) and advance the state.
   * A rejected manifest leaves the state unchanged. Returns the decoded tbs.
   * opts.pin: with no state yet, accept a (fully verified) first manifest at a
   * later epoch — trust on first use for a member joining without history,
   * like Python's accept_manifest(..., pin=True).
   */
  async accept(bytes, firm, matter, nowMs, { pin = false } = {}) {
    const m = decode(MANIFEST, bytes);
    const t = m.tbs;
    check(t.firm === firm && t.matter === matter, 'crypto_wrong_context', 'manifest of another matter');
    const creator = this.trust.lookup(t.creator, t.creator_kid, nowMs);
    const custodianBot = creator.role === ROLE.bot && (creator.flags & FLAG.CUSTODIAN) !== 0;
    check(creator.role === ROLE.staff || custodianBot, 'crypto_uncertified', 'manifest creator may not sign manifests');
    // a scoped certificate acts only in its matters, whatever its role (as Python's _check_creator)
    if (creator.scopes.length) {
      check(creator.scopes.includes(matter), 'crypto_uncertified', 'manifest creator not scoped to this matter');
    }
    check(await ed25519Verify(creator.ed_pk, t.raw, m.sig), 'crypto_signature', 'manifest signature');
    for (const mem of t.members) {
      let c;
      try {
        c = this.trust.lookup(mem.user, mem.kid, nowMs);
      } catch (e) {
        if (e instanceof CryptoInvalid && e.code === 'crypto_revoked') throw e;
        throw new CryptoInvalid('crypto_uncertified', `member ${mem.user} has no valid certificate`);
      }
      check(c.role === mem.role, 'crypto_uncertified', `member ${mem.user} certified with another role`);
      if (c.role === ROLE.bot && c.scopes.length) {
        check(c.scopes.includes(matter), 'crypto_uncertified', `bot ${mem.user} not scoped to this matter`);
      }
    }
    const hash = await sha256(t.raw);
    const st = this.state(firm, matter);
    if (!st) {
      // a matter's chain starts at epoch 1 with a zero prev_hash (same code as the Python verifier)
      check(pin || (t.epoch === 1 && bytesEqual(t.prev_hash, ZERO_HASH)), 'crypto_chain',
        'the chain starts at epoch 1 with prev_hash 0^32 (or pin a later start)');
    } else {
      if (t.epoch === st.epoch && bytesEqual(hash, st.hash)) {
        // idempotent re-delivery; for a pin()ned hash this is the first time the manifest itself
        // is seen (and now verified): remember it, or messages of that epoch could never be read
        if (!st.manifest) this._remember(firm, matter, t, hash);
        return t;
      }
      if (t.epoch <= st.epoch) throw new CryptoInvalid('crypto_rollback', `epoch ${t.epoch} <= ${st.epoch}`);
      check(t.epoch === st.epoch + 1, 'crypto_epoch_gap', `epoch ${t.epoch} skips after ${st.epoch}`);
      check(bytesEqual(t.prev_hash, st.hash), 'crypto_chain', 'prev_hash does not chain');
    }
    this._remember(firm, matter, t, hash);
    return t;
  }

  _remember(firm, matter, t, hash) {
    this._state.set(this._key(firm, matter), { epoch: t.epoch, hash, manifest: t });
    this._history.set(`${this._key(firm, matter)}\u0000${t.epoch}`, t);
  }

  /** Is (user, kid) a member of the current manifest of the matter? */
  isMember(firm, matter, user, kid) {
    const st = this.state(firm, matter);
    if (!st || !st.manifest) return false;
    return st.manifest.members.some((m) => m.user === user && bytesEqual(m.kid, kid));
  }

  /** The accepted manifest of an epoch (decoded tbs), or undefined. */
  manifestAt(firm, matter, epoch) {
    return this._history.get(`${this._key(firm, matter)}\u0000${epoch}`);
  }

  /** Was (user, kid) a member in the accepted manifest of that epoch? */
  isMemberAt(firm, matter, epoch, user, kid) {
    const m = this.manifestAt(firm, matter, epoch);
    return !!m && m.members.some((x) => x.user === user && bytesEqual(x.kid, kid));
  }

  /** Hex helper for diagnostics. */
  describe(firm, matter) {
    const st = this.state(firm, matter);
    return st ? `${st.epoch}:${toHex(st.hash)}` : 'none';
  }
}
