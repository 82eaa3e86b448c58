// The threads of one matter as its reader sees them (docs/threads.md),
// folded from the matter's events: pure, no DOM, no network.
//
// Events come in log order (live, resync) and in pages loaded backwards
// (history), and the same event may arrive twice (a POST answer and the
// websocket). An event is named by its seq (staff) or, for a contact who
// never sees a seq (protocol v2), by its opaque cursor token; its position
// in the log is its seq, or for a token the order it arrived in: the stream
// delivers in log order, and an older history page (applyPage with
// `older`) lands before everything seen. A repeat changes nothing. Edits, deletes and tags may arrive before
// the item they name (an older page not loaded yet): they are kept by item
// id and count once the item is there.
//
// Rules (each has a test in static/shared/test/threadmodel.test.mjs):
// * an item is a `message`, `note` or `welcome` event; its `payload.thread`
//   groups it; the opener is the item without `parent` that came first, the
//   rest are replies in log order; a note in a thread with a portal item is
//   an internal note inside a client thread, a thread of notes only is an
//   internal thread;
// * an edit counts only from the item's sender (the rtp1 id before the dot
//   of the item id); the newest (highest seq) counted edit is the content
//   shown; an edit from anyone else is flagged on the item, never shown;
// * a delete from the sender or from staff makes the item a tombstone
//   (edits and content gone); a redacted event (blob erased) is one too;
// * a second event claiming an item id (a server replaying it, or moving a
//   copy to another thread) is never shown as the item: the earliest in the
//   log is the item, the others its `claims`, which views flag;
// * tags (staff): per (item, tag) the newest `tag` event decides;
// * receipts: reader -> upto, only forward; mine move my read mark;
// * unread: items after my read mark, not mine, not deleted;
// * typing: who typed in a thread until TYPING_MS after their last frame,
//   ended at once by an item of theirs.
// Readers (`reader` of a receipt) and typers (`who`) are rtp1 ids ('s3',
// 'c12'), as an item id names its sender; positions (`upto`) are a seq or an
// opaque cursor the model learnt from an event carrying it (`event.cursor`).

export const ITEM_KINDS = new Set(['message', 'note', 'welcome']);
export const TYPING_MS = 6000; // the server passes one frame per 3 s: two missed frames end it

/** The rtp1 id of an event's actor ('s3', 'c12', 'b1'), or null. */
export function actorId(actor) {
  if (!actor || typeof actor !== 'object' || !Number.isSafeInteger(actor.id) || actor.id < 1) return null;
  const prefix = { staff: 's', contact: 'c', bot: 'b' }[actor.kind];
  return prefix ? `${prefix}${actor.id}` : null;
}

/** The sender an item id names (`s3.8fQ…` -> 's3'), or null for an id without one. */
export function senderOfItem(item) {
  if (typeof item !== 'string') return null;
  const dot = item.indexOf('.');
  return dot > 0 ? item.slice(0, dot) : null;
}

/** The envelope msg_id an item id names (`s3.8fQ…` -> '8fQ…'), or null. */
export function msgIdOfItem(item) {
  if (typeof item !== 'string') return null;
  const dot = item.indexOf('.');
  return dot > 0 && dot < item.length - 1 ? item.slice(dot + 1) : null;
}

/** What names `event`: its seq (staff), else its cursor token (a contact); null if neither. */
export function eventKey(event) {
  if (Number.isSafeInteger(event.seq)) return event.seq;
  return typeof event.cursor === 'string' && event.cursor ? event.cursor : null;
}

const str = (v) => (typeof v === 'string' && v ? v : null);
const timeOf = (iso) => {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : t;
};

export class ThreadModel {
  /**
   * `me`: my rtp1 id; `staff`: whether I am staff (a client never receives
   * notes or tags, but the model would not trust it either way for counts).
   * `now()`: milliseconds, for typing expiry (tests pass a clock).
   */
  constructor({ me, staff = false, now = () => Date.now() } = {}) {
    this.me = me;
    this.staff = staff;
    this.now = now;
    this.seen = new Map(); // key (seq, else cursor token) -> event (repeats are no change)
    this.at = new Map(); // key -> position in the log (the seq, else the arrival order)
    this.cursorPos = new Map(); // opaque cursor -> position, learnt from events that carry one
    this.hi = 0; // the newest arrival position given to a token-named event
    this.lo = 0; // the oldest one (older pages count down from here)
    this.items = new Map(); // item id -> record
    this.threadIds = new Map(); // thread -> Set of item ids
    this.summaries = new Map(); // thread -> the server's row of GET /threads
    this.receipts = new Map(); // thread -> Map reader -> {reader, name, upto, pos}
    this.marks = new Map(); // thread -> my read mark (a seq)
    this.typers = new Map(); // thread -> Map who -> {who, name, until, internal}
    this.version = 0; // bumps on every change: views redraw when it moved
  }

