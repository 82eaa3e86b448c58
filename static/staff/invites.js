// The matter's portal access list: each invited contact with the invite's
// status and delivery ("sent", "failed: …"), and what staff can do with it:
// resend, resend by another method, remove from the portal, generate new
// login details (the last two ask once more, inline: no browser dialog).

import { el } from '../shared/dom.js';
import { button, busy, say, select, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import {
  INVITE_STATUS,
  METHOD,
  STAFF,
  confirmRegenerateText,
  confirmRemoveText,
  deliveryLine,
} from '../shared/strings.js';

const LIVE = new Set(['pending', 'active', 'regenerated']);

export const inviteStatus = (invite) => invite.status || invite.state;
export const isLive = (invite) => LIVE.has(inviteStatus(invite));
const contactName = (invite) =>
  (invite.contact && invite.contact.name) || invite.contact_name || invite.name || String(invite.contact_id);

/** Delivery lines of an invite, whatever shape the answer gives: a list, a map or a text. */
export function deliveryLines(invite) {
  const raw = invite.delivery ?? invite.deliveries ?? invite.delivery_status;
  if (!raw) return [];
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) {
    return raw.map((d) => deliveryLine(d.channel || d.kind, d.status, d.error || d.detail));
  }
  return Object.entries(raw).map(([channel, d]) =>
    typeof d === 'string' ? deliveryLine(channel, d) : deliveryLine(channel, d.status, d.error || d.detail),
  );
}

/** An inline "are you sure" under a row: resolves when confirmed (or never, when cancelled). */
function confirmInline(row, text, yesText, action) {
  const old = row.querySelector('.confirm');
  if (old) old.remove();
  const box = el('div', 'confirm');
  const yes = button(yesText, 'button danger', 'button');
  const no = button(STAFF.cancel, 'button quiet', 'button');
  box.append(el('p', null, text), yes, no);
  no.addEventListener('click', () => box.remove());
  yes.addEventListener('click', () => {
    box.remove();
    action();
  });
  row.append(box);
  yes.focus();
}

/**
 * One invite row. `onChanged()` after an action succeeded; `onFailed(line, err)`
 * shows an error (a 401 ends the app).
 */
function inviteRow(invite, { onChanged, onFailed }) {
  const status = inviteStatus(invite);
  const name = contactName(invite);
  const li = el('li', 'invite-row');
  li.dataset.invite = String(invite.id);
  li.dataset.status = status;
  const head = el('p', 'invite-head');
  head.append(
    el('strong', 'invite-name', name),
    el('span', `badge status-${status}`, INVITE_STATUS[status] || status),
    el('span', 'invite-method', METHOD[invite.method] || invite.method),
  );
  li.append(head);
  const lines = deliveryLines(invite);
  if (lines.length) {
    const delivery = el('ul', 'delivery');
    delivery.setAttribute('aria-label', STAFF.delivery);
    for (const text of lines) delivery.append(el('li', text.includes('failed') ? 'failed' : null, text));
    li.append(delivery);
  }
  if (!isLive(invite)) return li;

  const actions = el('form', 'invite-actions');
  const line = statusLine();
  const run = (path, body) =>
    busy(actions, line, STAFF.saving, () => api('POST', path, body), (err) => {
      onFailed(line, err);
      return true;
    }).then((done) => {
      if (done) {
        say(line, STAFF.done, 'ok');
        onChanged();
      }
    });
  const base = `/api/v1/invites/${encodeURIComponent(invite.id)}`;

  if (status !== 'active') {
    const resend = button(STAFF.resend, 'button', 'button');
    resend.dataset.action = 'resend';
    resend.addEventListener('click', () => run(`${base}/resend`, {}));
    actions.append(resend);
  }
  const other = Object.keys(METHOD).filter((m) => m !== invite.method);
  const method = select('method', other.map((m) => [m, METHOD[m]]));
  method.setAttribute('aria-label', STAFF.method);
  const resendBy = button(STAFF.resendBy, 'button quiet', 'button');
  resendBy.dataset.action = 'resend-by';
  resendBy.addEventListener('click', () => run(`${base}/resend`, { method: method.value }));
  const by = el('span', 'resend-by');
  by.append(resendBy, method);
  actions.append(by);
  if (status === 'active') {
    const regenerate = button(STAFF.regenerate, 'button quiet', 'button');
    regenerate.dataset.action = 'regenerate';
    regenerate.addEventListener('click', () =>
      confirmInline(li, confirmRegenerateText(name), STAFF.confirmRegenerate, () => run(`${base}/regenerate`, {})),
    );
    actions.append(regenerate);
  }
  const remove = button(STAFF.remove, 'button danger quiet', 'button');
  remove.dataset.action = 'remove';
  remove.addEventListener('click', () =>
    confirmInline(li, confirmRemoveText(name), STAFF.confirmRemove, () => run(`${base}/remove`, {})),
  );
  actions.append(remove);
  actions.addEventListener('submit', (e) => e.preventDefault());
  li.append(actions, line);
  return li;
}

/** The list element of `invites` (newest round first, as the server orders them). */
export function inviteList(invites, handlers) {
  if (!invites.length) return el('p', 'empty', STAFF.noInvites);
  const list = el('ul', 'rows invites');
  for (const invite of invites) list.append(inviteRow(invite, handlers));
  return list;
}
