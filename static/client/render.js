// DOM for one matter's conversation stream.
//
// Rule: text that comes from the server (titles, names, kinds, payload
// values) is only ever put in the page with textContent — never innerHTML —
// so a payload like "<img onerror=...>" is shown as text, not run.
//
// A MatterView keeps its events in log order and renders each event at most
// once: the same event can arrive from a history page, a websocket backlog
// after a reconnect and a POST response, and must appear once. An event is
// named by its seq (staff) or its cursor token (clients never see a seq,
// protocol v2: the same token for the same event every time); log order is
// the seq for staff and the server's commit time (`created_at`) for clients.

import { el } from '../shared/dom.js';
import { eventKey } from '../shared/threadmodel.js';
import { actorLabel, formatTime, payloadRows } from '../shared/format.js';
import { CRYPTO, TEXT, conversationLabel, eventLabel } from '../shared/strings.js';
import { documentEvent, stepReached } from '../shared/strings_docs.js';
import { composer, keyNotices, messageBody } from './cryptoview.js';

export { eventKey }; // what names an event (the thread model's rule, one place)

/** Is `a` before `b` in the log (seqs compare as numbers, times as ISO text)? */
function before(a, b) {
  return typeof a === 'number' && typeof b === 'number' ? a < b : String(a) < String(b);
}

function eventElement(event, ref, view) {
  const internal = event.audience === 'staff';
  const item = el('li', internal ? 'event internal' : 'event');
  item.id = `ev-${ref}-${eventKey(event)}`;
  if (Number.isSafeInteger(event.seq)) item.dataset.seq = String(event.seq);
  else item.dataset.cursor = String(event.cursor);
  item.dataset.kind = String(event.kind);
  item.dataset.audience = String(event.audience);

  const head = el('p', 'event-head');
  head.append(el('span', 'kind', event.kind));
  if (internal) {
    // Visible text, not only colour: the marking must survive screen
    // readers, high-contrast modes and a glance on a small screen.
    head.append(el('span', 'badge internal-badge', TEXT.internal));
  }
  head.append(el('span', 'actor', actorLabel(event.actor)));
  const time = el('time', 'time', formatTime(event.created_at));
  time.dateTime = String(event.created_at);
  time.title = String(event.created_at);
  head.append(time);
  if (Number.isSafeInteger(event.seq)) {
    const seq = el('span', 'seq', `#${event.seq}`);
    seq.setAttribute('aria-label', eventLabel(event.seq));
    head.append(seq);
  }
  item.append(head);

  const payload = event.payload || {};
  if (event.kind === 'document' || event.kind === 'document_shared') {
    // A sentence, not fields (item ids mean nothing to a reader). Its envelope
    // (descriptors, a reason) is bound to the item's thread, which only the
    // checklist names: the Documents section opens it, not the log.
    item.append(el('p', 'doc-event', documentEvent(event.kind === 'document_shared' ? 'shared' : payload.action)));
    return item;
  }
  if (event.blob) {
    // End-to-end ciphertext: the keyring verifies and decrypts it (or warns).
    item.append(messageBody(event, ref, view.keyring, view.names));
    return item;
  }

  if (event.kind === 'welcome' && typeof payload.text === 'string') {
    // The firm's welcome message reads as a letter, not as a list of fields.
    if (typeof payload.subject === 'string') item.append(el('p', 'welcome-subject', payload.subject));
    item.append(el('p', 'welcome-text', payload.text));
    return item;
  }
  if (event.kind === 'step') {
    // The client's timeline moved (client/timeline.js): a sentence, not fields.
    item.append(el('p', 'step-event', stepReached(payload)));
    if (typeof payload.description === 'string' && payload.description) item.append(el('p', null, payload.description));
    return item;
  }
  const rows = payloadRows(event.payload);
  if (rows.length) {
    const list = el('dl', 'payload');
    for (const [key, text, staffOnly] of rows) {
      const row = el('div', staffOnly ? 'payload-row internal' : 'payload-row');
      const term = el('dt', null, key);
      if (staffOnly) term.append(el('span', 'badge internal-badge', TEXT.internal));
      row.append(term, el('dd', null, text));
      list.append(row);
    }
    item.append(list);
  }
  return item;
}

