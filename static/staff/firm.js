// The firm's settings (org admins): whether every staff member needs an
// authenticator (org admins always do), whether clients see their matters'
// timeline of steps, whether clients see when staff read their messages
// ("Seen by" receipts), and how long a client's access lasts after they
// accept an invite (empty: until removed).

import { el } from '../shared/dom.js';
import { button, busy, control, field, say, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { TIMELINE } from '../shared/strings_docs.js';
import { STAFF } from '../shared/strings_staff.js';
import { THREADS } from '../shared/strings_threads.js';
import { failed, load, panel } from './common.js';

export function firmPanel(ctx) {
  const section = panel('firm-settings', STAFF.firmTitle);
  load(ctx, section, () => api('GET', '/api/v1/firm')).then((data) => {
    if (!data) return;
    const firm = data.firm;
    const form = el('form', 'stack');
    const totp = control('require_totp', { type: 'checkbox', checked: Boolean(firm.require_totp) });
    const totpLabel = el('label', 'inline', STAFF.requireTotp);
    totpLabel.prepend(totp);
    const days = control('invite_expiry_days', {
      type: 'number',
      min: 1,
      max: 3650,
      inputMode: 'numeric',
      value: firm.invite_expiry_days ?? '',
    });
    const timeline = control('show_timeline', { type: 'checkbox', checked: firm.show_timeline !== false });
    const timelineLabel = el('label', 'inline', TIMELINE.showTimeline);
    timelineLabel.prepend(timeline);
    const receipts = control('show_staff_receipts', { type: 'checkbox', checked: firm.hide_staff_receipts !== true });
    const receiptsLabel = el('label', 'inline', THREADS.showStaffReceipts);
    receiptsLabel.prepend(receipts);
    const line = statusLine();
    form.append(totpLabel, timelineLabel, receiptsLabel, field(STAFF.accessDays, days, STAFF.accessDaysHint), button(STAFF.save), line);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {
        require_totp: totp.checked,
        show_timeline: timeline.checked,
        hide_staff_receipts: !receipts.checked,
        invite_expiry_days: days.value.trim() ? Number(days.value) : null,
      };
      const done = await busy(form, line, STAFF.saving, () => api('PATCH', '/api/v1/firm', body), (err) => {
        failed(ctx, line, err);
        return true;
      });
      if (done) say(line, STAFF.saved, 'ok');
    });
    section.append(form);
  });
  return section;
}
