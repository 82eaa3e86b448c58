// Two tabs of one browser hold the same keyring and save its trust state
// (static/shared/keystore.js update): what one tab learnt must survive the
// other's later save, or a rollback it would have caught goes unnoticed on
// the next visit. Every remembered fact only ever moves forward, so a save
// merges the stored state into its own, in place, before it is written:
// the higher version, serial or epoch wins, message ids seen are the union.

import { bytesEqual } from '../crypto/bytes.js';

const ahead = (mine, stored) => (stored || 0) > (mine || 0);

/**
 * Merge `stored` (the trust state another tab saved) into `state` (this tab's,
 * changed in place): revocation list and escrow versions (the highest), the
 * pinned root (kept once pinned: a tab without one takes the stored pin),
 * certificate serials per person (the highest), each matter's epoch and hash
 * (the highest epoch; the same epoch with another hash keeps the one stored
 * first, so the next sync of this tab sees the disagreement) and its seen
 * message ids (the union). Anything else stays this tab's.
 */
export function mergeTrust(state, stored) {
  if (!stored || !state) return;
  if (ahead(state.revocationVersion, stored.revocationVersion)) state.revocationVersion = stored.revocationVersion;
  if (ahead(state.escrowVersion, stored.escrowVersion)) state.escrowVersion = stored.escrowVersion;
  if (!state.frkFingerprint && stored.frkFingerprint) {
    state.frkFingerprint = stored.frkFingerprint;
    state.pinSealed = Boolean(stored.pinSealed);
  }
  state.keys = state.keys || {};
  for (const [memo, known] of Object.entries(stored.keys || {})) {
    const mine = state.keys[memo];
    if (!mine || ahead(mine.serial, known.serial)) state.keys[memo] = known;
  }
  state.matters = state.matters || {};
  for (const [ref, theirs] of Object.entries(stored.matters || {})) {
    const mine = state.matters[ref];
    if (!mine) {
      state.matters[ref] = theirs;
      continue;
    }
    if (ahead(mine.epoch, theirs.epoch) || (theirs.epoch && theirs.epoch === mine.epoch && theirs.hash && !(mine.hash && bytesEqual(mine.hash, theirs.hash)))) {
      mine.epoch = theirs.epoch;
      mine.hash = theirs.hash;
    }
    mine.seen = mine.seen || {};
    for (const [id, seq] of Object.entries(theirs.seen || {})) if (!(id in mine.seen)) mine.seen[id] = seq;
  }
}
