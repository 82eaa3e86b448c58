// Entry point of the portal page (static/index.html), for clients and staff.
//
// Boot: login link fragment -> session cookie; who am I; my matters; the
// latest history of each; then the live websocket. A staff member's page
// also loads the staff tools (static/staff/). Everything the page shows
// from the server goes through render.js (textContent only); every text of
// its own comes from shared/strings.js.

import { Cursors } from '../shared/cursors.js';
import { el } from '../shared/dom.js';
import { api, ApiError } from '../shared/http.js';
import { exchangeToken, logout, takeFragmentToken } from '../shared/login.js';
import {
  NOTICE,
  STATE_TEXT,
  TEXT,
  matterLink,
  reconnectingIn,
  signOutFailed,
} from '../shared/strings.js';
import { Feed } from './feed.js';
import { MatterView } from './render.js';

const $ = (id) => document.getElementById(id);

let feed = null;
let lastRestart = 0;
let signingOut = false; // our own DELETE /api/v1/session closes the socket with 4010

function showState(state, detail) {
  const line = $('conn');
  line.dataset.state = state;
  if (state === 'reconnecting') {
    const seconds = Math.max(1, Math.round((detail || 0) / 1000));
    line.textContent = reconnectingIn(seconds);
  } else {
    line.textContent = STATE_TEXT[state] || state;
  }
}

/** Replace the stream with a message (signed out, bad link, no access). */
function showNotice([title, text], state = 'signed-out') {
  if (feed) {
    feed.stop();
    feed = null;
  }
  $('matters').replaceChildren();
  $('matter-nav').hidden = true;
  $('logout').hidden = true;
  $('who').hidden = true;
  $('notice-title').textContent = title;
  $('notice-text').textContent = text;
  $('notice').hidden = false;
  showState(state);
}

function signedOut() {
  showNotice(NOTICE.signedOut);
}

/**
 * The websocket closed with 4001/4010 (or another login replaced the
 * cookie): ask the API whether this browser's session is still valid: if
 * so, start over with its matters; if not, show the signed-out screen.
 */
async function sessionEnded() {
  if (signingOut) return;
  try {
    await api('GET', '/api/v1/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut();
    else showNotice(NOTICE.notConnected(err.message), 'error');
    return;
  }
  await restart();
}

/**
 * Start over: reload the matter list (a matter this user was removed from,
 * close 4011, is no longer in it) and go live again.
 */
async function restart() {
  if (Date.now() - lastRestart < 30_000) {
    // Closed again right after a restart: do not loop; let the user decide.
    showNotice(NOTICE.accessChanged, 'error');
    return;
  }
  lastRestart = Date.now();
  if (feed) feed.stop();
  feed = null;
  $('matters').replaceChildren();
  $('notice').hidden = true;
  await load();
}

async function onLogout() {
  const button = $('logout');
  button.disabled = true;
  signingOut = true;
  try {
    await logout();
  } catch (err) {
    // 401: the session was already gone, which is what the user wanted.
    if (!(err instanceof ApiError && err.status === 401)) {
      signingOut = false;
      button.disabled = false;
      showState('error');
      $('conn').textContent = signOutFailed(err.message);
      return;
    }
  }
  Cursors.clearAll();
  showNotice(NOTICE.signedOutByUser);
}

function renderWho(principal) {
  const who = $('who');
  who.replaceChildren(el('span', 'who-name', principal.name));
  if (principal.viewer === 'staff') who.append(el('span', 'badge staff-badge', TEXT.staffView));
  who.hidden = false;
  const button = $('logout');
  button.hidden = false;
  button.disabled = false;
}

function renderNav(matters) {
  const links = $('matter-links');
  links.replaceChildren();
  for (const matter of matters) {
    const a = el('a', null, matterLink(matter.title || matter.ref, matter.ref));
    a.href = `#matter-${matter.ref}`;
    const li = el('li');
    li.append(a);
    links.append(li);
  }
  $('matter-nav').hidden = matters.length < 2;
}

/** The page's own texts (index.html holds none but the <noscript> one). */
function labelPage() {
  document.title = TEXT.pageTitle;
  $('title').textContent = TEXT.pageTitle;
  $('logout').textContent = TEXT.signOut;
  $('matter-nav').setAttribute('aria-label', TEXT.mattersNav);
  showState('starting');
}

async function boot() {
  labelPage();
  $('logout').addEventListener('click', onLogout);
  const token = takeFragmentToken();
  if (token) {
    showState('connecting');
    try {
      await exchangeToken(token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        showNotice(NOTICE.badLink);
      } else {
        showNotice(NOTICE.cannotSignIn(err.message), 'error');
      }
      return;
    }
  }
  await load();
}

/** Who am I, my matters, their history, then live. */
async function load() {
  let principal;
  let matters;
  try {
    principal = (await api('GET', '/api/v1/me')).principal;
    matters = (await api('GET', '/api/v1/matters')).matters;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showNotice(NOTICE.signIn);
    } else {
      showNotice(NOTICE.cannotLoad(err.message), 'error');
    }
    return;
  }

  renderWho(principal);
  renderNav(matters);
  if (!matters.length) {
    [$('notice-title').textContent, $('notice-text').textContent] = NOTICE.noMatters;
    $('notice').hidden = false;
  }

  const staff = principal.viewer === 'staff' && principal.kind === 'staff';
  // Staff tools are a separate module: a client's page never loads them.
  const tools = staff ? await import('../staff/phase.js') : null;
  const views = new Map();
  const heads = new Map();
  const container = $('matters');
  const handlers = {
    onLoadEarlier: (ref) => feed && feed.loadEarlier(ref),
    tools: tools
      ? (ref) =>
          tools.phaseForm(ref, {
            onPosted: (event) => views.get(ref).add(event),
            onSignedOut: signedOut,
          })
      : undefined,
  };
  for (const matter of matters) {
    const view = new MatterView(matter, handlers);
    views.set(matter.ref, view);
    heads.set(matter.ref, matter.head);
    container.append(view.section);
  }

  feed = new Feed({
    principal,
    views,
    cursors: new Cursors(principal),
    onState: showState,
    onSignedOut: signedOut,
    onSessionEnded: () => {
      sessionEnded().catch((err) => showNotice(NOTICE.broken(String(err)), 'error'));
    },
    onAccessRemoved: () => {
      restart().catch((err) => showNotice(NOTICE.broken(String(err)), 'error'));
    },
    onFatal: (message) => showNotice(NOTICE.cannotConnect(message), 'error'),
  });
  await feed.start(heads);
}

boot().catch((err) => {
  // A bug, not a server answer: say so instead of leaving a blank page.
  showNotice(NOTICE.broken(err && err.message), 'error');
});
