// rtp1 end-to-end encryption for the browser (and Node 20): the public API.
// Plain ES modules over WebCrypto; formats are specified in docs/security.md.

export * as bytes from './bytes.js';
export { CryptoInvalid, CODES } from './errors.js';
export * as primitives from './primitives.js';
export * as hpke from './hpke.js';
export * as encoding from './encoding.js';
export * as kdf from './kdf.js';
export * as keys from './keys.js';
export * as certs from './certs.js';
export * as wrap from './wrap.js';
export * as manifest from './manifest.js';
export * as envelope from './envelope.js';
export * as attachment from './attachment.js';
export * as backup from './backup.js';
export * as recovery from './recovery.js';
export { TrustStore } from './certs.js';
export { ManifestVerifier } from './manifest.js';
export { ReplayGuard } from './envelope.js';