  // ---------------------------------------------------------------- input

  /**
   * A page of history in log order. `older`: it lies before every event seen
   * ("show earlier"). Otherwise the events it shares with what was seen
   * anchor it: the new ones before the first shared event go before
   * everything, those between two shared events between them, the rest after.
   * (Seqs place themselves; this matters for a contact's tokens only.)
   */
  applyPage(events, { older = false } = {}) {
    const list = (Array.isArray(events) ? events : []).filter((e) => e && eventKey(e) !== null);
    const known = list.map((e) => this.at.get(eventKey(e)));
    let first = older ? list.length : known.findIndex((p) => p !== undefined);
    if (first < 0) first = 0;
    let any = false;
    for (let i = first - 1; i >= 0; i -= 1) any = this.apply(list[i], { older: true }) || any;
    let prev = null;
    for (let i = first; i < list.length; i += 1) {
      if (known[i] !== undefined) {
        prev = known[i];
        any = this.apply(list[i]) || any;
        continue;
      }
      const next = known.slice(i + 1).find((p) => p !== undefined);
      const at = next === undefined || prev === null ? undefined : prev + (next - prev) / 2;
      if (at !== undefined) prev = at;
      any = this.apply(list[i], { at }) || any;
    }
    return any;
  }

  /** Fold one stored event (history page, live frame, POST answer); true if anything changed. */
  apply(event, { older = false, at } = {}) {
    const key = event ? eventKey(event) : null;
    if (key === null) return false;
    const before = this.seen.get(key);
    if (before) {
      // the same event again; only its redaction (a later page after a delete) is news
      if (!event.redacted || before.redacted) return false;
      const redacted = { ...before, redacted: true, blob: null };
      this.seen.set(key, redacted);
      for (const rec of this.items.values()) if (rec.event === before) rec.event = redacted;
      return this.changed();
    }
    this.seen.set(key, event);
    let pos = key;
    if (typeof key !== 'number' && at !== undefined) pos = at;
    else if (typeof key !== 'number') {
      if (older) this.lo -= 1;
      else this.hi += 1;
      pos = older ? this.lo : this.hi;
      if (this.seen.size === 1) this.lo = this.hi = pos;
    }
    this.at.set(key, pos);
    if (str(event.cursor)) this.cursorPos.set(event.cursor, pos);
    const p = event.payload && typeof event.payload === 'object' ? event.payload : {};
    if (ITEM_KINDS.has(event.kind)) {
      const thread = str(p.thread);
      if (!thread) return this.changed();
      const id = str(p.item) || `#${key}`; // an item from before item ids: its seq (or token) names it
      const rec = this.record(id);
      if (rec.event && this.posOf(rec.event) <= pos) {
        // a second event claiming the id (a replay, or a copy moved to another
        // thread): kept to be flagged, never shown as the item
        rec.claims.push(event);
        return this.changed();
      }
      if (rec.event) {
        // an earlier position wins: the event shown so far becomes the claim
        rec.claims.push(rec.event);
        const old = this.threadIds.get(rec.thread);
        if (old && rec.thread !== thread) {
          old.delete(id);
          if (!old.size) this.threadIds.delete(rec.thread);
        }
      }
      rec.event = event;
      rec.thread = thread;
      if (!this.threadIds.has(thread)) this.threadIds.set(thread, new Set());
      this.threadIds.get(thread).add(id);
      // an item of theirs ends their typing
      const who = actorId(event.actor);
      const typing = this.typers.get(thread);
      if (typing && who) typing.delete(who);
    } else if (event.kind === 'edit' && str(p.item)) {
      this.record(p.item).edits.set(key, event);
    } else if (event.kind === 'delete' && str(p.item)) {
      this.record(p.item).deletes.set(key, event);
    } else if (event.kind === 'tag' && str(p.item) && str(p.tag)) {
      const tags = this.record(p.item).tags;
      const had = tags.get(p.tag);
      if (!had || had.pos < pos) tags.set(p.tag, { pos, removed: p.removed === true });
    }
    return this.changed();
  }