export class MatterView {
  /**
   * `matter` is {ref, title}; `tools(ref)` (staff only, staff/phase.js)
   * returns an element added under the conversation.
   */
  constructor(matter, { onLoadEarlier, tools, keyring = null, staff = false, onSignedOut, onRekey = null } = {}) {
    this.ref = matter.ref;
    this.keyring = keyring; // null: no keys on this device (messages say so)
    this.staff = staff;
    this.onSignedOut = onSignedOut || (() => {});
    this.onRekey = onRekey; // staff: (users) => the next epoch without them (409 rekey_required)
    this.names = new Map(); // rtp1 id -> display name, from verified messages
    this.thread = null; // the thread of the newest message: replies go there
    this.items = new Map(); // event key (seq or token) -> <li>
    this.order = new Map(); // <li> -> its place in the log (seq, or created_at)
    this.newest = null; // the place of the newest event shown
    this.busy = false;

    const ref = matter.ref;
    this.section = el('section', 'matter');
    this.section.id = `matter-${ref}`;
    this.section.dataset.ref = ref;
    // 'reading' until the matter's keys were first read, 'syncing' while a key
    // change is read again (bodies are opened again after it), then 'ready'
    this.section.dataset.keys = 'reading';
    const title = el('h2', 'matter-title', matter.title || ref);
    title.id = `matter-${ref}-title`;
    title.append(el('span', 'ref', ref));
    this.section.setAttribute('aria-labelledby', title.id);

    this.state = el('p', 'matter-state');
    this.state.hidden = true;

    this.earlier = el('button', 'button quiet load-earlier', TEXT.showEarlier);
    this.earlier.type = 'button';
    this.earlier.hidden = true;
    if (onLoadEarlier) this.earlier.addEventListener('click', () => onLoadEarlier(ref));

    // role=log: assistive technology announces what is appended, politely.
    this.log = el('div', 'log');
    this.log.setAttribute('role', 'log');
    this.log.setAttribute('aria-label', conversationLabel(matter.title || ref));
    this.log.setAttribute('aria-busy', 'true');
    this.list = el('ol', 'events');
    this.empty = el('p', 'empty', TEXT.nothingYet);
    this.log.append(this.list);

    this.notices = keyNotices(null, ref, this.names);
    this.reply = el('div', 'reply');
    this.section.append(title, this.state, this.notices, this.earlier, this.log, this.empty, this.reply);
    if (tools) this.section.append(tools(ref));
  }

  /**
   * The matter's keys were read (keyring.syncMatter): show notices, and the
   * reply form when there is an epoch to write under (or why not).
   */
  keysReady() {
    const kr = this.keyring;
    // a caller's keysReady while a key change is still read again is not the end of it
    this.section.dataset.keys = this.keysSyncing ? 'syncing' : 'ready';
    const notices = keyNotices(kr, this.ref, this.names);
    this.notices.replaceWith(notices);
    this.notices = notices;
    if (!kr) return;
    if (!kr.certified()) {
      this.reply.replaceChildren(el('p', 'key-notice', this.staff ? CRYPTO.waitingApproval : CRYPTO.notReady));
      return;
    }
    if (!kr.canSeal(this.ref)) {
      this.reply.replaceChildren(el('p', 'key-notice', CRYPTO.notReady));
      return;
    }
    // a form being typed in stays (it seals under the newest epoch when sent)
    if (this.reply.querySelector('.composer')) return;
    this.reply.replaceChildren(
      composer(this.ref, {
        keyring: kr,
        staff: this.staff,
        thread: () => this.thread || 'general',
        onPosted: (event) => this.add(event),
        onSignedOut: this.onSignedOut,
        onRekey: this.onRekey,
      }),
    );
  }

