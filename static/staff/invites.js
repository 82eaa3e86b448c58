// The matter's portal access list: each invited contact with the invite's
// status and delivery ("sent", "failed: …"), and what staff can do with it:
// resend, resend by another method, remove from the portal, generate new
// login details (the last two ask once more, inline: no browser dialog).

import { el } from '../shared/dom.js';
import { button, busy, control, field, say, select, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { confirmFreshKey, epochAfterRemoval, keysAfterRegenerate } from './clientkeys.js';
import { copyableLink } from './roundkeys.js';
import { KEYS, INVITE_STATUS, METHOD, STAFF, confirmRegenerateText, confirmRemoveText, deliveryLine } from '../shared/strings_staff.js';

const LIVE = new Set(['pending', 'active', 'regenerated']);

export const inviteStatus = (invite) => invite.status || invite.state;
export const contactIdOf = (invite) => (invite.contact && invite.contact.id) ?? invite.contact_id;
export const isLive = (invite) => LIVE.has(inviteStatus(invite));
export const contactName = (invite) =>
  (invite.contact && invite.contact.name) || invite.contact_name || invite.name || String(contactIdOf(invite));

/** Delivery lines of an invite, whatever shape the answer gives: a list, a map or a text. */
function deliveryLines(invite) {
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
/** "Not verified" (portal delivery): the 6-digit code the client reads out, confirmed here. */
function verifyForm(invite, { ctx, ref, onChanged, onFailed }) {
  const form = el('form', 'stack verify-code');
  const code = control('code', { inputMode: 'numeric', autocomplete: 'off', maxLength: 7, pattern: '[0-9 ]{6,7}', required: true });
  const line = statusLine();
  form.append(field(KEYS.codeLabel, code), button(KEYS.confirmCode), line);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const done = await busy(form, line, KEYS.confirming, () => confirmFreshKey(ctx, ref, contactIdOf(invite), invite.handover.record, code.value), (err) => {
      if (err && err.code === 'crypto_signature') say(line, KEYS.codeWrong, 'error');
      else onFailed(line, err);
      return true;
    });
    if (done) {
      say(line, KEYS.verified, 'ok');
      onChanged();
    }
  });
  return form;
}

/** The new login details to deliver after "regenerate": the link with a Copy button. */
function deliverBox(link) {
  const box = el('div', 'confirm new-login');
  const [text, copy] = copyableLink(link, KEYS.newLogin);
  box.append(el('p', null, KEYS.newLogin), text, copy);
  return box;
}

function inviteRow(invite, handlers) {
  const { onChanged, onFailed, ctx, ref } = handlers;
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
  const unverified = status === 'active' && invite.verified === false && invite.handover && ctx;
  if (unverified) head.append(el('span', 'badge status-unverified', KEYS.notVerified));
  li.append(head);
  if (unverified) li.append(verifyForm(invite, handlers));
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
  // `keysAfter(answer)`: what this browser does to the matter's keys once the server acted
  const run = (path, body, keysAfter) =>
    busy(actions, line, STAFF.saving, async () => {
      const answer = await api('POST', path, body);
      return { answer, keys: ctx && keysAfter ? await keysAfter(answer) : null };
    }, (err) => {
      onFailed(line, err);
      return true;
    }).then((done) => {
      if (done) {
        say(line, STAFF.done, 'ok');
        if (done.keys && done.keys.link) li.append(deliverBox(done.keys.link));
        else onChanged();
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
      confirmInline(li, confirmRegenerateText(name), STAFF.confirmRegenerate, () =>
        run(`${base}/regenerate`, {}, (answer) =>
          keysAfterRegenerate(ctx, ref, contactIdOf(invite), (answer.links || [answer])[0]),
        ),
      ),
    );
    actions.append(regenerate);
  }
  const remove = button(STAFF.remove, 'button danger quiet', 'button');
  remove.dataset.action = 'remove';
  remove.addEventListener('click', () =>
    confirmInline(li, confirmRemoveText(name), STAFF.confirmRemove, () =>
      run(`${base}/remove`, {}, () => epochAfterRemoval(ctx, ref, contactIdOf(invite))),
    ),
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
