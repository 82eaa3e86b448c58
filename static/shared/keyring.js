// The browser's keyring: this person's rtp1 identity and everything the page
// needs to read and write the end-to-end encrypted conversation
// (docs/keys.md; formats in docs/security.md; library in static/crypto/).
//
// PUBLIC INTERFACE (used by the client pages, the staff matter stream and the
// staff admin flows of static/staff/):
//
//   openKeyring({firm, user})                      -> Keyring | null   (from IndexedDB)
//   unlockWithPassword({firm, user, password, kdf, backupBytes, kek?})
//                                                  -> Keyring          (opens the server-held backup)
//   createIdentity({firm, user, frkFingerprint?})  -> PendingIdentity  (a fresh identity)
//   identityFromInvite({firm, user, secret, frkFingerprint})
//                                                  -> PendingIdentity  (the invite-derived identity)
//   PendingIdentity: .publicKeys (bytes: the RTKU record), .kid, .fingerprint, .identity,
//     await .createBackup(password, kdf)  -> {backup (bytes), loginSecret (b64url), kek}
//     await .store()                      -> Keyring (keys imported non-extractable, seeds wiped)
//   forgetAll()                                    (sign-out of a page that does not know who)
//
//   Keyring
//     .firm, .user                 the firm slug and my rtp1 id ('c12', 's3')
//     .identity                    {id, kid, xSk, edSk, xPk, edPk, record, fingerprint}: what the
//                                  static/crypto signing and unwrapping functions take (issuer,
//                                  creator, wrapper, `me`); xSk/edSk are non-extractable CryptoKeys
//     .frkFingerprint              the pinned firm root fingerprint (32 bytes) or null (unpinned)
//     .trust, .verifier            the verified TrustStore and ManifestVerifier (after syncFirm)
//     .firmKeys                    Map FEK version -> {fek, fir} (staff, after syncFirm)
//     .keyChanges                  [{user, kid}] people whose certified key changed since last visit
//     .problems                    [{what, code}] records that did not verify on the last sync
//     await .syncFirm()            GET /api/v1/keys/firm, verify everything, persist trust state
//     await .syncMatter(ref)       GET /api/v1/keys/matters/{ref}, verify the chain, unwrap MEKs
//     .certified()                 my own certificate (after syncFirm/syncMatter) or null
//     await .addBound(ref, identity), .signerFor(ref), .unbind(ref)
//                                  a second matter's invite key (docs/keys.md "A second matter"):
//                                  signs and reads in ref until my identity is in its epoch
//     .epochOf(ref)                newest verified epoch of a matter, or 0
//     .canSeal(ref)                an epoch verified now or on this device's last sync (seal re-verifies)
//     await .seal(ref, thread, bodyObj, {vis, parent})  -> envelope bytes (Uint8Array)
//                                  bodyObj {text, subject?, attachments?}; vis 0 portal, 1 staff-only
//     await .open(ref, thread, blob, {seq})  -> {ok: true, sender, role, body, vis, msgId, header}
//                                            | {ok: false, code, moved?}   (never any content then;
//                                              moved: signed for another matter or thread)
//     await .sealTagName(tag, name)  -> name_blob (base64url): a tag name under the firm internal key
//     await .openTagName(tag, blob)  -> the name, verified and decrypted (throws CryptoInvalid)
//                                  (static/shared/tagnames.js: the SDK's format, rtportal/sdk/tags.py)
//     .chainAlarms                 Map ref -> crypto_rollback | crypto_chain: the server served
//                                  another chain than the one remembered; open/seal refuse it
//     .pinFrk(fingerprint)         pin the root (firm set-up, or a staff device's first certified
//                                  sync); sealed into my backup at once when .pinSealer is set
//     .writeBlock(ref)             the chainAlarms code of the matter (seal refuses), or null
//     await .forget()              sign-out: delete this identity and trust state from IndexedDB
//     .gone                        true once it saves nothing more: forgotten, or a save found its
//                                  record removed or stored anew (another gen) by another tab
//
// Non-extractable: the identity's X25519 and Ed25519 private keys are WebCrypto
// CryptoKeys created with extractable=false; IndexedDB stores them as such.
// Their seed bytes exist only while the backup is made or opened, then are
// overwritten. Matter epoch keys, FEK and FIR stay byte arrays in this page's
// memory (never stored): the library derives message keys from them with
// HKDF, which WebCrypto cannot do over a non-extractable AES key. They are
// unwrapped again with the non-extractable identity key on each visit.

