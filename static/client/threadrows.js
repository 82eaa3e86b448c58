// The rows of a thread view (client/threads.js): a thread list row (title
// from its verified opener, "To:" for staff, time, unread, typing), an item
// row (sender, time, edited and internal markers, the verified body or a
// tombstone, tags, my actions) and a claim row (another event under an
// item's id: a warning in its place). Pure drawing from the view's state.

import { el } from '../shared/dom.js';
import { actorLabel, formatTime } from '../shared/format.js';
import { THREADS, editedAt, typingText, unreadText } from '../shared/strings_threads.js';
import { eventKey, msgIdOfItem } from '../shared/threadmodel.js';
import { flaggedBody, messageBody, notAsClaimed } from './cryptoview.js';
import { itemActions } from './threadcompose.js';

const TITLE_CHARS = 80;

/** The first line of a body (files alone: the first file's name), cut for a list row. */
function titleOf(body) {
  const first = Array.isArray(body.attachments) && body.attachments.length ? body.attachments[0].name : '';
  const text = (body.subject || body.text || first || '').trim().split('\n')[0];
  return text.length > TITLE_CHARS ? `${text.slice(0, TITLE_CHARS)}…` : text;
}

export function listRow(view, t) {
  const li = el('li', t.kind === 'internal' ? 'thread-row internal' : 'thread-row');
  li.dataset.thread = t.thread;
  li.dataset.kind = t.kind;
  li.dataset.unread = String(t.unread);
  if (t.thread === view.open) li.setAttribute('aria-current', 'true');
  const open = el('button', 'thread-open');
  open.type = 'button';
  open.addEventListener('click', () => view.openThread(t.thread));
  const title = el('span', 'thread-title', view.titles.get(t.thread) || THREADS.untitled);
  open.append(title);
  // staff: whose thread it is (two applicants' welcome threads share one title)
  const to = view.tools ? view.tools.recipientsLine(view, t) : null;
  if (to) open.append(el('span', 'thread-to', to));
  if (t.kind === 'internal') open.append(el('span', 'badge internal-badge', THREADS.internalThread));
  const meta = el('span', 'thread-meta');
  if (t.lastAt) {
    const time = el('time', 'thread-time', formatTime(new Date(t.lastAt).toISOString()));
    time.dateTime = new Date(t.lastAt).toISOString();
    meta.append(time);
  }
  if (t.unread > 0) {
    const badge = el('span', 'unread-count', String(t.unread));
    badge.setAttribute('aria-label', unreadText(t.unread));
    meta.append(badge);
  }
  if (t.typing) meta.append(el('span', 'thread-typing', typingText(view.model.typing(t.thread).map((x) => x.name))));
  open.append(meta);
  li.append(open);
  learnTitle(view, t);
  return li;
}

const DELETED = Symbol('deleted'); // what a deleted opener's title was asked of (no event)

/**
 * Title a thread's row with the subject or first line of its opener's shown version,
 * opened (memoized) and checked as its body is (notAsClaimed): asked again when that
 * version changes (an edit, a delete: the deleted words go) or the keys do (keysReady).
 * Until the new outcome the title stays as it was, for REOPEN_WAIT_MS at most after a
 * key change (staleTitles); an opener that does not verify leaves the generic title.
 */
function learnTitle(view, t) {
  const thread = t.thread;
  const opener = t.opener ? view.model.item(t.opener) : null;
  if (!opener || opener.thread !== thread) return; // not loaded (a row of the server's list): asked once it is
  const shown = opener.shown;
  const keyring = shown && shown.blob ? view.readKeyring : null;
  const asked = shown ? eventKey(shown) : DELETED;
  const had = view.titleAsked.get(thread);
  if (had && had.asked === asked && had.keyring === keyring) return;
  const ask = { asked, keyring };
  view.titleAsked.set(thread, ask);
  if (!keyring) {
    // a letter in the payload (a firm without end-to-end encryption), a deleted opener, or no keys here
    const p = (shown && !shown.blob && shown.payload) || {};
    settleTitle(view, thread, typeof p.subject === 'string' || typeof p.text === 'string' ? titleOf(p) : '');
    return;
  }
  keyring.open(view.ref, thread, shown.blob, { seq: shown.seq ?? shown.cursor }).then(
    (r) => {
      if (view.titleAsked.get(thread) !== ask) return; // asked again since (new keys, an edit): that outcome decides
      settleTitle(view, thread, r.ok && !notAsClaimed(shown, r, expectOf(opener)) ? titleOf(r.body) : '');
    },
    () => {
      // not read (the network): asked again at the next draw, the title as it was meanwhile
      if (view.titleAsked.get(thread) === ask) view.titleAsked.delete(thread);
    },
  );
}

