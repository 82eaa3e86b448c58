// Per-matter cursors (where this tab is in each matter's log), kept in sessionStorage.
//
// A cursor is what the server handed out (protocol v2, docs/protocol.md):
// an integer seq for staff, an opaque token (a string) for a client, who
// never sees a seq. Tokens cannot be compared: a client's cursor simply
// follows its stream.
//
// sessionStorage is per tab and dies with it: a reload or a webview that
// the phone's OS killed and restored resumes from the cursor, while another
// tab or another person on a shared computer starts fresh. Keys are scoped
// by the signed-in principal so a different login in the same tab never
// inherits someone else's position. Some webviews throw on storage access
// (private mode, storage disabled): we then keep the cursors in memory only.

// v2: a client's v1 cursor (a seq) would be refused by the server.
const PREFIX = 'rtportal.cursor.v2.';
const SEQ = /^(0|[1-9][0-9]{0,15})$/;
const TOKEN = /^[A-Za-z0-9_-]{21}[AQgw]$/;

/** A cursor as the server spells it: a safe non-negative integer or a token. */
export function isCursor(value) {
  if (typeof value === 'string') return TOKEN.test(value);
  return Number.isSafeInteger(value) && value >= 0;
}

function storage() {
  try {
    const s = window.sessionStorage;
    const probe = `${PREFIX}probe`;
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch (err) {
    return null;
  }
}

export class Cursors {
  constructor(principal) {
    this.scope = `${PREFIX}${principal.kind}.${principal.id}.`;
    this.store = storage();
    this.memory = new Map();
  }

  /** The stored cursor of `ref`, or null if this tab has none. */
  get(ref) {
    if (this.memory.has(ref)) return this.memory.get(ref);
    if (!this.store) return null;
    const raw = this.store.getItem(this.scope + ref);
    if (raw === null) return null;
    if (SEQ.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
    return TOKEN.test(raw) ? raw : null;
  }

  /**
   * Move the cursor of `ref` to `cursor`, an event's or a page's: a seq only
   * forward; a token (not comparable) always, as it comes in stream order.
   */
  advance(ref, cursor) {
    if (!isCursor(cursor)) return;
    const current = this.get(ref);
    if (typeof cursor === 'number' && typeof current === 'number' && current >= cursor) return;
    this.set(ref, cursor);
  }

  /** Set the cursor exactly (a resync after `cursor_ahead` moves it back). */
  set(ref, cursor) {
    // A bad value would make every later subscribe a bad_request: refuse it.
    if (!isCursor(cursor)) throw new TypeError(`bad cursor ${cursor}`);
    this.memory.set(ref, cursor);
    if (this.store) {
      try {
        this.store.setItem(this.scope + ref, String(cursor));
      } catch (err) {
        // Quota or disabled storage: the in-memory cursor still works.
      }
    }
  }

  /** Forget every cursor of every principal in this tab (logout). */
  static clearAll() {
    const s = storage();
    if (!s) return;
    const keys = [];
    for (let i = 0; i < s.length; i += 1) {
      const key = s.key(i);
      if (key && key.startsWith(PREFIX)) keys.push(key);
    }
    for (const key of keys) s.removeItem(key);
  }
}