import * as C from '../crypto/index.js';
import { b64url, bytesEqual, fromB64url, toHex } from '../crypto/bytes.js';
import { CryptoInvalid } from '../crypto/errors.js';
import { bytesOf, decryptBackup, wipe } from './keybackup.js';
import { syncFirm, syncMatter } from './keysync.js';
import * as tagNames from './tagnames.js';
import * as store from './keystore.js';
import { keysOf, mergeKeys, mergeTrust } from './trustmerge.js';
import { CRYPTO } from './strings.js';

const { keys, certs, envelope, backup } = C;
const ZERO32 = new Uint8Array(32);
const now = () => Date.now();

export const ROLE_NAME = certs.ROLE_NAME;
export const VIS = envelope.VIS;

// ---------------------------------------------------------------- helpers

function codeOf(err) {
  if (err instanceof CryptoInvalid || (err && typeof err.code === 'string' && err.code.startsWith('crypto_'))) {
    return err.code;
  }
  return 'crypto_encoding';
}

function freshState(frkFingerprint) {
  // pinSealed: the pin is in the server-held backup too (later devices take it from there)
  return { v: 1, frkFingerprint: frkFingerprint ?? null, pinSealed: false, keys: {}, revocationVersion: 0, escrowVersion: 0, matters: {} };
}

/** The 32-byte root fingerprint a backup or state holds, or null when it is unpinned (zeros). */
function pinned(fp) {
  return fp instanceof Uint8Array && fp.length === 32 && !bytesEqual(fp, ZERO32) ? fp : null;
}

/** Import the seeds as non-extractable CryptoKeys; the identity object the library takes. */
async function importIdentity(user, xSk, edSk) {
  const uik = await keys.uikFromSeeds(xSk, edSk);
  const identity = {
    id: user,
    kid: uik.kid,
    fingerprint: uik.fingerprint,
    record: uik.record,
    xPk: uik.xPk,
    edPk: uik.edPk,
    xSk: await C.primitives.x25519PrivateKey(xSk, false),
    edSk: await C.primitives.ed25519PrivateKey(edSk, false),
  };
  wipe(xSk, edSk, uik.xSk, uik.edSk);
  return identity;
}

// ---------------------------------------------------------------- entry points

/**
 * A stored record's generation: new each time a sign-in or a new identity
 * stores the keys. A keyring saves only over its own generation, so a tab
 * left open across a sign-out and a sign-in in another tab cannot put its
 * older record (an older identity, older trust state) over the new one.
 */
function newGen() {
  return b64url(crypto.getRandomValues(new Uint8Array(12)));
}

/** The keyring of (firm, user) stored in this browser, or null. */
export async function openKeyring({ firm, user }) {
  let record;
  try {
    record = await store.load(firm, user);
  } catch {
    return null; // IndexedDB off (some private modes): the page asks for the password again
  }
  if (!record || !record.identity) return null;
  return new Keyring(record);
}

/**
 * Open the key backup the server gave at sign-in and keep the keys in this
 * browser. `kek`: the backup key derived with the login secret (saves a second
 * Argon2id when the backup uses the sign-in's salt). A root fingerprint pinned
 * on this device before must equal the backup's.
 */
export async function unlockWithPassword({ firm, user, password, kdf, backupBytes, kek }) {
  const opened = await decryptBackup({ firm, user, password, kdf, backupBytes, kek });
  const old = await store.load(firm, user).catch(() => null);
  const fromBackup = pinned(opened.frkFingerprint);
  const before = old && old.state ? pinned(old.state.frkFingerprint) : null;
  if (before && fromBackup && !bytesEqual(before, fromBackup)) {
    wipe(opened.xSk, opened.edSk);
    throw new CryptoInvalid('crypto_wrong_context', 'the backup names another firm root key than this device pinned');
  }
  const identity = await importIdentity(user, opened.xSk, opened.edSk);
  const same = Boolean(old && old.state && old.identity && bytesEqual(old.identity.kid, identity.kid));
  const state = same ? old.state : freshState(null);
  state.frkFingerprint = fromBackup ?? before ?? null;
  state.pinSealed = fromBackup !== null;
  // the same identity again (a sign-in after the session ended, a further matter's invite): the
  // keys this browser alone holds beside it stay (a handover's, second matters' invite keys)
  const kept = same ? { next: old.next, previous: old.previous, bound: old.bound, retired: old.retired } : {};
  const record = { firm, user, identity, ...kept, state, gen: newGen() };
  await store.save(record);
  return new Keyring(record);
}

