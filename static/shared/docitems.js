// What the client's Documents section and the staff checklist share about
// a checklist item (docs/documents.md): its status badge, its sealed parts
// (a rejection's reason, an upload's or a share's file descriptors) opened
// with the keyring, envelopes sealed into the item's own thread, its files
// with their downloads. Files are encrypted, uploaded and downloaded by the
// attachments' own module (attachfile.js), as a thread's attachments are. Text from the server or an envelope goes in as
// textContent only (dom.js).

import { b64url } from '../crypto/bytes.js';
import { downloadFile, encryptFile, safeFileName, uploadBlob } from './attachfile.js';
import { el } from './dom.js';
import { ApiError, api } from './http.js';
import { VIS } from './keyring.js';
import { DOCS, docFailed, fileLabel } from './strings_docs.js';
import { FILES } from './strings_threads.js';

const enc = encodeURIComponent;

/** The checklist's path of matter `ref`, with an optional tail (`/request`, `/<item>/accept`). */
export const docsPath = (ref, tail = '') => `/api/v1/matters/${enc(ref)}/documents${tail}`;

/** The status as a badge: a word, not only a colour. */
export function statusBadge(item) {
  const badge = el('span', `badge doc-status doc-${item.status}`, DOCS.status[item.status] || item.status);
  badge.dataset.status = String(item.status);
  return badge;
}

/** An API error as a line of text (the stable code's own words when there are some). */
export function errorText(err) {
  const code = err && ((err.details && err.details.reason) || err.code);
  return docFailed(DOCS.errors[code] || FILES[code] || (err && err.message) || String(err));
}

/**
 * The text of a rejected item's reason, opened by `keyring` (null when it
 * cannot be read). Its own replay slot: the same envelope opened again by a
 * reload is not a replay.
 */
export async function openReason(keyring, ref, item) {
  if (!keyring || !item.reason) return null;
  try {
    const r = await keyring.open(ref, item.thread, item.reason, { seq: `reason-${item.id}-${item.round}` });
    return r.ok ? r.body.text : null;
  } catch {
    return null; // the keys could not be read (network): the row says it cannot be read, the rest renders
  }
}

/**
 * File descriptors learned from `document` / `document_shared` events (an
 * upload's or a share's envelope lists them in the order of payload.files).
 * An event's envelope is bound to its item's thread, which only the checklist
 * names: events wait until `open(threadOf)` knows it.
 */
export class Descriptors {
  constructor(keyring, ref) {
    this.keyring = keyring;
    this.ref = ref;
    this.byFile = new Map(); // file id -> descriptor
    this.waiting = [];
    this.refused = new Set(); // positions whose envelope did not open (learnItem skips them)
  }

  learn(event) {
    const p = event.payload || {};
    if ((event.kind === 'document' || event.kind === 'document_shared') && event.blob && Array.isArray(p.files)) {
      this.waiting.push(event);
    }
  }

  /**
   * An item's current envelopes (its `uploads`, docs/documents.md): learnt as
   * their events are, at the position the events have, so an upload whose
   * event this page never loaded still names its files. One already open,
   * waiting or refused by the keyring is skipped.
   */
  learnItem(item) {
    for (const u of item.uploads || []) {
      const at = u.seq ?? u.cursor;
      if (!Array.isArray(u.files) || u.files.every((id) => this.byFile.has(id))) continue;
      if (this.refused.has(at) || this.waiting.some((e) => (e.seq ?? e.cursor) === at)) continue;
      this.learn({ kind: u.kind, seq: u.seq, cursor: u.cursor, blob: u.blob, payload: { items: [item.id], files: u.files } });
    }
  }

  /** Open what waits whose item `threadOf(itemId)` knows; true when a descriptor was added. */
  async open(threadOf) {
    if (!this.keyring) return false;
    let added = false;
    const still = [];
    for (const event of this.waiting) {
      const thread = threadOf((event.payload.items || [])[0]);
      if (!thread) {
        still.push(event);
        continue;
      }
      let r;
      try {
        r = await this.keyring.open(this.ref, thread, event.blob, { seq: event.seq ?? event.cursor });
      } catch {
        still.push(event); // the keys could not be read (network): tried again on the next read
        continue;
      }
      if (!r.ok) {
        this.refused.add(event.seq ?? event.cursor); // not tried again at every read
        continue;
      }
      event.payload.files.forEach((id, i) => {
        if (r.body.attachments[i]) this.byFile.set(id, r.body.attachments[i]);
      });
      added = true;
    }
    this.waiting = still;
    return added;
  }
}

