// Entry point of the portal page (static/index.html), for clients and staff.
//
// Boot: a link in the fragment (login link -> session cookie; invitation or
// staff setup link -> shared/accept.js); who am I (or the sign-in screen);
// my matters; the latest history of each; then the live websocket. A staff
// member's page also loads the staff app (static/staff/), whose first view
// is this same stream of every matter. Everything the page shows from the
// server goes through render.js (textContent only); every text of its own
// comes from shared/strings.js.

import { Cursors } from '../shared/cursors.js';
import { el } from '../shared/dom.js';
import { api, ApiError } from '../shared/http.js';
import { acceptScreen } from '../shared/accept.js';
import { currentFirm, whoAmI } from '../shared/account.js';
import { keyringFor } from '../shared/keysession.js';
import { keysPanel } from '../shared/keysview.js';
import { accountPanel } from '../shared/accountview.js';
import { exchangeToken, logout, takeFragmentLink } from '../shared/login.js';
import { signInScreen } from '../shared/signin.js';
import { totpPanel } from '../shared/totpview.js';
import { AUTH, NOTICE, STATE_TEXT, TEXT, matterLink, reconnectingIn, signOutFailed } from '../shared/strings.js';
import { userId } from '../shared/keyids.js';
import { Feed } from './feed.js';
import { documentsView } from './documents.js';
import { timelineView } from './timeline.js';
import { ThreadsView } from './threads.js';

const $ = (id) => document.getElementById(id);

let feed = null;
let staffApp = null; // the staff app (static/staff/app.js) while a staff member is signed in
let principalNow = null;
let lastRestart = 0;
let signingOut = false; // our own DELETE /api/v1/session closes the socket with 4010

function showState(state, detail) {
  const line = $('conn');
  line.dataset.state = state;
  if (state === 'reconnecting') {
    const seconds = Math.max(1, Math.round((detail || 0) / 1000));
    line.textContent = reconnectingIn(seconds);
  } else {
    line.textContent = state in STATE_TEXT ? STATE_TEXT[state] : state;
  }
}

/** Replace the stream with a message (signed out, bad link, no access). */
function showNotice([title, text], state = 'signed-out') {
  stopStreams();
  if (staffApp) {
    staffApp.stop();
    staffApp = null;
  }
  $('screen').replaceChildren();
  $('logout').hidden = true;
  $('account').hidden = true;
  $('who').hidden = true;
  $('notice-title').textContent = title;
  $('notice-text').textContent = text;
  $('notice').hidden = false;
  showState(state);
}

/** The live stream of every matter stops and leaves the page. */
function stopStreams() {
  if (feed) {
    feed.stop();
    feed = null;
  }
  $('matters').replaceChildren();
  $('matter-nav').hidden = true;
}

/** The sign-in screen, under a notice when one is given (signed out, session ended). */
function showSignIn(notice) {
  principalNow = null;
  if (notice) showNotice(notice);
  else {
    showNotice(NOTICE.signIn);
    $('notice').hidden = true;
  }
  signInScreen($('screen'), { onSignedIn: () => signedIn() });
}

/** After a sign-in or an accepted link: start over as the signed-in user. */
function signedIn() {
  $('screen').replaceChildren();
  $('notice').hidden = true;
  lastRestart = 0;
  signingOut = false;
  load().catch((err) => showNotice(NOTICE.broken(String(err)), 'error'));
}

function signedOut() {
  showSignIn(NOTICE.signedOut);
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
  showSignIn(NOTICE.signedOutByUser);
}

/** The client's account panel (change password, sign out everywhere), opened from the header. */
function toggleAccount() {
  const screen = $('screen');
  const button = $('account');
  if (screen.querySelector('#account-panel')) {
    screen.replaceChildren();
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  const close = () => {
    screen.replaceChildren();
    button.setAttribute('aria-expanded', 'false');
    button.focus();
  };
  screen.replaceChildren(
    accountPanel({ email: principalNow && principalNow.email, onSignedOut: signedOut, onClose: close }),
    totpPanel({ onSignedOut: signedOut }),
    keysPanel(principalNow),
  );
  button.setAttribute('aria-expanded', 'true');
  screen.querySelector('input:not([hidden])').focus();
}

function renderWho(principal) {
  const who = $('who');
  who.replaceChildren(el('span', 'who-name', principal.name));
  if (principal.viewer === 'staff') who.append(el('span', 'badge staff-badge', TEXT.staffView));
  who.hidden = false;
  const button = $('logout');
  button.hidden = false;
  button.disabled = false;
  // Staff reach their account from the staff app's navigation.
  $('account').hidden = principal.kind === 'staff';
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
  $('account').textContent = AUTH.account;
  $('matter-nav').setAttribute('aria-label', TEXT.mattersNav);
  showState('starting');
}

/**
 * Use a link's secret: a login link becomes the session cookie (then the
 * page loads); an invitation or setup link shows its page. False when a
 * login link was refused (the notice says why).
 */
async function openLink(link) {
  if (link.kind === 'token') {
    showState('connecting');
    try {
      await exchangeToken(link.secret);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        showNotice(NOTICE.badLink);
      } else {
        showNotice(NOTICE.cannotSignIn(err.message), 'error');
      }
      return false;
    }
    return true;
  }
  showNotice(NOTICE.signIn, 'stopped');
  $('notice').hidden = true;
  await acceptScreen($('screen'), {
    kind: link.kind,
    firm: currentFirm(),
    secret: link.secret,
    keyLink: { r: link.r, frk: link.frk, d: link.d },
    onSignedIn: signedIn,
    onPasswordSet: () => showSignIn(NOTICE.passwordSet),
    onBadLink: (err) => {
      if (err instanceof ApiError && err.status < 500 && err.code !== 'network') {
        showNotice(NOTICE.badInvite);
      } else {
        showNotice(NOTICE.cannotSignIn(err.message), 'error');
      }
    },
  });
  return false;
}

