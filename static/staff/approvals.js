// The approval queue (org admins, staff page): staff whose registered keys
// have no certificate yet, with name, email and the key's fingerprint (to
// compare with what their page shows, if wanted). Approve = an FRK-signed
// staff certificate plus the current firm keys wrapped to them.

import { el } from '../shared/dom.js';
import { button, busy, say, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { KEYS } from '../shared/strings_staff.js';
import { facts, failed, load, panel } from './common.js';
import { loadFrk } from './frkstore.js';
import { approveStaff, pendingKey } from './keyflows.js';
import { b64, currentFek, firmOf, keyringOf } from './keyctx.js';

async function pendingRow(ctx, row) {
  const li = el('li', 'staff-row pending-row');
  li.dataset.pending = String(row.staff_id);
  const key = await pendingKey(row);
  li.append(facts([[row.name, row.email], [KEYS.keyFingerprint, key.text]]));
  const form = el('form', 'invite-actions');
  const line = statusLine();
  const approve = button(KEYS.approve);
  form.append(approve);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const frk = await loadFrk(await firmOf(ctx));
    const kr = await keyringOf(ctx);
    if (!frk || !kr) return say(line, frk ? KEYS.noKeyring : KEYS.needFrk, 'error');
    const done = await busy(form, line, KEYS.approving, async () => {
      if (!kr.firmKeys || !kr.firmKeys.size) await kr.syncFirm();
      const out = await approveStaff({ firm: await firmOf(ctx), frk, fek: currentFek(kr), me: kr.identity, pending: row, nowMs: Date.now() });
      await api('POST', '/api/v1/keys/certs', { certs: out.certs.map(b64), wraps: out.wraps.map(b64) });
      return true;
    }, (err) => {
      failed(ctx, line, err);
      return true;
    });
    if (done) {
      form.remove();
      say(line, KEYS.approved, 'ok');
    }
    return undefined;
  });
  li.append(form, line);
  return li;
}

/** The queue panel; reloads with `refresh()`. */
export function approvalsPanel(ctx) {
  const section = panel('staff-approvals', KEYS.approvalsTitle);
  const list = el('ul', 'rows');
  section.append(list);
  const refresh = async () => {
    const data = await load(ctx, section, () => api('GET', '/api/v1/keys/pending'));
    if (!data) return;
    // my own key is certified when I set the firm keys up (or by another org admin), not from here
    const rows = (Array.isArray(data) ? data : data.pending || []).filter((r) => r.staff_id !== ctx.principal.id);
    list.replaceChildren(...(await Promise.all(rows.map((r) => pendingRow(ctx, r)))));
    if (!rows.length) list.append(el('li', 'empty', KEYS.noPending));
  };
  refresh();
  return { node: section, refresh };
}