/**
 * What a staff checklist row drawn for `item` shows, as text: a row drawn with
 * the same text may stay on the page (a file being chosen in it stays). Null
 * while the item's reason is not open in `reasons` (reason envelope -> text,
 * filled as rows open them) though the keyring could open it: the read that
 * failed (the keys' fetch) is tried again on the next draw.
 */
export function rowSignature(item, descriptors, reasons) {
  if (descriptors.keyring && item.status === 'rejected' && item.reason && !reasons.has(item.reason)) return null;
  const named = (item.files || []).map((f) => (descriptors.byFile.has(f.id) ? 1 : 0)).join('');
  return `${JSON.stringify(item)}|${named}`;
}

/** A view's `onEvent`: a document event's descriptors learned, and the checklist read again. */
export function documentEvents(descriptors, refresh) {
  return (event) => {
    if (event.kind !== 'document' && event.kind !== 'document_shared') return;
    descriptors.learn(event);
    refresh();
  };
}

/**
 * A file chooser: the native input hidden from the eye only (keyboards and
 * screen readers still reach it), its label drawn as a button, the chosen
 * files' names as text. `clear()` after a send.
 */
export function filePicker(id, text) {
  const input = el('input', 'doc-file-input visually-hidden');
  input.type = 'file';
  input.multiple = true;
  input.id = id;
  const label = el('label', 'button quiet doc-file-label', text);
  label.htmlFor = id;
  const chosen = el('span', 'doc-chosen');
  input.addEventListener('change', () => {
    chosen.textContent = [...input.files].map((f) => f.name).join(', ');
  });
  const box = el('span', 'doc-picker');
  box.append(input, label, chosen);
  return {
    box,
    input,
    clear() {
      input.value = '';
      chosen.textContent = '';
    },
  };
}

/** Hand `blob` to the browser as a download named `name` (never opened as a page). */
function save(blob, name) {
  const a = el('a');
  a.href = URL.createObjectURL(blob);
  a.download = safeFileName(name, FILES.defaultName);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

/** The item's files of its current round, each with a Download button once its descriptor is known. */
export function fileList(ref, item, descriptors, status) {
  const list = el('ul', 'doc-files');
  const files = (item.files || []).filter((f) => f.round === item.round);
  files.forEach((f, i) => {
    const d = descriptors.byFile.get(f.id);
    const row = el('li', 'doc-file');
    row.dataset.file = f.id;
    row.append(el('span', 'doc-file-name', fileLabel(d && d.name, i + 1)));
    if (d) {
      const get = el('button', 'button quiet doc-download', DOCS.download);
      get.type = 'button';
      get.addEventListener('click', async () => {
        get.disabled = true;
        try {
          save(await downloadFile(ref, f.id, d), d.name);
        } catch (err) {
          status.textContent = errorText(err);
        } finally {
          get.disabled = false;
        }
      });
      row.append(get);
    }
    list.append(row);
  });
  return list;
}

/**
 * Seal `body` into the item's thread and POST it (`fields(envelope)` makes
 * the request's body): a new epoch since the last key read (`stale_epoch`)
 * reads the keys and seals once more.
 */
export async function postSealed(ref, keyring, item, tail, body, fields) {
  const send = async () => {
    const envelope = await keyring.seal(ref, item.thread, body, { vis: VIS.PORTAL });
    return api('POST', docsPath(ref, `/${enc(item.id)}${tail}`), fields(b64url(envelope)));
  };
  try {
    return await send();
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'stale_epoch')) throw err;
    await keyring.syncMatter(ref);
    return send();
  }
}

/**
 * Upload `files` (a FileList) for `item` and name them with their sealed
 * descriptors at `tail` (`/upload` for a request, `/share` for a provided
 * document). `progress` (a <progress>) shows the bytes sent of all files.
 */
export async function sendFiles(ref, keyring, item, tail, files, progress) {
  const list = [...files];
  const sizes = list.map((f) => f.size);
  const sent = list.map(() => 0);
  progress.max = Math.max(1, sizes.reduce((a, b) => a + b, 0));
  progress.value = 0;
  progress.hidden = false;
  const done = [];
  for (const [i, file] of list.entries()) {
    const { blob, descriptor } = await encryptFile(file);
    const onProgress = (n, total) => {
      sent[i] = total ? (n / total) * sizes[i] : 0;
      progress.value = Math.min(progress.max, sent.reduce((a, b) => a + b, 0));
    };
    const answer = await uploadBlob(ref, blob, descriptor.ct_sha256, { onProgress });
    done.push({ id: answer.id, descriptor });
  }
  return postSealed(ref, keyring, item, tail, { attachments: done.map((d) => d.descriptor) }, (blob) => ({
    files: done.map((d) => d.id),
    blob,
  }));
}