/** A link opened in a tab already showing the portal changes only the fragment. */
async function onHashChange() {
  const link = takeFragmentLink();
  if (link && (await openLink(link))) signedIn();
}

async function boot() {
  labelPage();
  $('logout').addEventListener('click', onLogout);
  $('account').addEventListener('click', toggleAccount);
  window.addEventListener('hashchange', () => {
    onHashChange().catch((err) => showNotice(NOTICE.broken(String(err)), 'error'));
  });
  const link = takeFragmentLink();
  if (link && !(await openLink(link))) return;
  await load();
}

/** Who am I; then the staff app, or (a client) my matters, their history, then live. */
async function load() {
  let principal;
  try {
    principal = await whoAmI();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      // Signed in until now (access removed, session ended): say so above the form.
      showSignIn(principalNow ? NOTICE.signedOut : undefined);
    } else {
      showNotice(NOTICE.cannotLoad(err.message), 'error');
    }
    return;
  }
  principalNow = principal;
  renderWho(principal);
  if (principal.kind === 'staff') {
    // Staff tools are a separate module: a client's page never loads them.
    const app = await import('../staff/app.js');
    if (staffApp) staffApp.stop();
    staffApp = app.startStaff({
      principal,
      root: $('screen'),
      streams: { show: () => loadStreams(principal), hide: stopStreams },
      onSignedOut: signedOut,
      onSessionEnded: () => {
        sessionEnded().catch((err) => showNotice(NOTICE.broken(String(err)), 'error'));
      },
      onState: showState,
    });
    return;
  }
  await loadStreams(principal);
}

/**
 * This person's keyring on this device with the firm's keys read and
 * verified, or null (no keys here: messages say how to get them). A failed
 * check of the firm's keys stays on the keyring as a problem the views show.
 */
async function readyKeyring(principal) {
  let keyring = null;
  try {
    keyring = await keyringFor(principal);
    if (keyring) await keyring.syncFirm();
  } catch (err) {
    if (!keyring) return null;
    keyring.problems.push({ what: 'root', scope: 'firm', code: err.code || 'network' });
  }
  return keyring;
}

/** Read each matter's keys (a few at a time), then let its view offer the reply form. */
async function syncMatters(keyring, views) {
  const refs = [...views.keys()];
  for (let i = 0; i < refs.length; i += 4) {
    await Promise.all(
      refs.slice(i, i + 4).map(async (ref) => {
        if (keyring && keyring.trust) {
          try {
            await keyring.syncMatter(ref);
          } catch (err) {
            keyring.problems.push({ what: 'matter', scope: ref, code: err.code || 'network' });
          }
        }
        views.get(ref).keysReady();
      }),
    );
  }
}

/** A client's timeline of steps under the matter's title, moved by `step` events. */
function withTimeline(view, ref) {
  const timeline = timelineView(ref, { onSignedOut: signedOut });
  view.section.querySelector('.matter-title').after(timeline.element);
  const add = view.add.bind(view);
  view.add = (event) => {
    const added = add(event);
    if (added) timeline.onEvent(event);
    return added;
  };
}

/** A client's Documents section under the timeline, read again on `document` events. */
function withDocuments(view, ref, keyring) {
  const documents = documentsView(ref, { keyring, onSignedOut: signedOut });
  const timeline = view.section.querySelector('.timeline');
  (timeline || view.section.querySelector('.matter-title')).after(documents.element);
  const add = view.add.bind(view);
  view.add = (event) => {
    const added = add(event);
    if (added) documents.onEvent(event);
    return added;
  };
}

/** The stream of every matter of `principal`: history, then live. */
async function loadStreams(principal) {
  stopStreams();
  $('notice').hidden = true;
  let matters;
  try {
    matters = (await api('GET', '/api/v1/matters')).matters;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signedOut();
    } else {
      showNotice(NOTICE.cannotLoad(err.message), 'error');
    }
    return;
  }

  renderNav(matters);
  if (!matters.length) {
    [$('notice-title').textContent, $('notice-text').textContent] = NOTICE.noMatters;
    $('notice').hidden = false;
  }

  const staff = principal.viewer === 'staff' && principal.kind === 'staff';
  const tools = staff ? await import('../staff/phase.js') : null;
  const threadTools = staff ? (await import('../staff/threadtools.js')).threadTools({ onSignedOut: signedOut }) : null;
  const keyring = await readyKeyring(principal);
  const views = new Map();
  const container = $('matters');
  const handlers = {
    onLoadEarlier: (ref) => feed && feed.loadEarlier(ref),
    tools: tools
      ? (ref) =>
          tools.phaseForm(ref, { onSignedOut: signedOut })
      : undefined,
  };
  for (const matter of matters) {
    // threads once the server's hello says so (ThreadsView.serverVersion); the flat stream until then
    const view = new ThreadsView(matter, { ...handlers, keyring, staff, onSignedOut: signedOut, me: userId(principal), threadTools });
    if (!staff) {
      withTimeline(view, matter.ref);
      withDocuments(view, matter.ref, keyring);
    }
    views.set(matter.ref, view);
    container.append(view.section);
  }

  await syncMatters(keyring, views);
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
  await feed.start();
}

boot().catch((err) => {
  // A bug, not a server answer: say so instead of leaving a blank page.
  showNotice(NOTICE.broken(err && err.message), 'error');
});
