// Reading the key directory (docs/keys.md, HTTP API) into a keyring: every
// record the server hands over is verified with static/crypto against the
// pinned firm root before it is used, and what must survive the visit
// (certificate serials per person, each matter's newest epoch and hash) is
// compared with what this browser remembered, so a server cannot roll a
// matter back, fork its chain or swap someone's key without a notice.

import * as C from '../crypto/index.js';
import { bytesEqual, fromB64url, toHex } from '../crypto/bytes.js';
import { CryptoInvalid } from '../crypto/errors.js';
import { api } from './http.js';

const { keys, certs, wrap, manifest } = C;
const enc = encodeURIComponent;
const now = () => Date.now();
const bytesOf = (b64) => (typeof b64 === 'string' ? fromB64url(b64) : b64);
const codeOf = (err) => (err && typeof err.code === 'string' && err.code.startsWith('crypto_') ? err.code : 'crypto_encoding');

/**
 * Verify and remember certificates in any order (a client certificate needs
 * its staff issuer first): passes until no more verify. Returns the entries
 * accepted; the others become problems.
 */
async function addCerts(kr, list, scope, trust = kr.trust) {
  let pending = (list || []).map(bytesOf);
  const accepted = [];
  for (let progress = true; pending.length && progress; ) {
    progress = false;
    const failed = [];
    for (const cert of pending) {
      try {
        accepted.push(await trust.addCert(cert, now()));
        progress = true;
      } catch (err) {
        failed.push([cert, err]);
      }
    }
    pending = failed.map(([cert]) => cert);
    if (!progress) for (const [, err] of failed) kr.problems.push({ what: 'cert', scope, code: codeOf(err) });
  }
  return accepted;
}

/**
 * The newest certificate per person against the remembered one: key changes and serial
 * rollbacks. A client's key is remembered per matter (`scope`): a contact of several
 * matters holds another key in each until staff certify one identity for all of them
 * (docs/keys.md "A second matter"), which is no change and no rollback.
 */
function noteKeys(kr, entries, scope) {
  const newest = new Map();
  for (const e of entries) {
    const had = newest.get(e.user);
    if (!had || e.serial > had.serial) newest.set(e.user, e);
  }
  for (const [user, e] of newest) {
    const kid = toHex(e.kid);
    const memo = e.role === certs.ROLE.client && scope !== 'firm' ? `${user} ${scope}` : user;
    const known = kr.state.keys[memo];
    if (known && e.serial < known.serial && known.kid !== kid) {
      kr.problems.push({ what: 'cert', scope: user, code: 'crypto_rollback' });
      continue;
    }
    if (known && known.kid !== kid && user !== kr.user) kr.keyChanges.push({ user, kid: e.kid });
    kr.state.keys[memo] = { kid, serial: e.serial };
    const next = kr._record.next;
    if (user === kr.user && next && bytesEqual(e.kid, next.kid)) kr.promoteNext();
    // my certificate: of my identity, or of a second matter's invite key while it is bound
    if (user === kr.user && (bytesEqual(e.kid, kr.identity.kid) || bytesEqual(e.kid, kr.signerFor(scope).kid))) {
      kr.mine = e;
    }
  }
}

/**
 * My certificate stops counting once a revocation of it is known (I left the firm, my
 * key was replaced or compromised): `certified()` then says so, and the page stops
 * offering a composer the server would refuse.
 */
function dropRevokedMine(kr, trust) {
  const mine = kr.mine;
  if (mine && trust.isRevoked(mine.user, mine.kid)) kr.mine = null;
}

async function applyClientRevocations(kr, trust = kr.trust) {
  for (const r of kr.revocations) {
    try {
      await trust.addRevocation(r, now());
    } catch {
      // its client certificate is not known yet (another matter's client): not needed here
    }
  }
}

/**
 * The revocation list and escrow versions never go back (docs/keys.md, the
 * lifecycle rules): a served version lower than the highest this browser saw
 * is crypto_rollback and nothing of that answer is used.
 */