/** A new identity, not stored yet (see PendingIdentity). */
export async function createIdentity({ firm, user, frkFingerprint = null }) {
  const uik = await keys.generateUik();
  return new PendingIdentity(firm, user, uik, frkFingerprint);
}

/** The identity an invite secret R determines (docs/keys.md "Portal on / client invited"). */
export async function identityFromInvite({ firm, user, secret, frkFingerprint }) {
  if (typeof keys.identityFromInviteSecret !== 'function') {
    throw new CryptoInvalid('crypto_encoding', 'this crypto library has no invite identities yet');
  }
  const uik = await keys.identityFromInviteSecret(bytesOf(secret), firm, user);
  return new PendingIdentity(firm, user, uik, frkFingerprint);
}

/** Forget every identity this browser holds (sign-out when the page does not know whose). */
export async function forgetAll() {
  try {
    await store.removeAll();
  } catch {
    // no IndexedDB: nothing was stored
  }
}

/** An identity with its seeds in memory until it is backed up and stored. */
export class PendingIdentity {
  constructor(firm, user, uik, frkFingerprint) {
    this.firm = firm;
    this.user = user;
    this._uik = uik;
    this.frkFingerprint = frkFingerprint ?? null;
    this.publicKeys = uik.record;
    this.kid = uik.kid;
    this.fingerprint = uik.fingerprint;
    // usable for signing before it is stored (a handover, a self-certification)
    this.identity = { id: user, kid: uik.kid, xSk: uik.xSk, edSk: uik.edSk, xPk: uik.xPk, edPk: uik.edPk,
      record: uik.record, fingerprint: uik.fingerprint };
  }

  /** The backup under `password` with the account's `kdf` {salt, m_kib, t, p}: one Argon2id. */
  async createBackup(password, kdf) {
    const made = await backup.createBackup({
      firm: this.firm,
      user: this.user,
      password,
      xSk: this._uik.xSk,
      edSk: this._uik.edSk,
      frkFingerprint: pinned(this.frkFingerprint) ?? ZERO32,
      salt: fromB64url(kdf.salt),
      params: { mKib: kdf.m_kib, t: kdf.t, p: kdf.p },
    });
    wipe(made.plaintext, made.argon2Out);
    return { backup: made.blob, loginSecret: b64url(made.loginSecret), kek: made.kek };
  }

  /** The identity imported non-extractable (seeds wiped), not stored on its own. */
  storedIdentity() {
    return importIdentity(this.user, this._uik.xSk, this._uik.edSk);
  }

  /** Keep the keys in this browser (non-extractable) and return the keyring. */
  async store() {
    const identity = await importIdentity(this.user, this._uik.xSk, this._uik.edSk);
    this.identity.xSk = identity.xSk;
    this.identity.edSk = identity.edSk;
    const record = { firm: this.firm, user: this.user, identity, state: freshState(pinned(this.frkFingerprint)), gen: newGen() };
    try {
      await store.save(record);
    } catch {
      // no IndexedDB: the keyring lives as long as this page
    }
    return new Keyring(record);
  }
}

// ---------------------------------------------------------------- the keyring

export class Keyring {
  constructor(record) {
    this._record = record;
    this.firm = record.firm;
    this.user = record.user;
    this.identity = record.identity;
    this.state = record.state;
    this.trust = null;
    this.verifier = null;
    this.firmKeys = new Map(); // FEK version -> {fek, fir}
    this.meks = new Map(); // ref -> Map epoch -> MEK
    this.keyChanges = [];
    this.problems = [];
    this.chainAlarms = new Map(); // ref -> code: its chain disagreed with the one remembered
    this.revocations = []; // client revocations of the last firm sync and the matters read since, once each (applied once their certs are known)
    this.mine = null; // my own certificate entry, once seen
    this.pinSealer = null; // async (fingerprint) => void, while the sign-in's KEK is in this page
    this._syncs = new Map();
    this._saveTimer = null;
    this._forgotten = false; // signed out, or the record is gone: nothing of this keyring is written again
    this.saveError = null; // 'keyring_unmergeable' while the stored record cannot be merged (see save)
  }

