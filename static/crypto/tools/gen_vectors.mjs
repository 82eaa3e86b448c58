#!/usr/bin/env node
// Generate rtp1 golden vectors with the JavaScript library:
//   node static/crypto/tools/gen_vectors.mjs OUTDIR [--seed HEX] [--no-blob-files]
import { fromHex } from '../bytes.js';
import { DEFAULT_SEED, generate } from './generate.mjs';

const args = process.argv.slice(2);
const out = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--seed');
if (!out) {
  console.error('usage: gen_vectors.mjs OUTDIR [--seed HEX] [--no-blob-files]');
  process.exit(2);
}
const si = args.indexOf('--seed');
const seed = si >= 0 ? fromHex(args[si + 1]) : DEFAULT_SEED;
const paths = await generate(out, seed, { blobFiles: !args.includes('--no-blob-files') });
console.log(`wrote ${paths.length} files to ${out}`);
