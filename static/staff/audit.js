// The audit log (org admins): the newest entries of the firm's hash-chained
// log, and links that download all of it as CSV or JSON.

import { el } from '../shared/dom.js';
import { api } from '../shared/http.js';
import { STAFF } from '../shared/strings_staff.js';
import { facts, load, panel, when } from './common.js';

function actorText(entry) {
  const actor = entry.actor;
  if (actor && typeof actor === 'object') return actor.name || `${actor.kind} ${actor.id}`;
  return entry.actor_name || (entry.actor_kind ? `${entry.actor_kind} ${entry.actor_id ?? ''}` : actor);
}

function detailText(entry) {
  const detail = entry.detail ?? entry.details ?? entry.data;
  if (!detail || (typeof detail === 'object' && !Object.keys(detail).length)) return null;
  return typeof detail === 'string' ? detail : JSON.stringify(detail);
}

function entryRow(entry) {
  const li = el('li', 'audit-row');
  li.dataset.action = String(entry.action);
  li.append(
    facts([
      [STAFF.when, when(entry.at || entry.created_at)],
      [STAFF.action, entry.action],
      [STAFF.actor, actorText(entry)],
      [STAFF.source, entry.source || entry.ip || entry.address],
    ]),
  );
  const detail = detailText(entry);
  if (detail) li.append(el('p', 'hint', detail));
  return li;
}

export function auditView(ctx) {
  const section = panel('audit', STAFF.auditTitle);
  const exports = el('p', 'exports');
  for (const [format, text] of [['csv', STAFF.exportCsv], ['json', STAFF.exportJson]]) {
    const a = el('a', 'button quiet', text);
    a.href = `/api/v1/audit/export?format=${format}`;
    a.download = `audit.${format}`;
    exports.append(a);
  }
  section.append(exports);
  load(ctx, section, () => api('GET', '/api/v1/audit')).then((data) => {
    if (!data) return;
    const entries = data.entries || data.audit || [];
    if (!entries.length) return section.append(el('p', 'empty', STAFF.auditEmpty));
    const list = el('ul', 'rows');
    for (const entry of entries) list.append(entryRow(entry));
    section.append(list);
  });
  return { node: section };
}
