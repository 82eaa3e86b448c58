// Deterministic randomness for golden vectors (docs/security.md §13):
// SHA-256(seed ‖ u64(0)) ‖ SHA-256(seed ‖ u64(1)) ‖ … consumed in order.
// Tests and vector generation only; production code uses crypto.getRandomValues.

import { concat, u64 } from './bytes.js';
import { sha256Sync } from './sha256.js';

export function deterministicRng(seed) {
  let counter = 0;
  let buf = new Uint8Array(0);
  return (n) => {
    while (buf.length < n) buf = concat(buf, sha256Sync(concat(seed, u64(counter++))));
    const out = buf.slice(0, n);
    buf = buf.slice(n);
    return out;
  };
}
