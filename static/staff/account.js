// The staff member's account: change password, sign out everywhere, and
// enrol an authenticator app (TOTP): the key and its otpauth link are shown
// as text to type or paste into the app, a first code confirms, and the
// recovery codes are shown once.

import { accountPanel } from '../shared/accountview.js';
import { el } from '../shared/dom.js';
import { button, busy, control, field, say, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { STAFF } from '../shared/strings.js';
import { failed } from './common.js';

function totpPanel(ctx) {
  const section = el('section', 'panel');
  section.id = 'totp';
  section.append(el('h2', null, STAFF.totpTitle));
  const start = el('form', 'stack');
  const line = statusLine();
  start.append(button(STAFF.totpStart), line);
  if (ctx.principal.totp === true || ctx.principal.second_factor === true) {
    section.append(el('p', 'ok-text', STAFF.totpOn));
  }
  start.addEventListener('submit', async (e) => {
    e.preventDefault();
    const enrol = await busy(start, line, STAFF.loading, () => api('POST', '/api/v1/me/totp', {}), (err) => {
      failed(ctx, line, err);
      return true;
    });
    if (!enrol) return;
    const confirm = el('form', 'stack');
    const secret = el('code', 'secret', enrol.secret);
    secret.id = 'totp-secret';
    const uri = el('code', 'secret', enrol.uri);
    uri.id = 'totp-uri';
    const code = control('code', { inputMode: 'numeric', autocomplete: 'one-time-code', required: true, maxLength: 8 });
    const confirmLine = statusLine();
    confirm.append(
      el('p', null, STAFF.totpIntro),
      el('h3', null, STAFF.totpSecret),
      secret,
      el('h3', null, STAFF.totpUri),
      uri,
      field(STAFF.totpCode, code),
      button(STAFF.totpConfirm),
      confirmLine,
    );
    confirm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const done = await busy(
        confirm,
        confirmLine,
        STAFF.saving,
        () => api('POST', '/api/v1/me/totp/confirm', { code: code.value.trim() }),
        (err) => {
          failed(ctx, confirmLine, err);
          return true;
        },
      );
      if (!done) return;
      const codes = el('ul', 'recovery-codes');
      for (const c of done.recovery_codes || []) codes.append(el('li', null, c));
      confirm.replaceWith(el('p', 'ok-text', STAFF.totpDone), codes);
    });
    start.replaceWith(confirm);
    code.focus();
    say(line, '');
  });
  section.append(start);
  return section;
}

export function accountView(ctx) {
  const box = el('div', 'stack');
  box.append(accountPanel({ email: ctx.principal.email, onSignedOut: ctx.onSignedOut }), totpPanel(ctx));
  return { node: box };
}
