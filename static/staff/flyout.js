// The invitation flyout of a matter (Portal OFF -> ON): pick contacts among
// the matter's applicants (or add one), per contact the method and whether
// they may see the other applicants, edit the welcome message (the firm's
// template, from the draft endpoint), send. Several contacts per round.

import { el } from '../shared/dom.js';
import { button, busy, control, field, say, select, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { KEYS, METHOD, STAFF } from '../shared/strings_staff.js';
import { ownMailPanel, sendRounds } from './roundkeys.js';

const enc = encodeURIComponent;

/** The method a contact can get by default: email when it has an address, else SMS. */
function defaultMethod(contact) {
  const mobile = (contact.phones || []).some((p) => p.personal_mobile);
  const email = (contact.emails || []).length > 0;
  if (email && mobile) return 'email_sms';
  return email || !mobile ? 'email' : 'sms';
}

function contactSummary(contact) {
  const parts = [...(contact.emails || []), ...(contact.phones || []).map((p) => p.number)];
  return parts.join(' · ');
}

/** One applicant: a checkbox, and (when ticked) its method and applicants-visibility. */
function pickRow(contact, onTicked) {
  const row = el('li', 'pick-row');
  row.dataset.contact = String(contact.id);
  const tick = control('pick', { type: 'checkbox', value: String(contact.id) });
  const label = el('label', 'pick-label');
  label.htmlFor = tick.id;
  label.append(el('span', 'pick-name', contact.name), el('span', 'hint', contactSummary(contact)));
  const options = el('div', 'pick-options');
  options.hidden = true;
  const method = select('method', Object.entries(METHOD), defaultMethod(contact));
  const see = select('see_applicants', [['no', STAFF.no], ['yes', STAFF.yes]], 'no');
  // default: the portal sends (the least effort for staff); "my email" keeps the secret from the server
  const delivery = select('delivery', [['own_mail', KEYS.ownMail], ['portal', KEYS.portalMail]], 'portal');
  const methodField = field(STAFF.method, method);
  const note = el('p', 'hint portal-note', KEYS.portalNote);
  const showDelivery = () => {
    methodField.hidden = delivery.value !== 'portal';
    note.hidden = delivery.value !== 'portal';
  };
  delivery.addEventListener('change', showDelivery);
  showDelivery();
  options.append(field(KEYS.delivery, delivery), note, methodField, field(STAFF.seeApplicants, see));
  tick.addEventListener('change', () => {
    options.hidden = !tick.checked;
    onTicked(contact, tick.checked);
  });
  const top = el('div', 'pick-top');
  top.append(tick, label);
  row.append(top, options);
  return {
    row,
    tick,
    choice: () => ({
      contact_id: contact.id,
      method: delivery.value === 'portal' ? method.value : 'email',
      see_applicants: see.value === 'yes',
    }),
    delivery: () => delivery.value,
    contact,
  };
}

/** "Add a contact" to the matter: POST contacts, then PUT it as an applicant. */
function addContactForm(ref, onAdded, onFailed) {
  const box = el('details', 'add-contact');
  box.append(el('summary', null, STAFF.addContact));
  const form = el('form', 'stack');
  const name = control('name', { required: true, maxLength: 200, autocomplete: 'off' });
  const email = control('email', { type: 'email', autocomplete: 'off' });
  const phone = control('phone', { type: 'tel', autocomplete: 'off', placeholder: '+61400000000' });
  const mobile = control('personal_mobile', { type: 'checkbox', checked: true });
  const mobileLabel = el('label', 'inline', STAFF.personalMobile);
  mobileLabel.prepend(mobile);
  const line = statusLine();
  form.append(
    field(STAFF.contactName, name),
    field(STAFF.contactEmail, email),
    field(STAFF.contactPhone, phone),
    mobileLabel,
    button(STAFF.addContactSubmit),
    line,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), emails: [], phones: [] };
    if (email.value.trim()) body.emails.push(email.value.trim());
    if (phone.value.trim()) body.phones.push({ number: phone.value.trim(), personal_mobile: mobile.checked });
    const contact = await busy(
      form,
      line,
      STAFF.saving,
      async () => {
        const made = await api('POST', '/api/v1/contacts', body);
        const c = made.contact || made;
        await api('PUT', `/api/v1/matters/${enc(ref)}/applicants/${enc(c.id)}`);
        return c;
      },
      (err) => {
        onFailed(line, err);
        return true;
      },
    );
    if (contact) {
      form.reset();
      box.open = false;
      onAdded(contact);
    }
  });
  box.append(form);
  return box;
}

