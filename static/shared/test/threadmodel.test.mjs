// The thread model (static/shared/threadmodel.js): every folding rule, and
// that the result depends on the set of events seen, not on their order or
// repeats (history pages arrive backwards, live events twice).
import assert from 'node:assert/strict';
import test from 'node:test';

import { ThreadModel, TYPING_MS, msgIdOfItem, senderOfItem } from '../threadmodel.js';

const STAFF = { kind: 'staff', id: 3, name: 'Sam Staff' };
const STAFF2 = { kind: 'staff', id: 4, name: 'Tess Staff' };
const CLIENT = { kind: 'contact', id: 12, name: 'Cleo Client' };
const CLIENT2 = { kind: 'contact', id: 13, name: 'Carl Client' };

let clock = 1_000_000;
const now = () => clock;

function at(seq) {
  return new Date(Date.UTC(2026, 11, 6, 10, 0, seq)).toISOString();
}

const msg = (seq, actor, thread, item, extra = {}) => ({
  seq,
  kind: 'message',
  audience: 'portal',
  actor,
  payload: { thread, item, ...extra },
  blob: `blob${seq}`,
  created_at: at(seq),
});
const note = (seq, actor, thread, item, extra = {}) => ({ ...msg(seq, actor, thread, item, extra), kind: 'note', audience: 'staff' });
const edit = (seq, actor, item, thread) => ({
  seq, kind: 'edit', audience: 'portal', actor, payload: { item, thread }, blob: `edit${seq}`, created_at: at(seq),
});
const del = (seq, actor, item, thread) => ({ seq, kind: 'delete', audience: 'portal', actor, payload: { item, thread }, blob: null, created_at: at(seq) });
const tag = (seq, item, t, removed = false) => ({
  seq, kind: 'tag', audience: 'staff', actor: STAFF, payload: { item, tag: t, ...(removed ? { removed } : {}) }, created_at: at(seq),
});

// A client thread: staff open to c12, the client replies, staff reply, a note inside it.
const opener = msg(1, STAFF, 'T1', 's3.aaa', { to: [12] });
const reply1 = msg(2, CLIENT, 'T1', 'c12.bbb', { parent: 's3.aaa', to: [12] });
const reply2 = msg(3, STAFF, 'T1', 's3.ccc', { parent: 's3.aaa', to: [12] });
const inner = note(4, STAFF2, 'T1', 's4.ddd', { parent: 's3.aaa' });
const internalOpen = note(5, STAFF2, 'N1', 's4.eee');
const internalReply = note(6, STAFF, 'N1', 's3.fff', { parent: 's4.eee' });
const WORLD = [opener, reply1, reply2, inner, internalOpen, internalReply];

function model(me = 's3', staff = true, events = WORLD) {
  const m = new ThreadModel({ me, staff, now });
  for (const e of events) m.apply(e);
  return m;
}

/** Everything a view reads, as plain data, to compare two models. */
function snapshot(m) {
  return {
    threads: m.threads(),
    detail: m.threads().map((t) => m.thread(t.thread)),
    unread: m.matterUnread(),
  };
}

test('item ids name their sender and msg id', () => {
  assert.equal(senderOfItem('s3.8fQ-x'), 's3');
  assert.equal(msgIdOfItem('s3.8fQ-x'), '8fQ-x');
  assert.equal(senderOfItem('noid'), null);
  assert.equal(msgIdOfItem('s3.'), null);
});

test('items fold into threads: opener, replies in log order, notes inside a client thread, internal threads', () => {
  const m = model();
  const t1 = m.thread('T1');
  assert.equal(t1.kind, 'client');
  assert.equal(t1.opener.id, 's3.aaa');
  assert.deepEqual(t1.items.map((i) => i.id), ['s3.aaa', 'c12.bbb', 's3.ccc', 's4.ddd']);
  assert.equal(t1.items[3].internal, true, 'a note inside a client thread is marked internal');
  assert.equal(t1.items[1].internal, false);
  const n1 = m.thread('N1');
  assert.equal(n1.kind, 'internal');
  assert.deepEqual(n1.items.map((i) => i.id), ['s4.eee', 's3.fff']);
  assert.deepEqual(m.summary('T1').to, [12]);
  assert.equal(m.thread('nope'), null);
});

