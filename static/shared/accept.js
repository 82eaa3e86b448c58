// Opening an invitation link (`#invite=`, a client) or a staff setup link
// (`#setup=`): show who it is for, ask for the SMS passcode when the invite
// needs one, let the person choose a password (checked here first: the
// server only ever sees the login secret), then the server signs them in.

import { loginSecret, newKdf, rememberAccount } from './account.js';
import { el } from './dom.js';
import { button, busy, control, field, say, statusLine } from './forms.js';
import { b64url } from '../crypto/bytes.js';
import { ApiError, api, setCsrfToken } from './http.js';
import { bindInvite, handOver, handoverWanted, inviteIdentity } from './invitekeys.js';
import { useKeyring } from './keysession.js';
import { passwordProblem } from './password.js';
import { AUTH, ERRORS, inviteFor } from './strings.js';

const PATHS = {
  invite: ['/api/v1/invites/open', '/api/v1/invites/accept'],
  setup: ['/api/v1/setup/open', '/api/v1/setup/accept'],
};

/**
 * Render into `root`. `kind`: 'invite' | 'setup'. `onSignedIn()` once
 * signed in, `onPasswordSet()` when the password is set but the account
 * must sign in first; `onBadLink(err)` when the link does not open.
 */
export async function acceptScreen(root, { kind, firm, secret, keyLink, onSignedIn, onPasswordSet, onBadLink }) {
  const [openPath, acceptPath] = PATHS[kind];
  const section = el('section', 'panel auth');
  section.id = 'accept';
  const opening = statusLine();
  section.append(el('h2', null, kind === 'invite' ? AUTH.welcomeTitle : AUTH.setupTitle), opening);
  root.replaceChildren(section);
  say(opening, AUTH.opening, 'busy');

  let info;
  try {
    info = await api('POST', openPath, { token: secret }, { session: false });
  } catch (err) {
    onBadLink(err);
    return;
  }
  opening.remove();
  const firmSlug = info.firm && typeof info.firm === 'object' ? info.firm.slug : firm;
  const firmName = info.firm && typeof info.firm === 'object' ? info.firm.name : info.firm;
  const matter = info.matter && typeof info.matter === 'object' ? info.matter.title || info.matter.ref : info.matter;
  const person = info.contact && typeof info.contact === 'object' ? info.contact.name : info.contact || info.name;
  section.append(el('p', 'lead', inviteFor(firmName, matter, person, info.email)));
  // An end-to-end invite (`r` and `frk` in the link): the identity its secret
  // determines, under the firm root the link pins. Derived now: it is cheap,
  // and a link whose parts do not decode says so before a password is typed.
  // With a password already (a second matter), the identity stays and this one binds to it
  // after acceptance (bindInvite); derived here too, so a bad link fails before the password.
  let pending = null;
  if (kind === 'invite' && keyLink && keyLink.r) {
    try {
      const derived = await inviteIdentity(firmSlug, info, keyLink);
      if (!info.has_password) pending = derived;
    } catch (err) {
      onBadLink(err);
      return;
    }
  }

  const form = el('form', 'stack');
  const passcode = control('passcode', {
    inputMode: 'numeric',
    autocomplete: 'one-time-code',
    required: true,
    maxLength: 6,
    pattern: '[0-9]{6}',
  });
  const password = control('password', {
    type: 'password',
    required: true,
    autocomplete: info.has_password ? 'current-password' : 'new-password',
  });
  const confirm = control('confirm', { type: 'password', required: true, autocomplete: 'new-password' });
  const username = control('username', { type: 'email', autocomplete: 'username', value: info.email || '' });
  username.hidden = true; // lets a password manager store the right account
  username.tabIndex = -1;
  username.setAttribute('aria-hidden', 'true');
  form.append(username);
  if (info.needs_passcode) form.append(field(AUTH.passcode, passcode, AUTH.passcodeHint));
  if (info.has_password) {
    form.append(field(AUTH.existingPassword, password));
  } else {
    form.append(field(AUTH.newPassword, password, AUTH.passwordHint), field(AUTH.confirmPassword, confirm));
  }
  // A client who already has a password may have an authenticator too: the
  // server then asks for its code (second_factor_required), as sign-in does.
  const totp = control('totp', { inputMode: 'numeric', autocomplete: 'one-time-code', maxLength: 32 });
  const totpField = field(AUTH.totp, totp, AUTH.totpHint);
  totpField.hidden = true;
  form.append(totpField);
  const line = statusLine();
  form.append(button(kind === 'invite' ? AUTH.acceptSubmit : AUTH.setupSubmit), line);
  section.append(form);
  (info.needs_passcode ? passcode : password).focus();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!info.has_password) {
      const problem = passwordProblem(password.value);
      if (problem) return say(line, ERRORS[problem], 'error');
      if (password.value !== confirm.value) return say(line, ERRORS.mismatch, 'error');
    }
    const done = await busy(form, line, AUTH.checking, async () => {
      // The server's salt and parameters when it gave them (an existing password needs them).
      const kdf = info.kdf && info.kdf.salt ? info.kdf : newKdf(info.kdf);
      const body = { token: secret, kdf };
      if (pending) {
        // one Argon2id run: the login secret, and the key backup under the same password
        const made = await pending.createBackup(password.value, kdf);
        body.login_secret = made.loginSecret;
        body.key_backup = b64url(made.backup);
        body.public_keys = b64url(pending.publicKeys);
      } else {
        body.login_secret = await loginSecret(password.value, kdf);
      }
      if (info.needs_passcode) body.passcode = passcode.value.trim();
      if (!totpField.hidden && totp.value.trim()) body.totp = totp.value.trim();
      const answer = await api('POST', acceptPath, body, { session: false });
      rememberAccount(firmSlug, info.email);
      if (answer && answer.csrf_token) setCsrfToken(answer.csrf_token);
      if (kind === 'invite' && keyLink && keyLink.r && info.has_password && answer && answer.principal) {
        // a second matter: my identity stays; this link's key binds to it
        useKeyring(await bindInvite(firmSlug, info, keyLink, password.value, kdf, body.login_secret));
      }
      if (pending) {
        const keyring = await pending.store();
        useKeyring(keyring);
        if (answer && answer.principal && handoverWanted(info, keyLink)) await handOver(keyring, password.value, kdf);
      }
      // No session: the account must sign in first (an org admin enrols an
      // authenticator at their first sign-in).
      return Boolean(answer && answer.principal);
    }, (err) => {
      if (!(err instanceof ApiError && err.code === 'second_factor_required')) return false;
      totpField.hidden = false;
      totp.required = true;
      totp.focus();
      say(line, AUTH.totpHint, 'error');
      return true;
    });
    if (done === null) return;
    password.value = '';
    confirm.value = '';
    if (done) onSignedIn();
    else onPasswordSet();
  });
}
