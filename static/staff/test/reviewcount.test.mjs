// The reviewer's live count without a page (static/staff/reviewcount.js): what
// counts as a count, the read at start, the subscriptions of its own socket
// (every matter from its head, in frames of the server's size), the `reviews`
// frame, events that only move a cursor, a resync picked up at the head, a
// reconnect that resumes and reads the count again, another user's hello.
// The socket and the HTTP calls are recording stand-ins.
import assert from 'node:assert/strict';
import test from 'node:test';

import { ReviewCount, readCounts } from '../reviewcount.js';

const ME = { kind: 'staff', id: 3 };

function world({ matters = [['AAAA0001', 7], ['AAAA0002', 0], ['AAAA0003', 12]], counts = { open: 2, due: 1, overdue: 0 } } = {}) {
  const sent = [];
  const reads = [];
  let callbacks = null;
  let up = false;
  const socket = (cb) => {
    callbacks = cb;
    return {
      start() {},
      stop() {
        up = false;
      },
      send(frame) {
        if (up) sent.push(frame);
        return up;
      },
    };
  };
  const calls = {
    async counts() {
      reads.push('counts');
      return counts;
    },
    async matters() {
      reads.push('matters');
      return { matters: matters.map(([ref, head]) => ({ ref, title: ref, head })) };
    },
  };
  const seen = [];
  const count = new ReviewCount({ principal: ME, calls, socket });
  count.onChange((c) => seen.push(c));
  return {
    count,
    sent,
    reads,
    seen,
    hello(principal = ME, limits = { max_subs_per_frame: 2 }) {
      up = true;
      callbacks.onOpen({ type: 'hello', principal, limits });
    },
    down() {
      up = false;
    },
    frame: (f) => callbacks.onFrame(f),
  };
}

test('a count is three non-negative integers', () => {
  assert.deepEqual(readCounts({ type: 'reviews', open: 3, due: 2, overdue: 1 }), { open: 3, due: 2, overdue: 1 });
  for (const bad of [null, 'x', {}, { open: 1, due: 0 }, { open: -1, due: 0, overdue: 0 }, { open: '1', due: 0, overdue: 0 }, { open: 1.5, due: 0, overdue: 0 }]) {
    assert.equal(readCounts(bad), null, JSON.stringify(bad));
  }
});

test('start reads the count and the matters, then subscribes each from its head in frames of the server size', async () => {
  const w = world();
  await w.count.refresh(true); // what start() does before the socket (and its quarter-hour timer)
  assert.deepEqual(w.reads.sort(), ['counts', 'matters']);
  assert.deepEqual(w.seen, [{ open: 2, due: 1, overdue: 0 }]);
  assert.deepEqual(w.count.counts, { open: 2, due: 1, overdue: 0 });
  assert.deepEqual(w.sent, [], 'nothing is sent before the hello');
  w.hello();
  assert.deepEqual(
    w.sent.map((f) => [f.type, f.subs]),
    [
      ['subscribe', [{ matter: 'AAAA0001', after: 7 }, { matter: 'AAAA0002', after: 0 }]],
      ['subscribe', [{ matter: 'AAAA0003', after: 12 }]],
    ],
  );
  assert.notEqual(w.sent[0].id, w.sent[1].id);
});

