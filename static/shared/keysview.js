// "Encryption keys" on the account page: this device's key fingerprint and
// the firm root fingerprint it pinned, in the human format, to compare with
// what the firm shows (docs/security.md §17), and, while a handed-over key
// waits for the adviser, the 6-digit code to read to them by phone.

import { fingerprintText } from '../crypto/keys.js';
import { el } from './dom.js';
import { keyringFor } from './keysession.js';
import { CRYPTO } from './strings.js';

function row(list, term, value, cls) {
  const div = el('div', 'payload-row');
  div.append(el('dt', null, term), el('dd', cls, value));
  list.append(div);
}

/** The panel for `principal`; filled once the keyring is read. */
export function keysPanel(principal) {
  const section = el('section', 'panel keys');
  section.id = 'keys-panel';
  section.append(el('h2', null, CRYPTO.accountTitle));
  keyringFor(principal).then(
    (keyring) => fill(section, keyring),
    () => fill(section, null),
  );
  return section;
}

function fill(section, keyring) {
  if (!keyring) {
    section.append(el('p', 'key-notice', CRYPTO.noDeviceKeys));
    return;
  }
  const list = el('dl', 'payload fingerprints');
  row(list, CRYPTO.myFingerprint, fingerprintText(keyring.identity.fingerprint), 'fingerprint my-fingerprint');
  if (keyring.frkFingerprint) {
    row(list, CRYPTO.firmFingerprint, fingerprintText(keyring.frkFingerprint), 'fingerprint firm-fingerprint');
  } else {
    section.append(el('p', 'key-notice unpinned', CRYPTO.unpinned)); // not silently ready
  }
  section.append(list, el('p', 'form-status', CRYPTO.fingerprintHint));
  const code = keyring.verificationCode;
  if (code) {
    const box = el('div', 'verification');
    box.id = 'verification';
    const shown = el('p', 'verification-code', code);
    shown.id = 'verification-code';
    box.append(el('h3', null, CRYPTO.verifyTitle), el('p', null, CRYPTO.verifyText), shown);
    section.append(box);
  }
}
