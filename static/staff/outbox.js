// The outbox (org admins): every email and SMS the firm sent or holds,
// newest first, with its delivery status. A held message shows its text:
// without SMTP or an SMS provider this is where it is read.

import { el } from '../shared/dom.js';
import { api } from '../shared/http.js';
import { METHOD, STAFF } from '../shared/strings_staff.js';
import { facts, load, panel, when } from './common.js';

function messageRow(m) {
  const li = el('li', 'outbox-row');
  li.dataset.channel = String(m.channel);
  li.dataset.status = String(m.status);
  li.append(
    facts([
      [STAFF.when, when(m.created_at)],
      [STAFF.channel, METHOD[m.channel] || m.channel],
      [STAFF.to, m.recipient],
      [STAFF.subject, m.subject],
      [STAFF.status, m.error ? `${m.status}: ${m.error}` : m.status],
    ]),
  );
  if (m.body) li.append(el('pre', 'message-body', m.body));
  return li;
}

export function outboxView(ctx) {
  const section = panel('outbox', STAFF.outboxTitle);
  load(ctx, section, () => api('GET', '/api/v1/outbox')).then((data) => {
    if (!data) return;
    const messages = data.messages || [];
    if (!messages.length) return section.append(el('p', 'empty', STAFF.outboxEmpty));
    const list = el('ul', 'rows');
    for (const m of messages) list.append(messageRow(m));
    section.append(list);
  });
  return { node: section };
}
