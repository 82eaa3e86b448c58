// What the staff views share: a titled panel, loading a view's data with a
// status line, and the one answer to a 401 (the session ended: sign in).

import { el } from '../shared/dom.js';
import { errorText, say, statusLine } from '../shared/forms.js';
import { ApiError } from '../shared/http.js';
import { STAFF } from '../shared/strings_staff.js';

/** The fragment of a staff view: `#/matters`, `#/matter/ABCD1234`, `#/matter/ABCD1234/t1` (a thread). */
export const routeHref = (name, arg, sub) =>
  `#/${name}${arg ? `/${encodeURIComponent(arg)}` : ''}${arg && sub ? `/${encodeURIComponent(sub)}` : ''}`;

/** `<section class="panel" id=…><h2>title</h2></section>` */
export function panel(id, title) {
  const section = el('section', 'panel');
  section.id = id;
  const heading = el('h2', null, title);
  heading.id = `${id}-title`;
  section.setAttribute('aria-labelledby', heading.id);
  section.append(heading);
  return section;
}

/** Show an error in `line`; a 401 ends the staff app (sign in again). */
export function failed(ctx, line, err) {
  if (err instanceof ApiError && err.status === 401) {
    ctx.onSignedOut();
    return;
  }
  say(line, errorText(err), 'error');
}

/** Load with "Loading…" in a status line appended to `node`; resolves with the data or null. */
export async function load(ctx, node, work) {
  const line = statusLine();
  node.append(line);
  say(line, STAFF.loading, 'busy');
  try {
    const data = await work();
    line.remove();
    return data;
  } catch (err) {
    failed(ctx, line, err);
    return null;
  }
}

/** A compact `<dl>` of [term, value] rows (a record in a list). */
export function facts(rows) {
  const list = el('dl', 'facts');
  for (const [term, value] of rows) {
    if (value === undefined || value === null || value === '') continue;
    const row = el('div', 'fact');
    row.append(el('dt', null, term), el('dd', null, value));
    list.append(row);
  }
  return list;
}

/** An ISO time as the reader's local date and time. */
export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso || '') : d.toLocaleString();
}
