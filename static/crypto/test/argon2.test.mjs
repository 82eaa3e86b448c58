// The vendored Argon2id: its file is byte-for-byte the pinned one, and it
// reproduces the reference implementation's Argon2id vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { argon2idRaw } from '../argon2.js';
import { toHex, utf8 } from '../bytes.js';
import { REPO } from './helpers.mjs';

const PINNED_SHA256 = 'acfe11b015852f593aaddc51116f71dc7850e4551e6b34d42c1f88cf39635f03';

test('vendored argon2.umd.min.js matches the pinned SHA-256 (and README records it)', () => {
  const file = fs.readFileSync(path.join(REPO, 'static/vendor/argon2.umd.min.js'));
  assert.equal(createHash('sha256').update(file).digest('hex'), PINNED_SHA256);
  const readme = fs.readFileSync(path.join(REPO, 'static/vendor/README.md'), 'utf8');
  assert.ok(readme.includes(PINNED_SHA256));
  const sri = 'sha384-' + createHash('sha384').update(file).digest('base64');
  assert.ok(readme.includes(sri), 'README records the SRI hash');
});

test('Argon2id reference vector (phc-winner-argon2 test: password/somesalt, t=2, m=64 MiB, p=1)', async () => {
  const out = await argon2idRaw({
    password: utf8('password'), salt: utf8('somesalt'), memoryKiB: 65536, iterations: 2, parallelism: 1, length: 32,
  });
  assert.equal(toHex(out), '09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7');
});
