// The reviewer's count in the staff app's navigation (docs/reviews.md "The
// inbox and its count"): what awaits their review, with how much is due and
// overdue, a link to the inbox (`#/reviews`), kept live on every view.
//
// The server pushes the `reviews` frame to the reviewer's connections
// subscribed to the matter the change happened in, so the count keeps a
// socket of its own subscribed to every matter of the firm from its head
// (the views' streams come and go with the route). Its events are not
// shown: only their seqs are kept, so a reconnect resumes without a
// backlog. The count is read over HTTP at start, after each reconnect (a
// frame lost while down) and every quarter of an hour (a new day makes
// items due with no frame; every timezone's midnight falls on a quarter
// hour); the matter list is read again then too (a new matter is
// subscribed). At most the hello's `max_subscriptions` matters are
// subscribed: beyond, a `reviews` frame of another matter is not heard, and
// the count is the HTTP reads'. Closes go quietly: a view's own stream or
// its next request tells the user of a session that ended.
//
// Stable hooks for tests:
//   a#review-count[data-open][data-due][data-overdue]   the link ('' until read; app.js shows
//                                                       the counts on it: showCounts)
//     .review-count-open  .review-count-due  .review-count-overdue   (hidden when 0)

import { el } from '../shared/dom.js';
import { api } from '../shared/http.js';
import { Socket } from '../shared/socket.js';
import { REVIEWS, dueCount, overdueCount, reviewCountLabel } from '../shared/strings_staff.js';
import { routeHref } from './common.js';
import { refOf } from './matters.js';

const REREAD_MS = 15 * 60 * 1000;
const RETRY_MS = 3000;

const count = (n) => Number.isSafeInteger(n) && n >= 0;

/** `{open, due, overdue}` of an answer or a `reviews` frame, or null when it is not one. */
export function readCounts(data) {
  if (!data || typeof data !== 'object') return null;
  const { open, due, overdue } = data;
  return count(open) && count(due) && count(overdue) ? { open, due, overdue } : null;
}

/** The navigation's link to the inbox, its numbers unknown until `showCounts`. */
export function countLink() {
  const a = el('a', 'review-count');
  a.id = 'review-count';
  a.href = routeHref('reviews');
  a.dataset.route = 'reviews';
  const open = el('span', 'badge review-count-open');
  const due = el('span', 'badge review-count-due');
  const overdue = el('span', 'badge review-count-overdue');
  for (const badge of [open, due, overdue]) {
    badge.hidden = true;
    badge.setAttribute('aria-hidden', 'true'); // the link's name says it all
  }
  a.append(el('span', 'review-count-name', REVIEWS.nav), open, due, overdue);
  for (const key of ['open', 'due', 'overdue']) a.dataset[key] = '';
  return a;
}

/** Show `counts` ({open, due, overdue}) on a `countLink()`. */
export function showCounts(a, counts) {
  if (!counts) return;
  const { open, due, overdue } = counts;
  a.dataset.open = String(open);
  a.dataset.due = String(due);
  a.dataset.overdue = String(overdue);
  const badge = (cls, text, shown) => {
    const node = a.querySelector(cls);
    node.textContent = text;
    node.hidden = !shown;
  };
  badge('.review-count-open', String(open), true);
  badge('.review-count-due', dueCount(due), due > 0 && due > overdue);
  badge('.review-count-overdue', overdueCount(overdue), overdue > 0);
  a.setAttribute('aria-label', reviewCountLabel(open, due, overdue));
  a.classList.toggle('has-overdue', overdue > 0);
}

/** What the count reads over HTTP; a test hands its own. */
export const COUNT_API = {
  counts: () => api('GET', '/api/v1/reviews/count'),
  matters: () => api('GET', '/api/v1/matters'),
};

/**
 * The live count, no DOM: `counts` ({open, due, overdue} or null until read),
 * `onChange(fn)` (the navigation's link, the inbox), `refresh()`, `stop()`.
 * `calls` and `socket` (callbacks -> a Socket) are the real ones unless a test
 * hands its own.
 */
export class ReviewCount {
  constructor({ principal, calls = COUNT_API, socket = (callbacks) => new Socket(callbacks) }) {
    this.principal = principal;
    this.calls = calls;
    this.counts = null;
    this.pushed = 0; // reviews frames received
    this.listeners = new Set();
    this.cursors = new Map(); // ref -> the seq this socket has seen
    this.subs = new Map(); // ref -> 'none' | 'pending' | 'active' | 'gone'
    this.subFrames = new Map(); // subscribe frame id -> refs
    this.frameId = 0;
    this.limits = { max_subs_per_frame: 100, max_subscriptions: 1000 };
    this.opens = 0;
    this.stopped = false;
    this.timer = null;
    this.socket = socket({
      onOpen: (hello) => this.opened(hello),
      onFrame: (frame) => this.frame(frame),
      onState: () => {}, // the connection line is the views'
      onEnd: () => this.stop(),
    });
  }

