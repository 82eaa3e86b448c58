// The matter's document checklist for staff (docs/documents.md): add a
// firm document type to the checklist, select items and "Add to portal"
// (request them of the clients), each item's status with its files to
// download, accept, reject with a reason (sealed into the item's thread as
// a message is), share a firm-provided document; the open requests count.
//
// It reads the checklist again when a `document` or `document_shared` event
// arrives (reads coalesced). Labels, descriptions, reasons and file names
// are text (textContent): a label of markup shows as markup.

import { el } from '../shared/dom.js';
import { coalesced } from '../shared/coalesce.js';
import { ApiError, api } from '../shared/http.js';
import { formatTime } from '../shared/format.js';
import { Descriptors, docsPath, documentEvents, errorText, fileList, filePicker, openReason, postSealed, rowSignature, sendFiles, statusBadge } from '../shared/docitems.js';
import { DOCS, openRequests, requestedOn, selectDoc } from '../shared/strings_docs.js';

const enc = encodeURIComponent;
const OPEN = new Set(['requested', 'rejected']);

function actionButton(text, className) {
  const b = el('button', `button ${className}`, text);
  b.type = 'button';
  return b;
}

/** The checklist of matter `ref`: `{element, onEvent(event)}`; `keyring` seals reasons and shares. */
export function checklistView(ref, { keyring = null, onSignedOut = () => {} } = {}) {
  const element = el('section', 'subpanel checklist');
  element.id = `checklist-${ref}`;
  const title = el('h3', null, DOCS.checklist);
  const count = el('p', 'doc-count');
  count.setAttribute('aria-live', 'polite');
  const adder = el('div', 'doc-adder');
  const list = el('ul', 'doc-list');
  const request = actionButton(DOCS.addToPortal, 'doc-request');
  const status = el('p', 'form-status');
  status.setAttribute('aria-live', 'polite');
  element.append(title, count, adder, list, request, status);
  if (!keyring) element.append(el('p', 'key-notice', DOCS.staffNoKeys));
  const descriptors = new Descriptors(keyring, ref);
  const reasons = new Map(); // a reason's envelope -> its text, once opened
  const selected = new Set();

  async function act(button, work) {
    button.disabled = true;
    status.textContent = '';
    try {
      await work();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      status.textContent = errorText(err);
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  request.addEventListener('click', () =>
    act(request, async () => {
      await api('POST', docsPath(ref, '/request'), { items: [...selected] });
      selected.clear();
    }),
  );

  let typesShown = null;
  function renderAdder(types) {
    const live = types.filter((t) => !t.archived);
    const shown = JSON.stringify(live.map((t) => [t.id, t.label]));
    if (shown === typesShown) return; // the choice being made stays
    typesShown = shown;
    if (!live.length) {
      adder.replaceChildren(el('p', 'empty', DOCS.noTypes));
      return;
    }
    const pick = el('select', 'doc-type');
    pick.id = `doc-type-${ref}`;
    for (const t of live) {
      const option = el('option', null, t.label);
      option.value = String(t.id);
      pick.append(option);
    }
    const label = el('label', null, DOCS.addType);
    label.htmlFor = pick.id;
    const add = actionButton(DOCS.addToChecklist, 'quiet doc-add');
    add.addEventListener('click', () => act(add, () => api('POST', docsPath(ref), { types: [Number(pick.value)] })));
    const defaults = actionButton(DOCS.defaults, 'quiet doc-defaults');
    defaults.addEventListener('click', () => act(defaults, () => api('POST', docsPath(ref), { from_defaults: true })));
    adder.replaceChildren(label, pick, add, defaults);
  }

  function rejectForm(item, row) {
    const form = el('div', 'doc-reject-form');
    const text = el('textarea', 'doc-reason-input');
    text.id = `doc-reason-${item.id}`;
    text.rows = 2;
    const label = el('label', null, DOCS.rejectReason);
    label.htmlFor = text.id;
    const go = actionButton(DOCS.confirmReject, 'doc-confirm-reject');
    const cancel = actionButton(DOCS.cancel, 'quiet');
    cancel.addEventListener('click', () => form.remove());
    go.addEventListener('click', () => {
      if (!text.value.trim()) return text.focus();
      return act(go, async () => {
        await postSealed(ref, keyring, item, '/reject', { text: text.value.trim() }, (reason) => ({ reason }));
        form.remove();
      });
    });
    form.append(label, text, go, cancel);
    row.append(form);
    text.focus();
  }

  function shareControl(item, row) {
    const picker = filePicker(`doc-share-${item.id}`, DOCS.choose);
    const input = picker.input;
    const progress = el('progress', 'doc-progress');
    progress.hidden = true;
    const go = actionButton(DOCS.share, 'doc-share');
    go.addEventListener('click', () => {
      if (!input.files.length) return input.click();
      row.dataset.busy = '1';
      return act(go, async () => {
        try {
          await sendFiles(ref, keyring, item, '/share', input.files, progress);
          picker.clear();
        } finally {
          delete row.dataset.busy;
          progress.hidden = true;
        }
      });
    });
    const box = el('div', 'doc-upload');
    box.append(picker.box, go, progress);
    return box;
  }

  async function itemRow(item) {
    const row = el('li', 'doc-item');
    row.dataset.item = item.id;
    row.dataset.status = item.status;
    const head = el('p', 'doc-head');
    if (item.status === 'not_requested') {
      const box = el('input', 'doc-select');
      box.type = 'checkbox';
      box.checked = selected.has(item.id);
      box.setAttribute('aria-label', selectDoc(item.label));
      box.addEventListener('change', () => {
        if (box.checked) selected.add(item.id);
        else selected.delete(item.id);
        request.disabled = selected.size === 0;
      });
      head.append(box);
    }
    head.append(el('span', 'doc-label', item.label), statusBadge(item));
    row.append(head);
    if (item.requested_at) row.append(el('p', 'doc-when', requestedOn(formatTime(item.requested_at))));
    if (item.status === 'rejected') {
      const reason = el('p', 'doc-reason');
      reason.append(el('span', 'doc-reason-label', `${DOCS.reason}: `));
      let text = reasons.get(item.reason);
      if (text === undefined) {
        text = await openReason(keyring, ref, item);
        if (text !== null && item.reason) reasons.set(item.reason, text);
      }
      reason.append(el('span', 'doc-reason-text', text ?? DOCS.reasonUnreadable));
      row.append(reason);
    }
    row.append(fileList(ref, item, descriptors, status));
    const actions = el('div', 'doc-actions');
    if (!item.provided && item.status === 'uploaded') {
      const accept = actionButton(DOCS.accept, 'doc-accept');
      accept.addEventListener('click', () => act(accept, () => api('POST', docsPath(ref, `/${enc(item.id)}/accept`), {})));
      actions.append(accept);
    }
    if (keyring && !item.provided && (item.status === 'uploaded' || item.status === 'accepted')) {
      const reject = actionButton(DOCS.reject, 'quiet doc-reject');
      reject.addEventListener('click', () => row.querySelector('.doc-reject-form') || rejectForm(item, row));
      actions.append(reject);
    }
    if (item.provided && keyring) actions.append(shareControl(item, row));
    if (actions.childElementCount) row.append(actions);
    return row;
  }

  function inUse(row) {
    const input = row.querySelector('input[type=file]');
    return Boolean(row.dataset.busy || row.querySelector('.doc-reject-form') || (input && input.files.length));
  }

  const drawn = new Map(); // item id -> {sig, row}: what each row shows

  async function render(items) {
    const open = items.filter((i) => !i.provided && OPEN.has(i.status)).length;
    const review = items.filter((i) => !i.provided && i.status === 'uploaded').length;
    count.textContent = openRequests(open, review);
    count.dataset.open = String(open);
    count.hidden = items.length === 0;
    request.hidden = !items.some((i) => i.status === 'not_requested');
    for (const id of [...selected]) if (!items.some((i) => i.id === id && i.status === 'not_requested')) selected.delete(id);
    request.disabled = selected.size === 0;
    for (const item of items) descriptors.learnItem(item);
    await descriptors.open((id) => (items.find((i) => i.id === id) || {}).thread);
    // An item drawn as it is now keeps its row: a file being chosen in it (the
    // picker's dialog may be open) lands in the row that stays on the page.
    const fresh = await Promise.all(
      items.map(async (item) => {
        const sig = rowSignature(item, descriptors, reasons);
        const had = drawn.get(item.id);
        const row = sig !== null && had && had.sig === sig ? had.row : await itemRow(item);
        return { id: item.id, sig, row };
      }),
    );
    // a changed row busy with a share, holding files chosen or a reason being typed
    // stays as it is: looked at only now, after the awaits, so files chosen while the
    // new rows were being made are not swapped out from under the person choosing them
    const keep = new Map();
    for (const row of list.children) if (inUse(row)) keep.set(row.dataset.item, row);
    drawn.clear();
    for (const f of fresh) {
      const kept = keep.get(f.id);
      // a busy row kept over a change shows the old item: drawn again next time
      drawn.set(f.id, kept && kept !== f.row ? { sig: null, row: kept } : { sig: f.sig, row: f.row });
    }
    list.replaceChildren(...fresh.map((f) => drawn.get(f.id).row));
    element.dataset.loaded = '1';
  }

  const refresh = coalesced(
    async () => {
      const [types, docs] = await Promise.all([api('GET', '/api/v1/firm/document-types'), api('GET', docsPath(ref))]);
      renderAdder(types.document_types || []);
      await render(docs.documents || []);
    },
    (err) => {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      else status.textContent = errorText(err);
    },
  );

  refresh();
  return { element, onEvent: documentEvents(descriptors, refresh) };
}
