// The matters list: each matter with its portal state (ON / OFF), and the
// form that creates a matter (matter admins and org admins).

import { el } from '../shared/dom.js';
import { button, busy, control, field, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { STAFF, matterHeading } from '../shared/strings_staff.js';
import { load, panel, routeHref } from './common.js';

/** A matter's reference, whichever name the answer uses. */
export const refOf = (matter) => matter.ref || matter.reference;

/** Whether a matter's portal is on (an answer's `portal` flag or state). */
export function portalOn(matter) {
  const value = matter.portal ?? matter.portal_on ?? matter.portal_state;
  return value === true || value === 'on';
}

/** The "Portal ON" / "Portal OFF" badge. */
export function portalBadge(on) {
  const badge = el('span', on ? 'badge portal-badge on' : 'badge portal-badge off', on ? STAFF.portalOn : STAFF.portalOff);
  badge.dataset.portal = on ? 'on' : 'off';
  return badge;
}

function matterRow(matter) {
  const ref = refOf(matter);
  const li = el('li', 'matter-row');
  li.dataset.ref = ref;
  const a = el('a', 'matter-link', matterHeading(matter.title, ref));
  a.href = routeHref('matter', ref);
  const meta = el('p', 'row-meta');
  if (matter.matter_type) meta.append(el('span', null, matter.matter_type));
  li.append(a, portalBadge(portalOn(matter)), meta);
  return li;
}

function createForm(ctx) {
  const form = el('form', 'stack create-matter');
  form.id = 'create-matter';
  const ref = control('reference', { maxLength: 8, pattern: '[A-Z]{4}[0-9]{4}', autocapitalize: 'characters' });
  const title = control('title', { required: true, maxLength: 300 });
  const type = control('matter_type', { maxLength: 64 });
  const line = statusLine();
  form.append(
    el('h3', null, STAFF.newMatter),
    field(STAFF.title, title),
    field(STAFF.matterType, type),
    field(STAFF.ref, ref, STAFF.refHint),
    button(STAFF.createMatter),
    line,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { title: title.value.trim() };
    if (type.value.trim()) body.matter_type = type.value.trim();
    if (ref.value.trim()) body.reference = ref.value.trim().toUpperCase();
    const data = await busy(form, line, STAFF.saving, () => api('POST', '/api/v1/matters', body));
    if (data) ctx.go(routeHref('matter', refOf(data.matter || data)));
  });
  return form;
}

export function mattersView(ctx) {
  const section = panel('matters-list', STAFF.matters);
  const list = el('ul', 'rows');
  section.append(list);
  if (ctx.principal.role === 'org_admin' || ctx.principal.role === 'matter_admin') {
    section.append(createForm(ctx));
  }
  load(ctx, section, () => api('GET', '/api/v1/matters')).then((data) => {
    if (!data) return;
    if (!data.matters.length) list.replaceWith(el('p', 'empty', STAFF.noMatters));
    for (const matter of data.matters) list.append(matterRow(matter));
  });
  return { node: section };
}
