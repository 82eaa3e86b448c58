// The encrypted conversation on screen: an event's envelope opened by the
// keyring and shown (textContent only), or a warning in its place when any
// check fails (never the content that failed); notices for changed keys and
// matters whose keys failed a check; and the reply form, which encrypts
// before anything is sent.

import { b64url } from '../crypto/bytes.js';
import { el } from '../shared/dom.js';
import { ApiError } from '../shared/http.js';
import { userId } from '../shared/keyids.js';
import { VIS } from '../shared/keyring.js';
import { CRYPTO, cryptoFailed, keyChanged, notPosted, signedBy } from '../shared/strings.js';
import { attachmentList } from './attachui.js';
import { envelopeMsgId, sealAndPost } from './itemsend.js';

const CANNOT_READ = new Set(['crypto_wrong_context']);

function actorId(actor) {
  try {
    return actor && actor.kind && Number.isSafeInteger(actor.id) ? userId(actor) : null;
  } catch {
    return null;
  }
}

/** What a check failure looks like: a warning, the stable code, nothing of the content. */
function warning(box, code, text) {
  box.className = 'message-body crypto-warning';
  box.dataset.crypto = code;
  box.setAttribute('role', 'alert');
  const title = el('p', 'crypto-warning-title', text || cryptoFailed(code));
  box.replaceChildren(title, el('p', 'crypto-warning-text', CRYPTO.failedText));
}

/** A body that is a warning only (`code`: a stable reason, `text`: what the reader is told). */
export function flaggedBody(code, text) {
  const box = el('div', 'message-body');
  warning(box, code, text);
  return box;
}

/**
 * The body element of an event carrying an envelope: a placeholder now,
 * the verified content (or a warning) once the keyring has opened it.
 * `names` (Map rtp1 id -> display name) learns who signed. `opts`: `expect`
 * (a thread item's sender, msg id and edit parent, see itemMismatch),
 * `onOpened(body)` once the verified body is shown (never on a warning),
 * `onSettled(box)` once the outcome, whatever it is, is in the box, and
 * `files` (the item's payload.files when `event` is an edit of it).
 */
export function messageBody(event, ref, keyring, names, opts = {}) {
  const box = el('div', 'message-body pending');
  box.append(el('p', 'message-status', keyring ? CRYPTO.decrypting : CRYPTO.noKeys));
  box.dataset.crypto = keyring ? 'pending' : 'no_keys';
  // without keys the outcome (no_keys) is there now: onSettled still comes after the return
  const settled = keyring ? fill(box, event, ref, keyring, names, opts) : Promise.resolve();
  if (opts.onSettled) settled.finally(() => opts.onSettled(box));
  return box;
}

/**
 * A thread item's envelope must be the one its id names (docs/threads.md
 * "Ids"): `expect` = {sender, msgId} of the item, and for an edit `parent`
 * (the edited item's msg_id). The reason code of the first that differs.
 */
function itemMismatch(r, expect) {
  if (!expect) return null;
  if (expect.sender && r.sender !== expect.sender) return 'item_sender';
  if (expect.msgId && b64url(r.msgId) !== expect.msgId) return 'item_id';
  if (expect.parent !== undefined) {
    const parent = r.header && r.header.parent ? b64url(r.header.parent) : null;
    if (parent !== expect.parent) return 'edit_parent';
  }
  return null;
}

/**
 * Why an opened envelope (`r`, ok) is not what the server says `event` is, as
 * [code, text], or null: the server's word about who wrote it and for whom must
 * agree with the signed envelope, and a thread item's with `expect` (itemMismatch).
 * A body shows the warning; a thread's title (client/threadrows.js) stays generic.
 */
export function notAsClaimed(event, r, expect = null) {
  const actor = actorId(event.actor);
  if (actor !== null && actor !== r.sender) return ['sender_mismatch', CRYPTO.senderMismatch];
  if ((event.audience === 'staff') !== (r.vis === VIS.STAFF)) return ['vis_mismatch', CRYPTO.visMismatch];
  const mismatch = itemMismatch(r, expect);
  return mismatch ? [mismatch, CRYPTO.itemMismatch] : null;
}

