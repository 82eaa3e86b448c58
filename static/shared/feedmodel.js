// The staff activity feed's list (docs/threads.md "Activity feed"): pure,
// no DOM. Entries are events of many matters (each with its `matter`),
// newest first; pages from GET /feed land below, live events that match
// the filters are prepended; the same (matter, seq) twice is one entry;
// a delete turns its item's entry into a tombstone.

export const FEED_TYPES = ['client_message', 'note', 'phase', 'invite', 'document', 'bot'];

/** The feed type of an event, or null when the feed does not show it (keys, edits, tags…). */
export function feedType(event) {
  if (!event || typeof event !== 'object') return null;
  if (typeof event.type === 'string' && FEED_TYPES.includes(event.type)) return event.type;
  switch (event.kind) {
    case 'message':
    case 'welcome':
      return event.audience === 'staff' ? 'note' : 'client_message';
    case 'note':
      return 'note';
    case 'phase':
    case 'step':
      return 'phase';
    case 'access':
    case 'invite':
      return 'invite';
    case 'bot':
      return 'bot';
    case 'document':
    case 'upload':
    case 'request':
      return 'document';
    default:
      return null;
  }
}

/** Whether a client wrote it: the "from the client" mark a glance must catch. */
export const fromClient = (event) => Boolean(event && event.actor && event.actor.kind === 'contact');

const keyOf = (e) => `${e.matter}\u0000${e.seq}`;
const timeOf = (e) => {
  const t = Date.parse(e.created_at);
  return Number.isNaN(t) ? 0 : t;
};

export class FeedList {
  /** `filters`: {matter, type, tag, unread}; `me`: my rtp1 id (my own items are never unread). */
  constructor({ filters = {}, me = null } = {}) {
    this.filters = filters;
    this.me = me;
    this.entries = new Map(); // matter+seq -> entry
    this.deleted = new Set(); // item ids deleted (a delete may come before its item's page)
  }

  /** Whether a live event belongs under the current filters. */
  matches(event) {
    const type = feedType(event);
    if (!type) return false;
    const f = this.filters;
    if (f.matter && event.matter !== f.matter) return false;
    if (f.type && type !== f.type) return false;
    // a new item carries no tag yet: under a tag filter only what the server says is tagged
    if (f.tag && !(Array.isArray(event.tags) && event.tags.includes(f.tag))) return false;
    if (f.unread && (fromMe(event, this.me) || event.unread === false)) return false;
    return true;
  }

  /** A page of GET /feed (already filtered by the server): every showable entry is kept. */
  addPage(events) {
    let added = 0;
    for (const e of Array.isArray(events) ? events : []) if (this.put(e)) added += 1;
    return added;
  }

  /** A live event of matter `ref`: prepended when it matches; a delete marks its item. True if the list changed. */
  addLive(event) {
    if (!event || typeof event.matter !== 'string' || !Number.isSafeInteger(event.seq)) return false;
    if (event.kind === 'delete' && event.payload && typeof event.payload.item === 'string') {
      if (this.deleted.has(event.payload.item)) return false;
      this.deleted.add(event.payload.item);
      return [...this.entries.values()].some((e) => itemOf(e) === event.payload.item);
    }
    return this.matches(event) && this.put(event);
  }

  put(event) {
    if (!event || typeof event.matter !== 'string' || !Number.isSafeInteger(event.seq) || !feedType(event)) return false;
    const key = keyOf(event);
    if (this.entries.has(key)) return false;
    this.entries.set(key, event);
    return true;
  }

  /** Newest first: [{event, type, fromClient, deleted, internal}]. */
  list() {
    return [...this.entries.values()]
      .sort((a, b) => timeOf(b) - timeOf(a) || (a.matter === b.matter ? b.seq - a.seq : a.matter < b.matter ? -1 : 1))
      .map((event) => ({
        event,
        type: feedType(event),
        fromClient: fromClient(event),
        internal: event.audience === 'staff',
        deleted: Boolean(event.redacted) || this.deleted.has(itemOf(event)),
      }));
  }
}

function itemOf(event) {
  return event.payload && typeof event.payload.item === 'string' ? event.payload.item : null;
}

function fromMe(event, me) {
  if (!me || !event.actor) return false;
  const prefix = { staff: 's', contact: 'c', bot: 'b' }[event.actor.kind];
  return `${prefix}${event.actor.id}` === me;
}
