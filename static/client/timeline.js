// A client's timeline of steps for one matter (docs/threads.md "Phase
// timeline"): the step names and descriptions, the current one marked. It
// never holds a phase: the server sends clients steps only.
//
// It reads GET /api/v1/matters/{ref}/timeline and reads it again when a
// `step` event arrives (live, or in a history page): the event is published
// after its commit, so the read sees that step or a newer one, and reads are
// coalesced so a page full of old step events costs at most two. Under the
// steps: the open requests that stand before the next step (`blocking`),
// read again on `document` events.

import { el } from '../shared/dom.js';
import { coalesced } from '../shared/coalesce.js';
import { api, ApiError } from '../shared/http.js';
import { DOCS, TIMELINE, stepOf } from '../shared/strings_docs.js';

function stepItem(step, index, current) {
  const state = current === null || index > current ? 'upcoming' : index === current ? 'current' : 'done';
  const item = el('li', `step ${state}`);
  item.dataset.index = String(index);
  const head = el('p', 'step-head');
  head.append(el('span', 'step-name', step.name));
  if (state === 'current') {
    item.setAttribute('aria-current', 'step');
    head.append(el('span', 'badge step-badge', TIMELINE.current));
  } else if (state === 'done') {
    head.append(el('span', 'visually-hidden', ` (${TIMELINE.done})`));
  }
  item.append(head);
  if (step.description && state === 'current') item.append(el('p', 'step-description', step.description));
  return item;
}

/**
 * The timeline of matter `ref`: `{element, onEvent(event)}`. Hidden until
 * the firm shows it and the matter has steps. `onSignedOut()` on a 401.
 */
export function timelineView(ref, { onSignedOut = () => {} } = {}) {
  const element = el('section', 'timeline');
  element.id = `timeline-${ref}`;
  element.hidden = true;
  const title = el('h3', 'timeline-title', TIMELINE.title);
  title.id = `timeline-${ref}-title`;
  element.setAttribute('aria-labelledby', title.id);
  const summary = el('p', 'timeline-summary');
  summary.setAttribute('aria-live', 'polite');
  const list = el('ol', 'steps');
  const blocking = el('div', 'timeline-blocking');
  element.append(title, summary, list, blocking);

  // The open requests before the next step (docs/documents.md "What blocks the next step").
  function renderBlocking(items) {
    blocking.hidden = items.length === 0;
    const rows = items.map((b) => {
      const row = el('li', 'blocking-item', `${b.label} `);
      row.append(el('span', `badge doc-status doc-${b.status}`, DOCS.status[b.status] || b.status));
      return row;
    });
    const ul = el('ul', 'blocking-list');
    ul.append(...rows);
    blocking.replaceChildren(el('p', 'blocking-title', DOCS.blocking), ul);
  }

  function render(timeline) {
    const steps = Array.isArray(timeline.steps) ? timeline.steps : [];
    element.hidden = !timeline.shown || steps.length === 0;
    const current = Number.isInteger(timeline.current) ? timeline.current : null;
    element.dataset.current = current === null ? '' : String(current);
    summary.textContent = current === null ? '' : `${stepOf(current, steps.length)}: ${steps[current].name}`;
    list.replaceChildren(...steps.map((step, i) => stepItem(step, i, current)));
    renderBlocking(Array.isArray(timeline.blocking) ? timeline.blocking : []);
  }

  const refresh = coalesced(
    async () => render((await api('GET', `/api/v1/matters/${encodeURIComponent(ref)}/timeline`)).timeline),
    (err) => {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      // Anything else: the timeline stays as it was; the next step event reads again.
    },
  );

  refresh();
  return {
    element,
    onEvent(event) {
      // a step moves the timeline; a document changes what blocks the next step
      if (event.kind === 'step' || event.kind === 'document') refresh();
    },
  };
}
