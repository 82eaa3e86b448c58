// Attachments on screen (client and staff thread views): the composer's
// picker (a visible button opening the file input, the chosen files with
// their sizes, the upload's progress bars and its Cancel), and an item's
// attachments (name and size as text, a Download button with a progress
// bar). File names come from encrypted messages anyone in the matter may
// write: they go in with textContent only, never as markup. A download is
// saved from a blob: URL through an <a download>, never opened as a page
// (attachfile.js: the Blob's type is octet-stream).
//
// Hooks for tests (ref = the matter reference):
//   .attach-picker  input#thread-files-<ref>[type=file]  button.attach-button
//     ul.attach-chosen > li.attach-file[data-name] (.attach-name .attach-size button.attach-remove
//       progress.attach-progress[data-phase=encrypt|upload])  button.attach-cancel
//   ul.message-attachments > li.attachment[data-file][data-state=idle|busy|saved|failed]
//     .attachment-name .attachment-size button.attachment-download progress.attachment-progress .attachment-status

import { el } from '../shared/dom.js';
import { button } from '../shared/forms.js';
import { ApiError } from '../shared/http.js';
import { ERRORS } from '../shared/strings.js';
import { FILES, downloadFailed, downloadName, fileSize, removeFileName, uploadFailed } from '../shared/strings_threads.js';
import { MAX_FILES, downloadFile, encryptFile, safeFileName, uploadBlob } from '../shared/attachfile.js';

/** The message a failed upload or download shows: the stable code's text where there is one. */
function reason(err) {
  if (err instanceof ApiError && (FILES[err.code] || ERRORS[err.code])) return FILES[err.code] || ERRORS[err.code];
  return (err && err.message) || String((err && err.code) || err);
}

/**
 * The composer's attachments. `files()`: what is chosen; `upload(ref)`
 * encrypts and uploads each not yet uploaded, resolving with
 * [{id, descriptor}] in the order shown (an upload done before a failed
 * send is not done again); `clear()` after the send; `onChange(fn)` (called
 * at once too: a picker moves into a composer drawn again, files and all).
 */
export function attachPicker(ref) {
  const box = el('div', 'attach-picker');
  const input = el('input', 'visually-hidden');
  input.type = 'file';
  input.multiple = true;
  input.id = `thread-files-${ref}`;
  input.tabIndex = -1; // the button is the control; the input only opens the chooser
  input.setAttribute('aria-hidden', 'true');
  const pick = button(FILES.attach, 'button quiet attach-button', 'button');
  pick.setAttribute('aria-controls', input.id);
  const list = el('ul', 'attach-chosen');
  list.setAttribute('aria-label', FILES.chosen);
  list.hidden = true; // until a file is chosen
  const cancel = button(FILES.cancel, 'button quiet attach-cancel', 'button');
  cancel.hidden = true;
  box.append(pick, input, list, cancel);

  let chosen = []; // {file, li, bar, uploaded: {id, descriptor} | null}
  let changed = () => {};
  let controller = null;

  const draw = () => {
    list.replaceChildren(...chosen.map((c) => c.li));
    list.hidden = chosen.length === 0;
    changed();
  };
  const row = (file) => {
    const li = el('li', 'attach-file');
    li.dataset.name = file.name;
    const remove = button(FILES.remove, 'button quiet attach-remove', 'button');
    remove.setAttribute('aria-label', removeFileName(file.name));
    const bar = el('progress', 'attach-progress');
    bar.hidden = true;
    li.append(el('span', 'attach-name', file.name), el('span', 'attach-size', fileSize(file.size)), remove, bar);
    const entry = { file, li, bar, remove, uploaded: null };
    remove.addEventListener('click', () => {
      chosen = chosen.filter((c) => c !== entry);
      draw();
      pick.focus();
    });
    return entry;
  };

  pick.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    for (const file of input.files) chosen.push(row(file));
    input.value = ''; // the same file chosen again is a change too
    draw();
  });
  cancel.addEventListener('click', () => controller && controller.abort());

  const busy = (on) => {
    pick.disabled = on;
    cancel.hidden = !on;
    for (const c of chosen) c.remove.disabled = on;
  };

  return {
    node: box,
    files: () => chosen.map((c) => c.file),
    onChange(fn) {
      changed = fn;
      fn();
    },
    tooMany: () => chosen.length > MAX_FILES,
    clear() {
      chosen = [];
      draw();
    },
    /** Encrypt and upload; `say(text)` tells the composer's status line what is happening. */
    async upload(say) {
      controller = new AbortController();
      const signal = controller.signal;
      busy(true);
      try {
        const out = [];
        for (const c of chosen) {
          if (!c.uploaded) c.uploaded = await uploadOne(ref, c, signal, say);
          out.push(c.uploaded);
        }
        return out;
      } finally {
        busy(false);
        controller = null;
      }
    },
  };
}

