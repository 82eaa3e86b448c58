// The staff member's account: change password, sign out everywhere, and
// enrol an authenticator app; the encryption key fingerprints.

import { accountPanel } from '../shared/accountview.js';
import { el } from '../shared/dom.js';
import { keysPanel } from '../shared/keysview.js';
import { totpPanel } from '../shared/totpview.js';

export function accountView(ctx) {
  const box = el('div', 'stack');
  box.append(
    accountPanel({ email: ctx.principal.email, onSignedOut: ctx.onSignedOut }),
    totpPanel({ onSignedOut: ctx.onSignedOut }),
    keysPanel(ctx.principal),
  );
  return { node: box };
}
