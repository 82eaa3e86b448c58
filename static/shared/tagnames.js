// Internal-only tag names in the staff browser (docs/threads.md "Tags"): the
// same envelope as the Python SDK's rtportal/sdk/tags.py, byte for byte in
// format, so a name either side seals the other opens. Header firm = slug,
// matter = `#tag` (never a matter reference: a name cannot be replayed as a
// note), thread = the tag id, a fresh msg_id, no parent, sender and kid the
// staff member's identity, epoch = the newest verified escrow (FEK/FIR)
// version, vis 1, ctype rtp1/text; key internal_key(FIR, firm, '#tag', version).
//
// Not envelope.sealMessage / openMessage: those check a matter's epoch
// chain, and a tag name belongs to no matter. The checks a reader makes here
// are the SDK's: context, a staff certificate valid when the name was
// sealed, the signature over the rebuilt AAD, then decryption.

import * as C from '../crypto/index.js';
import { b64url, fromB64url, fromUtf8, utf8 } from '../crypto/bytes.js';
import { CryptoInvalid } from '../crypto/errors.js';

const { envelope, certs, primitives } = C;

export const TAG_CONTEXT = '#tag'; // = rtportal.threads.tags.TAG_CONTEXT (the server checks it)
export const NAME_BLOB_MAX = 1024; // the server refuses a larger name_blob

function fail(code, message) {
  return new CryptoInvalid(code, message);
}

/** The keyring's verified firm state, read once when this page has not yet. */
async function ready(keyring) {
  if (!keyring.trust) await keyring.syncFirm();
  if (!keyring.trust) throw fail('crypto_uncertified', 'the firm keys are not verified on this device');
}

/**
 * `name` sealed for tag id `tag` under the newest verified escrow version's
 * FIR (only staff hold it): the `name_blob` as base64url.
 */
export async function sealTagName(keyring, tag, name, { nowMs = Date.now(), rand } = {}) {
  await ready(keyring);
  const version = keyring.trust.newestEscrowVersion;
  const keys = keyring.firmKeys.get(version);
  if (!keys || !keys.fir) throw fail('crypto_uncertified', `no firm internal key of version ${version}`);
  const header = {
    firm: keyring.firm,
    matter: TAG_CONTEXT,
    thread: tag,
    parent: null,
    sender: keyring.user,
    senderKid: keyring.identity.kid,
    epoch: version,
    vis: envelope.VIS.STAFF,
    tsMs: nowMs,
    ctype: envelope.CTYPE.TEXT,
  };
  const sealed = await envelope.sealEnvelope(header, utf8(name), { fir: keys.fir, fekVersion: version },
    keyring.identity, rand ? { rand } : {});
  if (sealed.envelope.length > NAME_BLOB_MAX) throw fail('crypto_encoding', 'tag name too long');
  return b64url(sealed.envelope);
}

/** The name of tag `tag` from its `name_blob` (base64url or bytes): verified, then decrypted; else throws. */
export async function openTagName(keyring, tag, blob, { nowMs = Date.now() } = {}) {
  const bytes = typeof blob === 'string' ? fromB64url(blob) : blob;
  if (!(bytes instanceof Uint8Array) || bytes.length > NAME_BLOB_MAX) throw fail('crypto_encoding', 'name_blob');
  const e = C.encoding.decode(envelope.ENVELOPE, bytes);
  const a = e.aad;
  if (e.ct.length < 16) throw fail('crypto_encoding', 'ciphertext shorter than a tag');
  if (a.firm !== keyring.firm || a.matter !== TAG_CONTEXT || a.thread !== tag
      || a.vis !== envelope.VIS.STAFF || a.ctype !== envelope.CTYPE.TEXT) {
    throw fail('crypto_wrong_context', 'not the name of this tag');
  }
  await ready(keyring);
  const cert = keyring.trust.lookup(a.sender, a.sender_kid, nowMs, a.ts_ms);
  if (cert.role !== certs.ROLE.staff) throw fail('crypto_uncertified', 'tag names are written by staff');
  // the AAD rebuilt from what this page shows, never taken from the blob
  const aad = envelope.buildAad({ ...a, firm: keyring.firm, matter: TAG_CONTEXT, thread: tag });
  const sigInput = C.encoding.encode(envelope.SIG_INPUT, { aad, nonce: e.nonce, ct: e.ct });
  if (!(await primitives.ed25519Verify(cert.ed_pk, sigInput, e.sig))) {
    throw fail('crypto_signature', 'tag name signature');
  }
  const keys = keyring.firmKeys.get(a.epoch);
  if (!keys || !keys.fir) throw fail('crypto_uncertified', `no firm internal key of version ${a.epoch}`);
  const key = await envelope.keyForMessage(envelope.VIS.STAFF, {
    firm: keyring.firm, matter: TAG_CONTEXT, fir: keys.fir, fekVersion: a.epoch,
  });
  const plaintext = await primitives.aesGcmDecrypt(key, e.nonce, e.ct, aad);
  try {
    return fromUtf8(plaintext);
  } catch {
    throw fail('crypto_encoding', 'tag name is not UTF-8');
  }
}