function rolledBack(kr, trust) {
  const list = trust.revocationList ? trust.revocationList.version : 0;
  const escrow = trust.newestEscrowVersion;
  const st = kr.state;
  let bad = false;
  if (list < (st.revocationVersion || 0)) {
    kr.problems.push({ what: 'revocations', scope: 'firm', code: 'crypto_rollback' });
    bad = true;
  }
  if (escrow < (st.escrowVersion || 0)) {
    kr.problems.push({ what: 'escrow', scope: 'firm', code: 'crypto_rollback' });
    bad = true;
  }
  return bad;
}

/** Remember the highest revocation list and escrow versions seen (after the answer verified). */
function rememberVersions(kr, trust) {
  kr.state.revocationVersion = Math.max(kr.state.revocationVersion || 0, trust.revocationList ? trust.revocationList.version : 0);
  kr.state.escrowVersion = Math.max(kr.state.escrowVersion || 0, trust.newestEscrowVersion);
}

/**
 * A staff device whose backup holds no root fingerprint (made before the firm
 * had one, or before approval) pins the served root once: when my own
 * certificate verifies under it. The pin then goes into my backup
 * (keyring.pinFrk re-seals it), so later devices take it from there, never
 * from the server. Until then the keyring is not ready and says so.
 */
async function pinAtFirstCertifiedSync(kr, fingerprint) {
  if (!kr.mine) {
    kr.problems.push({ what: 'unpinned', scope: 'firm', code: 'crypto_uncertified' });
    return false;
  }
  await kr.pinFrk(fingerprint);
  return true;
}

/** GET /api/v1/keys/firm: the root, revocations, escrow records, staff and bot certs, my firm keys. */
export async function syncFirm(kr) {
  const data = await api('GET', '/api/v1/keys/firm');
  kr.problems = [];
  kr.keyChanges = [];
  if (!data.frk) {
    kr.trust = null;
    kr.verifier = null;
    return { ready: false };
  }
  const frk = bytesOf(data.frk);
  const { fingerprint } = await keys.fingerprintOf(frk);
  const pin = kr.frkFingerprint;
  if (pin && !bytesEqual(pin, fingerprint)) {
    kr.problems.push({ what: 'root', scope: 'firm', code: 'crypto_wrong_context' });
    throw new CryptoInvalid('crypto_wrong_context', 'the server serves another firm root key than the one pinned');
  }
  // Built aside and swapped in at the end: the page keeps reading and writing with
  // the previous state while this runs (a key event may start it at any time).
  const { ed_pk: frkEdPk } = C.encoding.decode(keys.FRK_RECORD, frk);
  const trust = new certs.TrustStore({ firm: kr.firm, frkEdPk });
  const verifier = new manifest.ManifestVerifier(trust);
  const firmKeys = new Map();

  // The revocation list first: until the library holds a fresh one, no certificate is
  // usable (its rule: crypto_stale), so a missing or stale list reads nothing at all.
  const revs = data.revocations || {};
  try {
    if (!revs.list) throw new CryptoInvalid('crypto_stale', 'the firm has no revocation list');
    // across visits too: never an older list than this browser saw (the library's store is per visit)
    const list = bytesOf(revs.list);
    const seen = kr.state.revocationVersion || 0;
    if (certs.decodeRevocationList(list).version < seen) {
      throw new CryptoInvalid('crypto_rollback', `an older revocation list than version ${seen}`);
    }
    const { version } = await trust.setRevocationList(list, now());
    // never lowered: a save meanwhile may have taken in a newer version another tab saw
    // (trustmerge.js), which rolledBack below then holds this list against
    kr.state.revocationVersion = Math.max(kr.state.revocationVersion || 0, version);
  } catch (err) {
    kr.problems.push({ what: 'revocations', scope: 'firm', code: codeOf(err) });
  }
  for (const rec of data.escrow || []) {
    try {
      await trust.addEscrowRecord(bytesOf(rec));
    } catch (err) {
      kr.problems.push({ what: 'escrow', scope: 'firm', code: codeOf(err) });
    }
  }
  if (rolledBack(kr, trust)) return { ready: false };
  noteKeys(kr, await addCerts(kr, data.certs, 'firm', trust), 'firm');
  if (!pin && !(await pinAtFirstCertifiedSync(kr, fingerprint))) return { ready: false };
  rememberVersions(kr, trust);
  kr.revocations = (revs.client || []).map(bytesOf);
  await applyClientRevocations(kr, trust);
  dropRevokedMine(kr, trust);

  for (const w of data.wraps || []) {
    try {
      const bytes = bytesOf(w);
      const info = C.encoding.decode(wrap.WRAP, bytes).info;
      const mine = kr.identities().find((i) => bytesEqual(i.kid, info.recipient_kid));
      if (info.kind !== wrap.KIND.FIRM || info.recipient !== kr.user || !mine) continue;
      const expected = { firm: kr.firm, matter: wrap.FIRM_MATTER, epoch: info.epoch, kind: wrap.KIND.FIRM,
        recipient: kr.user, recipientKid: mine.kid };
      const pt = await wrap.unwrapKey(bytes, expected, mine, trust, now());
      const fek = await keys.fekFromWrapped(kr.firm, info.epoch, pt);
      firmKeys.set(info.epoch, { fek, fir: fek.fir });
    } catch (err) {
      kr.problems.push({ what: 'wrap', scope: 'firm', code: codeOf(err) });
    }
  }
  kr.trust = trust;
  kr.verifier = verifier; // matters are verified again from their first epoch on next use
  kr.firmKeys = firmKeys;
  kr.meks = new Map();
  await kr.save();
  return { ready: true };
}

