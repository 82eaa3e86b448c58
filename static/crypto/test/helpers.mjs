// Shared helpers for the Node tests (tests may use node: modules; the library may not).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');

export function readJson(rel) {
  return JSON.parse(fs.readFileSync(path.join(REPO, rel), 'utf8'));
}

export function exists(rel) {
  return fs.existsSync(path.join(REPO, rel));
}

/** Assert that promise rejects with CryptoInvalid and, if given, this reason. */
export async function rejectsWith(assert, promiseOrFn, reason) {
  let err;
  try {
    await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected rejection${reason ? ` with ${reason}` : ''}`);
  assert.equal(err.name, 'CryptoInvalid', `expected CryptoInvalid, got ${err && err.stack}`);
  if (reason) assert.equal(err.code, reason, `expected code ${reason}, got ${err.code} (${err.message})`);
  return err;
}
