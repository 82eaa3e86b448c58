// Entry point of the portal page (static/index.html).
//
// Boot: login link fragment -> session cookie; who am I; my matters; the
// latest history of each; then the live websocket. Everything the page
// shows from the server goes through render.js (textContent only).

import { api, ApiError } from './http.js';
import { exchangeToken, logout, takeFragmentToken } from './login.js';
import { Cursors } from './cursors.js';
import { MatterView, el } from './render.js';
import { Feed } from './feed.js';

const $ = (id) => document.getElementById(id);

const STATE_TEXT = {
  starting: 'Starting…',
  connecting: 'Connecting…',
  live: 'Live',
  offline: 'Offline: waiting for the network…',
  stopped: 'Not connected',
  'signed-out': 'Signed out',
  error: 'Not connected',
};

let feed = null;
let lastRestart = 0;
let signingOut = false; // our own DELETE /api/v1/session closes the socket with 4010

function showState(state, detail) {
  const line = $('conn');
  line.dataset.state = state;
  if (state === 'reconnecting') {
    const seconds = Math.max(1, Math.round((detail || 0) / 1000));
    line.textContent = `Connection lost: reconnecting in ${seconds} s…`;
  } else {
    line.textContent = STATE_TEXT[state] || state;
  }
}

/** Replace the stream with a message (signed out, bad link, no access). */
function showNotice(title, text, state = 'signed-out') {
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
  showNotice(
    'Signed out',
    'Your session has ended. Ask the firm for a new login link to sign in again.',
  );
}

/**
 * The websocket closed with 4001/4010. That is also how the server ends
 * live sockets when the firm removes this user from *one* matter, so ask
 * the API whether the session itself is still valid: if so, reload the
 * matter list and go live again; if not, show the signed-out screen.
 */
async function sessionEnded() {
  if (signingOut) return;
  try {
    await api('GET', '/api/v1/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut();
    else showNotice('Not connected', `${err.message}. Reload the page to try again.`, 'error');
    return;
  }
  if (Date.now() - lastRestart < 30_000) {
    // Closed again right after a restart: do not loop; let the user decide.
    showNotice('Not connected', 'Your access has changed. Reload the page to continue.', 'error');
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
      $('conn').textContent = `Could not sign out (${err.message}). Try again.`;
      return;
    }
  }
  Cursors.clearAll();
  showNotice('Signed out', 'You have signed out. You can close this page.');
}

function renderWho(principal) {
  const who = $('who');
  who.replaceChildren(el('span', 'who-name', principal.name));
  if (principal.viewer === 'staff') who.append(el('span', 'badge staff-badge', 'Staff view'));
  who.hidden = false;
  const button = $('logout');
  button.hidden = false;
  button.disabled = false;
}

function renderNav(matters) {
  const links = $('matter-links');
  links.replaceChildren();
  for (const matter of matters) {
    const a = el('a', null, `${matter.title || matter.ref} (${matter.ref})`);
    a.href = `#matter-${matter.ref}`;
    const li = el('li');
    li.append(a);
    links.append(li);
  }
  $('matter-nav').hidden = matters.length < 2;
}

async function boot() {
  $('logout').addEventListener('click', onLogout);
  const token = takeFragmentToken();
  if (token) {
    showState('connecting');
    try {
      await exchangeToken(token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        showNotice(
          'This link does not work',
          'The login link is not valid any more. Ask the firm for a new one.',
        );
      } else {
        showNotice('Cannot sign in', `The portal cannot be reached (${err.message}). Try again later.`, 'error');
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
      showNotice('Sign in', 'Open the login link from your invitation to see your matters.');
    } else {
      showNotice('Cannot load the portal', `${err.message}. Try again later.`, 'error');
    }
    return;
  }

  renderWho(principal);
  renderNav(matters);
  if (!matters.length) {
    $('notice-title').textContent = 'No matters yet';
    $('notice-text').textContent = 'When the firm opens a matter for you, it appears here.';
    $('notice').hidden = false;
  }

  const staff = principal.viewer === 'staff' && principal.kind === 'staff';
  const views = new Map();
  const heads = new Map();
  const container = $('matters');
  const handlers = {
    onLoadEarlier: (ref) => feed && feed.loadEarlier(ref),
    onPhase: staff ? (ref, phase) => feed.postPhase(ref, phase) : undefined,
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
      sessionEnded().catch((err) => showNotice('Something went wrong', String(err), 'error'));
    },
    onFatal: (message) => showNotice('Cannot connect', message, 'error'),
  });
  await feed.start(heads);
}

boot().catch((err) => {
  // A bug, not a server answer: say so instead of leaving a blank page.
  showNotice('Something went wrong', `Reload the page to try again. (${err && err.message})`, 'error');
});
