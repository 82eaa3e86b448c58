// The review inbox (`#/reviews`, docs/reviews.md): what clients sent that
// awaits the signed-in staff member's review, oldest review date first, in
// pages (`Show more`), narrowed to what is due or overdue. Each row: Portal
// Doc or Portal Message, the due/overdue marker, the matter (a link to its
// page), the client, the review date, when it came. Actions: mark reviewed
// (the row leaves), reassign to a colleague (the row leaves), change the
// review date (the row shows the new one). When the live count says more
// came in than the list shows, a line offers to show them. Server text (the
// matter's title, the client's name) goes in as text only.
//
// Stable hooks for tests:
//   #review-inbox                the panel
//   #review-filter               form: select[name=due] (all | due | overdue)
//   #review-changed              "New items arrived" with button.review-reload (hidden until then)
//   #review-list                 <ol> of li.review-row[data-id][data-kind=message|document][data-due=1|0][data-overdue=1|0]
//     .review-kind .review-due-badge .review-open (link to #/matter/<ref>, a message's: #/matter/<ref>/<thread>) .facts .review-on
//     .review-actions button.review-done button.review-reassign button.review-date
//     form.review-form[data-form=reassign|date]: select[name=reviewer] | input[name=review_on], button[type=submit], button.review-cancel
//     .form-status
//   #review-more                 "Show more" (hidden without a next page)
//   #review-status               the inbox's status line

import { el } from '../shared/dom.js';
import { formatTime } from '../shared/format.js';
import { button, busy, errorText, say, statusLine } from '../shared/forms.js';
import { ApiError, api } from '../shared/http.js';
import { REVIEWS, matterHeading, reviewActions } from '../shared/strings_staff.js';
import { facts, panel, routeHref } from './common.js';

const PAGE = 50;
const id = encodeURIComponent;

/** The inbox's calls (docs/reviews.md); the DOM test hands the view its own. */
export const REVIEW_API = {
  page(due, after) {
    const q = new URLSearchParams({ due, limit: String(PAGE) });
    if (after) q.set('after', after);
    return api('GET', `/api/v1/reviews?${q}`);
  },
  reviewers: () => api('GET', '/api/v1/reviews/reviewers'),
  reviewed: (rid) => api('POST', `/api/v1/reviews/${id(rid)}/reviewed`, {}),
  reassign: (rid, reviewer) => api('POST', `/api/v1/reviews/${id(rid)}/reassign`, { reviewer }),
  move: (rid, reviewOn) => api('PATCH', `/api/v1/reviews/${id(rid)}`, { review_on: reviewOn }),
};

let dateFormat = null;

/** A review date (`YYYY-MM-DD`, the firm's day) as the reader's medium date; other text as is. */
export function reviewDate(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(text || ''));
  if (!m) return String(text || '');
  if (!dateFormat) dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
  return dateFormat.format(new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))));
}

/** The words for a failed act: the review's own reasons, else the API's. */
export function reviewError(err) {
  const reason = err instanceof ApiError && err.details ? err.details.reason : null;
  return REVIEWS.errors[reason] || REVIEWS.errors[err && err.code] || errorText(err);
}

const kindOf = (review) => (review.kind === 'document' ? 'document' : 'message');
const labelOf = (review) => REVIEWS.kind[kindOf(review)];
const senderOf = (review) => (review.sender && review.sender.name) || REVIEWS.unknownSender;

/** Fill `li` with what it shows of `review` (again after the date moved). */
function drawFacts(li, review) {
  li.dataset.due = review.due ? '1' : '0';
  li.dataset.overdue = review.overdue ? '1' : '0';
  const head = el('p', 'review-head');
  head.append(el('span', `badge review-kind ${kindOf(review)}`, labelOf(review)));
  if (review.overdue) head.append(el('span', 'badge review-due-badge overdue', REVIEWS.overdue));
  else if (review.due) head.append(el('span', 'badge review-due-badge due', REVIEWS.due));
  const on = el('time', 'review-on', reviewDate(review.review_on));
  on.dateTime = String(review.review_on || '');
  head.append(on);
  const open = el('a', 'review-open', matterHeading(review.matter_title, review.matter));
  // a message opens its thread on the matter's page; a document, the page (its checklist)
  const thread = kindOf(review) === 'message' && typeof review.thread === 'string' ? review.thread : null;
  open.href = routeHref('matter', review.matter, thread);
  const files = Array.isArray(review.files) && review.files.length ? String(review.files.length) : null;
  const list = facts([
    [REVIEWS.client, senderOf(review)],
    [REVIEWS.reviewOn, reviewDate(review.review_on)],
    [REVIEWS.received, review.received_at ? formatTime(review.received_at) : null],
    [REVIEWS.files, files],
  ]);
  li.querySelector('.review-body').replaceChildren(head, open, list);
}