  /** A live frame of docs/threads.md (`receipt`, `typing`, `unread`); true if anything changed. */
  applyFrame(frame) {
    if (!frame || typeof frame !== 'object' || !str(frame.thread)) return false;
    if (frame.type === 'receipt') return this.setReceipt(frame.thread, frame);
    if (frame.type === 'typing') {
      const who = str(frame.who);
      if (!who || who === this.me) return false;
      if (!this.typers.has(frame.thread)) this.typers.set(frame.thread, new Map());
      this.typers.get(frame.thread).set(who, {
        who,
        name: str(frame.name) || who,
        until: this.now() + TYPING_MS,
        internal: frame.internal === true,
      });
      return this.changed();
    }
    if (frame.type === 'unread' && Number.isSafeInteger(frame.unread) && frame.unread >= 0) {
      return this.setServerUnread(frame.thread, frame.unread);
    }
    return false;
  }

  /** The rows of GET /matters/{ref}/threads (a page of them). */
  setSummaries(rows) {
    for (const row of Array.isArray(rows) ? rows : []) {
      if (row && str(row.thread)) this.summaries.set(row.thread, { ...this.summaries.get(row.thread), ...row });
    }
    return this.changed();
  }

  /** GET .../threads/{thread}/receipts: [{reader, name, upto}]. */
  setReceipts(thread, rows) {
    let any = false;
    for (const row of Array.isArray(rows) ? rows : []) any = this.setReceipt(thread, row) || any;
    return any;
  }

  /** One reader's receipt; only forward. Mine is my read mark. */
  setReceipt(thread, { reader, name, upto }) {
    if (!str(reader)) return false;
    const pos = this.pos(upto);
    if (!this.receipts.has(thread)) this.receipts.set(thread, new Map());
    const map = this.receipts.get(thread);
    const had = map.get(reader);
    if (had && had.pos !== null && (pos === null || pos <= had.pos)) return false;
    map.set(reader, { reader, name: str(name) || reader, upto, pos });
    if (reader === this.me && pos !== null) this.setReadMark(thread, pos);
    return this.changed();
  }

  /** My read mark in `thread` (a seq or a cursor); only forward. */
  setReadMark(thread, upto) {
    const pos = this.pos(upto);
    if (pos === null || (this.marks.get(thread) ?? -Infinity) >= pos) return false;
    this.marks.set(thread, pos);
    const s = this.summaries.get(thread);
    if (s && Number.isSafeInteger(s.unread)) this.summaries.set(thread, { ...s, unread: 0 });
    return this.changed();
  }

  /**
   * The server's unread count for `thread` (the answer of POST .../read, an
   * `unread` frame from my other tab): my mark moves to just before the
   * newest `n` unread items I have.
   */
  setServerUnread(thread, n) {
    const counted = this.unreadItems(thread, -Infinity);
    const s = this.summaries.get(thread) || { thread };
    this.summaries.set(thread, { ...s, unread: n });
    if (n < counted.length) {
      const lastRead = counted[counted.length - 1 - n];
      const at = this.posOf(lastRead.event);
      if ((this.marks.get(thread) ?? -Infinity) < at) this.marks.set(thread, at);
    }
    return this.changed();
  }

  // ---------------------------------------------------------------- output

  /** The threads, newest activity first: {thread, kind, to, opener, lastAt, items, unread, typing}. */
  threads() {
    const ids = new Set([...this.threadIds.keys(), ...this.summaries.keys()]);
    const rows = [...ids].map((id) => this.summary(id)).filter((row) => row.items > 0 || row.fromServer);
    rows.sort((a, b) => b.lastAt - a.lastAt || (b.lastSeq ?? 0) - (a.lastSeq ?? 0) || (a.thread < b.thread ? -1 : 1));
    return rows;
  }

  summary(id) {
    const items = this.visibleItems(id);
    const server = this.summaries.get(id);
    const opener = items.opener;
    const all = [...(opener ? [opener] : []), ...items.replies];
    let lastAt = server ? timeOf(server.last_at) : 0;
    let lastSeq = null;
    for (const rec of all) {
      lastAt = Math.max(lastAt, timeOf(rec.event.created_at));
      lastSeq = Math.max(lastSeq ?? -Infinity, this.posOf(rec.event));
    }
    return {
      thread: id,
      kind: items.kind ?? (server && server.kind === 'internal' ? 'internal' : 'client'),
      to: opener && Array.isArray(opener.event.payload.to) ? opener.event.payload.to : (server && server.to) || [],
      opener: opener ? opener.id : (server && server.opener) || null,
      lastAt,
      lastSeq,
      items: Math.max(all.length, (server && server.items) || 0),
      unread: this.unread(id),
      typing: this.typing(id).length > 0,
      fromServer: Boolean(server),
    };
  }