/**
 * The flyout for matter `ref` with its `applicants` (contacts). `onSent()`
 * after a round was sent; `onClose()`; `onAdded(contact)` after a contact
 * became an applicant; `onFailed(line, err)` shows errors.
 */
export function inviteFlyout({ ctx, ref, applicants, onSent, onClose, onFailed, onAdded = () => {} }) {
  const aside = el('section', 'flyout');
  aside.id = 'invite-flyout';
  aside.setAttribute('role', 'dialog');
  aside.setAttribute('aria-labelledby', 'invite-flyout-title');
  const head = el('div', 'panel-head');
  const title = el('h2', null, STAFF.flyoutTitle);
  title.id = 'invite-flyout-title';
  const close = button(STAFF.cancel, 'button quiet', 'button');
  close.addEventListener('click', onClose);
  head.append(title, close);

  const form = el('form', 'stack');
  const picks = [];
  const pickList = el('ul', 'picks');
  const fieldset = el('fieldset');
  fieldset.append(el('legend', null, STAFF.pickContacts), pickList);
  const subject = control('subject', { required: true, maxLength: 300 });
  const body = control('body', { required: true, rows: 8, maxLength: 20000 }, 'textarea');
  let edited = false;
  for (const input of [subject, body]) input.addEventListener('input', () => (edited = true));
  const line = statusLine();

  // The message of the first contact ticked (merge fields filled for them where the server does).
  async function loadDraft(contact) {
    if (edited) return;
    try {
      const draft = await api('GET', `/api/v1/matters/${enc(ref)}/invites/draft?contact_id=${enc(contact.id)}`);
      if (edited) return;
      subject.value = draft.subject || '';
      body.value = draft.body || '';
    } catch (err) {
      onFailed(line, err);
    }
  }
  const onTicked = (contact, ticked) => {
    if (ticked && picks.filter((p) => p.tick.checked).length === 1) loadDraft(contact);
  };
  const addPick = (contact, ticked) => {
    const pick = pickRow(contact, onTicked);
    picks.push(pick);
    pickList.append(pick.row);
    if (ticked) {
      pick.tick.checked = true;
      pick.tick.dispatchEvent(new Event('change'));
    }
  };
  for (const contact of applicants) addPick(contact, applicants.length === 1);
  const empty = el('p', 'empty', STAFF.noApplicants);
  empty.hidden = applicants.length > 0;
  fieldset.append(empty);

  form.append(
    fieldset,
    field(STAFF.subject, subject),
    field(STAFF.body, body, STAFF.mergeHint),
    button(STAFF.send),
    line,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const ticked = picks.filter((p) => p.tick.checked);
    if (!ticked.length) return say(line, STAFF.pickSomeone, 'error');
    const about = ticked.map((p) => ({
      ...p.choice(),
      delivery: p.delivery(),
      name: p.contact.name,
      email: (p.contact.emails || [])[0],
    }));
    const done = await busy(
      form,
      line,
      STAFF.sending,
      () => sendRounds(ctx, ref, about, subject.value, body.value),
      (err) => {
        onFailed(line, err);
        return true;
      },
    );
    if (!done) return undefined;
    if (done.own) {
      const { sent, keys, chosen: mine } = done.own;
      form.replaceWith(ownMailPanel(sent, keys, mine, subject.value, body.value, () => onSent(done.sent)));
      adder.remove();
      return undefined;
    }
    onSent(done.sent);
    return undefined;
  });

  const adder = addContactForm(ref, (contact) => {
    empty.hidden = true;
    addPick(contact, true);
    onAdded(contact);
  }, onFailed);
  aside.append(head, form, adder);
  return aside;
}
