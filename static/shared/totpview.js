// Enrolling an authenticator app (TOTP) from "your account": the key and
// its otpauth link are shown as text to type or paste into the app, a first
// code confirms, and the one-time recovery codes are shown once. Staff and
// clients alike (an org admin enrols at their first sign-in instead).

import { el } from './dom.js';
import { button, busy, control, field, statusLine } from './forms.js';
import { ApiError, api } from './http.js';
import { AUTH } from './strings.js';

/** The panel; `onSignedOut()` when the session turns out to have ended. */
export function totpPanel({ onSignedOut }) {
  const section = el('section', 'panel');
  section.id = 'totp';
  section.append(el('h2', null, AUTH.totpTitle));
  const ended = (err) => {
    if (!(err instanceof ApiError && err.status === 401)) return false;
    onSignedOut();
    return true;
  };
  const start = el('form', 'stack');
  const line = statusLine();
  start.append(button(AUTH.totpStart), line);
  start.addEventListener('submit', async (e) => {
    e.preventDefault();
    const enrol = await busy(start, line, AUTH.starting, () => api('POST', '/api/v1/me/totp', {}), ended);
    if (enrol) start.replaceWith(confirmForm(enrol, ended));
  });
  section.append(start);
  return section;
}

function confirmForm(enrol, ended) {
  const form = el('form', 'stack');
  const secret = el('code', 'secret', enrol.secret);
  secret.id = 'totp-secret';
  const uri = el('code', 'secret', enrol.uri);
  uri.id = 'totp-uri';
  const code = control('code', { inputMode: 'numeric', autocomplete: 'one-time-code', required: true, maxLength: 8 });
  const line = statusLine();
  form.append(
    el('p', null, AUTH.totpIntro),
    el('h3', null, AUTH.totpKey),
    secret,
    el('h3', null, AUTH.totpLink),
    uri,
    field(AUTH.totpCode, code),
    button(AUTH.totpConfirm),
    line,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const done = await busy(
      form,
      line,
      AUTH.checking,
      () => api('POST', '/api/v1/me/totp/confirm', { code: code.value.trim() }),
      ended,
    );
    if (!done) return;
    const codes = el('ul', 'recovery-codes');
    for (const c of done.recovery_codes || []) codes.append(el('li', null, c));
    form.replaceWith(el('p', 'ok-text', AUTH.totpDone), codes);
  });
  setTimeout(() => code.focus(), 0);
  return form;
}