  /** One thread: {thread, kind, opener, replies, items (opener first), receipts, typing}. */
  thread(id) {
    if (!this.threadIds.has(id) && !this.summaries.has(id)) return null;
    const { opener, replies, kind } = this.visibleItems(id);
    const items = [...(opener ? [opener] : []), ...replies].map((rec) => this.itemView(rec));
    return { thread: id, kind: kind ?? 'client', opener: items[0] || null, items, seenBy: this.seenBy(id, items), typing: this.typing(id) };
  }

  /** The item as a view shows it (see itemView), or null when it is not loaded. */
  item(id) {
    const rec = this.items.get(id);
    return rec && rec.event ? this.itemView(rec) : null;
  }

  /** Unread items of `thread`: after my read mark, not mine, not deleted. */
  unread(thread) {
    const local = this.unreadItems(thread, this.marks.get(thread) ?? -Infinity).length;
    const server = this.summaries.get(thread);
    const { opener } = this.visibleItems(thread);
    // with the opener not loaded, older unread items may be missing here: the server counted them
    if (!opener && server && Number.isSafeInteger(server.unread)) return Math.max(server.unread, local);
    return local;
  }

  matterUnread() {
    return this.threads().reduce((n, row) => n + row.unread, 0);
  }

  /** The id of the first unread item of `thread` (jump target), or null. */
  firstUnread(thread) {
    const first = this.unreadItems(thread, this.marks.get(thread) ?? -Infinity)[0];
    return first ? first.id : null;
  }

  /** The newest position of `thread` to send as a read mark: {upto (a seq or a token), pos} or null. */
  readUpto(thread) {
    const { opener, replies } = this.visibleItems(thread);
    const last = replies.length ? replies[replies.length - 1] : opener;
    if (!last) return null;
    const e = last.event;
    return { upto: str(e.cursor) || e.seq, pos: this.posOf(e) };
  }

  /** Who is typing in `thread` now (not me), by name. */
  typing(thread) {
    const map = this.typers.get(thread);
    if (!map) return [];
    const now = this.now();
    return [...map.values()].filter((t) => t.until > now).map(({ who, name, internal }) => ({ who, name, internal }));
  }

  /** The ms until the next typing indicator ends, or null (the view's timer). */
  nextTypingExpiry() {
    const now = this.now();
    let next = null;
    for (const map of this.typers.values()) {
      for (const t of map.values()) if (t.until > now) next = next === null ? t.until - now : Math.min(next, t.until - now);
    }
    return next;
  }

  /** Tag ids on an item now. */
  tagsOf(id) {
    const rec = this.items.get(id);
    if (!rec) return [];
    return [...rec.tags].filter(([, t]) => !t.removed).map(([tag]) => tag).sort();
  }

  /** Threads with an item carrying `tag`. */
  threadsWithTag(tag) {
    const out = new Set();
    for (const rec of this.items.values()) {
      if (rec.event && !this.isDeleted(rec) && this.tagsOf(rec.id).includes(tag)) out.add(rec.thread);
    }
    return out;
  }

  // ---------------------------------------------------------------- internals

  changed() {
    this.version += 1;
    return true;
  }

  record(id) {
    let rec = this.items.get(id);
    if (!rec) {
      rec = { id, thread: null, event: null, claims: [], edits: new Map(), deletes: new Map(), tags: new Map() };
      this.items.set(id, rec);
    }
    return rec;
  }

  /** The position in the log of a folded event. */
  posOf(event) {
    return this.at.get(eventKey(event)) ?? -Infinity;
  }

  /** A position in the log: a seq, or a cursor learnt from an event (or one made of digits). */
  pos(upto) {
    if (Number.isSafeInteger(upto)) return upto;
    if (typeof upto !== 'string') return null;
    if (this.cursorPos.has(upto)) return this.cursorPos.get(upto);
    return /^[0-9]{1,15}$/.test(upto) ? Number(upto) : null;
  }

  /** Who wrote item `rec`: the id's sender, else (an item without an id) its event's actor. */
  senderOf(rec) {
    return senderOfItem(rec.id) ?? (rec.event ? actorId(rec.event.actor) : null);
  }

