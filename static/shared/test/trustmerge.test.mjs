// mergeTrust (static/shared/trustmerge.js): a tab's save takes in what another
// tab of the browser stored; every remembered fact only moves forward.
import assert from 'node:assert/strict';
import test from 'node:test';

import { mergeKeys, mergeTrust } from '../trustmerge.js';

const fresh = () => ({ v: 1, frkFingerprint: null, pinSealed: false, keys: {}, revocationVersion: 0, escrowVersion: 0, matters: {} });

test('a matter at the same epoch under another hash keeps the stored one: the next sync of this tab sees the fork', () => {
  const mine = fresh();
  mine.matters.R1 = { epoch: 3, hash: new Uint8Array([9]), seen: {} };
  const stored = fresh();
  stored.matters.R1 = { epoch: 3, hash: new Uint8Array([1]), seen: { a: 1 } };
  mergeTrust(mine, stored);
  assert.deepEqual([...mine.matters.R1.hash], [1]);
  assert.deepEqual(mine.matters.R1.seen, { a: 1 });
});

test('a tab ahead keeps what it has; a tab without a pin takes the stored one', () => {
  const mine = fresh();
  mine.revocationVersion = 5;
  mine.keys.s1 = { kid: 'new', serial: 4 };
  mine.matters.R1 = { epoch: 6, hash: new Uint8Array([6]), seen: { x: 2 } };
  const stored = fresh();
  stored.revocationVersion = 2;
  stored.frkFingerprint = new Uint8Array([7, 7]);
  stored.pinSealed = true;
  stored.keys.s1 = { kid: 'old', serial: 3 };
  stored.matters.R1 = { epoch: 5, hash: new Uint8Array([5]), seen: { x: 9, y: 1 } };
  mergeTrust(mine, stored);
  assert.equal(mine.revocationVersion, 5);
  assert.equal(mine.keys.s1.kid, 'new');
  assert.deepEqual([mine.matters.R1.epoch, [...mine.matters.R1.hash]], [6, [6]]);
  assert.deepEqual(mine.matters.R1.seen, { x: 9, y: 1 });
  assert.deepEqual([...mine.frkFingerprint], [7, 7]);
  assert.equal(mine.pinSealed, true);
});

test('two tabs told two stories keep the stored one, so this tab sees the disagreement next time', () => {
  const mine = fresh();
  mine.frkFingerprint = new Uint8Array([1, 1]); // the server served this tab another root to pin
  mine.pinSealed = true;
  mine.keys.s1 = { kid: 'mine', serial: 4 }; // another key under the same serial
  mine.matters.R1 = { epoch: 2, hash: new Uint8Array([2]), seen: { m: 7 } }; // m at another log position
  const stored = fresh();
  stored.frkFingerprint = new Uint8Array([7, 7]);
  stored.keys.s1 = { kid: 'theirs', serial: 4 };
  stored.matters.R1 = { epoch: 2, hash: new Uint8Array([2]), seen: { m: 3 } };
  mergeTrust(mine, stored);
  // keyring.pinFrk then refuses, and a firm sync refuses the root this tab was served
  assert.deepEqual([...mine.frkFingerprint], [7, 7]);
  assert.equal(mine.pinSealed, false); // the stored pin's own: not in my backup yet
  assert.equal(mine.keys.s1.kid, 'theirs'); // the next sync reports a key change
  assert.deepEqual(mine.matters.R1.seen, { m: 3 }); // opened again at 7: crypto_replay
});

test('the same pin: sealed into the backup once either tab sealed it', () => {
  const mine = fresh();
  mine.frkFingerprint = new Uint8Array([7, 7]);
  const stored = fresh();
  stored.frkFingerprint = new Uint8Array([7, 7]);
  stored.pinSealed = true;
  mergeTrust(mine, stored);
  assert.equal(mine.pinSealed, true);
  stored.pinSealed = false;
  mergeTrust(mine, stored);
  assert.equal(mine.pinSealed, true);
});

const key = (n) => ({ kid: new Uint8Array([n]) });
const kids = (list) => list.map((k) => k.kid[0]);

test('keys move forward with a handover or an unbinding the other tab got further with', () => {
  const mine = { identity: key(1), state: fresh(), bound: { R2: key(5) } };
  const stored = { identity: key(2), previous: key(1), next: null, state: { ...fresh(), verificationCode: null },
    bound: {}, retired: [key(5)] };
  mine.state.verificationCode = '123 456';
  mergeKeys(mine, stored);
  assert.deepEqual([mine.identity.kid[0], mine.previous.kid[0], mine.next], [2, 1, null]);
  assert.equal(mine.state.verificationCode, null);
  assert.deepEqual([Object.keys(mine.bound), kids(mine.retired)], [[], [5]]);
});

test('keys of two things two tabs did at once are all kept: the retired ones still open what was wrapped to them', () => {
  // this tab handed over to 3 and bound R2 to 6; the other promoted 2 and bound R2 to 7
  const mine = { identity: key(1), next: key(3), state: fresh(), bound: { R2: key(6) } };
  const stored = { identity: key(2), previous: key(1), state: fresh(), bound: { R2: key(7) }, retired: [] };
  mergeKeys(mine, stored);
  assert.deepEqual([mine.identity.kid[0], mine.previous.kid[0], mine.next], [2, 1, null]);
  assert.deepEqual(kids(Object.values(mine.bound)), [6]);
  assert.deepEqual(kids(mine.retired).sort(), [3, 7]);
});

test('a stored record whose keys cannot be read changes no key of this tab, not even half-way', () => {
  // the other tab promoted 2 (previous 1); one of its retired keys has no kid (another version's shape)
  const mine = { identity: key(1), previous: key(0), state: { ...fresh(), verificationCode: '123 456' }, bound: { R2: key(5) },
    retired: [key(4)] };
  const stored = { identity: key(2), previous: key(1), next: null, state: fresh(), bound: {}, retired: [{ kid: null }] };
  assert.throws(() => mergeKeys(mine, stored), TypeError);
  assert.deepEqual([mine.identity.kid[0], mine.previous.kid[0], mine.next], [1, 0, undefined]);
  assert.equal(mine.state.verificationCode, '123 456');
  assert.deepEqual([kids(Object.values(mine.bound)), kids(mine.retired)], [[5], [4]]);
});
