#!/usr/bin/env node
// Verify an rtp1 vector directory (from Python or JS):
//   node static/crypto/tools/verify_vectors.mjs DIR [--lenient-codes]
// Exit 0 iff every case passed (and at least one ran). Rejection codes must
// match the vector's unless --lenient-codes.
import { verifyDir } from './verify.mjs';

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('--'));
if (!dir) {
  console.error('usage: verify_vectors.mjs DIR [--lenient-codes]');
  process.exit(2);
}
const v = await verifyDir(dir, { strictCodes: !args.includes('--lenient-codes') });
for (const line of v.lines) console.log(line);
console.log(`vectors: ${v.passed} passed, ${v.failures.length} failed, ${v.warnings} warnings`);
process.exit(v.failures.length || v.passed === 0 ? 1 : 0);