/**
 * The served manifests of `ref`, in epoch order, into `verifier`: the hash of each
 * epoch accepted (or already held and served again unchanged). The chain stops at
 * the first bad link; each refusal goes to `fail`.
 */
async function acceptChain(kr, verifier, ref, manifests, fail) {
  const chain = [];
  for (const m of manifests) {
    try {
      const bytes = bytesOf(m);
      chain.push({ bytes, epoch: C.encoding.decode(manifest.MANIFEST, bytes).tbs.epoch });
    } catch (err) {
      fail('manifest', err);
    }
  }
  chain.sort((a, b) => a.epoch - b.epoch);
  const hashes = new Map();
  for (const { bytes, epoch } of chain) {
    try {
      const held = verifier.manifestAt(kr.firm, ref, epoch);
      if (held) {
        // verified earlier with this verifier (a second sync in the page): the same manifest, or a fork
        const served = C.encoding.decode(manifest.MANIFEST, bytes).tbs;
        if (!bytesEqual(served.raw, held.raw)) throw new CryptoInvalid('crypto_chain', 'another manifest of a verified epoch');
        hashes.set(epoch, await manifest.manifestHash(bytes));
        continue;
      }
      // a reader given a later first epoch (joined without history) pins it: trust on first use
      const first = !verifier.state(kr.firm, ref);
      await verifier.accept(bytes, kr.firm, ref, now(), { pin: first && epoch > 1 });
      hashes.set(epoch, await manifest.manifestHash(bytes));
    } catch (err) {
      fail('manifest', err); // the chain stops at the last good link
      break;
    }
  }
  return hashes;
}

/**
 * The MEKs of `ref` this reader can unwrap from the served wraps, by epoch: each
 * wrap checked against the verified manifest of its epoch (mine, or the FEK's for
 * staff). Kept MEKs of the same verifier are reused; each refusal goes to `fail`.
 */
