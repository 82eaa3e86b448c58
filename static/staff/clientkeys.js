// What a staff browser does to a matter's keys after an access action on one
// client (docs/keys.md "Removal", "Regenerate login details", and the
// verification of a fresh key after "send by the portal"): each ends in the
// next epoch posted with one re-base on 409 epoch_conflict.

import { api } from '../shared/http.js';
import * as C from '../crypto/index.js';
import { boundKey, inviteLink, portalPage, regeneratedKey, replaceClientKey, verifiedFreshKey } from './epochflows.js';
import { KEYS } from '../shared/strings_staff.js';
import { clientUser } from './keyflows.js';
import { b64, currentFek, keyedRing, matterState, postNextEpoch, rekeyMatter, unb64 } from './keyctx.js';

const enc = encodeURIComponent;

/**
 * The next epoch without the clients `users` (rtp1 ids): after a removal, or
 * when a write was refused `rekey_required` (a client left without one). Only
 * clients are ever dropped, whatever the list says.
 */
export async function epochWithout(ctx, ref, users) {
  const kr = await keyedRing(ctx);
  if (!kr) return false;
  const gone = new Set(users.filter((u) => typeof u === 'string' && u.startsWith('c')));
  if (!gone.size) return false;
  await rekeyMatter(kr, ref, (s) => s.members.filter((m) => !gone.has(m.user)));
  return true;
}

/** After the server removed contact `contactId`: the next epoch without them. */
export function epochAfterRemoval(ctx, ref, contactId) {
  return epochWithout(ctx, ref, [clientUser(contactId)]);
}

/** The epochs whose MEK the client may read again with a new key: all they were a member of (or all, with share_history). */
function historyFor(kr, ref, state, old) {
  const out = [];
  for (const [epoch, mek] of state.meks) {
    const was = kr.verifier.isMemberAt(kr.firm, ref, epoch, old.user, old.kid);
    if (was || state.shareHistory) out.push({ epoch, mek });
  }
  return out;
}

/**
 * Replace the client's key by `key` and post cert, the old key's revocation, epoch
 * and (with `history`) the earlier epochs re-wrapped to it. The revocation goes
 * before the epoch: once the epoch names the new key, the old one (an invite key
 * whose secret the server may have relayed) is already refused everywhere, so
 * there is no moment where it is a member of the newest epoch and not revoked.
 */
async function replaceKey(kr, ref, contactId, key, { history = true } = {}) {
  const user = clientUser(contactId);
  let out = null;
  let revoked = false;
  await postNextEpoch(kr, ref, async (state) => {
    const old = state.members.find((m) => m.user === user);
    if (!old) throw new C.CryptoInvalid('crypto_uncertified', 'the client is not a member of the matter');
    out = await replaceClientKey({
      firm: kr.firm,
      matter: ref,
      me: kr.identity,
      fek: currentFek(kr),
      prev: state.prev,
      members: state.members,
      shareHistory: state.shareHistory,
      old,
      key,
      history: history ? historyFor(kr, ref, state, old) : [],
      nowMs: Date.now(),
    });
    if (!revoked) {
      // the new key's certificate must be there before the manifest that names it; the
      // old key's revocation once (a re-base after 409 keeps the one already posted)
      await api('POST', '/api/v1/keys/certs', { certs: out.certs });
      await api('POST', '/api/v1/keys/client-revocations', { revocations: out.revocations });
      revoked = true;
    }
    return { post: out.epoch.post };
  });
  if (out.wraps.length) await api('POST', `/api/v1/keys/matters/${enc(ref)}/wraps`, { wraps: out.wraps });
  return out;
}

/**
 * Staff confirm the 6-digit code of a client's fresh key (portal delivery):
 * the handover must be signed by the invite key and the code must match.
 */
export async function confirmFreshKey(ctx, ref, contactId, handoverB64, typedCode) {
  const kr = await keyedRing(ctx);
  if (!kr) return false;
  const user = clientUser(contactId);
  const old = (await matterState(kr, ref)).members.find((m) => m.user === user);
  if (!old) throw new C.CryptoInvalid('crypto_uncertified', 'the client is not a member of the matter');
  const key = await verifiedFreshKey(kr.firm, user, unb64(handoverB64), { edPk: old.edPk, xPk: old.xPk, kid: old.kid }, typedCode);
  // history re-wrapped to the fresh key (keys.md's wrap rule), so a new device reads it all
  await replaceKey(kr, ref, contactId, key);
  return true;
}

/**
 * A client's binding in `ref` (docs/keys.md "A second matter"): their invite key signed
 * a handover naming the identity they hold certified in `handover.certified_in` (verified
 * here like any record). That identity is certified for `ref` too, replaces the invite key
 * in the next epoch with the history re-wrapped, and the invite key is revoked: no code to
 * compare. False when it is not a binding (or not this browser's to do).
 */
export async function confirmBinding(ctx, ref, contactId, handover) {
  const kr = await keyedRing(ctx);
  if (!kr || !handover || !handover.record) return false;
  const user = clientUser(contactId);
  const state = await matterState(kr, ref);
  const old = state.members.find((m) => m.user === user);
  if (!old) return false;
  for (const other of handover.certified_in || []) {
    try {
      if (other !== ref) await kr.syncMatter(other);
    } catch {
      // a matter this staff member may not read: its certificate stays unknown here
    }
  }
  let key;
  try {
    key = await boundKey(state.trust, kr.firm, user, unb64(handover.record), old, Date.now());
  } catch {
    return false; // signed by another key than the one in the epoch: not about this matter
  }
  if (!key) return false;
  await replaceKey(kr, ref, contactId, key);
  return true;
}

/**
 * After the server's regenerate answer: a new secret R', its key in the
 * client's place, and the link to deliver (shown by the caller).
 */
export async function keysAfterRegenerate(ctx, ref, contactId, answer) {
  const kr = await keyedRing(ctx);
  if (!kr) return null;
  if (!kr.frkFingerprint) throw new C.CryptoInvalid('crypto_uncertified', KEYS.unpinned);
  const { R, key } = await regeneratedKey(kr.firm, contactId);
  await replaceKey(kr, ref, contactId, key);
  const fp = kr.frkFingerprint;
  // on this page's origin, never the server's `url`: the link carries the secret
  const link = inviteLink(portalPage(kr.firm), answer.token, R, C.keys.fingerprintLink(fp));
  return { link, code: b64(R) };
}
