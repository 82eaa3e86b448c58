// Staff tools of the portal page, loaded only when a staff member signs in:
// the form under each matter that posts a phase change (a client-visible
// `phase` event of plain metadata) over HTTP.

import { el } from '../shared/dom.js';
import { newClientId } from '../shared/format.js';
import { api, ApiError } from '../shared/http.js';
import { TEXT, notPosted } from '../shared/strings.js';

/**
 * POST a phase event to matter `ref`; resolves with the stored event.
 * A network failure is retried once: the same client_id never makes a
 * second event.
 */
export async function postPhase(ref, phase) {
  const path = `/api/v1/matters/${encodeURIComponent(ref)}/events`;
  const body = { kind: 'phase', audience: 'portal', payload: { phase }, client_id: newClientId() };
  try {
    return (await api('POST', path, body)).event;
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'network')) throw err;
    return (await api('POST', path, body)).event;
  }
}

/**
 * The phase form of matter `ref`. `onPosted(event)` shows the stored event
 * at once (the websocket delivers the same seq, deduplicated by the view);
 * `onSignedOut()` is called on a 401.
 */
export function phaseForm(ref, { onPosted, onSignedOut }) {
  const form = el('form', 'phase-form');
  const id = `phase-${ref}`;
  const label = el('label', null, TEXT.phaseLabel);
  label.htmlFor = id;
  const input = el('input');
  input.id = id;
  input.name = 'phase';
  input.required = true;
  input.maxLength = 120;
  input.autocomplete = 'off';
  const button = el('button', 'button', TEXT.phaseSubmit);
  button.type = 'submit';
  const status = el('p', 'form-status');
  status.setAttribute('role', 'status');
  const row = el('div', 'form-row');
  row.append(input, button);
  form.append(label, row, status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const phase = input.value.trim();
    if (!phase) return;
    button.disabled = true;
    status.textContent = TEXT.posting;
    try {
      onPosted(await postPhase(ref, phase));
      status.textContent = TEXT.posted;
      input.value = '';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      status.textContent = notPosted(err.message);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
