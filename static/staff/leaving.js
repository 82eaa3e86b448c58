// A staff member leaves (org admin disabled them): this browser, holding the
// FRK, signs the next revocation list (their keys, reason left), makes a new
// FEK/FIR version wrapped to the remaining staff, then moves every matter with
// an epoch chain to a new epoch under the new fek_version, one by one, telling
// `onProgress(done, total)`. A matter another staff member re-keyed meanwhile
// re-bases once (keyctx.postNextEpoch).

import * as C from '../crypto/index.js';
import { api } from '../shared/http.js';
import { loadFrk } from './frkstore.js';
import { listFacts, staffLeaving, staffUser } from './keyflows.js';
import { b64, firmOf, keyringOf, rekeyMatter, unb64 } from './keyctx.js';

/** Staff certificates of the firm's directory answer, decoded: [{user, kid, xPk}]. */
async function staffKeys(data) {
  const out = [];
  for (const raw of data.certs || []) {
    const t = C.encoding.decode(C.certs.CERT, unb64(raw)).tbs;
    if (t.role !== C.certs.ROLE.staff) continue;
    out.push({ user: t.user, kid: await C.keys.uikKid(t.x_pk, t.ed_pk), xPk: t.x_pk });
  }
  return out;
}

export async function runStaffLeaving(ctx, staffId, onProgress = () => {}) {
  const firm = await firmOf(ctx);
  const frk = await loadFrk(firm);
  const kr = await keyringOf(ctx);
  if (!frk || !kr) return { done: false, reason: 'no_frk' };
  const data = await api('GET', '/api/v1/keys/firm');
  if (!data.frk) return { done: true, matters: 0, nothing: true }; // no keys yet: nothing to rotate
  await kr.syncFirm();
  const leaverId = staffUser(staffId);
  const all = await staffKeys(data);
  const revokedNow = new Set();
  const list = data.revocations && data.revocations.list;
  const facts = list ? listFacts(unb64(list)) : { version: 0, entries: [] };
  for (const e of facts.entries) revokedNow.add(`${e.user}:${C.bytes.toHex(e.kid)}`);
  const live = all.filter((s) => !revokedNow.has(`${s.user}:${C.bytes.toHex(s.kid)}`));
  const leaver = { user: leaverId, kids: live.filter((s) => s.user === leaverId).map((s) => s.kid) };
  // never certified (or already revoked): they never held the firm keys, nothing to rotate
  if (!leaver.kids.length) return { done: true, matters: 0, nothing: true };
  const remaining = live.filter((s) => s.user !== leaverId);
  const versions = [...(kr.firmKeys || new Map()).keys()];
  const out = await staffLeaving({
    firm,
    frk,
    me: kr.identity,
    facts,
    leaver,
    remaining,
    fekVersion: Math.max(0, ...versions),
    nowMs: Date.now(),
  });
  await api('PUT', '/api/v1/keys/revocations', { list: b64(out.list) });
  await api('POST', '/api/v1/keys/escrow', { record: b64(out.escrow.record), wraps: out.escrow.wraps.map(b64) });
  await kr.syncFirm();
  const matters = ((await api('GET', '/api/v1/matters')).matters || []).map((m) => m.reference || m.ref);
  const chained = [];
  for (const ref of matters) {
    const keysOf = await api('GET', `/api/v1/keys/matters/${encodeURIComponent(ref)}`);
    if ((keysOf.manifests || []).length) chained.push(ref);
  }
  onProgress(0, chained.length);
  for (let i = 0; i < chained.length; i++) {
    await rekeyMatter(kr, chained[i]);
    onProgress(i + 1, chained.length);
  }
  return { done: true, matters: chained.length };
}
