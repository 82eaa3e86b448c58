// The live stream of the signed-in user's matters: history over HTTP, live
// events over /ws, resync and resume from cursors (docs/protocol.md).
//
// Invariants:
// * a matter's cursor only moves over a contiguous stream: a history page
//   (its `next`) or websocket events after a subscribe from that
//   cursor. An event seen any other way (a POST answer) is shown but never
//   moves the cursor, so a reconnect cannot skip what lay in between;
// * every event goes through MatterView.add, which renders an event once;
// * cursors are what the server hands out: seqs for staff, opaque tokens
//   for clients (protocol v2), so nothing here does arithmetic on a
//   client's cursor.

import { ApiError, historyPage } from '../shared/http.js';
import { Socket } from '../shared/socket.js';
import { TEXT, liveBroken } from '../shared/strings.js';
import { THREAD_FRAMES } from '../shared/threadapi.js';

const PAGE = 100; // events per history page on screen at first
const RESYNC_PAGE = 500; // RTPORTAL_HISTORY_PAGE_MAX default
const RESYNC_MAX_FORWARD = 2000; // further behind than this: jump to the latest page
const RETRY_MS = 3000;

export class Feed {
  /**
   * `views`: Map ref -> MatterView. `cursors`: Cursors. Callbacks:
   * onState(state, detail) for the connection line, onSignedOut() (an
   * HTTP 401), onSessionEnded() (websocket closed 4001/4010), onAccessRemoved()
   * (closed 4011: removed from a matter), onFatal(message).
   */
  constructor({
    principal,
    views,
    cursors,
    onState,
    onSignedOut,
    onSessionEnded,
    onAccessRemoved,
    onFatal,
  }) {
    this.principal = principal;
    this.onSessionEnded = onSessionEnded;
    this.views = views;
    this.cursors = cursors;
    this.onSignedOut = onSignedOut;
    this.onFatal = onFatal;
    this.limits = { max_subs_per_frame: 100 };
    this.subs = new Map(); // ref -> 'none' | 'pending' | 'active'
    this.resyncing = new Set();
    this.earliest = new Map(); // ref -> `prev` cursor of the oldest page shown
    this.frameId = 0;
    this.subFrames = new Map(); // subscribe frame id -> refs (on this connection)
    this.stopped = false;
    for (const ref of views.keys()) this.subs.set(ref, 'none');
    // thread views send read marks and typing over this socket (false while it is down)
    for (const view of views.values()) if ('sendFrame' in view) view.sendFrame = (frame) => this.socket.send(frame);
    this.socket = new Socket({
      onOpen: (hello) => this.opened(hello),
      onFrame: (frame) => this.frame(frame),
      onState,
      onEnd: (reason) => {
        if (reason === 'signed-out') onSessionEnded();
        else if (reason === 'access-removed') onAccessRemoved();
        else if (reason === 'outdated') this.onFatal(TEXT.pageOutdated);
        else this.onFatal(TEXT.forbiddenOrigin);
      },
    });
  }

  /** First paint: the latest page of every matter, then go live. */
  async start() {
    const refs = [...this.views.keys()];
    // A few matters at a time: staff may see many matters.
    for (let i = 0; i < refs.length; i += 4) {
      const chunk = refs.slice(i, i + 4);
      await Promise.all(chunk.map((ref) => this.loadLatest(ref, true)));
    }
    // One matter (a client's usual case): open on its newest events, as a chat does.
    if (this.views.size === 1) [...this.views.values()][0].revealLatest();
    if (!this.stopped) this.socket.start();
  }

  /** Live only, from `heads` (ref -> seq): no history (the staff activity feed pages its own). */
  startLive(heads) {
    for (const [ref, head] of heads) this.cursors.set(ref, head);
    if (!this.stopped) this.socket.start();
  }

  stop() {
    this.stopped = true;
    this.socket.stop();
  }

  /**
   * Show the latest page of `ref` (`before=end`: it opens on the newest
   * events, as a chat does) and put the cursor at the page's `next`: the
   * page covers everything up to the head it was read at, so subscribing
   * from there leaves no gap.
   */
  async loadLatest(ref, first = false) {
    const view = this.views.get(ref);
    const seen = this.cursors.get(ref);
    view.setBusy(true);
    try {
      const page = await historyPage(ref, { before: 'end', limit: PAGE });
      view.addPage(page.events);
      this.earliest.set(ref, page.prev);
      view.setMoreEarlier(page.more);
      this.cursors.set(ref, page.next);
      if (first) view.markNewAfter(seen);
      return true;
    } catch (err) {
      this.httpFailed(ref, err);
      return false;
    } finally {
      view.setBusy(false);
    }
  }

  /** "Show earlier events": one more page backwards (never moves the cursor). */
  async loadEarlier(ref) {
    const view = this.views.get(ref);
    const before = this.earliest.get(ref);
    if (!before) return;
    view.setBusy(true);
    try {
      const page = await historyPage(ref, { before, limit: PAGE });
      view.addPage(page.events, true);
      this.earliest.set(ref, page.prev);
      view.setMoreEarlier(page.more);
    } catch (err) {
      this.httpFailed(ref, err);
    } finally {
      view.setBusy(false);
    }
  }

  // -- websocket ---------------------------------------------------------