test('the opener is the item without parent even when a reply has a lower seq', () => {
  const m = model('s3', true, [msg(7, CLIENT, 'T2', 'c12.r', { parent: 's3.o' }), msg(8, STAFF, 'T2', 's3.o')]);
  assert.equal(m.thread('T2').opener.id, 's3.o');
  assert.deepEqual(m.thread('T2').items.map((i) => i.id), ['s3.o', 'c12.r']);
});

test('an item without an item id (before item ids) is named by its seq', () => {
  const m = model('s3', true, [{ ...msg(9, STAFF, 'old', undefined) }]);
  assert.equal(m.thread('old').opener.id, '#9');
  assert.equal(m.thread('old').opener.sender, 's3');
});

test('the same event twice is no change; order of arrival does not matter', () => {
  const m = model();
  const v = m.version;
  for (const e of WORLD) assert.equal(m.apply(e), false);
  assert.equal(m.version, v);
  const backwards = model('s3', true, [...WORLD].reverse());
  const shuffled = model('s3', true, [WORLD[3], WORLD[0], WORLD[5], WORLD[1], WORLD[4], WORLD[2], WORLD[0]]);
  assert.deepEqual(snapshot(backwards), snapshot(m));
  assert.deepEqual(snapshot(shuffled), snapshot(m));
  assert.equal(m.apply({ kind: 'message' }), false, 'an event without a seq is ignored');
});

test('a second event claiming an item id is flagged, never shown: a replay in its thread, a move elsewhere', () => {
  const replay = { ...opener, seq: 40 };
  const moved = { ...opener, seq: 41, payload: { ...opener.payload, thread: 'ELSEWHERE' } };
  for (const order of [[...WORLD, replay, moved], [moved, replay, ...WORLD]]) {
    const m = model('c12', false, order);
    const item = m.item('s3.aaa');
    assert.equal(item.key, opener.seq, 'the earliest in the log is the item');
    assert.deepEqual(item.claims, [
      { key: 40, code: 'crypto_replay' },
      { key: 41, code: 'crypto_wrong_context' },
    ]);
    assert.equal(m.thread('ELSEWHERE'), null, 'a moved copy opens no thread');
    assert.deepEqual(m.thread('T1').items.map((i) => i.id), ['s3.aaa', 'c12.bbb', 's3.ccc', 's4.ddd']);
  }
});

test('edits: the newest by the sender is shown; an edit by anyone else is flagged, not shown', () => {
  const events = [...WORLD, edit(10, CLIENT, 'c12.bbb', 'T1'), edit(12, CLIENT, 'c12.bbb', 'T1'), edit(11, STAFF, 'c12.bbb', 'T1')];
  const m = model('s3', true, events);
  const item = m.item('c12.bbb');
  assert.equal(item.edited, true);
  assert.equal(item.shown.seq, 12);
  assert.equal(item.shown.blob, 'edit12');
  assert.equal(item.shown.payload.thread, 'T1', 'the edit opens in its item thread');
  assert.deepEqual(item.flaggedEdits, [11]);
  // only a foreign edit: the original stays shown, flagged
  const m2 = model('s3', true, [...WORLD, edit(11, STAFF, 'c12.bbb', 'T1')]);
  assert.equal(m2.item('c12.bbb').shown.seq, 2);
  assert.equal(m2.item('c12.bbb').edited, false);
  assert.deepEqual(m2.item('c12.bbb').flaggedEdits, [11]);
  // the newest edit wins whatever order the pages came in
  const reversed = model('s3', true, [...events].reverse());
  assert.deepEqual(reversed.item('c12.bbb'), item);
});

test('an edit that arrives before its item (older page not loaded yet) counts once the item is there', () => {
  const m = model('s3', true, [edit(20, STAFF, 's3.aaa', 'T1')]);
  assert.equal(m.item('s3.aaa'), null);
  assert.equal(m.thread('T1'), null);
  m.apply(opener);
  assert.equal(m.item('s3.aaa').shown.seq, 20);
});

test('deletes: by the sender or staff make a tombstone; by another client they are ignored', () => {
  const m = model('c12', false, [opener, reply1, msg(30, CLIENT2, 'T1', 'c13.x', { parent: 's3.aaa' }), edit(31, CLIENT, 'c12.bbb', 'T1')]);
  m.apply(del(32, CLIENT, 'c12.bbb', 'T1'));
  const gone = m.item('c12.bbb');
  assert.equal(gone.deleted, true);
  assert.equal(gone.shown, null, 'nothing of a deleted item or its edits is shown');
  assert.equal(gone.edited, false);
  m.apply(del(33, CLIENT, 'c13.x', 'T1')); // not theirs
  assert.equal(m.item('c13.x').deleted, false);
  m.apply(del(34, STAFF2, 'c13.x', 'T1')); // staff may delete any item
  assert.equal(m.item('c13.x').deleted, true);
  // tombstones stay in place in the thread
  assert.deepEqual(m.thread('T1').items.map((i) => [i.id, i.deleted]), [['s3.aaa', false], ['c12.bbb', true], ['c13.x', true]]);
});

