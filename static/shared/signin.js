// The sign-in screen: email and password (the firm from the link or
// remembered; asked for only when unknown), a second-factor code when the
// server asks for one, and "forgot password", which sends nothing: it tells
// the user to ask the firm for new login details.

import { currentFirm, rememberedEmail, secretFor, signIn } from './account.js';
import { el } from './dom.js';
import { button, busy, control, field, say, statusLine } from './forms.js';
import { ApiError } from './http.js';
import { keysAfterSignIn } from './keysession.js';
import { AUTH } from './strings.js';

/** A first sign-in that confirmed an authenticator: its one-time recovery codes, shown once. */
function showRecoveryCodes(section, answer, onSignedIn) {
  const codes = el('ul', 'recovery-codes');
  for (const code of answer.recovery_codes) codes.append(el('li', null, code));
  const next = button(AUTH.continue, 'button', 'button');
  next.addEventListener('click', () => onSignedIn(answer));
  section.replaceChildren(el('h2', null, AUTH.recoveryTitle), el('p', null, AUTH.recoveryText), codes, next);
  next.focus();
}

/** Render into `root`; `onSignedIn(answer)` once the server accepted. */
export function signInScreen(root, { onSignedIn }) {
  const firm = currentFirm();
  const section = el('section', 'panel auth');
  section.id = 'signin';
  section.append(el('h2', null, AUTH.signInTitle));

  const form = el('form', 'stack');
  // Not required: a deployment with one firm needs none.
  const firmInput = control('firm', { autocomplete: 'organization', value: firm || '' });
  const email = control('email', {
    type: 'email',
    required: true,
    autocomplete: 'username',
    value: rememberedEmail() || '',
  });
  const password = control('password', { type: 'password', required: true, autocomplete: 'current-password' });
  const totp = control('totp', { inputMode: 'numeric', autocomplete: 'one-time-code', maxLength: 32 });
  const totpField = field(AUTH.totp, totp, AUTH.totpHint);
  totpField.hidden = true;
  const line = statusLine();
  const enrol = el('div', 'enrol');
  enrol.hidden = true;
  const firmField = field(AUTH.firm, firmInput);
  firmField.hidden = Boolean(firm);
  form.append(
    firmField,
    field(AUTH.email, email),
    field(AUTH.password, password),
    enrol,
    totpField,
    button(AUTH.signInSubmit),
    line,
  );

  // The derived secret is kept while only the second factor is asked for,
  // so a code does not cost another second of Argon2id.
  let derived = null;
  for (const input of [firmInput, email, password]) input.addEventListener('input', () => (derived = null));

  // An account that must have an authenticator and has none: the server
  // emailed the key (the mailbox proves the person; the password alone does
  // not); the next sign-in with a code from it confirms the enrolment.
  function showEnrolment() {
    const text = el('p', null, AUTH.enrolText);
    text.id = 'enrol-text';
    enrol.replaceChildren(text);
    enrol.hidden = false;
    totpField.hidden = false;
    totp.required = true;
    totp.focus();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const firmValue = firmInput.value.trim() || null;
    const emailValue = email.value.trim();
    const attempt = (extra) => signIn(firmValue, emailValue, derived.secret, totp.value.trim(), extra);
    const answer = await busy(
      form,
      line,
      AUTH.checking,
      async () => {
        if (!derived) derived = await secretFor(firmValue, emailValue, password.value);
        let signedIn;
        try {
          signedIn = await attempt();
        } catch (err) {
          const mustEnrol = err instanceof ApiError && err.code === 'second_factor_required' && err.details.enrol;
          if (!mustEnrol || totp.value.trim()) throw err;
          return attempt({ totp_setup: true });
        }
        // The keys: the backup of the answer opened with the same Argon2id output.
        // Signed in either way; a backup that does not open is said on the page.
        try {
          await keysAfterSignIn({
            answer: signedIn, password: password.value, kdf: derived.kdf, kek: derived.kek, loginSecret: derived.secret,
          });
        } catch (err) {
          signedIn.keysError = err;
        }
        return signedIn;
      },
      (err) => {
        if (err instanceof ApiError && err.code === 'second_factor_required') {
          totpField.hidden = false;
          totp.required = true;
          totp.focus();
          say(line, AUTH.totpHint, 'error');
          return true;
        }
        return false;
      },
    );
    if (answer && answer.totp_setup) {
      showEnrolment();
      return;
    }
    if (answer) {
      password.value = '';
      if (Array.isArray(answer.recovery_codes) && answer.recovery_codes.length) {
        showRecoveryCodes(section, answer, onSignedIn);
      } else {
        onSignedIn(answer);
      }
    }
  });

  const forgot = button(AUTH.forgotPassword, 'linkish', 'button');
  const forgotText = el('p', 'forgot-text', AUTH.forgotText);
  forgotText.id = 'forgot-text';
  forgotText.hidden = true;
  forgot.setAttribute('aria-controls', forgotText.id);
  forgot.setAttribute('aria-expanded', 'false');
  forgot.addEventListener('click', () => {
    forgotText.hidden = !forgotText.hidden;
    forgot.setAttribute('aria-expanded', String(!forgotText.hidden));
  });

  section.append(form, forgot, forgotText);
  root.replaceChildren(section);
  (firm ? (email.value ? password : email) : firmInput).focus();
}
