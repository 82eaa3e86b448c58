// Login secret and key backup; recovery-code proof.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PARAMS, MIN_PARAMS, checkParams, createBackup, openBackup, passwordKeys } from '../backup.js';
import { decode, encode } from '../encoding.js';
import { BACKUP, BACKUP_HEADER } from '../backup.js';
import {
  makeRecoveryProof, parseRecoveryCode, recoveryCodeFromLink, recoveryCodeLink, recoveryCodeText, verifyRecoveryProof,
} from '../recovery.js';
import { uikFromSeeds } from '../keys.js';
import { rejectsWith } from './helpers.mjs';

const SMALL = { mKib: 19456, t: 2, p: 1 }; // the library's floor (~30 ms) for the negative cases
const uik = await uikFromSeeds(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
const frkFp = new Uint8Array(32).fill(3);

test('default parameters (64 MiB, t=3, p=1): create and unlock', async () => {
  const b = await createBackup({ firm: 'f', user: 'u', password: 'correct horse', xSk: uik.xSk, edSk: uik.edSk, frkFingerprint: frkFp });
  const h = decode(BACKUP, b.blob).header;
  assert.deepEqual([h.m_kib, h.t, h.p], [65536, 3, 1]);
  const o = await openBackup(b.blob, 'correct horse', { firm: 'f', user: 'u' });
  assert.deepEqual(o.xSk, uik.xSk);
  assert.deepEqual(o.frkFingerprint, frkFp);
  assert.deepEqual(o.loginSecret, b.loginSecret);
  assert.notDeepEqual(b.loginSecret, b.kek);
});

test('wrong password, altered parameters or salt fail to decrypt; absurd parameters refused first', async () => {
  const b = await createBackup({ firm: 'f', user: 'u', password: 'pw', xSk: uik.xSk, edSk: uik.edSk, frkFingerprint: frkFp, params: SMALL });
  await rejectsWith(assert, openBackup(b.blob, 'PW'), 'crypto_decrypt');
  const d = decode(BACKUP, b.blob);
  const reheader = (over) => encode(BACKUP, { header: encode(BACKUP_HEADER, { ...d.header, ...over }), nonce: d.nonce, ct: d.ct });
  await rejectsWith(assert, openBackup(reheader({ t: 3 }), 'pw'), 'crypto_decrypt');
  // below the floor (a server lowering the parameters to make a cheap oracle): refused before work
  for (const over of [{ t: 1 }, { m_kib: 19455 }, { m_kib: 8 }]) {
    await rejectsWith(assert, openBackup(reheader(over), 'pw'), 'crypto_encoding');
  }
  await rejectsWith(assert, openBackup(reheader({ user: 'v' }), 'pw'), 'crypto_decrypt');
  await rejectsWith(assert, openBackup(reheader({ salt: new Uint8Array(16) }), 'pw'), 'crypto_decrypt');
  await rejectsWith(assert, openBackup(reheader({ m_kib: 4 * 1048576 }), 'pw'), 'crypto_encoding');
  await rejectsWith(assert, openBackup(reheader({ t: 17 }), 'pw'), 'crypto_encoding');
  await rejectsWith(assert, openBackup(reheader({ p: 9 }), 'pw'), 'crypto_encoding');
  await rejectsWith(assert, openBackup(reheader({ m_kib: 7 }), 'pw'), 'crypto_encoding');
  // inside the old 1 GiB / t=16 bounds, outside the tightened ones (256 MiB, t=10): refused before work
  for (const over of [{ m_kib: 1048576 }, { m_kib: 262145 }, { t: 11 }, { t: 16 }]) {
    await rejectsWith(assert, openBackup(reheader(over), 'pw'), 'crypto_encoding');
  }
  await rejectsWith(assert, openBackup(b.blob, 'pw', { firm: 'f', user: 'other' }), 'crypto_wrong_context');
  await rejectsWith(assert, passwordKeys('pw', new Uint8Array(15), SMALL), 'crypto_encoding');
  await rejectsWith(assert, passwordKeys('', new Uint8Array(16), SMALL), 'crypto_encoding');
});

test('recovery code formats and proof', async () => {
  const code = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  const text = recoveryCodeText(code);
  assert.match(text, /^([A-Z2-7]{4}-){6}[A-Z2-7]{2}$/);
  assert.deepEqual(parseRecoveryCode(text.toLowerCase().replace(/-/g, ' ')), code);
  assert.deepEqual(recoveryCodeFromLink(recoveryCodeLink(code)), code);
  await rejectsWith(assert, async () => parseRecoveryCode(text.slice(0, -1)), 'crypto_encoding');
  await rejectsWith(assert, async () => parseRecoveryCode(text.replace(/^./, '1')), 'crypto_encoding');
  const p = await makeRecoveryProof(code, 'f', 'u', uik.xPk, uik.edPk);
  const keys = await verifyRecoveryProof(p.transport, code, 'f', 'u');
  assert.deepEqual(keys.ed_pk, uik.edPk);
  const wrong = new Uint8Array(code);
  wrong[0] ^= 1;
  await rejectsWith(assert, verifyRecoveryProof(p.transport, wrong, 'f', 'u'), 'crypto_recovery');
  await rejectsWith(assert, verifyRecoveryProof(p.transport, code, 'f', 'u2'), 'crypto_recovery');
  // a substituted public key under the old proof
  const other = await uikFromSeeds(new Uint8Array(32).fill(5), new Uint8Array(32).fill(6));
  const { PROOF } = await import('../recovery.js');
  const sub = encode(PROOF, { firm: 'f', user: 'u', x_pk: other.xPk, ed_pk: uik.edPk, proof: p.proof });
  await rejectsWith(assert, verifyRecoveryProof(sub, code, 'f', 'u'), 'crypto_recovery');
});

test('link values (r=, frk=) are strict, canonical base64url', async () => {
  const { fingerprintFromLink, fingerprintLink } = await import('../keys.js');
  const code = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  const link = recoveryCodeLink(code); // 22 characters; the last carries 4 zero padding bits
  const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const bumped = link.slice(0, -1) + last[last.indexOf(link.at(-1)) ^ 1]; // same 16 bytes, non-zero pad bits
  for (const bad of [bumped, `${link}=`, `${link}==`, link.replace(/^./, '+'), `${link.slice(0, 10)} ${link.slice(10)}`, `${link}A`]) {
    await rejectsWith(assert, async () => recoveryCodeFromLink(bad), 'crypto_encoding');
  }
  const fp = new Uint8Array(32).fill(0xab);
  const fl = fingerprintLink(fp);
  assert.deepEqual(fingerprintFromLink(fl), fp);
  const fbumped = fl.slice(0, -1) + last[last.indexOf(fl.at(-1)) ^ 1];
  await rejectsWith(assert, async () => fingerprintFromLink(fbumped), 'crypto_encoding');
});

test('Argon2 parameter bounds are inclusive and match Python (19 MiB..256 MiB, t=2..10, p=1..8)', async () => {
  assert.deepEqual({ ...MAX_PARAMS }, { mKib: 262144, t: 10, p: 8 });
  assert.deepEqual({ ...MIN_PARAMS }, { mKib: 19456, t: 2, p: 1 });
  checkParams(MAX_PARAMS);
  checkParams(MIN_PARAMS);
  for (const low of [{ mKib: 19455, t: 2, p: 1 }, { mKib: 19456, t: 1, p: 1 }, { mKib: 8, t: 1, p: 1 }, { mKib: 19456, t: 2, p: 0 }]) {
    await rejectsWith(assert, async () => checkParams(low), 'crypto_encoding');
    await rejectsWith(assert, passwordKeys('pw', new Uint8Array(16), low), 'crypto_encoding');
  }
});

test('recovery code separators match Python (ASCII space, tab, CR, LF, "-")', async () => {
  const code = Uint8Array.from({ length: 16 }, (_, i) => i);
  const text = recoveryCodeText(code);
  assert.deepEqual(parseRecoveryCode(text.replace('-', '\r\n').replace('-', '\t')), code);
  await rejectsWith(assert, async () => parseRecoveryCode(text.replace('-', '\u00a0')), 'crypto_encoding');
});
