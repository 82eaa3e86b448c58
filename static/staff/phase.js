// Staff tools under a matter's conversation, loaded only when a staff member
// signs in: the phase control. It shows the matter's internal phase and the
// step its client sees, and moves the matter to another phase (POST
// /api/v1/matters/{ref}/phase): the server writes the staff `phase` event
// and, only when the client's step changes, the client's `step` event.

import { el } from '../shared/dom.js';
import { button, errorText, field, say, select, statusLine } from '../shared/forms.js';
import { api, ApiError } from '../shared/http.js';
import { TIMELINE, clientSees, phaseOption } from '../shared/strings_docs.js';

const path = (ref, what) => `/api/v1/matters/${encodeURIComponent(ref)}/${what}`;

/** `[value, text]` options: the matter's own type's phases, else every type's. */
function phaseOptions(timeline, types) {
  const own = timeline.matter_type ? [timeline.matter_type] : types;
  const options = [];
  for (const type of own) {
    for (const phase of type.phases) {
      const step = phase.step === null ? null : type.steps[phase.step].name;
      const text = phaseOption(phase.name, step);
      options.push([String(phase.id), own.length > 1 ? `${type.name}: ${text}` : text]);
    }
  }
  return options;
}

function summary(timeline) {
  const line = el('p', 'phase-summary');
  const steps = timeline.steps;
  const current = timeline.current;
  line.textContent = timeline.matter_type
    ? clientSees(current === null ? null : steps[current].name, current, steps.length)
    : TIMELINE.noType;
  return line;
}

/**
 * The phase control of matter `ref`; `onSignedOut()` on a 401. (`onPosted`
 * is not called: the moved matter's events arrive over the websocket.)
 */
export function phaseForm(ref, { onSignedOut }) {
  const form = el('form', 'phase-form');
  form.id = `phase-${ref}`;
  const status = statusLine();
  let types = [];

  function render(timeline) {
    const options = phaseOptions(timeline, types);
    if (!options.length) {
      form.replaceChildren(el('p', 'empty', TIMELINE.noTypes));
      return;
    }
    const current = timeline.phase === null ? undefined : String(timeline.phase);
    const choice = select('phase', options, current ?? options[0][0]);
    const row = el('div', 'form-row');
    row.append(choice, button(TIMELINE.move));
    const parts = [field(TIMELINE.phase, choice), summary(timeline)];
    if (!timeline.shown) parts.push(el('p', 'hint', TIMELINE.hiddenFromClients));
    // the select sits in the row beside its button; its label stays in the field
    parts[0].append(row);
    form.replaceChildren(...parts, status);
  }

  async function load() {
    try {
      const [timeline, listed] = await Promise.all([
        api('GET', path(ref, 'timeline')),
        api('GET', '/api/v1/firm/matter-types'),
      ]);
      types = listed.matter_types;
      render(timeline.timeline);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      form.replaceChildren(status);
      say(status, errorText(err), 'error');
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const choice = form.querySelector('select');
    const buttons = form.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    say(status, TIMELINE.moving, 'busy');
    try {
      const answer = await api('POST', path(ref, 'phase'), { phase: Number(choice.value) });
      render(answer.timeline);
      say(status, answer.events.length ? TIMELINE.moved : TIMELINE.unchanged, 'ok');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      say(status, errorText(err), 'error');
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  });
  load();
  return form;
}
