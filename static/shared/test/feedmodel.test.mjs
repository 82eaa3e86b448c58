// The staff activity feed's list (static/shared/feedmodel.js): types, the
// client mark, filters for live events, dedupe, newest first, tombstones.
import assert from 'node:assert/strict';
import test from 'node:test';

import { FeedList, feedType, fromClient } from '../feedmodel.js';

const STAFF = { kind: 'staff', id: 3, name: 'Sam Staff' };
const CLIENT = { kind: 'contact', id: 12, name: 'Cleo Client' };
const at = (s) => new Date(Date.UTC(2026, 11, 6, 10, 0, s)).toISOString();
const ev = (matter, seq, kind, actor, extra = {}) => ({
  matter, seq, kind, actor, audience: kind === 'note' || kind === 'access' ? 'staff' : 'portal', payload: {}, created_at: at(seq), ...extra,
});

test('feed types of the contract, and what the feed leaves out', () => {
  assert.equal(feedType(ev('A', 1, 'message', CLIENT)), 'client_message');
  assert.equal(feedType(ev('A', 1, 'welcome', STAFF)), 'client_message');
  assert.equal(feedType(ev('A', 1, 'note', STAFF)), 'note');
  assert.equal(feedType(ev('A', 1, 'phase', STAFF)), 'phase');
  assert.equal(feedType(ev('A', 1, 'access', STAFF)), 'invite');
  assert.equal(feedType(ev('A', 1, 'bot', { kind: 'bot', id: 1 })), 'bot');
  assert.equal(feedType(ev('A', 1, 'document', CLIENT)), 'document');
  for (const kind of ['keys', 'edit', 'delete', 'tag']) assert.equal(feedType(ev('A', 1, kind, STAFF)), null);
  assert.equal(feedType({ ...ev('A', 1, 'whatever', STAFF), type: 'note' }), 'note', "the server's type wins");
  assert.equal(fromClient(ev('A', 1, 'message', CLIENT)), true);
  assert.equal(fromClient(ev('A', 1, 'message', STAFF)), false);
});

test('pages and live events: one entry per (matter, seq), newest first, client items marked', () => {
  const feed = new FeedList({ me: 's3' });
  assert.equal(feed.addPage([ev('A', 2, 'message', CLIENT), ev('B', 1, 'note', STAFF), ev('A', 1, 'keys', STAFF)]), 2);
  assert.equal(feed.addPage([ev('A', 2, 'message', CLIENT)]), 0);
  assert.equal(feed.addLive(ev('B', 5, 'phase', STAFF)), true);
  assert.equal(feed.addLive(ev('B', 5, 'phase', STAFF)), false, 'the same event twice');
  const rows = feed.list();
  assert.deepEqual(rows.map((r) => [r.event.matter, r.event.seq]), [['B', 5], ['A', 2], ['B', 1]]);
  assert.deepEqual(rows.map((r) => r.fromClient), [false, true, false]);
  assert.deepEqual(rows.map((r) => r.internal), [false, false, true]);
  assert.equal(feed.addLive({ kind: 'message' }), false, 'no matter or seq: ignored');
});

test('live events are prepended only when they match the filters', () => {
  const byMatter = new FeedList({ filters: { matter: 'A' } });
  assert.equal(byMatter.addLive(ev('B', 1, 'message', CLIENT)), false);
  assert.equal(byMatter.addLive(ev('A', 1, 'message', CLIENT)), true);
  const byType = new FeedList({ filters: { type: 'note' } });
  assert.equal(byType.addLive(ev('A', 1, 'message', CLIENT)), false);
  assert.equal(byType.addLive(ev('A', 2, 'note', STAFF)), true);
  const byTag = new FeedList({ filters: { tag: 'urgent' } });
  assert.equal(byTag.addLive(ev('A', 1, 'message', CLIENT)), false, 'a new item has no tag yet');
  assert.equal(byTag.addLive(ev('A', 2, 'message', CLIENT, { tags: ['urgent'] })), true);
  const unread = new FeedList({ filters: { unread: true }, me: 's3' });
  assert.equal(unread.addLive(ev('A', 1, 'note', STAFF)), false, 'my own note is not unread');
  assert.equal(unread.addLive(ev('A', 2, 'message', CLIENT)), true);
  assert.equal(unread.addLive(ev('A', 3, 'message', CLIENT, { unread: false })), false);
});

test('a delete makes its item a tombstone, whichever comes first', () => {
  const feed = new FeedList();
  feed.addPage([ev('A', 1, 'message', CLIENT, { payload: { item: 'c12.x', thread: 'T' } })]);
  assert.equal(feed.addLive(ev('A', 2, 'delete', CLIENT, { payload: { item: 'c12.x' } })), true);
  assert.equal(feed.list()[0].deleted, true);
  assert.equal(feed.addLive(ev('A', 2, 'delete', CLIENT, { payload: { item: 'c12.x' } })), false);
  const early = new FeedList();
  early.addLive(ev('A', 9, 'delete', CLIENT, { payload: { item: 'c12.y' } }));
  early.addPage([ev('A', 4, 'message', CLIENT, { payload: { item: 'c12.y', thread: 'T' } })]);
  assert.equal(early.list()[0].deleted, true);
});