  /**
   * Every identity of mine this browser holds: the one in use, a handed-over next one, the
   * previous, and the invite keys of second matters (bound, or retired once staff certified
   * my identity there: they still open what was wrapped to them).
   */
  identities() {
    return keysOf(this._record); // (this.identity is the record's, kept so by promoteNext and save)
  }

  /**
   * A second matter (docs/keys.md "A second matter"): `identity`, the key of that
   * matter's invite link, signs and reads in `ref` until staff certify my identity there.
   */
  async addBound(ref, identity) {
    this._record.bound = { ...(this._record.bound || {}), [ref]: identity };
    await this.save();
  }

  /** The key I sign with in matter `ref`: its bound invite key, else my identity. */
  signerFor(ref) {
    return (this._record.bound || {})[ref] || this.identity;
  }

  /** Staff certified my identity in `ref` (it is in the epoch): it signs there from now on. */
  unbind(ref) {
    const bound = this._record.bound || {};
    if (!bound[ref]) return;
    this._record.retired = [...(this._record.retired || []), bound[ref]];
    delete bound[ref];
    this.saveSoon();
  }

  /** The fresh identity a handover registered (used once staff certify it) and its verification code. */
  async addNext(identity, code) {
    this._record.next = identity;
    this.state.verificationCode = code;
    await this.save();
  }

  /** The handed-over identity is certified: it becomes the one in use; the invite key still reads history. */
  promoteNext() {
    const next = this._record.next;
    if (!next) return;
    this._record.previous = this.identity;
    this._record.identity = next;
    this._record.next = null;
    this.identity = next;
    this.state.verificationCode = null;
    this.saveSoon();
  }

  /** The code to read to the adviser while a handed-over identity waits for them, or null. */
  get verificationCode() {
    return this._record.next ? this.state.verificationCode ?? null : null;
  }

  get frkFingerprint() {
    return pinned(this.state.frkFingerprint);
  }

  /** Pin the firm root (a staff device that set the firm up, or first use); never replaces a pin. */
  async pinFrk(fingerprint) {
    const have = this.frkFingerprint;
    if (have && !bytesEqual(have, fingerprint)) {
      throw new CryptoInvalid('crypto_wrong_context', 'another firm root key is pinned on this device');
    }
    this.state.frkFingerprint = new Uint8Array(fingerprint);
    await this.save();
    // another tab of this browser pinned another root meanwhile (served another one): its pin stays
    const kept = this.frkFingerprint;
    if (kept && !bytesEqual(kept, fingerprint)) {
      throw new CryptoInvalid('crypto_wrong_context', 'another tab of this browser pinned another firm root key');
    }
    await this.sealPin();
  }

  /**
   * Put the pin into my server-held backup when it is not there yet, with the
   * sealer keysession.js gives a keyring while this page holds the sign-in's
   * KEK (else the next sign-in does it). A failure leaves pinSealed false.
   */
  async sealPin() {
    if (!this.frkFingerprint || this.state.pinSealed || !this.pinSealer) return false;
    try {
      await this.pinSealer(this.frkFingerprint);
    } catch {
      return false; // the next sign-in tries again
    }
    this.state.pinSealed = true;
    await this.save();
    return true;
  }

  /**
   * Why this device must not write in matter `ref` now, or null: the served
   * chain was shorter than or different from the one it remembered
   * (crypto_rollback / crypto_chain) on the last sync of the matter.
   */
  writeBlock(ref) {
    return this.chainAlarms.get(ref) ?? null;
  }

  /**
   * Persist the identity and trust state now: never once forgotten (see
   * forget()), and never again once the record is gone (a sign-out in another
   * tab of this browser removed it: this page's keys must not come back).
   */
  async save() {
    clearTimeout(this._saveTimer);
    this._saveTimer = null;
    if (this._forgotten) return;
    let unmergeable = null;
    try {
      // what another tab of this browser saved meanwhile moves this one's state and keys forward too
      const merge = (stored) => {
        try {
          mergeTrust(this.state, stored.state);
          mergeKeys(this._record, stored);
        } catch (err) {
          unmergeable = err;
          throw err;
        }
        this.identity = this._record.identity; // a handover promoted there
      };
      if (!(await store.update(this._record, merge))) this._forgotten = true;
      this.saveError = null;
    } catch (err) {
      if (unmergeable === null) return; // no IndexedDB: the trust state lives as long as this page
      // A stored record this page cannot read (another version's shape): it is
      // kept as it is, never overwritten by a state that may know less. What
      // mergeTrust took in before the error stays in this page (each fact on its
      // own, only forward); mergeKeys sets nothing unless it completes, so
      // this.identity is still the record's. Nothing this page learns from now
      // on is stored while that record stays (saveError says so).
      if (this.saveError === null) console.error('rtportal keyring: keyring_unmergeable', err);
      this.saveError = 'keyring_unmergeable';
    }
  }

