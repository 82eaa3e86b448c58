// Node front end of the vector verifier: reads a directory with node:fs.
import fs from 'node:fs';
import path from 'node:path';
import { FILES, verifyDocs } from './vector_verifier.mjs';

export { FILES, pattern } from './vector_verifier.mjs';

/** Verify every file of docs/security.md §13 in dir. */
export async function verifyDir(dir, opts = {}) {
  const docs = {};
  const errors = [];
  for (const f of FILES) {
    try {
      docs[f] = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    } catch (e) {
      errors.push(`${f}: cannot read: ${e.message}`);
    }
  }
  const readBin = async (name) => new Uint8Array(fs.readFileSync(path.join(dir, path.basename(name))));
  const v = await verifyDocs(docs, { ...opts, readBin });
  for (const e of errors) v.fail(e);
  return v;
}
