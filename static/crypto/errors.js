// The one error type the rtp1 library throws for bad cryptographic input.
// `code` is the stable rtportal error code ("crypto_invalid", as in
// rtportal/errors.py); `reason` is a finer stable code naming what failed
// (the same strings the Python library uses, see docs/security.md).

export class CryptoInvalid extends Error {
  /** @param {string} reason stable machine-readable reason @param {string} [message] */
  constructor(reason, message) {
    super(message ? `${reason}: ${message}` : reason);
    this.name = 'CryptoInvalid';
    this.code = 'crypto_invalid';
    this.reason = reason;
  }
}

/** Throw CryptoInvalid(reason) unless cond. */
export function check(cond, reason, message) {
  if (!cond) throw new CryptoInvalid(reason, message);
}