test('a redacted event is a tombstone, also when it arrives again after the first copy', () => {
  const m = model('s3', true, [opener, reply1]);
  assert.equal(m.apply({ ...reply1, blob: null, redacted: true }), true);
  assert.equal(m.item('c12.bbb').deleted, true);
  assert.equal(m.apply({ ...reply1, blob: null, redacted: true }), false);
  const m2 = model('s3', true, [opener, { ...reply1, blob: null, redacted: true }]);
  assert.equal(m2.item('c12.bbb').deleted, true);
});

test('tags: the newest tag event per (item, tag) decides, in any order; filter by tag', () => {
  const events = [...WORLD, tag(40, 'c12.bbb', 'urgent'), tag(41, 'c12.bbb', 'urgent', true), tag(42, 'c12.bbb', 'urgent'), tag(43, 's4.eee', 'docs')];
  const m = model('s3', true, events);
  assert.deepEqual(m.tagsOf('c12.bbb'), ['urgent']);
  const back = model('s3', true, [...events].reverse());
  assert.deepEqual(back.tagsOf('c12.bbb'), ['urgent']);
  m.apply(tag(44, 'c12.bbb', 'urgent', true));
  assert.deepEqual(m.tagsOf('c12.bbb'), []);
  assert.deepEqual([...m.threadsWithTag('docs')], ['N1']);
  assert.deepEqual([...m.threadsWithTag('urgent')], []);
  assert.deepEqual(m.item('s4.eee').tags, ['docs']);
  assert.deepEqual(m.tagsOf('unknown'), []);
});

test('unread: after my read mark, not mine, not deleted; the mark only moves forward', () => {
  const m = model('c12', false, [opener, reply1, reply2]);
  assert.equal(m.unread('T1'), 2, 'the staff opener and reply; my own reply is not unread');
  assert.equal(m.firstUnread('T1'), 's3.aaa');
  assert.equal(m.setReadMark('T1', 1), true);
  assert.equal(m.unread('T1'), 1);
  assert.equal(m.firstUnread('T1'), 's3.ccc');
  assert.equal(m.setReadMark('T1', 0), false, 'a mark never moves back');
  m.apply(del(50, STAFF, 's3.ccc', 'T1'));
  assert.equal(m.unread('T1'), 0, 'a deleted item is not unread');
  assert.equal(m.firstUnread('T1'), null);
  m.apply(msg(51, STAFF, 'T1', 's3.ggg', { parent: 's3.aaa' }));
  assert.equal(m.matterUnread(), 1);
  assert.deepEqual(m.readUpto('T1'), { upto: 51, pos: 51 });
  m.setReadMark('T1', m.readUpto('T1').upto);
  assert.equal(m.matterUnread(), 0);
});

test('unread counts notes for staff; a client model never sees one to count', () => {
  const staff = model('s3', true);
  assert.equal(staff.unread('T1'), 2, 'the client reply and the colleague note');
  assert.equal(staff.unread('N1'), 1);
  const client = model('c12', false, [opener, reply1, reply2]);
  assert.equal(client.matterUnread(), 2);
});

test('read marks and receipts by opaque cursor: learnt from the events that carry one', () => {
  const m = model('c12', false, [{ ...opener, cursor: 'k1' }, { ...reply1, cursor: 'k2' }, { ...reply2, cursor: 'k3' }]);
  assert.deepEqual(m.readUpto('T1'), { upto: 'k3', pos: 3 });
  m.setReadMark('T1', 'k1');
  assert.equal(m.unread('T1'), 1);
  assert.equal(m.setReadMark('T1', 'never-seen'), false);
});

