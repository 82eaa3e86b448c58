// Small builders for the portal's forms: a labelled field, a status line,
// a busy state while a request (or Argon2id) runs, and the text of an API
// error. Every text comes from the caller (strings.js); nothing here holds any.

import { el } from './dom.js';
import { ApiError } from './http.js';
import { ERRORS } from './strings.js';

let nextId = 0;

/** An <input> (or `tag`) with an id, a name and the given properties. */
export function control(name, props = {}, tag = 'input') {
  const node = document.createElement(tag);
  nextId += 1;
  node.id = `f-${name}-${nextId}`;
  node.name = name;
  Object.assign(node, props);
  return node;
}

/** A labelled field: `<div class="field"><label>…</label>control<p hint></div>`. */
export function field(labelText, node, hint) {
  const box = el('div', 'field');
  const label = el('label', null, labelText);
  label.htmlFor = node.id;
  box.append(label, node);
  if (hint) {
    const help = el('p', 'hint', hint);
    help.id = `${node.id}-hint`;
    node.setAttribute('aria-describedby', help.id);
    box.append(help);
  }
  return box;
}

/** A <select> of `[value, text]` options. */
export function select(name, options, value) {
  const node = control(name, {}, 'select');
  for (const [v, text] of options) {
    const option = el('option', null, text);
    option.value = v;
    // defaultSelected: a form.reset() comes back to `value`, not the first option
    option.defaultSelected = v === value;
    node.append(option);
  }
  if (value !== undefined) node.value = value;
  return node;
}

/** A button; `type` defaults to submit. */
export function button(text, className = 'button', type = 'submit') {
  const node = el('button', className, text);
  node.type = type;
  return node;
}

/** The live status line under a form. */
export function statusLine() {
  const line = el('p', 'form-status');
  line.setAttribute('role', 'status');
  line.setAttribute('aria-live', 'polite');
  return line;
}

/** Show `text` in `line`; `kind` is '' | 'error' | 'ok' | 'busy' (a CSS hook). */
export function say(line, text, kind = '') {
  line.textContent = text || '';
  line.dataset.kind = kind;
}

/** The user's text for an error: a known API code (or `details.reason`), else its message. */
export function errorText(err) {
  if (err instanceof ApiError) {
    const reason = err.details && typeof err.details.reason === 'string' ? err.details.reason : null;
    return ERRORS[reason] || ERRORS[err.code] || err.message;
  }
  if (err && typeof err.code === 'string' && ERRORS[err.code]) return ERRORS[err.code];
  return String((err && err.message) || err);
}

/**
 * Run `work()` with the form's buttons disabled and `busyText` in the
 * status line; an error is shown there (and returned as null) unless
 * `onError` handles it (returns true).
 */
export async function busy(form, line, busyText, work, onError) {
  const buttons = [...form.querySelectorAll('button')];
  for (const b of buttons) b.disabled = true;
  form.setAttribute('aria-busy', 'true');
  say(line, busyText, 'busy');
  try {
    const result = await work();
    say(line, '');
    return result;
  } catch (err) {
    if (!(onError && onError(err))) say(line, errorText(err), 'error');
    return null;
  } finally {
    for (const b of buttons) b.disabled = false;
    form.removeAttribute('aria-busy');
  }
}
