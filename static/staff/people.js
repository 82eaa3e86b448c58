// Staff and roles (org admins): every staff member of the firm with their
// role and status, changing a role, disabling or enabling an account,
// inviting a new member (the server emails them a setup link), and the
// firm's settings (staff/firm.js).

import { el } from '../shared/dom.js';
import { button, busy, control, field, say, select, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { KEYS, ROLE, STAFF, STAFF_STATUS, leavingProgress } from '../shared/strings_staff.js';
import { approvalsPanel } from './approvals.js';
import { failed, load, panel } from './common.js';
import { firmPanel } from './firm.js';
import { matterTypesPanel } from './mattertypes.js';
import { firmKeysPanel } from './keysetup.js';
import { runStaffLeaving } from './leaving.js';

const ROLES = Object.entries(ROLE);

function memberRow(ctx, member) {
  const li = el('li', 'staff-row');
  li.dataset.staff = String(member.id);
  const head = el('p', 'invite-head');
  head.append(
    el('strong', null, member.name),
    el('span', 'hint', member.email),
    el('span', `badge status-${member.status}`, STAFF_STATUS[member.status] || member.status),
  );
  const form = el('form', 'invite-actions');
  const role = select('role', ROLES, member.role);
  role.setAttribute('aria-label', STAFF.role);
  const line = statusLine();
  const self = member.id === ctx.principal.id;
  role.disabled = self; // an admin does not demote themself by a slip
  const patch = (body) =>
    busy(form, line, STAFF.saving, () => api('PATCH', `/api/v1/staff/${encodeURIComponent(member.id)}`, body), (err) => {
      failed(ctx, line, err);
      return true;
    });
  role.addEventListener('change', async () => {
    const done = await patch({ role: role.value });
    if (done) say(line, STAFF.saved, 'ok');
    else role.value = member.role;
  });
  form.append(role);
  if (!self) {
    const disabled = member.status === 'disabled';
    const toggle = button(disabled ? STAFF.enable : STAFF.disable, 'button quiet', 'button');
    toggle.addEventListener('click', async () => {
      const done = await patch({ status: disabled ? 'active' : 'disabled' });
      if (!done) return;
      const row = memberRow(ctx, done.staff || { ...member, status: disabled ? 'active' : 'disabled' });
      li.replaceWith(row);
      if (!disabled) rekeyAfterLeaving(ctx, member.id, row);
    });
    form.append(toggle);
  }
  form.addEventListener('submit', (e) => e.preventDefault());
  li.append(head, form, line);
  return li;
}

/** After disabling: revoke their keys, rotate the firm keys, re-key every matter (progress under the row). */
async function rekeyAfterLeaving(ctx, staffId, row) {
  const line = statusLine();
  line.classList.add('leaving');
  row.append(line);
  say(line, KEYS.leaving, 'busy');
  try {
    const out = await runStaffLeaving(ctx, staffId, (done, total) => say(line, leavingProgress(done, total), 'busy'));
    if (out.nothing) line.remove();
    else if (out.done) say(line, KEYS.leavingDone, 'ok');
    else say(line, KEYS.needFrk, 'error');
  } catch (err) {
    failed(ctx, line, err);
  }
}

function inviteForm(ctx, onInvited) {
  const form = el('form', 'stack');
  form.id = 'invite-staff';
  const name = control('name', { required: true, maxLength: 200, autocomplete: 'off' });
  const email = control('email', { type: 'email', required: true, autocomplete: 'off' });
  const role = select('role', ROLES, 'staff');
  const line = statusLine();
  form.append(
    el('h3', null, STAFF.inviteStaff),
    field(STAFF.name, name),
    field(STAFF.email, email),
    field(STAFF.role, role),
    button(STAFF.inviteStaffSubmit),
    line,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), email: email.value.trim(), role: role.value };
    const done = await busy(form, line, STAFF.sending, () => api('POST', '/api/v1/staff', body), (err) => {
      failed(ctx, line, err);
      return true;
    });
    if (done) {
      form.reset();
      say(line, STAFF.sent, 'ok');
      onInvited(done.staff || done);
    }
  });
  return form;
}

export function staffView(ctx) {
  const section = panel('staff-admin', STAFF.staffTitle);
  const list = el('ul', 'rows');
  section.append(list, inviteForm(ctx, (member) => list.append(memberRow(ctx, member))));
  load(ctx, section, () => api('GET', '/api/v1/staff')).then((data) => {
    if (!data) return;
    for (const member of data.staff) list.append(memberRow(ctx, member));
  });
  const box = el('div', 'stack');
  box.append(approvalsPanel(ctx).node, section, firmKeysPanel(ctx), firmPanel(ctx), matterTypesPanel(ctx));
  return { node: box };
}
