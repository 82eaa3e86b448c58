// A page for tests/test_reviews_dom.py: the review inbox (staff/reviews.js)
// and the count's link (staff/reviewcount.js) in Chromium, fed the answers of
// docs/reviews.md by recording stand-ins for the API (the static server that
// serves this page has none). Server text holds markup: it must show as text.
// The test drives it through `window.check` and reads the hooks the modules
// document.
import { ApiError } from '../../shared/http.js';
import { countLink, readCounts, showCounts } from '../reviewcount.js';
import { reviewsView } from '../reviews.js';

const ME = 3;
const XSS_TITLE = 'Visa <img src=x onerror="window.pwned=1">';
const XSS_NAME = 'Cleo <script>window.pwned=2</script>';
const review = (id, kind, over) => ({
  id,
  matter: 'AAAA0000',
  matter_title: XSS_TITLE,
  kind,
  label: kind === 'document' ? 'Portal Doc' : 'Portal Message',
  ref: kind === 'document' ? `d${id}.1` : `c12.m-${id}`,
  thread: kind === 'document' ? null : 't1',
  request: kind === 'document' ? `d${id}` : null,
  files: kind === 'document' ? [7, 8] : [],
  sender: { id: 12, name: XSS_NAME },
  reviewer: ME,
  review_on: over ? '2026-12-01' : '2026-12-07',
  due: true,
  overdue: over,
  received_at: '2026-12-07T01:02:03.456Z',
  reviewed_at: null,
  reviewed_by: null,
});
const ROWS = [review(1, 'document', true), review(2, 'message', false), review(3, 'document', false)];

const calls = [];
const api = {
  async page(due, after) {
    calls.push(['page', due, after]);
    if (due === 'overdue') return { reviews: ROWS.filter((r) => r.overdue), next: null };
    return after ? { reviews: [ROWS[2]], next: null } : { reviews: ROWS.slice(0, 2), next: '2026-12-07.2' };
  },
  async reviewers() {
    calls.push(['reviewers']);
    return { reviewers: [{ id: ME, name: 'Sam Staff' }, { id: 4, name: 'Tess <b>Staff</b>' }] };
  },
  async reviewed(id) {
    calls.push(['reviewed', id]);
    return { review: { ...ROWS.find((r) => r.id === id), reviewed_by: ME }, changed: true };
  },
  async reassign(id, reviewer) {
    calls.push(['reassign', id, reviewer]);
    return { review: { ...ROWS.find((r) => r.id === id), reviewer }, changed: true };
  },
  async move(id, reviewOn) {
    calls.push(['move', id, reviewOn]);
    if (reviewOn < '2000-01-01') {
      const err = new ApiError(400, 'bad_request', 'review_on: a date within ten years');
      err.details = { reason: 'review_date' };
      throw err;
    }
    return { review: { ...ROWS.find((r) => r.id === id), review_on: reviewOn, due: false, overdue: false }, changed: true };
  },
};

// the live count as the view sees it: its numbers and their changes
const listeners = new Set();
const reviews = {
  counts: { open: 3, due: 2, overdue: 1 },
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};
const link = countLink();
document.getElementById('count-slot').append(link);
let signedOut = 0;
const ctx = { principal: { kind: 'staff', id: ME }, reviews, onSignedOut: () => (signedOut += 1) };
const view = reviewsView(ctx, undefined, api);
document.getElementById('screen').append(view.node);

window.check = {
  calls: () => calls,
  signedOut: () => signedOut,
  counts(frame) {
    const counts = readCounts(frame);
    if (!counts) return false;
    reviews.counts = counts;
    showCounts(link, counts);
    for (const fn of listeners) fn(counts);
    return true;
  },
};
