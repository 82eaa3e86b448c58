// The staff activity feed (`#/feed`, docs/threads.md "Activity feed"):
// every matter's client messages, internal notes, phase changes, invites,
// documents and bot cards, newest first; filters matter, type, tag and
// unread; client items marked at a glance; older pages by cursor; live
// events that match the filters prepended (the matters' live stream over
// /ws from their heads). The list logic is shared/feedmodel.js's.
//
// Stable hooks for tests:
//   #activity-feed               the panel
//   #feed-filters                form: select[name=matter] select[name=type] select[name=tag] input[name=unread]
//   #feed-list                   <ol> of li.feed-row[data-matter][data-seq][data-type][data-from-client=1|0][data-deleted]
//     .feed-client-badge  .internal-badge  .feed-open (link to #/matter/<ref>)  .message-body
//   #feed-more                   "Show older activity"

import { Feed } from '../client/feed.js';
import { messageBody } from '../client/cryptoview.js';
import { el } from '../shared/dom.js';
import { actorLabel, formatTime } from '../shared/format.js';
import { api } from '../shared/http.js';
import { keyringFor } from '../shared/keysession.js';
import { userId } from '../shared/keyids.js';
import { FEED, FEED_TYPE, matterHeading } from '../shared/strings_staff.js';
import { THREADS } from '../shared/strings_threads.js';
import { FEED_TYPES, FeedList } from '../shared/feedmodel.js';
import { feedPage, feedRows } from '../shared/threadapi.js';
import { TagStore } from './threadtools.js';
import { failed, panel, routeHref } from './common.js';
import { refOf } from './matters.js';
import { statusLine } from '../shared/forms.js';

const PAGE = 50;

function option(value, text) {
  const o = el('option', null, text);
  o.value = value;
  return o;
}

function labelled(text, node) {
  const label = el('label', 'feed-filter');
  label.append(el('span', null, text), node);
  return label;
}

/** Cursors in memory: the feed's live position must not move the stream page's stored ones. */
function memoryCursors() {
  const at = new Map();
  return {
    get: (ref) => at.get(ref) ?? null,
    set: (ref, seq) => at.set(ref, seq),
    advance: (ref, seq) => {
      if (Number.isSafeInteger(seq) && seq > (at.get(ref) ?? -1)) at.set(ref, seq);
    },
  };
}

/** A sink the live Feed drives like a matter view: events go to the feed list. */
function liveSink(ref, onEvent) {
  const noop = () => {};
  return {
    add: (event) => onEvent({ ...event, matter: ref }),
    setBusy: noop,
    setState: noop,
    setMoreEarlier: noop,
    markNewAfter: noop,
    revealLatest: noop,
    clear: noop,
  };
}