  /** Render `event` in log order; false if this event is already shown. */
  add(event) {
    const key = eventKey(event);
    if (key === null || this.items.has(key)) return false;
    const place = typeof key === 'number' ? key : String(event.created_at);
    const item = eventElement(event, this.ref, this);
    const newest = this.newest === null || !before(place, this.newest);
    const thread = event.blob && event.payload && typeof event.payload.thread === 'string' ? event.payload.thread : null;
    if (thread && newest && event.audience !== 'staff') this.thread = thread;
    const follow = !this.busy && this.isLastVisible();
    if (newest) {
      this.list.append(item);
      this.newest = place;
    } else {
      // Older than the newest (history paged backwards): find its place.
      let after = this.list.lastElementChild;
      while (after && !(this.order.has(after) && !before(place, this.order.get(after)))) {
        after = after.previousElementSibling;
      }
      if (after) after.after(item);
      else this.list.prepend(item);
    }
    this.items.set(key, item);
    this.order.set(item, place);
    this.empty.hidden = true;
    if (event.kind === 'keys' && this.keyring) this.keysChanged(event.payload || {});
    if (follow && newest) item.scrollIntoView({ block: 'nearest' });
    return true;
  }

  /** A history page (in log order): each event at its place. */
  addPage(events) {
    for (const event of events) this.add(event);
  }

  /** A `keys` event: read the directory again (firm-wide changes: the firm's part too). */
  keysChanged(payload) {
    const firmWide = ['cert', 'revocations', 'escrow', 'root', 'pending'].includes(payload.what);
    this.keysDirty = this.keysDirty === 'firm' || firmWide ? 'firm' : 'matter';
    if (this.keysSyncing) return; // a page of history holds many: one read after the other
    this.keysSyncing = true;
    this.section.dataset.keys = 'syncing';
    queueMicrotask(() => this.resyncKeys());
  }

  async resyncKeys() {
    const kr = this.keyring;
    while (this.keysDirty) {
      const firm = this.keysDirty === 'firm';
      this.keysDirty = null;
      try {
        if (firm) await kr.syncFirm();
        await kr.syncMatter(this.ref);
      } catch (err) {
        kr.problems.push({ what: 'matter', scope: this.ref, code: err.code || 'network' });
      }
    }
    this.keysSyncing = false;
    this.keysReady();
  }

  /** Was the newest event on screen (so a new one should scroll into view)? */
  isLastVisible() {
    const last = this.list.lastElementChild;
    if (!last || document.visibilityState !== 'visible') return false;
    const rect = last.getBoundingClientRect();
    return rect.top < window.innerHeight && rect.bottom > 0;
  }

  /**
   * A "New" divider before the first event after the cursor `seen` (a seq,
   * or the token of the last event this tab received), if any.
   */
  markNewAfter(seen) {
    for (const old of this.list.querySelectorAll('.divider')) old.remove();
    if (seen === null) return;
    let first;
    if (typeof seen === 'number') {
      first = [...this.items.keys()].filter((s) => s > seen).sort((a, b) => a - b)[0];
    } else {
      // A token only names an event: the divider goes after that event.
      const last = this.items.get(seen);
      const next = last ? last.nextElementSibling : null;
      first = next ? [...this.items.keys()].find((k) => this.items.get(k) === next) : undefined;
    }
    if (first === undefined) return;
    const divider = el('li', 'divider', TEXT.newSinceLastVisit);
    divider.setAttribute('role', 'separator');
    this.items.get(first).before(divider);
  }

  clear() {
    this.list.replaceChildren();
    this.items.clear();
    this.order.clear();
    this.newest = null;
    this.empty.hidden = false;
  }

  setBusy(busy) {
    this.busy = busy; // no scrolling (nor layout reads) per event while a page loads
    this.log.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  /** Bring the "New" divider, else the newest event, on screen (a chat opens there). */
  revealLatest() {
    const target = this.list.querySelector('.divider') || this.list.lastElementChild;
    if (target) target.scrollIntoView({ block: target.classList.contains('divider') ? 'start' : 'end' });
  }

  setMoreEarlier(more) {
    this.earlier.hidden = !more;
  }

  /** A line under the title ("Updating…", "You no longer have access…"), or none. */
  setState(text) {
    this.state.textContent = text || '';
    this.state.hidden = !text;
  }
}
