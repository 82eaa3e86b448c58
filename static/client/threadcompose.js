// Writing in a thread view (client/threads.js): the composer (a reply,
// with the staff's internal-note mode; a new thread; an edit of my item),
// the edit and delete actions of my items, and typing frames while I write.
// An internal note never looks like a reply to the client: its own colour,
// label, placeholder and button text, all from strings.js.

import { el } from '../shared/dom.js';
import { button } from '../shared/forms.js';
import { ApiError } from '../shared/http.js';
import { CRYPTO } from '../shared/strings.js';
import { FILES, THREADS, notSent } from '../shared/strings_threads.js';
import { TYPING_EVERY_MS, typingFrame } from '../shared/threadapi.js';
import { attachPicker } from './attachui.js';
import { deleteItem, editItem, newThreadId, sendItem } from './itemsend.js';

/** Edit and Delete under an item of mine (Delete asks once more, inline). */
export function itemActions(view, item) {
  const box = el('div', 'item-actions');
  const edit = button(THREADS.edit, 'button quiet item-edit', 'button');
  edit.addEventListener('click', () => {
    view.setMode('edit', item);
    view.composerForm.querySelector('textarea').focus();
  });
  const del = button(THREADS.delete, 'button quiet item-delete', 'button');
  del.addEventListener('click', () => confirmDelete(view, box, item));
  box.append(edit, del);
  return box;
}

function confirmDelete(view, box, item) {
  if (box.querySelector('.confirm')) return;
  const confirm = el('div', 'confirm');
  const yes = button(THREADS.yesDelete, 'button danger', 'button');
  const no = button(THREADS.cancel, 'button quiet', 'button');
  const status = el('p', 'form-status');
  status.setAttribute('role', 'status');
  confirm.append(el('p', null, THREADS.confirmDelete), yes, no, status);
  no.addEventListener('click', () => confirm.remove());
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    try {
      view.add(await deleteItem(view.ref, item));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) view.onSignedOut();
      status.textContent = notSent(err.message || String(err.code));
      yes.disabled = false;
    }
  });
  box.append(confirm);
  yes.focus();
}

/** Why nothing can be written here, or null (same notices as the flat stream's reply form). */
export function cannotWrite(view) {
  const kr = view.keyring;
  if (!kr) return CRYPTO.noKeys;
  if (!kr.certified()) return view.staff ? CRYPTO.waitingApproval : CRYPTO.notReady;
  if (!kr.canSeal(view.ref)) return CRYPTO.notReady;
  return null;
}

const drafts = new Map(); // `${ref}\0${thread}` ('' for a new thread) -> {text, subject, note, internal}: this page's unsent drafts
// the same key -> its attachment picker: chosen files (and an upload under way)
// stay with the draft when the composer is drawn again
const pickers = new Map();

/**
 * The composer of `view` in `mode`: `reply` in the open thread `data`
 * (staff: a note toggle in a client thread; always a note in an internal
 * one), `new` (subject; staff choose recipients or an internal thread via
 * the view's threadTools), `edit` (the item `view.editing`).
 */
