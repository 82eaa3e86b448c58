// The document checklist's page logic without a page (static/shared/docitems.js,
// coalesce.js): descriptors matched to file ids by position once the item's
// thread is known, envelopes sealed into the item's thread and sealed again on
// stale_epoch, a reason opened in its own replay slot, reads coalesced. The
// keyring is a recording stand-in. (Files go through attachfile.js, tested
// in attachfile.test.mjs.)
import assert from 'node:assert/strict';
import test from 'node:test';

import { coalesced } from '../coalesce.js';
import { Descriptors, openReason, postSealed, rowSignature } from '../docitems.js';
import { setCsrfToken } from '../http.js';

function fakeKeyring(answers = {}) {
  return {
    opened: [],
    sealed: [],
    synced: 0,
    async open(ref, thread, blob, opts) {
      this.opened.push({ ref, thread, blob, seq: opts.seq });
      return answers[blob] || { ok: false, code: 'crypto_signature' };
    },
    async seal(ref, thread, body, opts) {
      this.sealed.push({ ref, thread, body, vis: opts.vis });
      return Uint8Array.of(1, 2, 3, this.sealed.length);
    },
    async syncMatter() {
      this.synced += 1;
    },
  };
}

test('a burst of reads during one coalesces into one more', async () => {
  let reads = 0;
  let release;
  const run = coalesced(async () => {
    reads += 1;
    if (reads === 1) await new Promise((r) => (release = r));
  }, assert.fail);
  const first = run();
  for (let i = 0; i < 10; i += 1) run();
  release();
  await first;
  assert.equal(reads, 2);
  const errors = [];
  await coalesced(async () => {
    throw new Error('boom');
  }, (err) => errors.push(err.message))();
  assert.deepEqual(errors, ['boom']);
});

test('descriptors wait for their item thread and match files by position', async () => {
  const a = { name: 'a.pdf' };
  const b = { name: '<b>b</b>.pdf' };
  const kr = fakeKeyring({ E1: { ok: true, body: { attachments: [a, b] } } });
  const d = new Descriptors(kr, 'M1');
  d.learn({ kind: 'document', cursor: 'tok1', blob: 'E1', payload: { items: ['i1'], files: ['f1', 'f2'] } });
  d.learn({ kind: 'document', cursor: 'tok2', blob: 'BAD', payload: { items: ['i1'], files: ['f3'] } });
  d.learn({ kind: 'document', cursor: 'tok3', payload: { action: 'accepted', items: ['i1'] } }); // no blob: nothing to learn
  d.learn({ kind: 'message', seq: 4, blob: 'E1', payload: { thread: 't', files: ['x'] } });
  assert.equal(await d.open(() => undefined), false); // the thread is not known yet
  assert.equal(kr.opened.length, 0);
  assert.equal(await d.open((id) => (id === 'i1' ? 'thr-1' : undefined)), true);
  assert.deepEqual(kr.opened.map((o) => [o.thread, o.seq]), [['thr-1', 'tok1'], ['thr-1', 'tok2']]);
  assert.equal(d.byFile.get('f1'), a);
  assert.equal(d.byFile.get('f2'), b);
  assert.equal(d.byFile.has('f3'), false); // an envelope that did not open names nothing
  assert.equal(d.byFile.has('x'), false);
});

test("an item's own envelopes are learnt at their events' positions, once", async () => {
  const a = { name: 'old.pdf' };
  const kr = fakeKeyring({ E1: { ok: true, body: { attachments: [a] } }, E2: { ok: true, body: { attachments: [{ name: 'n.pdf' }] } } });
  const d = new Descriptors(kr, 'M1');
  const item = {
    id: 'i1',
    thread: 'thr-1',
    uploads: [
      { kind: 'document', cursor: 'tok1', files: ['f1'], blob: 'E1' },
      { kind: 'document', seq: 7, files: ['f2'], blob: 'E2' },
    ],
  };
  d.learnItem(item);
  d.learnItem(item); // a second read of the checklist before they open: waits once
  d.learn({ kind: 'document', cursor: 'tok1', blob: 'E1', payload: { items: ['i1'], files: ['f1'] } }); // its event too
  assert.equal(await d.open((id) => (id === 'i1' ? 'thr-1' : undefined)), true);
  assert.deepEqual(kr.opened.map((o) => [o.thread, o.seq]), [['thr-1', 'tok1'], ['thr-1', 7], ['thr-1', 'tok1']]);
  assert.equal(d.byFile.get('f1'), a);
  assert.equal(d.byFile.get('f2').name, 'n.pdf');
  d.learnItem(item); // every file named already: nothing to open
  assert.equal(d.waiting.length, 0);
  d.learnItem({ id: 'i2', uploads: [{ kind: 'document', seq: 9, files: 'x', blob: 'E1' }] }); // malformed: skipped
  assert.equal(d.waiting.length, 0);
});

