// Per-matter cursors (the last seq this tab has seen), kept in sessionStorage.
//
// sessionStorage is per tab and dies with it: a reload or a webview that
// the phone's OS killed and restored resumes from the cursor, while another
// tab or another person on a shared computer starts fresh. Keys are scoped
// by the signed-in principal so a different login in the same tab never
// inherits someone else's position. Some webviews throw on storage access
// (private mode, storage disabled): we then keep the cursors in memory only.

const PREFIX = 'rtportal.cursor.v1.';

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
    const value = raw === null ? NaN : Number(raw);
    return Number.isSafeInteger(value) && value >= 0 ? value : null;
  }

  /** Move the cursor of `ref` forward to `seq` (never backwards). */
  advance(ref, seq) {
    if (!Number.isSafeInteger(seq) || seq < 0) return;
    const current = this.get(ref);
    if (current !== null && current >= seq) return;
    this.set(ref, seq);
  }

  /** Set the cursor exactly (a resync after `cursor_ahead` moves it back). */
  set(ref, seq) {
    // A bad value would make every later subscribe a bad_request: refuse it.
    if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError(`bad cursor ${seq}`);
    this.memory.set(ref, seq);
    if (this.store) {
      try {
        this.store.setItem(this.scope + ref, String(seq));
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
