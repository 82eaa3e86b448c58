// The staff app: a navigation bar and one view at a time, chosen by the
// URL fragment (`#/feed`, `#/matters`, `#/matter/ABCD1234`, `#/staff`, `#/outbox`,
// `#/audit`, `#/account`, `#/reviews`; anything else is the live stream of
// every matter, which client/main.js draws). Org admins also see staff,
// outbox and audit log. The bar carries the reviewer's live count
// (reviewcount.js), a link to the review inbox.

import { el } from '../shared/dom.js';
import { FEED, STAFF } from '../shared/strings_staff.js';
import { accountView } from './account.js';
import { routeHref } from './common.js';
import { auditView } from './audit.js';
import { feedView } from './feed.js';
import { matterView } from './matter.js';
import { mattersView } from './matters.js';
import { outboxView } from './outbox.js';
import { ReviewCount, countLink, showCounts } from './reviewcount.js';
import { reviewsView } from './reviews.js';
import { maintainFirmKeys } from './keysetup.js';
import { staffView } from './people.js';

const VIEWS = {
  feed: feedView,
  matters: mattersView,
  matter: matterView,
  staff: staffView,
  outbox: outboxView,
  audit: auditView,
  account: accountView,
  reviews: reviewsView,
};
const ADMIN_ONLY = new Set(['staff', 'outbox', 'audit']);

/** A part of a route as text; a malformed escape is no part. */
function decoded(part) {
  try {
    return part ? decodeURIComponent(part) : undefined;
  } catch (err) {
    return undefined;
  }
}

/**
 * `#/matter/ABCD1234` -> ['matter', 'ABCD1234']; `#/matter/ABCD1234/t1` (a thread
 * of it opened) -> ['matter', 'ABCD1234', 't1']; the stream view is [''].
 */
export function parseRoute(hash) {
  if (!hash.startsWith('#/')) return [''];
  const [name, arg, sub] = hash.slice(2).split('/').map(decoded);
  if (!name || !Object.hasOwn(VIEWS, name)) return [''];
  return sub ? [name, arg, sub] : [name, arg];
}

/**
 * Start the app in `root` for `principal` ({kind, id, name, role}).
 * `streams`: {show, hide} of the page's stream of every matter.
 * Returns {stop}.
 */
export function startStaff({ principal, root, streams, onSignedOut, onSessionEnded, onState }) {
  const admin = principal.role === 'org_admin';
  const nav = el('nav', 'staff-nav');
  nav.setAttribute('aria-label', STAFF.nav);
  const list = el('ul');
  const entries = [
    ['', STAFF.conversations],
    ['feed', FEED.nav],
    ['matters', STAFF.matters],
    ...(admin ? [['staff', STAFF.staff], ['outbox', STAFF.outbox], ['audit', STAFF.audit]] : []),
    ['account', STAFF.account],
  ];
  const links = new Map();
  for (const [name, text] of entries) {
    const a = el('a', null, text);
    a.href = name ? routeHref(name) : '#/';
    a.dataset.route = name;
    links.set(name, a);
    const li = el('li');
    li.append(a);
    list.append(li);
  }
  // the reviewer's count: after Activity, where the day's work starts
  const reviews = new ReviewCount({ principal });
  const countItem = el('li', 'review-count-item');
  const count = countLink();
  reviews.onChange((counts) => showCounts(count, counts));
  links.set('reviews', count);
  countItem.append(count);
  list.children[1].after(countItem);
  nav.append(list);
  const body = el('div', 'staff-view');
  root.replaceChildren(nav, body);

  const ctx = { principal, admin, reviews, onSignedOut, onSessionEnded, onState, go: (hash) => (location.hash = hash) };
  let current = null;

  function show() {
    let [name, arg, sub] = parseRoute(location.hash);
    if (ADMIN_ONLY.has(name) && !admin) name = 'matters';
    if (current && current.stop) current.stop();
    current = null;
    for (const [route, a] of links) {
      if (route === (name === 'matter' ? 'matters' : name)) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (!name) {
      body.replaceChildren();
      streams.show();
      return;
    }
    streams.hide();
    onState('idle'); // no live stream on this view (a matter's page goes live itself)
    current = VIEWS[name](ctx, arg, sub);
    body.replaceChildren(current.node);
    window.scrollTo(0, 0);
  }

  window.addEventListener('hashchange', show);
  show();
  reviews.start();
  if (admin) maintainFirmKeys(ctx); // re-sign the revocation list past half its life (silent)
  return {
    stop() {
      window.removeEventListener('hashchange', show);
      reviews.stop();
      if (current && current.stop) current.stop();
      current = null;
      root.replaceChildren();
    },
  };
}