  opened(hello) {
    const who = hello.principal || {};
    if (who.kind !== this.principal.kind || who.id !== this.principal.id) {
      // Another login in this browser replaced the cookie: this page's
      // matters and cursors belong to someone else now. Start over.
      this.stop();
      this.onSessionEnded();
      return;
    }
    if (hello.limits && Number.isSafeInteger(hello.limits.max_subs_per_frame)) {
      this.limits = hello.limits;
    }
    // thread views switch from the flat stream once the server speaks threads (v2)
    for (const view of this.views.values()) if (typeof view.serverVersion === 'function') view.serverVersion(hello.v);
    this.subFrames.clear();
    for (const ref of this.subs.keys()) {
      if (this.subs.get(ref) !== 'gone') this.subs.set(ref, 'none');
    }
    this.subscribe([...this.subs.keys()].filter((ref) => !this.resyncing.has(ref)));
  }

  /** Subscribe `refs` from their cursors, in frames of at most max_subs_per_frame. */
  subscribe(refs) {
    const wanted = refs.filter((ref) => this.subs.get(ref) === 'none');
    const size = Math.max(1, this.limits.max_subs_per_frame || 100);
    for (let i = 0; i < wanted.length; i += size) {
      const chunk = wanted.slice(i, i + size);
      const subs = chunk.map((ref) => ({ matter: ref, after: this.cursors.get(ref) ?? 0 }));
      this.frameId += 1;
      const id = `s${this.frameId}`;
      if (!this.socket.send({ type: 'subscribe', id, subs })) return;
      this.subFrames.set(id, chunk);
      for (const ref of chunk) this.subs.set(ref, 'pending');
    }
  }

  frame(frame) {
    const ref = typeof frame.matter === 'string' ? frame.matter : null;
    if (frame.type === 'error' && ref === null) {
      this.frameError(frame);
      return;
    }
    if (ref === null || !this.views.has(ref)) return; // ignore what we do not know
    switch (frame.type) {
      case 'subscribed':
        this.subs.set(ref, 'active');
        this.views.get(ref).setState('');
        break;
      case 'event':
        this.views.get(ref).add(frame);
        this.cursors.advance(ref, frame.seq ?? frame.cursor);
        break;
      case 'resync':
        this.subs.set(ref, 'none');
        this.resync(ref, frame);
        break;
      case 'error':
        this.subscribeError(ref, frame);
        break;
      default:
        // receipt, typing, unread (docs/threads.md) go to a thread view; others are ignored
        if (THREAD_FRAMES.has(frame.type) && typeof this.views.get(ref).liveFrame === 'function') {
          this.views.get(ref).liveFrame(frame);
        }
        break;
    }
  }

  /** A whole subscribe frame was refused (bad_request: a bug of this page). */
  frameError(frame) {
    const refs = this.subFrames.get(frame.id) || [];
    this.subFrames.delete(frame.id);
    console.error(`rtportal: frame ${frame.id} refused: ${frame.code} ${frame.message}`);
    for (const ref of refs) {
      this.subs.set(ref, 'none');
      this.views.get(ref).setState(liveBroken(frame.code));
    }
  }

  subscribeError(ref, frame) {
    const view = this.views.get(ref);
    if (frame.code === 'conflict') {
      this.subs.set(ref, 'active'); // already subscribed on this connection
    } else if (frame.code === 'not_found') {
      this.subs.set(ref, 'gone');
      view.setState(TEXT.noAccess);
    } else {
      // unavailable, rate_limited, internal: try again shortly.
      this.subs.set(ref, 'none');
      view.setState(TEXT.updatesPaused);
      setTimeout(() => {
        if (!this.stopped) this.subscribe([ref]);
      }, RETRY_MS);
    }
  }

  /** Page the history over HTTP from the cursor, then subscribe again. */
  async resync(ref, frame) {
    if (this.stopped || this.resyncing.has(ref)) return;
    this.resyncing.add(ref);
    const view = this.views.get(ref);
    view.setState(TEXT.catchingUp);
    let ok = true;
    try {
      let cursor = this.cursors.get(ref) ?? 0;
      // A client's cursors are tokens: no distance to measure (its only
      // resync is cursor_ahead); a staff member's are seqs.
      const seqs = typeof cursor === 'number' && Number.isSafeInteger(frame.head);
      if (frame.reason === 'cursor_ahead' || (seqs && cursor > frame.head)) {
        // The server's log is behind this tab (restored database, other
        // deployment): what we show may not exist. Start over from its head.
        view.clear();
        ok = await this.loadLatest(ref);
      } else if (seqs && frame.head - cursor > RESYNC_MAX_FORWARD) {
        // Too far behind to replay on a phone: open on the latest page;
        // "Show earlier events" reaches the rest, without a hidden hole.
        view.clear();
        ok = await this.loadLatest(ref);
      } else {
        for (;;) {
          const page = await historyPage(ref, { after: cursor, limit: RESYNC_PAGE });
          for (const event of page.events) view.add(event);
          cursor = page.next; // a seq or a token, as over the websocket
          this.cursors.advance(ref, cursor);
          if (!page.more) break;
        }
      }
    } catch (err) {
      this.httpFailed(ref, err);
      ok = false;
    } finally {
      this.resyncing.delete(ref);
    }
    if (ok) {
      view.setState('');
      this.subscribe([ref]); // if the socket is down, the next hello does it
    } else if (this.subs.get(ref) !== 'gone') {
      setTimeout(() => this.resync(ref, frame), RETRY_MS);
    }
  }

  httpFailed(ref, err) {
    const view = this.views.get(ref);
    if (err instanceof ApiError && err.status === 401) {
      this.onSignedOut();
    } else if (err instanceof ApiError && err.code === 'not_found') {
      this.subs.set(ref, 'gone');
      view.setState(TEXT.noAccess);
    } else {
      view.setState(TEXT.historyRetrying);
    }
  }
}
