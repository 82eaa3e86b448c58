// The rows of a thread view (client/threads.js): a thread list row (title
// from its verified opener, "To:" for staff, time, unread, typing), an item
// row (sender, time, edited and internal markers, the verified body or a
// tombstone, tags, my actions) and a claim row (another event under an
// item's id: a warning in its place). Pure drawing from the view's state.

import { el } from '../shared/dom.js';
import { actorLabel, formatTime } from '../shared/format.js';
import { THREADS, editedAt, typingText, unreadText } from '../shared/strings_threads.js';
import { msgIdOfItem } from '../shared/threadmodel.js';
import { flaggedBody, messageBody } from './cryptoview.js';
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
  learnTitle(view, t.thread);
  return li;
}

/**
 * Open the thread's opener once (memoized) to title its row with the subject or first
 * line; again after a key change (`view.staleTitles`), the old title staying until the
 * new outcome replaces it (an opener that no longer verifies leaves the thread untitled).
 */
function learnTitle(view, thread) {
  const keyring = view.readKeyring;
  if (!keyring) return;
  const stale = view.staleTitles.delete(thread);
  if (view.titles.has(thread) && !stale) return;
  const data = view.model.thread(thread);
  const shown = data && data.opener && data.opener.shown;
  if (!shown) return;
  if (!shown.blob) {
    const p = shown.payload || {};
    if (typeof p.subject === 'string' || typeof p.text === 'string') view.titles.set(thread, titleOf(p));
    return;
  }
  if (!stale) view.titles.set(thread, THREADS.untitled); // asked once
  keyring
    .open(view.ref, thread, shown.blob, { seq: shown.seq ?? shown.cursor })
    .then((r) => {
      if (view.readKeyring !== keyring) return; // the keys changed again: that open decides
      const title = (r.ok && titleOf(r.body)) || THREADS.untitled;
      if (view.titles.get(thread) !== title) {
        view.titles.set(thread, title);
        view.schedule(true);
      }
    })
    .catch(() => {
      if (stale) view.staleTitles.add(thread); // not read (the network): asked again at the next draw
    });
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
  const msgId = msgIdOfItem(item.id);
  let expect = null;
  if (msgId && item.edited) expect = { sender: item.sender, parent: msgId };
  else if (msgId) expect = { sender: item.sender, msgId };
  const opts = { expect, files: (item.event.payload || {}).files ?? null, onSettled };
  if (item.mine) opts.onOpened = (body) => (view.bodies || (view.bodies = new Map())).set(item.id, body);
  return messageBody(shown, view.ref, view.readKeyring, view.names, opts);
}
