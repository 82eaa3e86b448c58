// The lifecycle records of docs/keys.md: revocation list, escrow record, head,
// invite key, handover and its verification code. Round trips and refusals;
// the verifier rules that use them are in lifecycle.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REASON, decodeRevocationList, signRevocationList, verifyRevocationList } from '../certs.js';
import { CODES } from '../errors.js';
import {
  decodeEscrowRecord, fekFromSecret, frkFromSeed, identityFromInviteSecret, signEscrowRecord, uikFromSeeds,
  verifyEscrowRecord,
} from '../keys.js';
import { HEAD_MAX_AGE_MS, decodeHead, signHead } from '../manifest.js';
import { sasCode, signHandover, verifyHandover } from '../recovery.js';
import { ed25519Verify } from '../primitives.js';
import { rejectsWith } from './helpers.mjs';

const NOW = 1_790_000_000_000;
const frk = await frkFromSeed(Uint8Array.from({ length: 32 }, (_, i) => i));
const alice = await uikFromSeeds(new Uint8Array(32).fill(7), new Uint8Array(32).fill(8));
const listOf = (entries, over = {}) => ({
  firm: 'firm-1', version: 1, issuedAtMs: NOW, nextUpdateMs: NOW + 30 * 86_400_000, entries, ...over,
});

test('revocation list: sign, decode, verify against the FRK only', async () => {
  const e1 = { user: 's3', kid: alice.kid, revokedAtMs: NOW - 5, reason: REASON.left };
  const e2 = { user: 'b1', kid: new Uint8Array(16), revokedAtMs: NOW - 9, reason: REASON.compromised };
  const { list } = await signRevocationList(listOf([e1, e2]), frk);
  const l = await verifyRevocationList(list, frk.edPk);
  assert.equal(l.version, 1);
  assert.deepEqual(l.entries.map((e) => e.user), ['b1', 's3']);
  const other = await frkFromSeed(new Uint8Array(32));
  await rejectsWith(assert, verifyRevocationList(list, other.edPk), 'crypto_signature');
  assert.equal(decodeRevocationList(list).next_update_ms, NOW + 30 * 86_400_000);
});

test('revocation list refuses a key twice, an unknown reason, a backwards bound', async () => {
  const e = { user: 's3', kid: alice.kid, revokedAtMs: NOW, reason: REASON.left };
  await rejectsWith(assert, signRevocationList(listOf([e, { ...e, reason: REASON.compromised }]), frk), 'crypto_encoding');
  await rejectsWith(assert, signRevocationList(listOf([], { nextUpdateMs: NOW - 1 }), frk), 'crypto_encoding');
  await rejectsWith(assert, signRevocationList(listOf([{ ...e, reason: 4 }]), frk), 'crypto_encoding');
  const { list } = await signRevocationList(listOf([e]), frk);
  const bad = new Uint8Array(list);
  const i = bad.length - 2 - 64 - 1; // the only entry's reason byte, before the signature field
  assert.equal(bad[i], REASON.left);
  bad[i] = 4;
  assert.throws(() => decodeRevocationList(bad), (err) => err.code === 'crypto_encoding');
});

test('escrow record: sign, decode, verify', async () => {
  const fek = await fekFromSecret('firm-1', 2, new Uint8Array(32).fill(3), new Uint8Array(32).fill(4));
  const { record } = await signEscrowRecord({ firm: 'firm-1', version: 2, xPk: fek.xPk, createdAtMs: NOW }, frk);
  const r = await verifyEscrowRecord(record, frk.edPk);
  assert.deepEqual(r.x_pk, fek.xPk);
  assert.equal(decodeEscrowRecord(record).version, 2);
  await rejectsWith(assert, signEscrowRecord({ firm: 'firm-1', version: 0, xPk: fek.xPk, createdAtMs: NOW }, frk),
    'crypto_encoding');
  await rejectsWith(assert, verifyEscrowRecord(record, alice.edPk), 'crypto_signature');
});

test('epoch head: sign, decode, verify the signer', async () => {
  const signer = { id: 's1', kid: alice.kid, edSk: alice.edSk };
  const { head } = await signHead({ firm: 'firm-1', matter: 'AAAA0002', epoch: 3, hash: new Uint8Array(32).fill(9), tsMs: NOW }, signer);
  const h = decodeHead(head);
  assert.equal(h.epoch, 3);
  assert.equal(h.signer, 's1');
  assert.ok(await ed25519Verify(alice.edPk, h.tbs, h.sig));
  assert.equal(HEAD_MAX_AGE_MS, 90 * 86_400_000);
  await rejectsWith(assert, signHead({ firm: 'firm-1', matter: 'm', epoch: 0, hash: new Uint8Array(32), tsMs: NOW }, signer),
    'crypto_encoding');
});

test('invite identity is deterministic and bound to firm and user', async () => {
  const secret = Uint8Array.from({ length: 32 }, (_, i) => 32 + i);
  const k = await identityFromInviteSecret(secret, 'demo', 'c12');
  assert.deepEqual(k.kid, (await identityFromInviteSecret(secret, 'demo', 'c12')).kid);
  assert.notDeepEqual(k.kid, (await identityFromInviteSecret(secret, 'demo', 'c13')).kid);
  assert.notDeepEqual(k.kid, (await identityFromInviteSecret(secret, 'demo2', 'c12')).kid);
  await rejectsWith(assert, identityFromInviteSecret(secret.slice(0, 16), 'demo', 'c12'), 'crypto_encoding');
});

test('handover: signed by the invite key; sas code of the fresh key', async () => {
  const invite = await identityFromInviteSecret(new Uint8Array(32), 'demo', 'c12');
  const fresh = await uikFromSeeds(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
  const { handover } = await signHandover({ firm: 'demo', user: 'c12', xPk: fresh.xPk, edPk: fresh.edPk, tsMs: NOW }, invite);
  const h = await verifyHandover(handover, invite, 'demo', 'c12');
  assert.deepEqual(h.ed_pk, fresh.edPk);
  await rejectsWith(assert, verifyHandover(handover, invite, 'demo', 'c13'), 'crypto_recovery');
  await rejectsWith(assert, verifyHandover(handover, fresh, 'demo', 'c12'), 'crypto_recovery');
  const forged = new Uint8Array(handover);
  forged[forged.length - 1] ^= 1;
  await rejectsWith(assert, verifyHandover(forged, invite, 'demo', 'c12'), 'crypto_signature');
  const code = await sasCode('demo', 'c12', fresh.xPk, fresh.edPk);
  assert.match(code, /^\d{3} \d{3}$/);
  assert.notEqual(code, await sasCode('demo', 'c12', invite.xPk, invite.edPk));
});

test('crypto_stale is a known code', () => {
  assert.ok(CODES.includes('crypto_stale'));
});
