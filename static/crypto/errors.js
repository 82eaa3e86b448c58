// The one error type the rtp1 library throws for bad cryptographic input.
// `code` is one of the stable strings of docs/security.md §12 (the same codes
// as rtportal/crypto/errors.py; all are HTTP 422 `CryptoInvalid` server-side).

export const CODES = Object.freeze([
  'crypto_encoding',
  'crypto_signature',
  'crypto_decrypt',
  'crypto_low_order',
  'crypto_wrong_context',
  'crypto_uncertified',
  'crypto_revoked',
  'crypto_commitment',
  'crypto_chain',
  'crypto_rollback',
  'crypto_epoch_gap',
  'crypto_stale_epoch',
  'crypto_replay',
  'crypto_attachment',
  'crypto_recovery',
  'crypto_stale',
]);

export class CryptoInvalid extends Error {
  /** @param {string} code one of CODES @param {string} [message] */
  constructor(code, message) {
    super(message ? `${code}: ${message}` : code);
    if (!CODES.includes(code)) throw new TypeError(`unknown rtp1 error code ${code}`);
    this.name = 'CryptoInvalid';
    this.code = code;
  }
}

/** Throw CryptoInvalid(code) unless cond. */
export function check(cond, code, message) {
  if (!cond) throw new CryptoInvalid(code, message);
}

/** Run fn; rethrow any CryptoInvalid whose code is in `from` as `to` (e.g. chunk decrypt -> attachment). */
export async function recode(fn, to, from = CODES) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CryptoInvalid && from.includes(e.code) && e.code !== to) throw new CryptoInvalid(to, e.message);
    throw e;
  }
}
