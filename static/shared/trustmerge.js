// Two tabs of one browser hold the same keyring and save its trust state
// (static/shared/keystore.js update): what one tab learnt must survive the
// other's later save, or a rollback it would have caught goes unnoticed on
// the next visit. Every remembered fact only ever moves forward, so a save
// merges the stored state into its own, in place, before it is written:
// the higher version, serial or epoch wins, message ids seen are the union.
// Where the two tabs remember the same fact differently (the server told
// each another story: another root, another key under one serial, another
// chain at one epoch, a message at another log position), the one stored
// first stays, so this tab's next check sees the disagreement.

import { bytesEqual } from '../crypto/bytes.js';

const ahead = (mine, stored) => (stored || 0) > (mine || 0);

/**
 * Merge `stored` (the trust state another tab saved) into `state` (this tab's,
 * changed in place): revocation list and escrow versions (the highest), the
 * pinned root (a tab without one takes the stored pin; a tab pinned to
 * another root takes the stored one too, and its next firm sync refuses the
 * root it was served; pinSealed once either says so), certificate serials per
 * person (the highest; the same serial with another kid keeps the stored one,
 * so this tab's next sync reports a key change), each matter's epoch and hash
 * (the highest epoch; the same epoch with another hash keeps the stored one,
 * so the next sync of this tab sees the fork) and its seen message ids (the
 * union; a msg id stored at another seq keeps the stored seq, so this tab
 * takes its copy for a replay). Anything else stays this tab's.
 */
export function mergeTrust(state, stored) {
  if (!stored || !state) return;
  if (ahead(state.revocationVersion, stored.revocationVersion)) state.revocationVersion = stored.revocationVersion;
  if (ahead(state.escrowVersion, stored.escrowVersion)) state.escrowVersion = stored.escrowVersion;
  if (stored.frkFingerprint) {
    if (!state.frkFingerprint || !bytesEqual(state.frkFingerprint, stored.frkFingerprint)) {
      state.frkFingerprint = stored.frkFingerprint;
      state.pinSealed = Boolean(stored.pinSealed);
    } else if (stored.pinSealed) {
      state.pinSealed = true;
    }
  }
  state.keys = state.keys || {};
  for (const [memo, known] of Object.entries(stored.keys || {})) {
    const mine = state.keys[memo];
    if (!mine || ahead(mine.serial, known.serial) || (known.serial === mine.serial && known.kid !== mine.kid)) {
      state.keys[memo] = known;
    }
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
    Object.assign(mine.seen, theirs.seen || {});
  }
}

const same = (a, b) => Boolean(a && b) && bytesEqual(a.kid, b.kid);
/** Every key a stored keyring record holds: the one in use, a handover's next, the previous, second matters' bound and retired invite keys. */
export const keysOf = (r) => [r.identity, r.next, r.previous, ...Object.values(r.bound || {}), ...(r.retired || [])].filter(Boolean);

/**
 * Merge the keys of `stored` (the record another tab saved) into `record` (this
 * tab's, in place): they only move forward too, and none is ever dropped. A
 * handover (identity I, then next N, then N with previous I) the other tab got
 * further with is taken, with its verification code; a second matter's invite
 * key bound there is bound here, one retired there is retired here. A key of
 * either record that none of these rules keeps (two tabs that did two things
 * at once) stays among the retired ones: it opens what was wrapped to it.
 * Everything is worked out before any of it is set: a stored record this code
 * cannot read (it throws, keyring.save keeps that record) leaves `record` as it
 * was, never a handover taken half-way with the keys it moved out of place dropped.
 */
export function mergeKeys(record, stored) {
  if (!stored || !stored.identity) return;
  const all = [...keysOf(record), ...keysOf(stored)];
  const code = stored.state ? stored.state.verificationCode ?? null : null;
  let moved = null; // the slots a handover the other tab got further with sets
  if (!same(stored.identity, record.identity) && same(stored.previous, record.identity)) {
    moved = { previous: stored.previous, identity: stored.identity, next: stored.next ?? null };
  } else if (same(stored.identity, record.identity) && stored.next && !record.next) {
    moved = { next: stored.next };
  }
  const retired = [...(record.retired || [])];
  for (const key of stored.retired || []) if (!retired.some((r) => same(r, key))) retired.push(key);
  const bound = { ...(stored.bound || {}), ...(record.bound || {}) };
  for (const [ref, key] of Object.entries(bound)) if (retired.some((r) => same(r, key))) delete bound[ref];
  const held = keysOf({ ...record, ...moved, bound, retired });
  for (const key of all) {
    if (!held.some((h) => same(h, key))) {
      retired.push(key);
      held.push(key);
    }
  }
  // nothing below throws
  if (moved) {
    record.state.verificationCode = code;
    Object.assign(record, moved);
  }
  record.bound = bound;
  record.retired = retired;
}
