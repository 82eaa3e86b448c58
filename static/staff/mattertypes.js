// The firm's matter types (org admins, in firm settings): each type's client
// steps (name, description) and internal phases, each phase showing one step
// or keeping the client on the step before it. Saved whole: POST or PATCH
// /api/v1/firm/matter-types[/{id}], where a phase names its step by index
// and rows keep their ids (a matter on a kept phase stays on it).

import { el } from '../shared/dom.js';
import { button, control, errorText, field, say, select, statusLine } from '../shared/forms.js';
import { api, ApiError } from '../shared/http.js';
import { TIMELINE, phaseRow, stepRow } from '../shared/strings_docs.js';
import { failed, load, panel } from './common.js';

const MAX_ITEMS = 50;

function moveIn(list, index, by) {
  const to = index + by;
  if (to < 0 || to >= list.length) return;
  [list[index], list[to]] = [list[to], list[index]];
}

/** Up, down and remove buttons of row `index` of `list`; `changed()` redraws. */
function rowTools(list, index, changed) {
  const tools = el('div', 'row-tools');
  for (const [text, act] of [
    [TIMELINE.up, () => moveIn(list, index, -1)],
    [TIMELINE.down, () => moveIn(list, index, 1)],
    [TIMELINE.remove, () => list.splice(index, 1)],
  ]) {
    const b = button(text, 'button quiet', 'button');
    b.addEventListener('click', () => {
      act();
      changed();
    });
    tools.append(b);
  }
  return tools;
}

/**
 * The editor of one type (`type` null: a new one); `onSaved(type)` after a
 * save (which redraws the entry: `note` is its first status line).
 */
function typeEditor(ctx, type, onSaved, note) {
  const form = el('form', 'stack type-editor');
  // Phases hold their step object, not an index, so reordering steps keeps the mapping.
  const steps = (type ? type.steps : []).map((s) => ({ ...s }));
  const phases = (type ? type.phases : []).map((p) => ({
    id: p.id,
    name: p.name,
    step: p.step === null ? null : steps[p.step],
  }));
  const name = control('type_name', { value: type ? type.name : '', maxLength: 200, required: true });
  const stepsBox = el('fieldset', 'type-list');
  const phasesBox = el('fieldset', 'type-list');
  const line = statusLine();

  function drawSteps() {
    const rows = steps.map((step, i) => {
      const row = el('div', 'type-row');
      row.setAttribute('role', 'group');
      row.setAttribute('aria-label', stepRow(i + 1));
      const stepName = control('step_name', { value: step.name, maxLength: 200, required: true });
      stepName.addEventListener('input', () => {
        step.name = stepName.value;
        drawPhases(); // the phase selects show step names
      });
      const text = control('step_description', { value: step.description || '', maxLength: 2000, rows: 2 }, 'textarea');
      text.addEventListener('input', () => (step.description = text.value));
      row.append(field(TIMELINE.stepName, stepName), field(TIMELINE.stepDescription, text), rowTools(steps, i, redraw));
      return row;
    });
    const add = button(TIMELINE.addStep, 'button quiet', 'button');
    add.disabled = steps.length >= MAX_ITEMS;
    add.addEventListener('click', () => {
      steps.push({ name: '', description: '' });
      redraw();
    });
    stepsBox.replaceChildren(el('legend', null, TIMELINE.steps), ...rows, add);
  }

  function drawPhases() {
    const rows = phases.map((phase, i) => {
      const row = el('div', 'type-row');
      row.setAttribute('role', 'group');
      row.setAttribute('aria-label', phaseRow(i + 1));
      const phaseName = control('phase_name', { value: phase.name, maxLength: 200, required: true });
      phaseName.addEventListener('input', () => (phase.name = phaseName.value));
      const options = [['', TIMELINE.noStep], ...steps.map((s, n) => [String(n), s.name || stepRow(n + 1)])];
      const at = phase.step ? steps.indexOf(phase.step) : -1;
      const choice = select('phase_step', options, at < 0 ? '' : String(at));
      choice.addEventListener('change', () => (phase.step = choice.value === '' ? null : steps[Number(choice.value)]));
      row.append(field(TIMELINE.phaseName, phaseName), field(TIMELINE.phaseStep, choice), rowTools(phases, i, redraw));
      return row;
    });
    const add = button(TIMELINE.addPhase, 'button quiet', 'button');
    add.disabled = phases.length >= MAX_ITEMS;
    add.addEventListener('click', () => {
      phases.push({ name: '', step: steps[steps.length - 1] || null });
      redraw();
    });
    phasesBox.replaceChildren(el('legend', null, TIMELINE.phases), ...rows, add);
  }

  function redraw() {
    for (const phase of phases) if (phase.step && !steps.includes(phase.step)) phase.step = null;
    drawSteps();
    drawPhases();
  }

  function body() {
    const idOf = (row) => (row.id ? { id: row.id } : {});
    return {
      name: name.value,
      steps: steps.map((s) => ({ ...idOf(s), name: s.name, description: s.description || '' })),
      phases: phases.map((p) => ({ ...idOf(p), name: p.name, step: p.step ? steps.indexOf(p.step) : null })),
    };
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    say(line, TIMELINE.saving, 'busy');
    try {
      const answer = type
        ? await api('PATCH', `/api/v1/firm/matter-types/${type.id}`, body())
        : await api('POST', '/api/v1/firm/matter-types', body());
      onSaved(answer.matter_type);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) failed(ctx, line, err);
      const reason = err instanceof ApiError && err.details ? err.details.reason : null;
      say(line, TIMELINE.errors[reason] || errorText(err), 'error');
    } finally {
      for (const b of form.querySelectorAll('button')) b.disabled = false;
      redraw();
    }
  });

  redraw();
  if (note) say(line, note, 'ok');
  form.append(field(TIMELINE.typeName, name), stepsBox, phasesBox, button(type ? TIMELINE.save : TIMELINE.create), line);
  return form;
}

/** One collapsible entry per type, and a new type's editor at the end. */
export function matterTypesPanel(ctx) {
  const section = panel('matter-types', TIMELINE.typesTitle);
  section.append(el('p', 'hint', TIMELINE.typesIntro));
  const list = el('div', 'stack');
  section.append(list);

  function entry(type, open, note) {
    const box = el('details', 'type-entry');
    box.open = open;
    const label = el('summary', null, type ? type.name : TIMELINE.newType);
    const saved = (stored) => {
      if (!type) box.after(entry(null, false)); // a fresh "new type" entry stays last
      box.replaceWith(entry(stored, true, TIMELINE.saved));
    };
    box.append(label, typeEditor(ctx, type, saved, note));
    return box;
  }

  load(ctx, section, () => api('GET', '/api/v1/firm/matter-types')).then((data) => {
    if (!data) return;
    list.replaceChildren(...data.matter_types.map((t) => entry(t, false)), entry(null, false));
  });
  return section;
}