export function feedView(ctx) {
  const section = panel('activity-feed', FEED.title);
  const form = el('form', 'feed-filters');
  form.id = 'feed-filters';
  form.setAttribute('aria-label', FEED.filters);
  const matter = el('select');
  matter.name = 'matter';
  matter.append(option('', FEED.allMatters));
  const type = el('select');
  type.name = 'type';
  type.append(option('', FEED.allTypes), ...FEED_TYPES.map((t) => option(t, FEED_TYPE[t])));
  const tag = el('select');
  tag.name = 'tag';
  tag.append(option('', FEED.allTags));
  const unread = el('input');
  unread.type = 'checkbox';
  unread.name = 'unread';
  const unreadLabel = el('label', 'checkbox', FEED.unreadOnly);
  unreadLabel.prepend(unread);
  form.append(labelled(FEED.matter, matter), labelled(FEED.type, type), labelled(FEED.tag, tag), unreadLabel);
  const list = el('ol', 'feed-list');
  list.id = 'feed-list';
  list.setAttribute('aria-live', 'polite');
  const empty = el('p', 'empty', FEED.empty);
  empty.hidden = true;
  const more = el('button', 'button quiet', FEED.more);
  more.type = 'button';
  more.id = 'feed-more';
  more.hidden = true;
  const line = statusLine();
  section.append(form, line, list, empty, more);

  const me = userId(ctx.principal);
  let feed = new FeedList({ me });
  let before = null;
  let stopped = false;
  let live = null;
  let keyring = null;
  const titles = new Map(); // ref -> title
  const rows = new Map(); // matter+seq -> li

  function filters() {
    return { matter: matter.value || null, type: type.value || null, tag: tag.value || null, unread: unread.checked };
  }

  function row({ event, type: kind, fromClient, internal, deleted }) {
    const key = `${event.matter}\u0000${event.seq}`;
    const had = rows.get(key);
    if (had && had.dataset.deleted === (deleted ? '1' : '0')) return had;
    const li = el('li', `feed-row${fromClient ? ' from-client' : ''}${internal ? ' internal' : ''}`);
    li.dataset.matter = event.matter;
    li.dataset.seq = String(event.seq);
    li.dataset.type = kind;
    li.dataset.fromClient = fromClient ? '1' : '0';
    li.dataset.deleted = deleted ? '1' : '0';
    const head = el('p', 'feed-head');
    head.append(el('span', 'feed-type', FEED_TYPE[kind]));
    if (fromClient) head.append(el('span', 'badge feed-client-badge', FEED.fromClient));
    if (internal) head.append(el('span', 'badge internal-badge', FEED.internal));
    head.append(el('span', 'actor', actorLabel(event.actor)));
    const time = el('time', 'time', formatTime(event.created_at));
    time.dateTime = String(event.created_at);
    head.append(time);
    const open = el('a', 'feed-open', matterHeading(titles.get(event.matter), event.matter));
    open.href = routeHref('matter', event.matter);
    li.append(head, open);
    if (deleted) li.append(el('p', 'tombstone', THREADS.deleted));
    else if (event.blob) li.append(messageBody(event, event.matter, keyring, new Map()));
    rows.set(key, li);
    return li;
  }

  function draw() {
    const nodes = feed.list().map(row);
    list.replaceChildren(...nodes);
    empty.hidden = nodes.length > 0;
  }

  async function page(first) {
    if (first) {
      feed = new FeedList({ filters: filters(), me });
      before = null;
      rows.clear();
    }
    try {
      const answer = await feedPage({ ...filters(), before, limit: PAGE });
      if (stopped) return;
      feed.addPage(feedRows(answer));
      before = answer.next ?? null; // null: no older page
      more.hidden = !before;
      line.textContent = '';
    } catch (err) {
      more.hidden = true;
      if (err && err.status === 404) line.textContent = FEED.notYet;
      else failed(ctx, line, err);
    }
    draw();
  }

  function onLive(event) {
    if (feed.addLive(event)) draw();
  }

  async function start() {
    keyring = await keyringFor(ctx.principal).catch(() => null);
    if (keyring) await keyring.syncFirm().catch(() => {});
    const tags = new TagStore(ctx.onSignedOut);
    const [matters] = await Promise.all([api('GET', '/api/v1/matters').catch(() => ({ matters: [] })), tags.load(keyring)]);
    if (stopped) return;
    for (const m of matters.matters || []) {
      titles.set(refOf(m), m.title);
      matter.append(option(refOf(m), matterHeading(m.title, refOf(m))));
    }
    for (const t of tags.names.keys()) tag.append(option(t, tags.label(t)));
    await page(true);
    // live: every matter from its head (no history here: the feed pages are the history)
    const views = new Map((matters.matters || []).map((m) => [refOf(m), liveSink(refOf(m), onLive)]));
    live = new Feed({
      principal: ctx.principal,
      views,
      cursors: memoryCursors(),
      onState: ctx.onState,
      onSignedOut: ctx.onSignedOut,
      onSessionEnded: ctx.onSessionEnded,
      onAccessRemoved: ctx.onSessionEnded,
      onFatal: () => ctx.onState('error'),
    });
    if (!stopped) live.startLive(new Map((matters.matters || []).map((m) => [refOf(m), m.head ?? 0])));
  }

  form.addEventListener('change', () => page(true));
  form.addEventListener('submit', (e) => e.preventDefault());
  more.addEventListener('click', () => page(false));
  start();

  return {
    node: section,
    stop() {
      stopped = true;
      if (live) live.stop();
    },
  };
}
