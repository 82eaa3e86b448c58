// A matter's conversation as threads (docs/threads.md), for clients and
// staff: the thread list (unread counts, last activity, typing), one thread
// with its replies (edited and deleted markers, "Seen by", typing), jump to
// the first unread, and the composer (reply; a new thread). Every item's
// body goes through cryptoview.messageBody: verified content or a warning.
// The folding is threadmodel.js's; this module only draws it. Events that
// are not items (phase, keys, access, bot) stay in the flat list of
// MatterView, under "Updates". Staff extras (recipients, tags, filters)
// come in as `threadTools` from static/staff/threadtools.js.
//
// Stable hooks for tests (ref = the matter reference, T = thread id):
//   #threads-<ref>              the threads area; data-open = the open thread ('' none)
//   #thread-list-<ref>          <ul> of li.thread-row[data-thread][data-kind][data-unread]
//     .thread-open (button) .thread-title .thread-to (staff) .thread-time .unread-count .thread-typing .internal-badge
//   #new-thread-<ref>           button: start a new thread
//   #write-state-<ref>          why this device cannot write yet (hidden when it can)
//   #thread-<ref>               the open thread, data-thread=T, data-kind=client|internal,
//                               data-loaded=1 once its first page of items arrived
//     .thread-back (.unread-count: unread items of the other threads)  #jump-unread-<ref>  #thread-earlier-<ref> (older items of the thread)  .thread-to
//     li.divider                where the unread began when the thread was opened
//     ol.thread-items > li.item[data-item][data-seq][data-kind][data-internal][data-deleted][data-edited]
//       .item-head .internal-badge .edited-marker .edit-flagged .tombstone .message-body
//       .item-tags  .item-actions button.item-edit button.item-delete  .seen-by
//     li.item.claim#item-<ref>-<key>  another event under an item's id (replay, move): a warning
//     #typing-<ref>             who is typing (role=status)
//   form#thread-composer-<ref>  data-mode = reply | new | edit; data-internal = 0|1
//     .attach-picker, ul.message-attachments: client/attachui.js (its own hooks)
//     #thread-subject-<ref> (new)  #thread-text-<ref>  #thread-note-<ref> (staff, in a client thread)
//     button[type=submit]  .form-status

import { el } from '../shared/dom.js';
import { button } from '../shared/forms.js';
import { ApiError } from '../shared/http.js';
import { THREADS, seenByText, typingText } from '../shared/strings_threads.js';
import { firstUnread, listThreads, markRead, readFrame, rowsOf, threadItems, threadReceipts } from '../shared/threadapi.js';
import { ITEM_KINDS, ThreadModel, eventKey } from '../shared/threadmodel.js';
import { MatterView } from './render.js';
import { cannotWrite, threadComposer } from './threadcompose.js';
import { focusInside } from './keepfocus.js';
import { claimRow, itemRow, listRow, titlesStale } from './threadrows.js';

const THREAD_KINDS = new Set([...ITEM_KINDS, 'edit', 'delete', 'tag']);
const PAGE = 50; // items per page of one thread
// how long a body (or title) verified under earlier keys stays while it is opened again (reopen)
const REOPEN_WAIT_MS = 3000;
// the thread list stays beside the open thread (app.css: the same breakpoint)
const SIDE_BY_SIDE = window.matchMedia('(min-width: 60rem)');

/** A message from before threads (no thread in its payload): it stays in the flat list. */
const isLegacy = (event) => ITEM_KINDS.has(event.kind) && typeof (event.payload || {}).thread !== 'string';