export function threadComposer(view, data, mode) {
  const ref = view.ref;
  const form = el('form', 'composer thread-composer');
  form.id = `thread-composer-${ref}`;
  form.dataset.mode = mode;
  const internalThread = data && data.kind === 'internal';
  let subject = null;
  let extra = null;
  if (mode === 'new') {
    if (view.tools) {
      // the kind chosen survives a redraw, as the draft does: drawn back as a
      // client thread, an internal one would go to the client
      const kept = drafts.get(`${ref}\u0000`);
      extra = view.tools.newThreadFields(view, { internal: Boolean(kept && kept.internal) });
      form.append(extra.node);
    }
    subject = el('input');
    subject.id = `thread-subject-${ref}`;
    subject.maxLength = 300;
    subject.required = true;
    subject.autocomplete = 'off';
    const label = el('label', null, THREADS.subject);
    label.htmlFor = subject.id;
    form.append(label, subject);
  }
  const text = el('textarea');
  text.id = `thread-text-${ref}`;
  text.required = true;
  text.rows = 3;
  text.maxLength = 20000;
  const label = el('label');
  label.htmlFor = text.id;
  form.append(label, text);
  let note = null;
  if (mode === 'reply' && view.staff && !internalThread) {
    note = el('input');
    note.type = 'checkbox';
    note.id = `thread-note-${ref}`;
    const noteLabel = el('label', 'checkbox note-toggle', THREADS.noteToggle);
    noteLabel.prepend(note);
    form.append(noteLabel);
  }
  // attachments: on a new item only (an edit cannot name files, docs/files.md)
  const draft = mode === 'edit' ? null : `${ref}\u0000${mode === 'new' ? '' : view.open}`;
  if (draft !== null && !pickers.has(draft)) pickers.set(draft, attachPicker(ref));
  const picker = draft === null ? null : pickers.get(draft);
  if (picker) {
    form.append(picker.node); // moved here from a composer drawn before
    picker.onChange(() => {
      text.required = picker.files().length === 0; // files alone are a message too
    });
  }
  const send = el('button', 'button');
  send.type = 'submit';
  const actions = el('div', 'form-row');
  actions.append(send);
  if (mode === 'edit') {
    const cancel = button(THREADS.cancel, 'button quiet', 'button');
    cancel.addEventListener('click', () => view.setMode('reply'));
    actions.append(cancel);
    const body = view.bodies && view.bodies.get(view.editing.id);
    if (body) text.value = body.text;
  }
  const status = el('p', 'form-status');
  status.setAttribute('role', 'status');
  form.append(actions, status);
  // What is typed survives the composer being drawn again (keys arriving, the
  // matter redrawn, another thread opened and this one again) until it is sent;
  // so does the note toggle: a note drawn again unticked would go to the client.
  if (draft !== null) {
    const kept = drafts.get(draft);
    if (kept) {
      text.value = kept.text;
      if (subject) subject.value = kept.subject;
      if (note) note.checked = kept.note;
    }
    const keep = () =>
      drafts.set(draft, {
        text: text.value,
        subject: subject ? subject.value : '',
        note: Boolean(note && note.checked),
        internal: Boolean(extra && extra.internal()),
      });
    text.addEventListener('input', keep);
    if (subject) subject.addEventListener('input', keep);
    if (note) note.addEventListener('change', keep);
    if (extra) extra.onChange(keep);
  }

  const internalNow = () => internalThread || (mode === 'edit' && view.editing.internal) || Boolean(note && note.checked) || Boolean(extra && extra.internal());
  const look = () => {
    // an internal note never looks like a reply to the client: colour, label, button
    const internal = internalNow();
    form.dataset.internal = internal ? '1' : '0';
    form.classList.toggle('internal', internal);
    if (mode === 'edit') label.textContent = THREADS.editLabel;
    else if (mode === 'new') label.textContent = THREADS.message;
    else label.textContent = internal ? THREADS.noteLabel : THREADS.replyLabel;
    text.placeholder = internal ? THREADS.notePlaceholder : THREADS.replyPlaceholder;
    if (mode === 'edit') send.textContent = THREADS.save;
    else if (mode === 'new') send.textContent = THREADS.start;
    else send.textContent = internal ? THREADS.noteSend : THREADS.send;
  };
  look();
  if (note) note.addEventListener('change', look);
  if (extra) extra.onChange(look);
  text.addEventListener('input', () => typed(view, internalNow()));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const typedText = text.value;
    const value = typedText.trim();
    const files = picker ? picker.files() : [];
    if (!value && !files.length) return;
    const where = extra ? extra.read() : {};
    if (where.error || (picker && picker.tooMany())) {
      status.textContent = where.error || FILES.tooMany;
      return;
    }
    send.disabled = true;
    status.textContent = THREADS.sending;
    try {
      const attached = files.length ? await picker.upload((said) => (status.textContent = said)) : [];
      status.textContent = THREADS.sending;
      const event = await submit(view, mode, { text: value, subject: subject ? subject.value.trim() : '', internal: internalNow(), to: where.to, attached });
      view.add(event);
      status.textContent = mode === 'edit' ? THREADS.saved : THREADS.sent;
      // What was typed while this was sending is the next message: kept, with its draft.
      if (text.value === typedText) {
        text.value = '';
        if (draft !== null) drafts.delete(draft);
      }
      if (picker) picker.clear();
      if (mode === 'new') view.openThread(event.payload.thread);
      else if (mode === 'edit') view.setMode('reply');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) view.onSignedOut();
      status.textContent = err.said || notSent(err.message || String(err.code));
    } finally {
      send.disabled = false;
    }
  });
  return form;
}

/** Seal and send what the composer holds; resolves with the stored event. */
function submit(view, mode, { text, subject, internal, to, attached }) {
  const kr = view.keyring;
  const onRekey = view.onRekey;
  if (mode === 'edit') {
    // an edit replaces the body: the opener's subject (not editable here) goes along unchanged
    const before = view.bodies && view.bodies.get(view.editing.id);
    const attachments = before ? before.attachments : [];
    return editItem(view.ref, kr, view.editing, { text, subject: before ? before.subject : '', attachments, onRekey });
  }
  if (mode === 'new') return sendItem(view.ref, kr, { thread: newThreadId(), subject, text, internal, to, attached, onRekey });
  // a reply names its thread only: the server sets `parent` to the thread's
  // opener (docs/threads.md), which this page may not have loaded, or may
  // name differently (a welcome's item is its thread id)
  return sendItem(view.ref, kr, { thread: view.open, text, internal, attached, onRekey });
}

/**
 * A typing frame at most once per TYPING_EVERY_MS per thread while I type
 * in it (not in a new one): the server's limit is per thread too, so typing
 * in another thread just after shows there at once.
 */
function typed(view, internal) {
  if (!view.open || view.mode === 'edit') return;
  const now = Date.now();
  if (now - (view.lastTyping.get(view.open) ?? -Infinity) < TYPING_EVERY_MS) return;
  if (view.sendFrame(typingFrame(view.ref, view.open, internal))) view.lastTyping.set(view.open, now);
}