test('the reviews frame sets the count; events move cursors; a resync resumes at the head', async () => {
  const w = world();
  await w.count.refresh(true);
  w.hello();
  for (const ref of ['AAAA0001', 'AAAA0002', 'AAAA0003']) w.frame({ type: 'subscribed', matter: ref });
  w.frame({ type: 'reviews', open: 3, due: 3, overdue: 1 });
  w.frame({ type: 'reviews', open: 'many', due: 3, overdue: 1 }); // not a count: ignored
  assert.deepEqual(w.seen.at(-1), { open: 3, due: 3, overdue: 1 });
  assert.equal(w.seen.length, 2);
  w.frame({ type: 'event', matter: 'AAAA0001', seq: 9, kind: 'message' });
  w.frame({ type: 'event', matter: 'AAAA0001', seq: 8, kind: 'message' }); // never backwards
  w.frame({ type: 'event', matter: 'ZZZZ9999', seq: 50 }); // not one of ours
  assert.equal(w.count.cursors.get('AAAA0001'), 9);
  assert.equal(w.count.cursors.has('ZZZZ9999'), false);
  w.sent.length = 0;
  w.frame({ type: 'resync', matter: 'AAAA0002', after: 0, head: 5000, reason: 'cursor_too_old' });
  assert.deepEqual(w.sent.map((f) => f.subs), [[{ matter: 'AAAA0002', after: 5000 }]]);
  // a matter gone is left alone; a conflict means it is subscribed already
  w.frame({ type: 'error', matter: 'AAAA0003', code: 'not_found' });
  w.frame({ type: 'error', matter: 'AAAA0001', code: 'conflict' });
  assert.equal(w.count.subs.get('AAAA0003'), 'gone');
  assert.equal(w.count.subs.get('AAAA0001'), 'active');
});

test('a reconnect resumes from the seqs seen and reads the count again', async () => {
  const w = world();
  await w.count.refresh(true);
  w.hello();
  w.frame({ type: 'event', matter: 'AAAA0003', seq: 15 });
  w.down();
  w.sent.length = 0;
  w.reads.length = 0;
  w.hello(ME, { max_subs_per_frame: 100 });
  assert.deepEqual(w.sent.map((f) => f.subs), [
    [
      { matter: 'AAAA0001', after: 7 },
      { matter: 'AAAA0002', after: 0 },
      { matter: 'AAAA0003', after: 15 },
    ],
  ]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(w.reads, ['counts'], 'what changed while it was down');
});

test('a hello for someone else stops the count', async () => {
  const w = world();
  await w.count.refresh(true);
  w.hello({ kind: 'staff', id: 4 });
  assert.equal(w.count.stopped, true);
  assert.deepEqual(w.sent, []);
});

test('no more matters are subscribed than the server takes on a connection', async () => {
  // Past max_subscriptions each further matter was refused rate_limited and asked for
  // again every 3 s, for as long as the tab was open: the rest wait for the HTTP reads.
  const w = world({ matters: [['AAAA0001', 1], ['AAAA0002', 2], ['AAAA0003', 3], ['AAAA0004', 4]] });
  await w.count.refresh(true);
  w.hello(ME, { max_subs_per_frame: 2, max_subscriptions: 3 });
  const asked = () => w.sent.flatMap((f) => f.subs.map((s) => s.matter));
  assert.deepEqual(asked(), ['AAAA0001', 'AAAA0002', 'AAAA0003']);
  await w.count.refresh(true); // the quarter-hour read: still full
  assert.deepEqual(asked(), ['AAAA0001', 'AAAA0002', 'AAAA0003']);
  w.frame({ type: 'error', id: w.sent[1].id, matter: 'AAAA0003', code: 'not_found', message: 'gone' });
  await w.count.refresh(true); // a matter gone frees its place
  assert.deepEqual(asked(), ['AAAA0001', 'AAAA0002', 'AAAA0003', 'AAAA0004']);
});

test('a count read over HTTP while a reviews frame came is read again, not taken', async () => {
  const w = world();
  await w.count.refresh(true);
  w.hello();
  const answers = [];
  w.count.calls = { counts: () => new Promise((r) => answers.push(r)), matters: async () => ({ matters: [] }) };
  const read = w.count.refresh(); // a reconnect's read, its answer slow
  w.frame({ type: 'reviews', open: 5, due: 2, overdue: 1 }); // a change pushed meanwhile
  answers[0]({ open: 4, due: 2, overdue: 1 }); // read before that change
  await new Promise(setImmediate);
  assert.deepEqual(w.count.counts, { open: 5, due: 2, overdue: 1 }, 'the older answer is not taken');
  assert.equal(answers.length, 2, 'the count is read again');
  answers[1]({ open: 6, due: 2, overdue: 1 }); // a change whose frame went to a matter not yet subscribed
  await read;
  assert.deepEqual(w.count.counts, { open: 6, due: 2, overdue: 1 });
});