async function unwrapMeks(kr, verifier, trust, ref, wraps, fail) {
  const meks = new Map(kr.verifier === verifier ? kr.meks.get(ref) || [] : []);
  for (const w of wraps) {
    try {
      const bytes = bytesOf(w);
      const info = C.encoding.decode(wrap.WRAP, bytes).info;
      if (info.kind !== wrap.KIND.MEK || info.matter !== ref || meks.has(info.epoch)) continue;
      const tbs = verifier.manifestAt(kr.firm, ref, info.epoch);
      if (!tbs) continue;
      let me;
      let recipientKid;
      const mine = kr.identities().find((i) => bytesEqual(i.kid, info.recipient_kid));
      if (info.recipient === kr.user && mine) {
        me = mine;
        recipientKid = mine.kid;
      } else if (info.recipient === wrap.FEK_RECIPIENT && kr.firmKeys.has(tbs.fek_version)) {
        const { fek } = kr.firmKeys.get(tbs.fek_version);
        me = { xSk: fek.xSk, xPk: fek.xPk };
        recipientKid = fek.kid;
      } else {
        continue;
      }
      const expected = { firm: kr.firm, matter: ref, epoch: info.epoch, kind: wrap.KIND.MEK,
        recipient: info.recipient, recipientKid };
      // a wrap has no time of its own: its wrapper must be usable now or when the epoch began
      // (a staff member who left since still wrapped history validly)
      meks.set(info.epoch, await wrap.unwrapKey(bytes, expected, me, trust, now(), tbs.commit, tbs.ts_ms));
    } catch (err) {
      fail('wrap', err);
    }
  }
  return meks;
}

/**
 * GET /api/v1/keys/matters/{ref}: client certificates, the manifest chain
 * (checked link by link, and against the epoch and hash remembered from the
 * last visit), the head, and the epoch keys wrapped to me (or, staff, to the
 * firm escrow key). Returns {epoch, problems}.
 */
export async function syncMatter(kr, ref) {
  if (!kr.trust) await kr.syncFirm();
  if (!kr.trust) throw new CryptoInvalid('crypto_uncertified', 'the firm has no keys yet');
  // the state this read builds on; a firm sync that swaps it meanwhile makes this read moot
  const { trust, verifier } = kr;
  const data = await api('GET', `/api/v1/keys/matters/${enc(ref)}`);
  const problems = [];
  const fail = (what, err) => {
    const p = { what, scope: ref, code: codeOf(err) };
    problems.push(p);
    kr.problems.push(p);
  };
  noteKeys(kr, await addCerts(kr, data.certs, ref, trust), ref);
  // by content: the same revocation served at every sync is held (and verified) once
  const held = new Map([...kr.revocations, ...(data.revocations || []).map(bytesOf)].map((r) => [toHex(r), r]));
  kr.revocations = [...held.values()];
  await applyClientRevocations(kr, trust);
  dropRevokedMine(kr, trust);

  const hashes = await acceptChain(kr, verifier, ref, data.manifests || [], fail);
  const st = verifier.state(kr.firm, ref);
  const mem = kr._matterState(ref);
  const epoch = st ? st.epoch : 0;
  // A chain shorter than, or different from, the one seen before is a lie: nothing of this
  // matter is opened or sealed with it (keyring.open/seal) until a sync agrees again.
  kr.chainAlarms.delete(ref);
  let block = null;
  if (mem.epoch && epoch < mem.epoch) {
    block = new CryptoInvalid('crypto_rollback', `epoch ${epoch} after ${mem.epoch} was seen`);
  } else if (mem.epoch && (!hashes.has(mem.epoch) || !bytesEqual(hashes.get(mem.epoch), mem.hash))) {
    block = new CryptoInvalid('crypto_chain', 'the chain differs from the one seen before');
  }
  if (block) {
    fail('manifest', block);
    kr.chainAlarms.set(ref, block.code);
  } else if (st) {
    mem.epoch = st.epoch;
    mem.hash = new Uint8Array(st.hash);
    // a second matter: staff certified my identity there, so its invite key retires
    if (st.manifest && st.manifest.members.some((m) => m.user === kr.user && bytesEqual(m.kid, kr.identity.kid))) {
      kr.unbind(ref);
    }
  }
  if (data.head) {
    // the library's rule: signer in scope, within HEAD_MAX_AGE_MS, not behind the chain, no
    // fork; a writer's sealMessage then needs it (checkWritable)
    try {
      await verifier.acceptHead(bytesOf(data.head), kr.firm, ref, now());
    } catch (err) {
      fail('head', err);
    }
  }

  const meks = await unwrapMeks(kr, verifier, trust, ref, data.wraps || [], fail);
  if (kr.verifier === verifier) kr.meks.set(ref, meks);
  await kr.save();
  return { epoch, problems };
}