async function fill(box, event, ref, keyring, names, { expect = null, onOpened = null, files = null } = {}) {
  const payload = event.payload || {};
  let r;
  try {
    r = await keyring.open(ref, String(payload.thread ?? ''), event.blob, { seq: event.seq ?? event.cursor });
  } catch (err) {
    // the key directory could not be read (network, session): nothing failed a check
    box.className = 'message-body unreadable';
    box.dataset.crypto = (err && err.code) || 'network';
    box.replaceChildren(el('p', 'message-status', CRYPTO.keysUnavailable));
    return;
  }
  if (!r.ok) {
    // "not shared with you" is only believable while the firm's keys verified
    if (CANNOT_READ.has(r.code) && !r.moved && !keyring.problems.some((p) => p.what === 'root')) {
      box.className = 'message-body unreadable';
      box.dataset.crypto = r.code;
      box.replaceChildren(el('p', 'message-status', CRYPTO.cannotRead));
      return;
    }
    warning(box, r.code);
    return;
  }
  const off = notAsClaimed(event, r, expect);
  if (off) return warning(box, ...off);
  const name = (event.actor && event.actor.name) || r.sender;
  if (names) names.set(r.sender, name);
  box.className = r.vis === VIS.STAFF ? 'message-body verified internal' : 'message-body verified';
  box.dataset.crypto = 'ok';
  box.dataset.sender = r.sender;
  box.dataset.msgId = b64url(r.msgId);
  const parts = [el('p', 'message-signer', signedBy(name, r.role))];
  if (r.vis === VIS.STAFF) parts.push(el('p', 'badge internal-badge', CRYPTO.internalNote));
  if (r.body.subject) parts.push(el('p', 'message-subject', r.body.subject));
  parts.push(el('p', 'message-text', r.body.text));
  // the file ids: the item's own payload.files (an edit's body keeps the
  // descriptors but its event names no files: `files` comes from the item)
  if (r.body.attachments.length) parts.push(attachmentList(ref, r.body.attachments, files ?? payload.files));
  box.replaceChildren(...parts);
  if (onOpened) onOpened(r.body);
}

/** Notices above a matter: changed keys (named when known) and key checks that failed. */
export function keyNotices(keyring, ref, names) {
  const box = el('div', 'key-notices');
  if (!keyring) return box;
  for (const change of keyring.keyChanges) {
    const p = el('p', 'key-notice', keyChanged((names && names.get(change.user)) || change.user));
    p.dataset.user = change.user;
    box.append(p);
  }
  if (keyring.problems.some((p) => p.what === 'unpinned')) {
    const p = el('p', 'key-notice unpinned', CRYPTO.unpinned);
    p.setAttribute('role', 'status');
    box.append(p);
  }
  // a served revocation list or escrow version older than seen: the server hides a revocation
  if (keyring.problems.some((p) => p.what === 'root' || (p.scope === 'firm' && p.code === 'crypto_rollback'))) {
    const p = el('p', 'crypto-warning-title', CRYPTO.firmWarning);
    p.setAttribute('role', 'alert');
    box.append(p);
  }
  if (keyring.problems.some((p) => p.scope === ref && p.what !== 'wrap')) {
    const p = el('p', 'crypto-warning-title', CRYPTO.matterWarning);
    p.setAttribute('role', 'alert');
    box.append(p);
  }
  return box;
}

/**
 * The reply form of matter `ref`: the text is sealed by the keyring under the
 * matter's newest verified epoch, then posted. `thread()` names the thread
 * replied to; staff may write an internal note (kind `note`, vis 1).
 */
export function composer(ref, { keyring, staff = false, thread, onPosted, onSignedOut, onRekey = null }) {
  const form = el('form', 'composer');
  const id = `reply-${ref}`;
  const label = el('label', null, CRYPTO.replyLabel);
  label.htmlFor = id;
  const text = el('textarea');
  text.id = id;
  text.name = 'text';
  text.required = true;
  text.rows = 3;
  text.maxLength = 20000;
  text.placeholder = CRYPTO.replyPlaceholder;
  const send = el('button', 'button', CRYPTO.send);
  send.type = 'submit';
  const status = el('p', 'form-status');
  status.setAttribute('role', 'status');
  form.append(label, text);
  let note = null;
  if (staff) {
    note = el('input');
    note.type = 'checkbox';
    note.id = `note-${ref}`;
    const noteLabel = el('label', 'checkbox', CRYPTO.noteToggle);
    noteLabel.prepend(note);
    form.append(noteLabel);
  }
  form.append(send, status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const typedText = text.value;
    const value = typedText.trim();
    if (!value) return;
    send.disabled = true;
    status.textContent = CRYPTO.sending;
    const internal = Boolean(note && note.checked);
    const where = thread();
    try {
      const seal = () => keyring.seal(ref, where, { text: value }, { vis: internal ? VIS.STAFF : VIS.PORTAL });
      const body = (blob) => ({
        kind: internal ? 'note' : 'message',
        audience: internal ? 'staff' : 'portal',
        payload: { thread: where },
        blob: b64url(blob),
        client_id: envelopeMsgId(blob), // the item id readers check against the envelope
      });
      const event = await sealAndPost(ref, keyring, seal, body, onRekey);
      onPosted(event);
      status.textContent = CRYPTO.sent;
      if (text.value === typedText) text.value = ''; // typed meanwhile: the next message, kept
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      status.textContent = notPosted(err.message || String(err.code));
    } finally {
      send.disabled = false;
    }
  });
  return form;
}