  /** Signed out, or its stored record was removed or stored again by another tab: it saves nothing more. */
  get gone() {
    return this._forgotten;
  }

  /** Persist soon: rendering 1,000 messages records 1,000 msg ids, written once. */
  saveSoon() {
    if (this._saveTimer !== null || this._forgotten) return;
    this._saveTimer = setTimeout(() => this.save(), 500);
  }

  syncFirm() {
    return this._once('#firm', () => syncFirm(this));
  }

  syncMatter(ref) {
    return this._once(ref, () => syncMatter(this, ref));
  }

  /** Concurrent callers of the same sync share one directory read. */
  _once(key, fn) {
    if (!this._syncs.has(key)) {
      this._syncs.set(key, fn().finally(() => this._syncs.delete(key)));
    }
    return this._syncs.get(key);
  }

  certified() {
    return this.mine;
  }

  epochOf(ref) {
    const st = this.verifier ? this.verifier.state(this.firm, ref) : undefined;
    return st ? st.epoch : 0;
  }

  /**
   * Whether a message can be sealed for `ref` now: an epoch is verified, or this
   * device verified one before and nothing since disagreed (a firm sync swaps in a
   * new verifier: every matter's chain is verified again when next used, and
   * seal() does that first). The composer asks this, not epochOf, so that it stays
   * through a firm sync: drawn again, it would lose keys typed in between.
   */
  canSeal(ref) {
    if (this.epochOf(ref)) return true;
    const mem = this.state.matters[ref];
    return Boolean(mem && mem.epoch) && !this.chainAlarms.has(ref);
  }

  /** Encrypt and sign `bodyObj` as a message of `thread` under the newest verified epoch. */
  async seal(ref, thread, bodyObj, { vis = VIS.PORTAL, parent = null } = {}) {
    // A matter sync this joins may have begun before a firm sync swapped the
    // verifier (it then verified the old one): sync again, a few times at most.
    for (let i = 0; i < 3 && !(this.verifier && this.verifier.state(this.firm, ref)); i++) {
      await this.syncMatter(ref);
    }
    // another tab of this browser verified more of the chain than this page (a later epoch, or
    // another hash of this one: taken in at a save, trustmerge.js): a sync must serve it here too
    const held = this.verifier && this.verifier.state(this.firm, ref);
    const mem = this.state.matters[ref];
    if (held && mem && mem.epoch && !this.writeBlock(ref)
      && (held.epoch < mem.epoch || (held.epoch === mem.epoch && held.hash && mem.hash && !bytesEqual(held.hash, mem.hash)))) {
      await this.syncMatter(ref);
    }
    const block = this.writeBlock(ref);
    if (block) throw new CryptoInvalid(block, CRYPTO.chainBlocked);
    const st = this.verifier.state(this.firm, ref);
    if (!st || !st.manifest) throw new CryptoInvalid('crypto_stale_epoch', 'no verified epoch to write under');
    const fekVersion = st.manifest.fek_version;
    const keysFor = vis === VIS.STAFF ? { ...this._firmKeysFor(fekVersion), fekVersion } : { mek: this._mek(ref, st.epoch) };
    if (vis === VIS.STAFF && !keysFor.fir) throw new CryptoInvalid('crypto_uncertified', 'no firm internal key');
    if (vis === VIS.PORTAL && !keysFor.mek) throw new CryptoInvalid('crypto_wrong_context', 'no key for this epoch');
    const plaintext = envelope.encodeBody({
      subject: bodyObj.subject ?? '',
      text: bodyObj.text ?? '',
      attachments: bodyObj.attachments ?? [],
    });
    const header = {
      firm: this.firm,
      matter: ref,
      thread,
      parent: parent ? bytesOf(parent) : null,
      sender: this.user,
      senderKid: this.signerFor(ref).kid,
      epoch: st.epoch,
      vis,
      ctype: envelope.CTYPE.BODY,
    };
    const sealed = await envelope.sealMessage(header, plaintext, keysFor, this.signerFor(ref), { verifier: this.verifier });
    return sealed.envelope;
  }

