// A client's Documents section of one matter (docs/documents.md): what the
// firm requested, with the date and status (a rejection's reason decrypted
// and shown as text), an upload control with a progress bar per open
// request, and the documents the firm shared, to download.
//
// It reads GET /api/v1/matters/{ref}/documents, and again when a `document`
// or `document_shared` event arrives (live or in history; reads coalesced as
// the timeline's are). Each item keeps its row: a read while an upload runs
// updates the row's status and leaves its upload control alone.

import { el } from '../shared/dom.js';
import { coalesced } from '../shared/coalesce.js';
import { ApiError, api } from '../shared/http.js';
import { formatTime } from '../shared/format.js';
import { Descriptors, docsPath, documentEvents, errorText, fileList, filePicker, openReason, sendFiles, statusBadge } from '../shared/docitems.js';
import { DOCS, requestedOn } from '../shared/strings_docs.js';

const UPLOADABLE = new Set(['requested', 'rejected', 'uploaded']);

/**
 * The Documents section of matter `ref`: `{element, onEvent(event)}`. Hidden
 * until the matter has a document for this client. `keyring` seals uploads
 * and opens reasons (null: no keys on this device).
 */
export function documentsView(ref, { keyring = null, onSignedOut = () => {} } = {}) {
  const element = el('section', 'documents');
  element.id = `documents-${ref}`;
  element.hidden = true;
  const title = el('h3', 'documents-title', DOCS.title);
  title.id = `documents-${ref}-title`;
  element.setAttribute('aria-labelledby', title.id);
  const requestsTitle = el('h4', 'documents-sub', DOCS.requested);
  const requests = el('ul', 'doc-list doc-requests');
  const providedTitle = el('h4', 'documents-sub', DOCS.provided);
  const provided = el('ul', 'doc-list doc-provided');
  element.append(title, requestsTitle, requests, providedTitle, provided);
  if (!keyring) element.append(el('p', 'key-notice', DOCS.noKeys));

  const descriptors = new Descriptors(keyring, ref);
  const rows = new Map(); // item id -> {row, update(item)}
  let items = [];

  function uploadControl(row, current) {
    const box = el('div', 'doc-upload');
    const picker = filePicker(`doc-file-${row.dataset.item}`, DOCS.choose);
    const input = picker.input;
    const send = el('button', 'button doc-send', DOCS.upload);
    send.type = 'button';
    send.disabled = true;
    const progress = el('progress', 'doc-progress');
    progress.hidden = true;
    const status = el('p', 'form-status doc-upload-status');
    status.setAttribute('aria-live', 'polite');
    input.addEventListener('change', () => {
      send.disabled = !input.files.length || !keyring;
    });
    send.addEventListener('click', async () => {
      send.disabled = true;
      input.disabled = true;
      row.dataset.busy = '1';
      status.textContent = DOCS.uploading;
      try {
        await sendFiles(ref, keyring, current(), '/upload', input.files, progress);
        status.textContent = DOCS.uploaded;
        picker.clear();
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) onSignedOut();
        status.textContent = errorText(err);
      } finally {
        delete row.dataset.busy;
        progress.hidden = true;
        input.disabled = false;
        send.disabled = !input.files.length;
        refresh();
      }
    });
    box.append(picker.box, send, progress, status);
    return box;
  }

  function makeRow(item) {
    const row = el('li', 'doc-item');
    row.dataset.item = item.id;
    const head = el('p', 'doc-head');
    const name = el('span', 'doc-label');
    let badge = el('span');
    head.append(name, badge);
    const description = el('p', 'doc-description');
    const when = el('p', 'doc-when');
    const reason = el('p', 'doc-reason');
    const files = el('div');
    const status = el('p', 'form-status');
    let latest = item;
    const upload = item.provided ? null : uploadControl(row, () => latest);
    row.append(head, description, when, reason, files, status);
    if (upload) row.append(upload);
    async function update(next) {
      latest = next;
      row.dataset.status = next.status;
      name.textContent = next.label;
      badge.replaceWith((badge = statusBadge(next)));
      description.textContent = next.description || '';
      description.hidden = !next.description;
      const date = next.provided ? next.decided_at : next.requested_at;
      when.textContent = date ? (next.provided ? formatTime(date) : requestedOn(formatTime(date))) : '';
      files.replaceChildren(fileList(ref, next, descriptors, status));
      if (upload) {
        upload.hidden = !UPLOADABLE.has(next.status);
        upload.querySelector('.doc-send').textContent = next.status === 'requested' ? DOCS.upload : DOCS.uploadAgain;
      }
      reason.hidden = next.status !== 'rejected';
      if (next.status === 'rejected') {
        reason.replaceChildren(el('span', 'doc-reason-label', `${DOCS.reason}: `));
        const text = await openReason(keyring, ref, next);
        reason.append(el('span', 'doc-reason-text', text ?? DOCS.reasonUnreadable));
      }
    }
    return { row, update };
  }

  async function render(list) {
    items = list;
    element.hidden = list.length === 0;
    const byList = { requests: [], provided: [] };
    for (const item of list) {
      if (!rows.has(item.id)) rows.set(item.id, makeRow(item));
      byList[item.provided ? 'provided' : 'requests'].push(rows.get(item.id).row);
    }
    requests.replaceChildren(...byList.requests);
    provided.replaceChildren(...byList.provided);
    requestsTitle.hidden = !byList.requests.length;
    providedTitle.hidden = !byList.provided.length;
    for (const item of items) descriptors.learnItem(item);
    await descriptors.open((id) => (items.find((i) => i.id === id) || {}).thread);
    await Promise.all(list.map((item) => rows.get(item.id).update(item)));
    element.dataset.loaded = '1';
  }

  const refresh = coalesced(
    async () => render((await api('GET', docsPath(ref))).documents || []),
    (err) => {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      // anything else: the list stays; the next document event reads again
    },
  );

  refresh();
  return { element, onEvent: documentEvents(descriptors, refresh) };
}