/** A keyring whose `open` is done once per event (the list's titles and the thread share it). */
function memoKeyring(keyring) {
  if (!keyring) return null;
  const opened = new Map();
  const open = (ref, thread, blob, opts = {}) => {
    const key = `${thread}\u0000${opts.seq}\u0000${blob}`;
    if (!opened.has(key)) {
      const p = keyring.open(ref, thread, blob, opts);
      p.catch(() => opened.delete(key)); // a network failure is tried again next time
      opened.set(key, p);
    }
    return opened.get(key);
  };
  return new Proxy(keyring, {
    get(target, prop) {
      if (prop === 'open') return open;
      const value = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export class ThreadsView extends MatterView {
  /**
   * As MatterView, plus: `me` (my rtp1 id), `threadTools` (staff extras),
   * `sendFrame(frame)` set by the Feed (false when the socket is down).
   */
  constructor(matter, opts = {}) {
    super(matter, opts);
    this.me = opts.me;
    this.tools = opts.threadTools || null;
    this.model = new ThreadModel({ me: opts.me, staff: Boolean(opts.staff) });
    this.sendFrame = () => false;
    this.readKeyring = memoKeyring(this.keyring);
    this.open = null; // the thread on screen
    this.wanted = typeof opts.openThread === 'string' ? opts.openThread : null; // opens first (a link named it)
    this.mode = 'reply'; // composer: reply | new | edit
    this.editing = null; // the item being edited
    this.titles = new Map(); // thread -> title from its verified opener
    this.titleAsked = new Map(); // thread -> {asked: the opener's shown event key, keyring} its title is the outcome of
    this.staleTitles = new Set(); // threads whose title awaits its outcome under new keys (keysReady)
    this.rows = new Map(); // item id -> {key, li} of the open thread
    this.sentMark = new Map(); // thread -> the newest seq a read mark was sent for
    this.pages = new Map(); // thread -> {before, more, asked}: its own history pages
    this.lastTyping = new Map(); // thread -> when my last typing frame there went
    this.drawn = -1;
    this.timer = null;
    this.threaded = false; // the flat stream until the server's hello says threads
    this.build();
    // a thread open in a tab in the background is read when the tab comes back
    document.addEventListener('visibilitychange', () => {
      if (this.threaded && this.open && this.section.isConnected) this.markRead(this.open);
    });
  }

  build() {
    const ref = this.ref;
    this.area = el('div', 'threads');
    this.area.id = `threads-${ref}`;
    this.area.dataset.open = '';
    const listPane = el('div', 'thread-list-pane');
    const bar = el('div', 'thread-list-bar');
    this.newButton = el('button', 'button', THREADS.newThread);
    this.newButton.type = 'button';
    this.newButton.id = `new-thread-${ref}`;
    this.newButton.addEventListener('click', () => this.startNew());
    // why this device cannot write yet (keys not ready, waiting for approval):
    // said above the list, so a phone showing the list says it too
    this.writeState = el('p', 'key-notice write-state');
    this.writeState.id = `write-state-${ref}`;
    this.writeState.hidden = true;
    bar.append(this.newButton, this.writeState);
    this.listBar = bar;
    this.listEl = el('ul', 'thread-list');
    this.listEl.id = `thread-list-${ref}`;
    this.listEl.setAttribute('aria-label', THREADS.listLabel);
    this.listEmpty = el('p', 'empty', THREADS.empty);
    listPane.append(bar, this.listEl, this.listEmpty);

    this.pane = el('section', 'thread-pane');
    this.pane.id = `thread-${ref}`;
    this.pane.hidden = true;
    this.area.append(listPane, this.pane);

    // The flat list keeps what is not a thread item, under its own heading.
    this.updatesTitle = el('h3', 'updates-title', THREADS.updates);
    this.area.hidden = true;
    this.updatesTitle.hidden = true;
    this.log.before(this.area);
    this.log.before(this.updatesTitle);
  }

  /**
   * The server's hello says which protocol it speaks: from version 2 (threads,
   * docs/threads.md) the items leave the flat list for the threads; a server
   * of version 1 keeps the flat stream and is asked nothing it cannot answer.
   */
  serverVersion(v) {
    if (this.threaded || !(Number.isSafeInteger(v) && v >= 2)) return;
    this.threaded = true;
    for (const [seq, li] of [...this.items]) {
      if (!THREAD_KINDS.has(li.dataset.kind)) continue;
      const event = this.model.seen.get(seq);
      if (event && !isLegacy(event)) {
        li.remove();
        this.items.delete(seq);
      }
    }
    if (this.tools) this.listBar.append(this.tools.listFilter(this)); // reads the firm's tags: v2 only
    this.area.hidden = false;
    this.updatesTitle.hidden = false;
    this.reply.remove(); // items are written from the thread composer
    this.loadSummaries();
    this.schedule(true);
  }

  /** The server's thread rows (unread counts for threads whose items are not loaded); none before it serves them. */
  async loadSummaries() {
    try {
      const answer = await listThreads(this.ref, { limit: 100 });
      if (this.model.setSummaries(rowsOf(answer, 'threads'))) this.schedule();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.onSignedOut();
      // otherwise the events alone draw the threads
    }
  }

  // -- MatterView's interface (the Feed drives it) -----------------------

  add(event) {
    if (!THREAD_KINDS.has(event.kind) || isLegacy(event)) return super.add(event);
    const changed = this.model.apply(event);
    if (!this.threaded) return super.add(event);
    if (changed) this.schedule();
    return changed;
  }

  /** A page of history in log order; `older`: before everything shown (a contact's tokens place by it). */
  addPage(events, older = false) {
    const threaded = events.filter((e) => THREAD_KINDS.has(e.kind) && !isLegacy(e));
    if (this.model.applyPage(threaded, { older })) this.schedule();
    for (const event of events) if (!threaded.includes(event) || !this.threaded) super.add(event);
  }

  /** A `receipt`, `typing` or `unread` frame of this matter. */
  liveFrame(frame) {
    if (this.model.applyFrame(frame)) this.schedule();
  }

  keysReady() {
    super.keysReady();
    this.readKeyring = memoKeyring(this.keyring);
    // Every body is opened again with the keys as read now (a revocation learned
    // since can flag a message shown as genuine): a body that said "no keys" at
    // once, one with an outcome off screen, in place once its new one is known
    // (drawThread), so a key change does not flash every message to "Decrypting".
    for (const row of this.rows.values()) row.stale = true;
    titlesStale(this, REOPEN_WAIT_MS); // titles too, each kept until its new outcome (or the wait's end)
    this.schedule(true);
  }

  setBusy(busy) {
    super.setBusy(busy);
    if (!busy) this.schedule();
  }

  clear() {
    super.clear();
    // who is typing is not in the events: it survives starting the events over
    const typers = this.model.typers;
    this.model = new ThreadModel({ me: this.me, staff: this.staff });
    this.model.typers = typers;
    this.rows.clear();
    this.pages.clear();
    this.schedule(true);
  }

  revealLatest() {
    if (this.open) this.pane.scrollIntoView({ block: 'start' });
  }

  // -- drawing -------------------------------------------------------------

  schedule(force = false) {
    if (force) this.drawn = -1;
    if (this.pending || this.busy || !this.threaded) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    if (this.drawn === this.model.version && !this.typingDue) return;
    this.drawn = this.model.version;
    this.typingDue = false;
    this.drawList();
    const blocked = cannotWrite(this);
    this.writeState.hidden = !blocked;
    this.writeState.textContent = blocked || '';
    if (this.open) this.drawThread();
    else if (this.mode === 'new') this.drawComposer(null); // keys that arrived since replace the notice
    else this.openFirst();
    this.empty.hidden = true;
    clearTimeout(this.timer);
    const next = this.model.nextTypingExpiry();
    if (next !== null) {
      this.timer = setTimeout(() => {
        this.typingDue = true;
        this.draw();
      }, next + 10);
    }
  }

  drawList() {
    const filter = this.tools ? this.tools.threadFilter(this) : null;
    const rows = this.model.threads().filter((t) => !filter || filter(t));
    const items = rows.map((t) => listRow(this, t));
    // a live event redraws the list: the row a keyboard user is on keeps the focus
    const focused = this.listEl.contains(document.activeElement) ? document.activeElement.closest('.thread-row') : null;
    this.listEl.replaceChildren(...items);
    if (focused) {
      const again = items.find((li) => li.dataset.thread === focused.dataset.thread);
      if (again) again.querySelector('.thread-open').focus();
    }
    this.listEmpty.hidden = items.length > 0;
  }

  /**
   * The conversation a reader came for, once: the thread at the top of the
   * list (newest activity) opens by itself when the matter first shows
   * threads — when the list stays beside it (a wide screen, see app.css), or
   * when it is the only thread (a client with one conversation reads it at
   * once, as in a chat). On a phone with several threads the list comes
   * first. Going back to the list, or starting a new thread, keeps it closed.
   * A thread the view was made for (`opts.openThread`: a link named it, as the
   * staff review inbox's do) opens instead, on any screen.
   */
  openFirst() {
    if (this.wanted) {
      const thread = this.wanted;
      this.wanted = null;
      this.openThread(thread, { scroll: false });
      return;
    }
    if (this.autoOpened || this.mode === 'new') return;
    const rows = this.listEl.querySelectorAll('li.thread-row');
    if (!rows.length || (rows.length > 1 && !SIDE_BY_SIDE.matches)) return;
    const first = rows[0];
    this.autoOpened = true;
    this.openThread(first.dataset.thread, { scroll: false });
  }

  openThread(thread, { scroll = true } = {}) {
    this.autoOpened = true;
    this.open = thread;
    // where the unread began: known once the thread's first page came (loadThreadPage)
    this.jumpTarget = this.pages.get(thread)?.loaded ? this.model.firstUnread(thread) : null;
    this.jumpOnLoad = scroll;
    this.mode = 'reply';
    this.editing = null;
    this.rows.clear();
    this.area.dataset.open = thread;
    this.pane.hidden = false;
    this.pane.replaceChildren();
    this.composerForm = null;
    this.loadThreadPage(thread, true); // first: no read mark goes before its answer (markRead)
    this.drawThread();
    this.drawList();
    this.loadReceipts(thread);
    if (!scroll) return;
    if (this.jumpTarget) this.jumpToUnread();
    else this.pane.scrollIntoView({ block: 'start' });
  }

  closeThread() {
    this.open = null;
    this.area.dataset.open = '';
    this.pane.hidden = true;
    this.pane.replaceChildren();
    this.composerForm = null;
    this.drawList();
    const row = this.listEl.querySelector('.thread-open');
    if (row) row.focus();
  }

  /**
   * A page of the thread's own events (GET …/items): on open its newest
   * page, with where my unread begins (GET …/first-unread: the divider and
   * the jump); then older ones. Events fold as any other.
   */
  async loadThreadPage(thread, first) {
    const state = this.pages.get(thread) || { before: null, more: false, asked: false, loaded: false };
    if (first && state.asked) return;
    state.asked = true;
    this.pages.set(thread, state);
    let mark = null;
    try {
      const query = first ? { limit: PAGE } : { before: state.before, limit: PAGE };
      // A fresh page knows no read mark: where the unread began is the server's
      // (asked before this view moves the mark: markRead waits for `loaded`).
      const unread = first ? firstUnread(this.ref, thread).catch(() => null) : null;
      const answer = await threadItems(this.ref, thread, query);
      this.addPage(rowsOf(answer, 'events'), !first);
      state.before = answer.prev ?? null;
      state.more = Boolean(answer.more && state.before);
      mark = await unread;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.onSignedOut();
      state.more = false;
    }
    if (first) state.loaded = true; // the pane says so (data-loaded) on its next draw
    if (first && this.open === thread) {
      const pos = mark && mark.first_unread != null ? this.model.pos(mark.first_unread) : null;
      const data = this.model.thread(thread);
      const target = pos === null || !data ? null : data.items.find((it) => it.pos >= pos && !it.mine);
      // without the server's answer, this page's own marks (none read here yet: all unread)
      this.jumpTarget = mark ? target?.id ?? null : this.model.firstUnread(thread);
    }
    this.schedule(true);
    if (first && this.jumpOnLoad && this.open === thread) queueMicrotask(() => this.jumpToUnread()); // after the draw
  }

  async loadReceipts(thread) {
    try {
      const answer = await threadReceipts(this.ref, thread);
      if (this.model.setReceipts(thread, rowsOf(answer, 'receipts'))) this.schedule();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.onSignedOut();
    }
  }

  /** The open thread: head, items (kept when unchanged), seen-by, typing, composer. */
  drawThread() {
    const data = this.model.thread(this.open);
    if (!data) return;
    const ref = this.ref;
    if (!this.pane.firstChild) {
      const back = button(THREADS.back, 'button quiet thread-back', 'button');
      back.addEventListener('click', () => this.closeThread());
      this.backButton = back;
      this.heading = el('h3', 'thread-heading');
      this.jump = el('button', 'button quiet jump-unread', THREADS.jumpUnread);
      this.jump.type = 'button';
      this.jump.id = `jump-unread-${ref}`;
      this.jump.addEventListener('click', () => this.jumpToUnread());
      this.toLine = el('p', 'thread-to');
      this.earlierItems = button(THREADS.earlier, 'button quiet thread-earlier', 'button');
      this.earlierItems.id = `thread-earlier-${ref}`;
      this.earlierItems.addEventListener('click', () => this.loadThreadPage(this.open, false));
      this.itemsEl = el('ol', 'thread-items');
      this.itemsEl.setAttribute('role', 'log');
      this.typingEl = el('p', 'typing');
      this.typingEl.id = `typing-${ref}`;
      this.typingEl.setAttribute('role', 'status');
      this.pane.append(back, this.heading, this.toLine, this.jump, this.earlierItems, this.itemsEl, this.typingEl);
    }
    this.pane.dataset.thread = data.thread;
    this.pane.dataset.kind = data.kind;
    this.drawBackCount(data.thread);
    const paging = this.pages.get(data.thread);
    this.pane.dataset.loaded = paging && paging.loaded ? '1' : '0';
    this.earlierItems.hidden = !(paging && paging.more);
    this.pane.classList.toggle('internal', data.kind === 'internal');
    this.heading.replaceChildren(el('span', null, this.titles.get(data.thread) || THREADS.untitled));
    if (data.kind === 'internal') this.heading.append(el('span', 'badge internal-badge', THREADS.internalThread));
    const to = this.tools && data.opener ? this.tools.recipientsLine(this, data) : null;
    this.toLine.hidden = !to;
    this.toLine.textContent = to || '';

    const keep = new Set();
    const nodes = data.items.flatMap((item) => {
      keep.add(item.id);
      const key = [item.shown ? eventKey(item.shown) : 'x', item.deleted, item.flaggedEdits.join(','), item.tags.join(',')].join('|');
      let row = this.rows.get(item.id);
      if (row && row.key === key && row.stale) row = this.reopen(item, row);
      if (!row || row.key !== key) {
        row = { key, li: itemRow(this, item) };
        this.rows.set(item.id, row);
      }
      row.li.classList.toggle('unread', item.unread); // read marks restyle a row, never reopen its body
      return [row.li, ...item.claims.map((claim) => claimRow(this, item, claim))];
    });
    for (const id of this.rows.keys()) if (!keep.has(id)) this.rows.delete(id);
    for (const li of nodes) li.querySelector('.seen-by')?.remove();
    // where the unread began when the thread was opened: a divider, and the jump's target
    const target = this.jumpTarget && this.rows.get(this.jumpTarget);
    this.jump.hidden = !target;
    if (target) {
      const divider = el('li', 'divider', THREADS.newMessages);
      divider.setAttribute('role', 'separator');
      nodes.splice(nodes.indexOf(target.li), 0, divider);
    }
    for (const [id, names] of data.seenBy) {
      const row = this.rows.get(id);
      if (row) row.li.append(el('p', 'seen-by', seenByText(names)));
    }
    const focus = focusInside(this.itemsEl);
    this.itemsEl.replaceChildren(...nodes);
    focus();
    const typing = data.typing.map((t) => t.name);
    this.typingEl.textContent = typing.length ? typingText(typing) : '';
    this.drawComposer(data);
    this.markRead(data.thread);
  }

  /**
   * A row whose body was opened with earlier keys (keysReady): null to draw it
   * anew now (its body had no outcome yet), or the row kept on screen while a
   * copy opens with the new keys off screen and takes its place once settled,
   * or after REOPEN_WAIT_MS still opening.
   */
  reopen(item, row) {
    row.stale = false;
    const code = row.li.querySelector(':scope > .message-body')?.dataset.crypto;
    if (code === undefined) return row; // no envelope (a tombstone, a letter): nothing to open
    if (code === 'pending' || code === 'no_keys') return null;
    const turn = (row.turn = (row.turn || 0) + 1);
    row.li.setAttribute('aria-busy', 'true'); // its outcome is being checked again
    const swap = () => {
      if (this.rows.get(item.id) !== row || row.turn !== turn) return; // drawn anew, reopened since, or swapped
      row.turn += 1; // once: the outcome, or the wait running out, whichever comes first
      const old = row.li;
      // what drawThread put on the row goes on to its copy (a draw now would be a
      // no-op: the model did not change): the unread mark, "seen by", the keyboard focus
      fresh.classList.toggle('unread', old.classList.contains('unread'));
      const seen = old.querySelector(':scope > .seen-by');
      if (seen) fresh.append(seen);
      if (old.hasAttribute('tabindex')) fresh.tabIndex = old.tabIndex;
      const focus = focusInside(this.itemsEl); // on the row, or a button of it
      old.replaceWith(fresh);
      row.li = fresh;
      focus();
    };
    const fresh = itemRow(this, item, swap);
    // content verified under the earlier keys stays only so long: a new check that
    // does not end (a key directory read that never answers) shows "Decrypting"
    setTimeout(swap, REOPEN_WAIT_MS);
    return row;
  }

  /** On a phone the open thread hides the list: its back button counts the other threads' unread items. */
  drawBackCount(thread) {
    const others = this.model.matterUnread() - this.model.unread(thread);
    this.backButton.querySelector('.unread-count')?.remove();
    if (others > 0) this.backButton.append(el('span', 'unread-count', String(others)));
  }

  jumpToUnread() {
    const row = this.jumpTarget && this.rows.get(this.jumpTarget);
    if (!row) return;
    row.li.scrollIntoView({ block: 'start' });
    row.li.tabIndex = -1;
    row.li.focus({ preventScroll: true });
  }

  /** Tell the server (socket, else HTTP) how far I read the open thread, once per newer item. */
  markRead(thread) {
    if (document.visibilityState === 'hidden' || this.model.unread(thread) === 0) return;
    if (this.pages.get(thread)?.loaded === false) return; // its first page tells where the unread began first
    const at = this.model.readUpto(thread);
    if (!at || (this.sentMark.get(thread) ?? -Infinity) >= at.pos) return;
    this.sentMark.set(thread, at.pos);
    queueMicrotask(() => {
      this.model.setReadMark(thread, at.upto);
      this.schedule();
    });
    if (this.sendFrame(readFrame(this.ref, thread, at.upto))) return;
    markRead(this.ref, thread, at.upto)
      .then((answer) => {
        if (answer && Number.isSafeInteger(answer.unread) && this.model.setServerUnread(thread, answer.unread)) this.schedule();
      })
      .catch((err) => {
        if (err instanceof ApiError && err.status === 401) this.onSignedOut();
      });
  }

  // -- composer --------------------------------------------------------------

  startNew() {
    this.autoOpened = true;
    this.open = null;
    this.mode = 'new';
    this.editing = null;
    this.area.dataset.open = '';
    this.pane.hidden = false;
    this.pane.replaceChildren();
    this.pane.dataset.thread = '';
    this.pane.dataset.kind = 'new';
    this.pane.classList.remove('internal');
    const back = button(THREADS.back, 'button quiet thread-back', 'button');
    back.addEventListener('click', () => this.closeThread());
    this.pane.append(back, el('h3', 'thread-heading', THREADS.newThreadTitle));
    this.composerForm = null;
    this.drawComposer(null);
    this.drawList();
    this.composerForm.querySelector('input, textarea')?.focus(); // none while the keys are not ready
  }

  /** The composer of the open thread in `mode` (reply, or edit of `item`). */
  setMode(mode, item = null) {
    this.mode = mode;
    this.editing = item;
    this.drawComposer(this.model.thread(this.open));
  }

  drawComposer(data) {
    const blocked = cannotWrite(this);
    const mode = this.mode;
    const want = `${mode}|${this.open}|${this.editing ? this.editing.id : ''}|${blocked}`;
    if (this.composerForm && this.composerForm.dataset.want === want) {
      // stays last and keeps what is typed; moved only if it is not last, since
      // moving a node blurs it: a redraw while someone types (a receipt, a
      // read mark) would send their next keys nowhere
      if (this.pane.lastChild !== this.composerForm) this.pane.append(this.composerForm);
      return;
    }
    // a composer drawn again (keys arrived, approval came) keeps the focus it had
    const focused = this.composerForm && this.composerForm.contains(document.activeElement) ? document.activeElement.id : null;
    if (this.composerForm) this.composerForm.remove();
    if (blocked) {
      this.composerForm = el('p', 'key-notice', blocked);
      this.composerForm.dataset.want = want;
      this.pane.append(this.composerForm);
      return;
    }
    this.composerForm = threadComposer(this, data, mode);
    this.composerForm.dataset.want = want;
    this.pane.append(this.composerForm);
    if (focused) this.composerForm.querySelector(`[id="${focused}"]`)?.focus({ preventScroll: true });
  }

}