test('receipts: reader -> upto, only forward; placed at the newest item they reach; mine move my mark', () => {
  const m = model('s3', true);
  m.setReceipts('T1', [{ reader: 'c12', name: 'Cleo Client', upto: 3 }, { reader: 's4', name: 'Tess Staff', upto: 1 }]);
  let seen = m.thread('T1').seenBy;
  assert.deepEqual(seen.get('s3.ccc'), ['Cleo Client']);
  assert.deepEqual(seen.get('s3.aaa'), ['Tess Staff']);
  assert.equal(m.applyFrame({ type: 'receipt', matter: 'M', thread: 'T1', reader: 'c12', name: 'Cleo Client', upto: 2 }), false, 'never back');
  m.applyFrame({ type: 'receipt', matter: 'M', thread: 'T1', reader: 's4', name: 'Tess Staff', upto: 4 });
  seen = m.thread('T1').seenBy;
  assert.deepEqual(seen.get('s4.ddd'), ['Tess Staff']);
  assert.equal(seen.has('s3.aaa'), false);
  // my own receipt (from another tab) moves my read mark, and is not shown
  assert.equal(m.unread('T1'), 2);
  m.applyFrame({ type: 'receipt', matter: 'M', thread: 'T1', reader: 's3', name: 'Sam Staff', upto: 4 });
  assert.equal(m.unread('T1'), 0);
  assert.equal([...m.thread('T1').seenBy.values()].flat().includes('Sam Staff'), false);
  // a receipt on a deleted item sits on the newest item before it that is still there
  m.apply(del(60, STAFF2, 's4.ddd', 'T1'));
  assert.deepEqual(m.thread('T1').seenBy.get('s3.ccc'), ['Cleo Client', 'Tess Staff']);
});

test('the unread frame and POST read answer: the server count moves my mark to before the newest n', () => {
  const m = model('c12', false, [opener, reply1, reply2, msg(7, STAFF, 'T1', 's3.hhh', { parent: 's3.aaa' })]);
  assert.equal(m.unread('T1'), 3);
  m.applyFrame({ type: 'unread', matter: 'M', thread: 'T1', unread: 1, matter_unread: 1 });
  assert.equal(m.unread('T1'), 1);
  assert.equal(m.firstUnread('T1'), 's3.hhh');
  m.applyFrame({ type: 'unread', matter: 'M', thread: 'T1', unread: 0, matter_unread: 0 });
  assert.equal(m.unread('T1'), 0);
  assert.equal(m.applyFrame({ type: 'unread', thread: 'T1', unread: -1 }), false);
});

test('summaries from GET /threads list threads not loaded yet; their unread counts until the opener is here', () => {
  const m = new ThreadModel({ me: 'c12', now });
  m.setSummaries([
    { thread: 'old', kind: 'client', to: [12], opener: 's3.zzz', last_at: at(59), items: 5, unread: 2 },
    { thread: 'T1', kind: 'client', to: [12], opener: 's3.aaa', last_at: at(1), items: 3, unread: 1 },
  ]);
  assert.deepEqual(m.threads().map((t) => [t.thread, t.unread, t.items]), [['old', 2, 5], ['T1', 1, 3]]);
  m.apply(reply2); // a newer item of T1, its opener not loaded: the server's count is the floor
  assert.equal(m.unread('T1'), 1);
  m.apply(msg(70, STAFF, 'T1', 's3.new', { parent: 's3.aaa' }));
  assert.equal(m.unread('T1'), 2, 'more local unread than the server counted');
  m.apply(opener);
  m.apply(reply1);
  assert.equal(m.unread('T1'), 3, 'opener loaded: counted locally');
  assert.equal(m.threads()[0].thread, 'T1', 'newest activity first');
  m.setReadMark('T1', 70);
  assert.equal(m.unread('T1'), 0);
  assert.equal(m.summary('old').unread, 2);
});

test('typing: shown until TYPING_MS after the last frame, ended by an item of theirs, never mine', () => {
  clock = 5_000_000;
  const m = model('s3', true);
  assert.equal(m.applyFrame({ type: 'typing', matter: 'M', thread: 'T1', who: 's3', name: 'Me' }), false);
  m.applyFrame({ type: 'typing', matter: 'M', thread: 'T1', who: 'c12', name: 'Cleo Client' });
  assert.deepEqual(m.typing('T1'), [{ who: 'c12', name: 'Cleo Client', internal: false }]);
  assert.equal(m.summary('T1').typing, true);
  assert.equal(m.nextTypingExpiry(), TYPING_MS);
  clock += TYPING_MS - 1;
  assert.equal(m.typing('T1').length, 1);
  clock += 1;
  assert.deepEqual(m.typing('T1'), []);
  assert.equal(m.nextTypingExpiry(), null);
  m.applyFrame({ type: 'typing', matter: 'M', thread: 'T1', who: 'c12', name: 'Cleo Client' });
  m.apply(msg(80, CLIENT, 'T1', 'c12.typed', { parent: 's3.aaa' }));
  assert.deepEqual(m.typing('T1'), [], 'their message ends their typing');
  m.applyFrame({ type: 'typing', matter: 'M', thread: 'N1', who: 's4', name: 'Tess Staff', internal: true });
  assert.equal(m.typing('N1')[0].internal, true);
  assert.equal(m.applyFrame({ type: 'typing', matter: 'M' }), false, 'a frame without a thread is ignored');
});