test('a reason opens in its own replay slot, and not without keys', async () => {
  const kr = fakeKeyring({ R: { ok: true, body: { text: 'cut off <img>' } } });
  const item = { id: 'i9', thread: 'thr-9', round: 2, reason: 'R', status: 'rejected' };
  assert.equal(await openReason(kr, 'M1', item), 'cut off <img>');
  assert.deepEqual(kr.opened[0], { ref: 'M1', thread: 'thr-9', blob: 'R', seq: 'reason-i9-2' });
  assert.equal(await openReason(null, 'M1', item), null);
  assert.equal(await openReason(kr, 'M1', { ...item, reason: 'OTHER' }), null);
});

test('an envelope is sealed into the item thread, and sealed again after stale_epoch', async () => {
  setCsrfToken('t');
  const calls = [];
  let refuse = true;
  globalThis.fetch = async (path, init) => {
    calls.push({ path, body: JSON.parse(init.body), csrf: init.headers['X-CSRF-Token'] });
    if (refuse) {
      refuse = false;
      return new Response(JSON.stringify({ error: { code: 'stale_epoch', message: 'x' } }), { status: 409 });
    }
    return new Response(JSON.stringify({ documents: [], changed: true }), { status: 200 });
  };
  const kr = fakeKeyring();
  const item = { id: 'i/1', thread: 'thr-1' };
  await postSealed('M 1', kr, item, '/reject', { text: 'why' }, (reason) => ({ reason }));
  assert.equal(kr.synced, 1);
  assert.equal(kr.sealed.length, 2);
  assert.deepEqual(kr.sealed[1], { ref: 'M 1', thread: 'thr-1', body: { text: 'why' }, vis: 0 });
  assert.equal(calls.length, 2);
  assert.equal(calls[1].path, '/api/v1/matters/M%201/documents/i%2F1/reject');
  assert.deepEqual(calls[1].body, { reason: 'AQIDAg' });
  assert.equal(calls[1].csrf, 't');
});

test('keys that cannot be read leave the reason unread and the descriptors waiting', async () => {
  const kr = fakeKeyring();
  let fail = true;
  const open = kr.open.bind(kr);
  kr.open = async (...args) => {
    if (fail) throw Object.assign(new Error('offline'), { name: 'ApiError', code: 'network' });
    return open(...args);
  };
  assert.equal(await openReason(kr, 'M1', { id: 'i', thread: 't', round: 1, reason: 'R' }), null);
  const d = new Descriptors(kr, 'M1');
  d.learn({ kind: 'document_shared', seq: 7, blob: 'S', payload: { items: ['i'], files: ['f'] } });
  assert.equal(await d.open(() => 't'), false);
  assert.equal(d.waiting.length, 1);
  fail = false;
  kr.open = async () => ({ ok: true, body: { attachments: [{ name: 'guide.pdf' }] } });
  assert.equal(await d.open(() => 't'), true);
  assert.equal(d.byFile.get('f').name, 'guide.pdf');
  assert.equal(d.waiting.length, 0);
});

test("a checklist row stays while its item and names do, not while its reason is unread", () => {
  const d = new Descriptors(fakeKeyring(), 'M1');
  const reasons = new Map();
  const item = { id: 'i1', status: 'uploaded', round: 1, files: [{ id: 'f1', round: 1 }] };
  const drawn = rowSignature(item, d, reasons);
  assert.equal(rowSignature({ ...item }, d, reasons), drawn);
  d.byFile.set('f1', { name: 'a.pdf' }); // the file named since: drawn again
  assert.notEqual(rowSignature(item, d, reasons), drawn);
  assert.notEqual(rowSignature({ ...item, status: 'accepted' }, d, reasons), rowSignature(item, d, reasons));
  // a reason the keys' read failed to open is tried again on the next draw
  const rejected = { ...item, status: 'rejected', reason: 'R1' };
  assert.equal(rowSignature(rejected, d, reasons), null);
  reasons.set('R1', 'blurry');
  assert.equal(typeof rowSignature(rejected, d, reasons), 'string');
  // rejected again after an accept, in the same round: its new reason is read
  assert.equal(rowSignature({ ...rejected, reason: 'R2' }, d, reasons), null);
  // without keys nothing could open it: the row stays
  assert.equal(typeof rowSignature(rejected, new Descriptors(null, 'M1'), new Map()), 'string');
});

test("an item's envelope that does not open is not opened again at each read", async () => {
  const kr = fakeKeyring({}); // every envelope fails (a bad signature)
  const d = new Descriptors(kr, 'M1');
  const item = { id: 'i1', thread: 'thr-1', uploads: [{ kind: 'document', seq: 4, files: ['f1'], blob: 'BAD' }] };
  d.learnItem(item);
  assert.equal(await d.open(() => 'thr-1'), false);
  d.learnItem(item); // the checklist read again: the same envelope, known not to open
  await d.open(() => 'thr-1');
  assert.equal(kr.opened.length, 1);
});
