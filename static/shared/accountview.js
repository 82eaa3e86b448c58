// "Your account": change password (the current one is checked by the
// server through its login secret; the new one gets a fresh salt) and
// sign out on every device. Clients open it from the header; the staff app
// shows it with the authenticator enrolment.

import { changePassword, currentFirm, rememberedEmail, signOutEverywhere } from './account.js';
import { el } from './dom.js';
import { button, busy, control, field, say, statusLine } from './forms.js';
import { passwordProblem } from './password.js';
import { AUTH, ERRORS } from './strings.js';

/** The panel; `email` of the signed-in user (or the remembered one); `onSignedOut()` after "everywhere". */
export function accountPanel({ email, onSignedOut, onClose }) {
  const section = el('section', 'panel account');
  section.id = 'account-panel';
  const head = el('div', 'panel-head');
  head.append(el('h2', null, AUTH.accountTitle));
  if (onClose) {
    const close = button(AUTH.close, 'button quiet', 'button');
    close.addEventListener('click', onClose);
    head.append(close);
  }
  section.append(head);

  const form = el('form', 'stack');
  form.id = 'change-password';
  const user = control('username', { type: 'email', autocomplete: 'username', value: email || rememberedEmail() || '' });
  user.hidden = true;
  user.tabIndex = -1;
  const current = control('current', { type: 'password', required: true, autocomplete: 'current-password' });
  const next = control('new', { type: 'password', required: true, autocomplete: 'new-password' });
  const again = control('again', { type: 'password', required: true, autocomplete: 'new-password' });
  const line = statusLine();
  form.append(
    el('h3', null, AUTH.changePasswordTitle),
    user,
    field(AUTH.currentPassword, current),
    field(AUTH.newPassword, next, AUTH.passwordHint),
    field(AUTH.confirmPassword, again),
    button(AUTH.changePasswordSubmit),
    line,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const problem = passwordProblem(next.value);
    if (problem) return say(line, ERRORS[problem], 'error');
    if (next.value !== again.value) return say(line, ERRORS.mismatch, 'error');
    const done = await busy(form, line, AUTH.checking, () =>
      changePassword(currentFirm(), user.value, current.value, next.value),
    );
    if (done !== null) {
      form.reset();
      say(line, AUTH.passwordChanged, 'ok');
    }
  });

  const everywhere = button(AUTH.signOutEverywhere, 'button quiet', 'button');
  const outLine = statusLine();
  everywhere.addEventListener('click', async () => {
    const done = await busy(section, outLine, AUTH.checking, signOutEverywhere);
    if (done !== null) onSignedOut();
  });
  section.append(form, everywhere, outLine);
  return section;
}
