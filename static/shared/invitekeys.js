// The keys of an end-to-end invite link (docs/keys.md "Portal on / client
// invited"): the identity derived from the link's secret `r` under the firm
// root the link pins (`frk`), and, for an invite the portal delivered (whose
// server could have read `r`), the handover to a fresh identity signed by
// the invite key, with the 6-digit code client and adviser compare by phone;
// and a contact with a password invited to a second matter, whose invite key
// binds to the identity they already have.

import * as C from '../crypto/index.js';
import { b64url, bytesEqual, fromB64url } from '../crypto/bytes.js';
import { CryptoInvalid } from '../crypto/errors.js';
import { api } from './http.js';
import { userId } from './keyids.js';
import { createIdentity, identityFromInvite, unlockWithPassword } from './keyring.js';

/** The invite identity (a PendingIdentity) of `keyLink` {r, frk} for the invited contact. */
export async function inviteIdentity(firm, info, keyLink) {
  if (!keyLink.frk) throw new CryptoInvalid('crypto_encoding', 'the invite link names no firm root');
  const contactId = info.contact && info.contact.id;
  const frkFingerprint = C.keys.fingerprintFromLink(keyLink.frk);
  let secret;
  try {
    secret = fromB64url(keyLink.r);
  } catch {
    secret = null;
  }
  if (!secret || secret.length !== 32) throw new CryptoInvalid('crypto_encoding', 'r= must be 32 bytes of base64url');
  return identityFromInvite({ firm, user: userId('contact', contactId), secret, frkFingerprint });
}

/**
 * Was the link's secret handled by the server (delivery 'portal')? Then the
 * invite key is only a bridge. Said by the link (`d=portal`) or the invite.
 */
export function handoverWanted(info, keyLink) {
  return (keyLink && keyLink.d === 'portal') || info.delivery === 'portal';
}

/** The verification code ("123 456") of my fresh identity, or null when the library has none. */
export function verificationCode(firm, user, identity) {
  return C.recovery.sasCode(firm, user, identity.xPk, identity.edPk);
}

/**
 * A fresh identity replaces the invite key: registered with a handover the
 * invite key signs (`PUT /api/v1/keys/me {public_keys, backup, handover, login_secret}`);
 * the keyring keeps reading with the invite key until staff compare the code
 * and certify the fresh one. The code is kept to show on the account page.
 */
export async function handOver(keyring, password, kdf) {
  const firm = keyring.firm;
  const user = keyring.user;
  const fresh = await createIdentity({ firm, user, frkFingerprint: keyring.frkFingerprint });
  const made = await fresh.createBackup(password, kdf);
  const { handover } = await C.recovery.signHandover(
    { firm, user, xPk: fresh.identity.xPk, edPk: fresh.identity.edPk, tsMs: Date.now() },
    keyring.identity,
  );
  await api('PUT', '/api/v1/keys/me', {
    public_keys: b64url(fresh.publicKeys),
    backup: b64url(made.backup),
    handover: b64url(handover),
    login_secret: made.loginSecret, // same password and kdf: the current login secret
  });
  const code = await verificationCode(firm, user, fresh.identity);
  await keyring.addNext(await fresh.storedIdentity(), code);
  return code;
}

/**
 * A contact who already has a password (and an identity in their key backup)
 * accepted an invite to another matter (docs/keys.md "A second matter"): open
 * the backup, have the link's invite key sign a binding (an RTK1 naming my
 * identity: `PUT /api/v1/keys/me {public_keys, handover, login_secret}`, the
 * backup left as it is), and keep the invite key in this browser to read and
 * write in that matter until a staff browser certifies my identity there too.
 * A password from before the firm's keys (no backup yet) takes the invite
 * identity as its first. Returns the keyring.
 */
export async function bindInvite(firm, info, keyLink, password, kdf, loginSecret) {
  const invite = await inviteIdentity(firm, info, keyLink);
  const mine = await api('GET', '/api/v1/keys/me');
  if (!mine.backup) {
    const made = await invite.createBackup(password, kdf);
    await api('PUT', '/api/v1/keys/me', {
      public_keys: b64url(invite.publicKeys),
      backup: b64url(made.backup),
      login_secret: made.loginSecret,
    });
    const first = await invite.store();
    // the server mailed `r`: its key is handed over, as at a first acceptance
    if (handoverWanted(info, keyLink)) await handOver(first, password, kdf);
    return first;
  }
  const keyring = await unlockWithPassword({ firm, user: invite.user, password, kdf, backupBytes: mine.backup });
  if (!keyring.frkFingerprint) await keyring.pinFrk(invite.frkFingerprint);
  if (!bytesEqual(keyring.frkFingerprint, invite.frkFingerprint)) {
    throw new CryptoInvalid('crypto_wrong_context', 'the link names another firm root key than my backup');
  }
  const { handover } = await C.recovery.signHandover(
    { firm, user: invite.user, xPk: keyring.identity.xPk, edPk: keyring.identity.edPk, tsMs: Date.now() },
    invite.identity,
  );
  // kept first: the link is used up, and this key is what reads the matter until staff certify
  await keyring.addBound(info.matter.ref, await invite.storedIdentity());
  await api('PUT', '/api/v1/keys/me', {
    public_keys: mine.public_keys,
    handover: b64url(handover),
    login_secret: loginSecret,
  });
  return keyring;
}
