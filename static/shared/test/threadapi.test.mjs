// The wiring of threads (static/shared/threadapi.js): paths, queries and
// frames exactly as docs/threads.md names them, checked against a recording
// `fetch` (the server side of these endpoints is tested against the server).
import assert from 'node:assert/strict';
import test from 'node:test';

import * as A from '../threadapi.js';
import { setCsrfToken } from '../http.js';

const calls = [];
globalThis.fetch = async (path, init) => {
  calls.push({ path, method: init.method, body: init.body ? JSON.parse(init.body) : undefined });
  return new Response(JSON.stringify({ ok: true }), { status: 200 });
};

test('queries leave unset values out; true is 1', () => {
  assert.equal(A.queryString({ a: null, b: undefined, c: '', d: false }), '');
  assert.equal(A.queryString({ before: 'k1', limit: 50, unread: true }), '?before=k1&limit=50&unread=1');
});

test('every endpoint of the contract, by its path and method', async () => {
  setCsrfToken('t');
  calls.length = 0;
  await A.listThreads('AB/1', { limit: 20 });
  await A.threadItems('AB/1', 'T 1', { after: 'tok', limit: 50 });
  await A.firstUnread('AB/1', 'T 1');
  await A.markRead('AB/1', 'T 1', 'k9');
  await A.unreadCounts('AB/1');
  await A.threadReceipts('AB/1', 'T 1');
  await A.feedPage({ matter: 'AB/1', type: 'note', tag: 'x', unread: true, before: 'c', limit: 50 });
  await A.firmTags();
  await A.createTag('tg', 'blob');
  await A.tagItem('AB/1', 's3.x', 'tg');
  await A.tagItem('AB/1', 's3.x', 'tg', true);
  assert.deepEqual(calls.map((c) => [c.method, c.path, c.body]), [
    ['GET', '/api/v1/matters/AB%2F1/threads?limit=20', undefined],
    ['GET', '/api/v1/matters/AB%2F1/threads/T%201/items?after=tok&limit=50', undefined],
    ['GET', '/api/v1/matters/AB%2F1/threads/T%201/first-unread', undefined],
    ['POST', '/api/v1/matters/AB%2F1/threads/T%201/read', { upto: 'k9' }],
    ['GET', '/api/v1/matters/AB%2F1/unread', undefined],
    ['GET', '/api/v1/matters/AB%2F1/threads/T%201/receipts', undefined],
    ['GET', '/api/v1/feed?matter=AB%2F1&type=note&tag=x&unread=1&before=c&limit=50', undefined],
    ['GET', '/api/v1/firm/tags', undefined],
    ['POST', '/api/v1/firm/tags', { tag: 'tg', name_blob: 'blob' }],
    ['POST', '/api/v1/matters/AB%2F1/items/s3.x/tags', { tag: 'tg' }],
    ['POST', '/api/v1/matters/AB%2F1/items/s3.x/tags', { tag: 'tg', removed: true }],
  ]);
});

test('frames: read, typing (internal only when asked), and the server frames a view folds', () => {
  const read = A.readFrame('M', 'T', 'k1');
  assert.deepEqual({ ...read, id: undefined }, { type: 'read', id: undefined, matter: 'M', thread: 'T', upto: 'k1' });
  assert.match(read.id, /^r[0-9]+$/);
  assert.notEqual(A.readFrame('M', 'T', 'k1').id, read.id, 'each read frame has its own id');
  assert.deepEqual(A.typingFrame('M', 'T'), { type: 'typing', matter: 'M', thread: 'T' });
  assert.deepEqual(A.typingFrame('M', 'T', true), { type: 'typing', matter: 'M', thread: 'T', internal: true });
  assert.deepEqual([...A.THREAD_FRAMES].sort(), ['receipt', 'typing', 'unread']);
  assert.deepEqual(A.rowsOf({ threads: [1] }, 'threads'), [1]);
  assert.deepEqual(A.rowsOf({ other: 1 }, 'threads'), []);
});

test('a feed page: each row is its event view with the row matter, type and tags', () => {
  const answer = {
    rows: [{ matter: 'AB12', title: 'T', seq: 7, type: 'invite', tags: ['x'], event: { seq: 7, kind: 'access', actor: { kind: 'staff' } } }],
    next: null,
  };
  assert.deepEqual(A.feedRows(answer), [
    { seq: 7, kind: 'access', actor: { kind: 'staff' }, matter: 'AB12', type: 'invite', tags: ['x'] },
  ]);
  assert.deepEqual(A.feedRows({}), []);
});
