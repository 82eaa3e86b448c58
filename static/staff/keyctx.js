// What the staff screens need from the keyring (static/shared/keyring.js) and
// the key directory, in one place: my unlocked identity, the current firm
// keys, a matter's verified chain with its members' keys, and posting a next
// epoch with one retry on 409 epoch_conflict (re-sync, re-base, post again).

import * as C from '../crypto/index.js';
import { ApiError, api } from '../shared/http.js';
import { nextEpoch, headIsOld, headTime, signHead } from './epochflows.js';

const enc = encodeURIComponent;
export const b64 = (b) => C.bytes.b64url(b);
export const unb64 = (s) => (typeof s === 'string' ? C.bytes.fromB64url(s) : s);

/** The firm slug of the signed-in staff member (the principal may not carry it: then GET /me, once). */
export async function firmOf(ctx) {
  if (!ctx.firmSlug) {
    const p = ctx.principal;
    ctx.firmSlug = (p.firm && p.firm.slug) || (await api('GET', '/api/v1/me')).firm.slug;
  }
  return ctx.firmSlug;
}

/** My keyring (this browser's, unlocked at sign-in: static/shared/keysession.js), or null. */
export async function keyringOf(ctx) {
  try {
    const { keyringFor } = await import('../shared/keysession.js');
    return await keyringFor(ctx.principal);
  } catch {
    return null;
  }
}

/** My keyring when the firm has keys and I hold its escrow key (else null: nothing to re-key). */
export async function keyedRing(ctx) {
  const kr = await keyringOf(ctx);
  if (!kr) return null;
  if (!kr.trust || !currentFek(kr)) await kr.syncFirm();
  return kr.trust && currentFek(kr) ? kr : null;
}

/** The newest firm escrow key I hold: the full FEK object (xSk, xPk, kid, version, fir). */
export function currentFek(kr) {
  let best = null;
  for (const [version, v] of kr.firmKeys || []) if (!best || version > best.version) best = { ...v.fek, version };
  return best;
}

/**
 * The matter as the keyring's sync just verified it. A firm sync (a `keys` event may
 * start one at any time) swaps in a fresh verifier that has not read the matter yet:
 * then the state read after the sync is not the one it built, and the read is repeated.
 */
async function syncedView(kr, ref) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const { epoch } = await kr.syncMatter(ref);
    const { trust, verifier } = kr;
    const st = verifier && verifier.state(kr.firm, ref);
    if ((st ? st.epoch : 0) === epoch) return { st, trust };
  }
  throw new C.CryptoInvalid('crypto_stale', 'the keys changed while they were read: try again');
}

/**
 * The matter's verified state after a sync: prev {epoch, hash} (null before
 * epoch 1), members [{user, kid, role, xPk, edPk, serial}] of the newest epoch,
 * share_history, the MEKs this browser could unwrap (Map epoch -> mek) and `trust`.
 */
export async function matterState(kr, ref) {
  const { st, trust } = await syncedView(kr, ref);
  const block = kr.writeBlock(ref);
  if (block) throw new C.CryptoInvalid(block, 'the served key chain is older or other than this device saw');
  const now = Date.now();
  const members = [];
  if (st && st.manifest) {
    for (const m of st.manifest.members) {
      const cert = trust.lookup(m.user, m.kid, now);
      members.push({ user: m.user, kid: m.kid, role: m.role, xPk: cert.x_pk, edPk: cert.ed_pk, serial: cert.serial });
    }
  }
  return {
    prev: st ? { epoch: st.epoch, hash: st.hash } : null,
    members,
    shareHistory: st && st.manifest ? st.manifest.share_history : true,
    meks: (kr.meks && kr.meks.get(ref)) || new Map(),
    trust, // the TrustStore this state was verified with (a writer's view builds on it)
  };
}

/**
 * Make and post the next epoch of `ref`: `plan(state)` returns what the flow
 * needs ({members} for a plain epoch, or a custom `make(state)` returning
 * {post, extra}). A 409 epoch_conflict re-syncs and re-bases once.
 */
export async function postNextEpoch(kr, ref, make) {
  for (let attempt = 0; ; attempt++) {
    const state = await matterState(kr, ref);
    const made = await make(state);
    try {
      await api('POST', `/api/v1/keys/matters/${enc(ref)}/epochs`, made.post);
      return made;
    } catch (err) {
      if (attempt === 0 && err instanceof ApiError && err.code === 'epoch_conflict') continue;
      throw err;
    }
  }
}

/** The next epoch of `ref` with `members(state)` (removal, staff leaving: same members, new FEK). */
export function rekeyMatter(kr, ref, members = (s) => s.members) {
  return postNextEpoch(kr, ref, async (state) => {
    const ep = await nextEpoch({
      firm: kr.firm,
      matter: ref,
      me: kr.identity,
      fek: currentFek(kr),
      prev: state.prev,
      members: members(state),
      shareHistory: state.shareHistory,
      nowMs: Date.now(),
    });
    return { ...ep, post: ep.post };
  });
}

/** Staff browsers refresh a head older than 30 days for a matter they open (best effort). */
export async function refreshHeadIfOld(ctx, ref) {
  const kr = await keyringOf(ctx);
  if (!kr) return false;
  try {
    const data = await api('GET', `/api/v1/keys/matters/${enc(ref)}`);
    if (!data.head || !headIsOld(headTime(unb64(data.head)), Date.now())) return false;
    const state = await matterState(kr, ref);
    if (!state.prev) return false;
    const head = await signHead(kr.firm, ref, kr.identity, state.prev.epoch, state.prev.hash, Date.now());
    await api('PUT', `/api/v1/keys/matters/${enc(ref)}/head`, { head: b64(head) });
    return true;
  } catch {
    return false; // the next staff member who opens it tries again
  }
}