  async start() {
    await this.refresh(true);
    if (this.stopped) return;
    this.socket.start();
    this.schedule();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket.stop();
    this.listeners.clear();
  }

  /** Call `fn(counts)` on every change; returns the function that stops it. */
  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  set(counts) {
    if (!counts || this.stopped) return;
    this.counts = counts;
    for (const fn of this.listeners) fn(counts);
  }

  /** Read the counts (and, with `matters`, the matter list: new ones are subscribed). */
  async refresh(matters = false) {
    const [, list] = await Promise.all([this.readCounts(), matters ? this.calls.matters().catch(() => null) : null]);
    if (!list || !Array.isArray(list.matters)) return;
    for (const m of list.matters) {
      const ref = refOf(m);
      if (typeof ref !== 'string' || this.subs.has(ref)) continue;
      this.cursors.set(ref, Number.isSafeInteger(m.head) ? m.head : 0);
      this.subs.set(ref, 'none');
    }
    this.subscribe([...this.subs.keys()]); // new matters, and any a refused frame left out
  }

  /**
   * Read the counts over HTTP. A `reviews` frame that came while a read was out
   * may have been counted after it (the read's older answer would stand until
   * the next change) or before (a change of a matter not yet subscribed, after a
   * reconnect, would go unseen): the read is made once more.
   */
  async readCounts() {
    for (let tries = 0; tries < 2; tries += 1) {
      const pushed = this.pushed;
      const counts = await this.calls.counts().catch(() => null);
      if (this.pushed === pushed) return this.set(readCounts(counts));
    }
  }

  /** At the next quarter hour, then every quarter hour. */
  schedule() {
    const wait = REREAD_MS - (Date.now() % REREAD_MS) + Math.random() * 5000;
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.refresh(true).finally(() => this.schedule());
    }, wait);
  }

  opened(hello) {
    const who = hello.principal || {};
    if (who.kind !== this.principal.kind || who.id !== this.principal.id) {
      this.stop(); // another sign-in replaced the cookie: the app starts over
      return;
    }
    if (hello.limits && Number.isSafeInteger(hello.limits.max_subs_per_frame)) this.limits = hello.limits;
    this.subFrames.clear();
    for (const [ref, state] of this.subs) if (state !== 'gone') this.subs.set(ref, 'none');
    this.subscribe([...this.subs.keys()]);
    this.opens += 1;
    if (this.opens > 1) this.refresh(); // what changed while the socket was down
  }

  subscribe(refs) {
    // No more than the server takes on a connection (past it each was refused and
    // asked for again every RETRY_MS): the rest are counted by the HTTP reads.
    const most = this.limits.max_subscriptions;
    let held = 0;
    for (const state of this.subs.values()) if (state === 'pending' || state === 'active') held += 1;
    const room = Number.isSafeInteger(most) ? Math.max(0, most - held) : Infinity;
    const wanted = refs.filter((ref) => this.subs.get(ref) === 'none').slice(0, room);
    const size = Math.max(1, this.limits.max_subs_per_frame || 100);
    for (let i = 0; i < wanted.length; i += size) {
      const chunk = wanted.slice(i, i + size);
      this.frameId += 1;
      const id = `r${this.frameId}`;
      const subs = chunk.map((ref) => ({ matter: ref, after: this.cursors.get(ref) ?? 0 }));
      if (!this.socket.send({ type: 'subscribe', id, subs })) return; // the next hello does it
      this.subFrames.set(id, chunk);
      for (const ref of chunk) this.subs.set(ref, 'pending');
    }
  }

  frame(frame) {
    if (frame.type === 'reviews') {
      const counts = readCounts(frame);
      if (counts) this.pushed += 1;
      this.set(counts);
      return;
    }
    const ref = typeof frame.matter === 'string' ? frame.matter : null;
    if (ref === null || !this.subs.has(ref)) {
      if (frame.type === 'error') for (const r of this.subFrames.get(frame.id) || []) this.subs.set(r, 'none');
      return;
    }
    if (frame.type === 'subscribed') this.subs.set(ref, 'active');
    else if (frame.type === 'event' && Number.isSafeInteger(frame.seq)) {
      if (frame.seq > (this.cursors.get(ref) ?? -1)) this.cursors.set(ref, frame.seq);
    } else if (frame.type === 'resync') {
      // far behind: its events are not shown here, so pick up at the head
      if (Number.isSafeInteger(frame.head)) this.cursors.set(ref, frame.head);
      this.subs.set(ref, 'none');
      this.subscribe([ref]);
    } else if (frame.type === 'error') {
      if (frame.code === 'conflict') this.subs.set(ref, 'active');
      else if (frame.code === 'not_found') this.subs.set(ref, 'gone');
      else {
        this.subs.set(ref, 'none');
        setTimeout(() => this.stopped || this.subscribe([ref]), RETRY_MS);
      }
    }
  }
}