async function uploadOne(ref, c, signal, say) {
  const { bar, file } = c;
  bar.hidden = false;
  bar.dataset.phase = 'encrypt';
  bar.removeAttribute('value'); // indeterminate until the first progress
  say(FILES.encrypting);
  try {
    const { blob, descriptor } = await encryptFile(file, {
      signal,
      onProgress: (done, total) => {
        bar.max = total || 1;
        bar.value = done;
      },
    });
    bar.dataset.phase = 'upload';
    bar.max = blob.size;
    bar.value = 0;
    say(FILES.uploading);
    const answer = await uploadBlob(ref, blob, descriptor.ct_sha256, {
      signal,
      onProgress: (sent, total) => {
        bar.max = total || 1;
        bar.value = sent;
      },
    });
    bar.value = bar.max;
    return { id: String(answer.id), descriptor };
  } catch (err) {
    bar.hidden = true;
    // the whole sentence the composer shows (`said`: not wrapped in "Not sent: …" again)
    if (err instanceof ApiError && err.code === 'cancelled') err.said = FILES.cancelled;
    else err.said = uploadFailed(file.name, reason(err));
    throw err;
  }
}

/**
 * An item's attachments: `descriptors` from its verified body, `fileIds`
 * from the item's payload.files (matched by position, docs/files.md).
 */
export function attachmentList(ref, descriptors, fileIds) {
  const list = el('ul', 'message-attachments');
  list.setAttribute('aria-label', FILES.attachments);
  const ids = Array.isArray(fileIds) && fileIds.length === descriptors.length ? fileIds : null;
  descriptors.forEach((d, i) => list.append(attachmentRow(ref, d, ids ? String(ids[i]) : null)));
  return list;
}

function attachmentRow(ref, d, fileId) {
  const li = el('li', 'attachment');
  li.dataset.state = 'idle';
  const name = el('span', 'attachment-name', d.name);
  const size = el('span', 'attachment-size', fileSize(Number(d.size)));
  const status = el('p', 'attachment-status');
  status.setAttribute('role', 'status');
  li.append(name, size);
  if (!fileId) {
    li.dataset.state = 'failed';
    status.textContent = FILES.unavailable;
    li.append(status);
    return li;
  }
  li.dataset.file = fileId;
  const get = button(FILES.download, 'button quiet attachment-download', 'button');
  get.setAttribute('aria-label', downloadName(d.name));
  const bar = el('progress', 'attachment-progress');
  bar.hidden = true;
  li.append(get, bar, status);
  get.addEventListener('click', async () => {
    get.disabled = true;
    li.dataset.state = 'busy';
    bar.hidden = false;
    bar.removeAttribute('value');
    status.textContent = FILES.downloading;
    try {
      const blob = await downloadFile(ref, fileId, d, {
        onProgress: (done, total) => {
          bar.max = total;
          bar.value = done;
        },
      });
      save(blob, d.name);
      li.dataset.state = 'saved';
      status.textContent = FILES.saved;
    } catch (err) {
      li.dataset.state = 'failed';
      status.textContent = err && err.code === 'crypto_attachment' ? FILES.corrupt : downloadFailed(reason(err));
    } finally {
      bar.hidden = true;
      get.disabled = false;
    }
  });
  return li;
}

/** Save `blob` as `name`: a download from a blob: URL, never a navigation. */
function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a');
  a.href = url;
  a.download = safeFileName(name, FILES.defaultName);
  a.rel = 'noopener';
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // the download has its bytes once it started; a minute covers a slow disk
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