  acceptedEdits(rec) {
    const sender = this.senderOf(rec);
    const ok = [];
    const flagged = [];
    for (const e of rec.edits.values()) (sender && actorId(e.actor) === sender ? ok : flagged).push(e);
    ok.sort((a, b) => this.posOf(a) - this.posOf(b));
    flagged.sort((a, b) => this.posOf(a) - this.posOf(b));
    return { ok, flagged };
  }

  deletion(rec) {
    const sender = this.senderOf(rec);
    let first = null;
    for (const e of rec.deletes.values()) {
      const by = actorId(e.actor);
      if ((by && by === sender) || (e.actor && e.actor.kind === 'staff')) {
        if (!first || this.posOf(e) < this.posOf(first)) first = e;
      }
    }
    return first;
  }

  isDeleted(rec) {
    return Boolean(this.deletion(rec) || (rec.event && rec.event.redacted));
  }

  /** The loaded items of `thread`: opener, replies in log order, and its kind. */
  visibleItems(thread) {
    const ids = this.threadIds.get(thread);
    const recs = ids ? [...ids].map((id) => this.items.get(id)).filter((r) => r && r.event) : [];
    recs.sort((a, b) => this.posOf(a.event) - this.posOf(b.event));
    const opener = recs.find((r) => !str(r.event.payload && r.event.payload.parent)) || recs[0] || null;
    const replies = recs.filter((r) => r !== opener);
    let kind = null;
    if (recs.length) kind = recs.some((r) => r.event.audience === 'portal') ? 'client' : 'internal';
    return { opener, replies, kind };
  }

  unreadItems(thread, mark) {
    const { opener, replies } = this.visibleItems(thread);
    return [...(opener ? [opener] : []), ...replies].filter(
      (r) => this.posOf(r.event) > mark && this.senderOf(r) !== this.me && !this.isDeleted(r),
    );
  }

  /**
   * What a view needs of one item: the event to open (the newest counted
   * edit, else the item's own event; none once deleted), and the markers.
   */
  itemView(rec) {
    const e = rec.event;
    const deleted = this.isDeleted(rec);
    const { ok, flagged } = this.acceptedEdits(rec);
    const edit = deleted ? null : ok[ok.length - 1] || null;
    const shown = deleted ? null : edit ? { ...edit, payload: { ...edit.payload, thread: rec.thread } } : e;
    const pos = this.posOf(e);
    return {
      id: rec.id,
      thread: rec.thread,
      seq: Number.isSafeInteger(e.seq) ? e.seq : null, // none for a contact (protocol v2)
      key: eventKey(e), // the seq, else the cursor token: what names the event
      pos, // its place in the log (order and read marks compare these)
      kind: e.kind,
      audience: e.audience,
      internal: e.audience === 'staff',
      actor: e.actor,
      sender: this.senderOf(rec),
      mine: this.senderOf(rec) === this.me,
      parent: str(e.payload && e.payload.parent),
      createdAt: e.created_at,
      event: e,
      shown, // null: a tombstone
      edited: Boolean(edit),
      editedAt: edit ? edit.created_at : null,
      deleted,
      flaggedEdits: flagged.map((f) => eventKey(f)),
      // other events claiming this item id, in log order: a copy in the same
      // thread is a replay, one in another thread a move (both flagged)
      claims: [...rec.claims]
        .sort((a, b) => this.posOf(a) - this.posOf(b))
        .map((c) => ({
          key: eventKey(c),
          code: str(c.payload && c.payload.thread) === rec.thread ? 'crypto_replay' : 'crypto_wrong_context',
        })),
      tags: this.tagsOf(rec.id),
      unread: pos > (this.marks.get(rec.thread) ?? -Infinity) && this.senderOf(rec) !== this.me && !deleted,
    };
  }

  /** item id -> names of readers whose receipt reaches that item (and not the next one), me left out. */
  seenBy(thread, items) {
    const out = new Map();
    const map = this.receipts.get(thread);
    if (!map) return out;
    for (const r of map.values()) {
      if (r.reader === this.me || r.pos === null) continue;
      let at = null;
      for (const it of items) if (!it.deleted && it.pos <= r.pos) at = it;
      if (!at) continue;
      if (!out.has(at.id)) out.set(at.id, []);
      out.get(at.id).push(r.name);
    }
    for (const names of out.values()) names.sort();
    return out;
  }
}