/**
 * One row of the inbox. `opts`: reviewers () -> [{id, name}] (whom to give it
 * to), me (the signed-in staff id), act(name, review, value) -> Promise of the
 * answer or a thrown ApiError, gone(li, text) (the row left the inbox),
 * onSignedOut().
 */
export function reviewRow(review, opts) {
  const li = el('li', 'review-row');
  li.dataset.id = String(review.id);
  li.dataset.kind = kindOf(review);
  const body = el('div', 'review-body');
  li.append(body);
  drawFacts(li, review);

  const actions = el('div', 'review-actions');
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-label', reviewActions(labelOf(review), senderOf(review)));
  const done = button(REVIEWS.markReviewed, 'button review-done', 'button');
  const reassign = button(REVIEWS.reassign, 'button quiet review-reassign', 'button');
  const date = button(REVIEWS.changeDate, 'button quiet review-date', 'button');
  actions.append(done, reassign, date);
  const line = statusLine();
  li.append(actions, line);

  const failed = (err) => {
    if (err instanceof ApiError && err.status === 401) opts.onSignedOut();
    else say(line, reviewError(err), 'error');
    return true;
  };

  done.addEventListener('click', async () => {
    const answer = await busy(actions, line, REVIEWS.marking, () => opts.act('reviewed', review), failed);
    if (answer) opts.gone(li, REVIEWS.reviewed);
  });

  let form = null;
  function closeForm(focus) {
    if (!form) return;
    form.remove();
    form = null;
    if (focus) focus.focus();
  }

  function openForm(kind, opener, control, labelText, submitText, submit) {
    const again = form && form.dataset.form === kind;
    closeForm();
    if (again) return;
    form = el('form', 'review-form');
    form.dataset.form = kind;
    const label = el('label', 'review-form-label');
    label.append(el('span', null, labelText), control);
    const cancel = button(REVIEWS.cancel, 'button quiet review-cancel', 'button');
    cancel.addEventListener('click', () => closeForm(opener));
    form.append(label, button(submitText, 'button'), cancel);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const answer = await busy(form, line, REVIEWS.saving, () => submit(control.value), failed);
      if (answer) submitted(kind, answer, opener);
    });
    actions.after(form);
    control.focus();
  }

  function submitted(kind, answer, opener) {
    const now = answer.review || review;
    if (kind === 'reassign' && answer.changed && now.reviewer !== opts.me) {
      opts.gone(li, REVIEWS.reassigned);
      return;
    }
    Object.assign(review, now);
    drawFacts(li, review);
    closeForm(opener);
    say(line, kind === 'date' ? REVIEWS.moved : REVIEWS.reassigned, 'ok');
  }

  reassign.addEventListener('click', async () => {
    const pick = el('select');
    pick.name = 'reviewer';
    pick.required = true;
    const none = el('option', null, '');
    none.value = '';
    pick.append(none);
    for (const person of await opts.reviewers()) {
      if (person.id === opts.me) continue;
      const o = el('option', null, person.name);
      o.value = String(person.id);
      pick.append(o);
    }
    openForm('reassign', reassign, pick, REVIEWS.reassignTo, REVIEWS.reassignSubmit, (value) =>
      opts.act('reassign', review, Number(value)),
    );
  });

  date.addEventListener('click', () => {
    const input = el('input');
    input.type = 'date';
    input.name = 'review_on';
    input.required = true;
    input.value = String(review.review_on || '');
    openForm('date', date, input, REVIEWS.newDate, REVIEWS.changeDateSubmit, (value) => opts.act('move', review, value));
  });

  return li;
}

function option(value, text) {
  const o = el('option', null, text);
  o.value = value;
  return o;
}

/**
 * The inbox view. `ctx.reviews`: the live count (staff/reviewcount.js), or
 * none; `calls`: REVIEW_API unless a test hands its own.
 */
