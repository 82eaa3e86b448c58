// The staff member's account: change password, sign out everywhere, and
// enrol an authenticator app.

import { accountPanel } from '../shared/accountview.js';
import { el } from '../shared/dom.js';
import { totpPanel } from '../shared/totpview.js';

export function accountView(ctx) {
  const box = el('div', 'stack');
  box.append(
    accountPanel({ email: ctx.principal.email, onSignedOut: ctx.onSignedOut }),
    totpPanel({ onSignedOut: ctx.onSignedOut }),
  );
  return { node: box };
}