function settleTitle(view, thread, title) {
  view.staleTitles.delete(thread);
  const shown = title || THREADS.untitled;
  if (view.titles.get(thread) === shown) return;
  view.titles.set(thread, shown);
  view.schedule(true);
}

/**
 * The keys changed (ThreadsView.keysReady): every title opened with keys is asked
 * again at the next draw; one whose new outcome is not known after `waitMs` (an open
 * that does not end, an opener not loaded) gives way to the generic title until it is.
 */
export function titlesStale(view, waitMs) {
  // a letter's title needs no keys; any other (one whose last open failed too) was verified with keys
  const keyed = (thread) => !view.titleAsked.has(thread) || view.titleAsked.get(thread).keyring !== null;
  const stale = new Set([...view.titles.keys()].filter(keyed));
  view.staleTitles = stale;
  setTimeout(() => {
    if (view.staleTitles !== stale) return; // the keys changed again: its own wait
    let changed = false;
    for (const thread of stale) {
      if (view.titles.get(thread) === THREADS.untitled) continue;
      view.titles.set(thread, THREADS.untitled);
      changed = true;
    }
    if (changed) view.schedule(true);
  }, waitMs);
}

/** What a thread item's envelope must be (docs/threads.md "Ids"): its sender's, its msg id, an edit's parent. */
function expectOf(item) {
  const msgId = msgIdOfItem(item.id);
  if (!msgId) return null;
  return item.edited ? { sender: item.sender, parent: msgId } : { sender: item.sender, msgId };
}

export function itemRow(view, item, onSettled = null) {
  const li = el('li', item.internal ? 'item internal' : 'item');
  li.id = `item-${view.ref}-${item.key}`;
  li.dataset.item = item.id;
  if (item.seq !== null) li.dataset.seq = String(item.seq); // a contact never sees a seq
  else li.dataset.cursor = String(item.key);
  li.dataset.kind = item.kind;
  li.dataset.internal = item.internal ? '1' : '0';
  li.dataset.deleted = item.deleted ? '1' : '0';
  li.dataset.edited = item.edited ? '1' : '0';
  const head = el('p', 'item-head');
  head.append(el('span', 'actor', actorLabel(item.actor)));
  if (item.internal) head.append(el('span', 'badge internal-badge', THREADS.internalNote));
  const time = el('time', 'time', formatTime(item.createdAt));
  time.dateTime = String(item.createdAt);
  head.append(time);
  if (item.edited) {
    const marker = el('span', 'edited-marker', THREADS.edited);
    marker.title = editedAt(formatTime(item.editedAt));
    head.append(marker);
  }
  li.append(head);
  if (item.deleted) {
    li.append(el('p', 'tombstone', THREADS.deleted));
    return li;
  }
  li.append(itemBody(view, item, onSettled));
  if (item.flaggedEdits.length) {
    const flag = el('p', 'edit-flagged', THREADS.editFlagged);
    flag.setAttribute('role', 'alert');
    li.append(flag);
  }
  // the welcome is the server's record of the invite, not an item the tag routes can name
  if (view.tools && item.kind !== 'welcome') li.append(view.tools.itemTags(view, item));
  // the welcome item is the server's record of the invite: not edited or deleted from here
  if (item.mine && view.keyring && item.kind !== 'welcome') li.append(itemActions(view, item));
  return li;
}

/**
 * Another event the server sent under this item's id (threadmodel.js
 * "claims"): a replay or a copy moved to another thread. Never opened or
 * shown: a warning in its place, under the item it copies.
 */
export function claimRow(view, item, claim) {
  const li = el('li', 'item claim');
  li.id = `item-${view.ref}-${claim.key}`;
  li.dataset.item = item.id;
  li.append(flaggedBody(claim.code, claim.code === 'crypto_replay' ? THREADS.replayed : THREADS.moved));
  return li;
}

/** The verified body of the item's shown version (an edit must be its sender's, naming the item). */
function itemBody(view, item, onSettled) {
  const shown = item.shown;
  if (!shown.blob) {
    // a welcome of a firm without end-to-end encryption: a letter in the payload
    const p = shown.payload || {};
    const box = el('div', 'message-body plain');
    if (typeof p.subject === 'string') box.append(el('p', 'message-subject', p.subject));
    if (typeof p.text === 'string') box.append(el('p', 'message-text', p.text));
    return box;
  }
  const opts = { expect: expectOf(item), files: (item.event.payload || {}).files ?? null, onSettled };
  if (item.mine) opts.onOpened = (body) => (view.bodies || (view.bodies = new Map())).set(item.id, body);
  return messageBody(shown, view.ref, view.readKeyring, view.names, opts);
}
