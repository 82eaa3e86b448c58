// Argon2id for the browser and Node through the vendored hash-wasm file
// (static/vendor/argon2.umd.min.js, pinned in static/vendor/README.md).
// WebCrypto has no Argon2. The UMD file sets globalThis.hashwasm when loaded as
// a browser module, and is loaded as CommonJS (exports = default) by Node.

import * as umd from '../vendor/argon2.umd.min.js';

function lib() {
  const hw = globalThis.hashwasm ?? umd.default;
  if (!hw || typeof hw.argon2id !== 'function') throw new Error('vendored Argon2 library did not load');
  return hw;
}

/**
 * Raw Argon2id (version 0x13) output.
 * @param {{password: Uint8Array, salt: Uint8Array, memoryKiB: number, iterations: number,
 *          parallelism: number, length: number, secret?: Uint8Array}} p
 * @returns {Promise<Uint8Array>}
 */
export async function argon2idRaw(p) {
  if (!(p.password instanceof Uint8Array) || !(p.salt instanceof Uint8Array)) {
    throw new TypeError('argon2id password and salt must be bytes');
  }
  return lib().argon2id({
    password: p.password,
    salt: p.salt,
    secret: p.secret,
    memorySize: p.memoryKiB,
    iterations: p.iterations,
    parallelism: p.parallelism,
    hashLength: p.length,
    outputType: 'binary',
  });
}