  /**
   * Verify and decrypt the envelope `blob` (bytes or base64url) shown in
   * `thread` of matter `ref` at log position `seq`. A check that fails gives
   * {ok: false, code} and nothing of the content.
   */
  async open(ref, thread, blob, { seq } = {}) {
    try {
      const bytes = bytesOf(blob);
      let aad;
      try {
        aad = C.encoding.decode(envelope.ENVELOPE, bytes).aad;
      } catch (err) {
        return { ok: false, code: codeOf(err) };
      }
      const epoch = aad.epoch;
      if (aad.firm !== this.firm || aad.matter !== ref || aad.thread !== thread) {
        // signed for another place: the server moved it (not "a key not shared with you")
        return { ok: false, code: 'crypto_wrong_context', moved: true };
      }
      if (!this.verifier || (!this._mek(ref, epoch) && epoch > this.epochOf(ref))) {
        await this.syncMatter(ref); // a new epoch (a key event may not have reached us yet)
      }
      const alarm = this.chainAlarms.get(ref);
      if (alarm) return { ok: false, code: alarm };
      return await this._open(ref, thread, bytes, seq);
    } catch (err) {
      if (err && err.name === 'ApiError') throw err;
      return { ok: false, code: codeOf(err) };
    }
  }

  async _open(ref, thread, bytes, seq) {
    const seen = this._matterState(ref).seen;
    const replay = {
      // the same message at the same log position is a page reload, not a replay
      seen: (_f, _m, id) => seen[toHex(id)] !== undefined && seen[toHex(id)] !== seq,
      record: (_f, _m, id) => {
        if (seq === undefined) return;
        if (seen[toHex(id)] === seq) return;
        seen[toHex(id)] = seq;
        this.saveSoon();
      },
    };
    const msg = await envelope.openMessage(bytes, { firm: this.firm, matter: ref, thread }, {
      trust: this.trust,
      verifier: this.verifier,
      replay,
      nowMs: now(),
      keys: ({ epoch, vis, fekVersion }) =>
        vis === VIS.STAFF ? this._firmKeysFor(fekVersion) : { mek: this._mek(ref, epoch) },
    });
    // membership, a removed member's later writes under an old epoch, replay: the library's
    const h = msg.header;
    const body = msg.body ?? { subject: '', text: C.bytes.fromUtf8(msg.plaintext), attachments: [] };
    return {
      ok: true,
      sender: h.sender,
      role: ROLE_NAME[msg.senderRole],
      body,
      vis: h.vis,
      msgId: h.msg_id,
      header: h,
    };
  }

  /** An internal-only tag's name sealed for tag id `tag` (staff: needs the firm internal key). */
  sealTagName(tag, name) {
    return tagNames.sealTagName(this, tag, name);
  }

  /** The name in tag `tag`'s `name_blob`, or throws (another tag's, not staff's, altered). */
  openTagName(tag, blob) {
    return tagNames.openTagName(this, tag, blob);
  }

  _mek(ref, epoch) {
    const m = this.meks.get(ref);
    return m ? m.get(epoch) : undefined;
  }

  _firmKeysFor(version) {
    const k = this.firmKeys.get(version);
    return k ? { fir: k.fir } : {};
  }

  _matterState(ref) {
    if (!this.state.matters[ref]) this.state.matters[ref] = { epoch: 0, hash: null, seen: {} };
    return this.state.matters[ref];
  }

  /** Sign-out: this identity and its trust state leave the browser. */
  async forget() {
    // Work still under way when the user signs out (messages being opened record
    // their ids, a sync its epochs) would otherwise save the record again after
    // it was removed, and the keys would outlive the sign-out.
    this._forgotten = true;
    clearTimeout(this._saveTimer);
    this._saveTimer = null;
    this.meks.clear();
    this.firmKeys.clear();
    try {
      await store.remove(this.firm, this.user);
    } catch {
      // no IndexedDB: nothing was stored
    }
  }
}