test('threads are listed newest activity first; a thread of only edits or tags is not listed', () => {
  const m = model();
  m.apply(edit(90, STAFF, 's3.unknown', 'X'));
  m.apply(tag(91, 's3.unknown', 'urgent'));
  assert.deepEqual(m.threads().map((t) => t.thread), ['N1', 'T1']);
  m.apply(msg(92, CLIENT, 'T1', 'c12.late', { parent: 's3.aaa' }));
  assert.deepEqual(m.threads().map((t) => t.thread), ['T1', 'N1']);
  assert.equal(m.summary('T1').items, 5);
});

// A contact's events as protocol v2 sends them: no seq, an opaque cursor
// token and created_at only (the tokens below sort against their log order
// on purpose: the model must not order by them).
const asContact = (event, cursor) => {
  const { seq, ...rest } = event;
  return { ...rest, cursor };
};

test('a contact-shaped stream: keyed by token, ordered by arrival; repeats change nothing', () => {
  const m = new ThreadModel({ me: 'c12', staff: false, now });
  const stream = [asContact(opener, 'zz'), asContact(reply1, 'yy'), asContact(reply2, 'aa')];
  for (const e of stream) assert.equal(m.apply(e), true);
  assert.equal(m.apply(asContact(reply2, 'aa')), false, 'the POST answer and the socket: once');
  const t = m.thread('T1');
  assert.deepEqual(t.items.map((i) => i.id), ['s3.aaa', 'c12.bbb', 's3.ccc']);
  assert.deepEqual(t.items.map((i) => i.key), ['zz', 'yy', 'aa']);
  assert.ok(t.items.every((i) => i.seq === null), 'a contact never sees a seq');
  assert.equal(m.unread('T1'), 2);
  assert.deepEqual(m.readUpto('T1'), { upto: 'aa', pos: m.thread('T1').items[2].pos });
  m.setReadMark('T1', 'yy');
  assert.equal(m.unread('T1'), 1);
  assert.equal(m.firstUnread('T1'), 's3.ccc');
  m.setReceipts('T1', [{ reader: 's3', name: 'Sam Staff', upto: 'yy' }]);
  assert.deepEqual(m.thread('T1').seenBy.get('c12.bbb'), ['Sam Staff']);
});

test('a contact-shaped history: an older page lands before, a page anchored on what was seen fills in', () => {
  const m = new ThreadModel({ me: 'c12', staff: false, now });
  const e1 = asContact(opener, 't-q');
  const e2 = asContact(reply1, 't-b');
  const e3 = asContact(reply2, 't-x');
  const e4 = asContact(msg(7, CLIENT, 'T1', 'c12.ggg', { parent: 's3.aaa' }), 't-a');
  m.applyPage([e3, e4]); // the latest page
  m.applyPage([e1, e2], { older: true }); // "show earlier"
  assert.deepEqual(m.thread('T1').items.map((i) => i.id), ['s3.aaa', 'c12.bbb', 's3.ccc', 'c12.ggg']);
  // an edit after everything (live), then a page that overlaps: nothing moves, the gap fills in order
  const fresh = new ThreadModel({ me: 'c12', staff: false, now });
  fresh.applyPage([e1, e4]);
  fresh.applyPage([e1, e2, e3, e4]);
  assert.deepEqual(fresh.thread('T1').items.map((i) => i.id), ['s3.aaa', 'c12.bbb', 's3.ccc', 'c12.ggg']);
  const ed = asContact(edit(8, CLIENT, 'c12.ggg', 'T1'), 't-e');
  fresh.apply(ed);
  assert.equal(fresh.item('c12.ggg').edited, true);
  assert.deepEqual(fresh.item('c12.ggg').flaggedEdits, []);
});