export function reviewsView(ctx, _arg, calls = REVIEW_API) {
  const section = panel('review-inbox', REVIEWS.title);
  const intro = el('p', 'hint', REVIEWS.intro);
  const filter = el('form', 'review-filter');
  filter.id = 'review-filter';
  const due = el('select');
  due.name = 'due';
  due.append(option('all', REVIEWS.all), option('due', REVIEWS.due), option('overdue', REVIEWS.overdue));
  const filterLabel = el('label', 'review-form-label');
  filterLabel.append(el('span', null, REVIEWS.show), due);
  filter.append(filterLabel);
  const changed = el('p', 'review-changed');
  changed.id = 'review-changed';
  changed.hidden = true;
  const reload = button(REVIEWS.reload, 'button quiet review-reload', 'button');
  changed.append(el('span', null, REVIEWS.changed), reload);
  const line = statusLine();
  line.id = 'review-status';
  const list = el('ol', 'review-list');
  list.id = 'review-list';
  const empty = el('p', 'empty');
  empty.hidden = true;
  const more = button(REVIEWS.more, 'button quiet', 'button');
  more.id = 'review-more';
  more.hidden = true;
  section.append(intro, filter, changed, line, list, empty, more);
  section.querySelector('h2').tabIndex = -1; // where focus goes when the last row leaves

  let next = null;
  let stopped = false;
  let generation = 0; // a page answered after the filter changed is dropped
  let known = null; // the open count the list accounts for
  let people = null;
  const me = ctx.principal.id;

  const reviewers = () => {
    if (!people) people = calls.reviewers().then((d) => d.reviewers || [], () => ((people = null), []));
    return people;
  };

  async function act(name, review, value) {
    const leaves = name === 'reviewed' || (name === 'reassign' && value !== me);
    if (leaves && known !== null) known -= 1; // before the count's frame can come
    let answer = null;
    try {
      if (name === 'reviewed') answer = await calls.reviewed(review.id);
      else if (name === 'reassign') answer = await calls.reassign(review.id, value);
      else answer = await calls.move(review.id, value);
    } finally {
      // refused, or done already by someone else: this act moved no count
      if (leaves && known !== null && !(answer && answer.changed)) known += 1;
    }
    return answer;
  }

  function gone(li, text) {
    const after = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    say(line, text, 'ok');
    drawEmpty();
    const target = after && after.querySelector('.review-open');
    (target || section.querySelector('h2')).focus();
  }

  function drawEmpty() {
    const none = list.children.length === 0 && !next;
    empty.hidden = !none;
    empty.textContent = due.value === 'all' ? REVIEWS.empty : REVIEWS.emptyFiltered;
  }

  const rowOpts = { reviewers, me, act, gone, onSignedOut: ctx.onSignedOut };

  async function page(first) {
    const mine = first ? (generation += 1) : generation;
    if (first) {
      next = null;
      changed.hidden = true;
      if (ctx.reviews && ctx.reviews.counts) known = ctx.reviews.counts.open;
    }
    more.disabled = true;
    if (line.dataset.kind === 'error') say(line, '');
    try {
      const answer = await calls.page(due.value, next);
      if (stopped || mine !== generation) return;
      const rows = (answer.reviews || []).map((r) => reviewRow(r, rowOpts));
      if (first) list.replaceChildren(...rows);
      else list.append(...rows);
      next = answer.next || null;
    } catch (err) {
      if (stopped || mine !== generation) return;
      if (err instanceof ApiError && err.status === 401) {
        ctx.onSignedOut();
        return;
      }
      say(line, reviewError(err), 'error');
    } finally {
      more.disabled = false;
    }
    more.hidden = !next;
    drawEmpty();
    section.dataset.loaded = '1';
  }

  const unwatch = ctx.reviews
    ? ctx.reviews.onChange((counts) => {
        if (known !== null && counts.open > known) changed.hidden = false;
        known = counts.open;
      })
    : () => {};

  due.addEventListener('change', () => page(true));
  filter.addEventListener('submit', (e) => e.preventDefault());
  more.addEventListener('click', () => page(false));
  reload.addEventListener('click', () => page(true));
  page(true);

  return {
    node: section,
    stop() {
      stopped = true;
      unwatch();
    },
  };
}
