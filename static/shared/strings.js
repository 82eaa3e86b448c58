// Every text the portal shows a user, in one place (English today; a
// translation replaces this module). Other modules never hold user-visible
// text: they take it from here. Server text (titles, names, payload values,
// error messages of the API) is data, not a string of this module.

export const TEXT = {
  pageTitle: 'Client portal',
  signOut: 'Sign out',
  staffView: 'Staff view',
  mattersNav: 'Matters',
  internal: 'Internal',
  unknownActor: 'Unknown',
  showEarlier: 'Show earlier events',
  nothingYet: 'Nothing here yet.',
  newSinceLastVisit: 'New since your last visit',
  phaseLabel: 'New phase (visible to the client)',
  phaseSubmit: 'Post phase',
  posting: 'Posting…',
  posted: 'Posted.',
  noAccess: 'You no longer have access to this matter.',
  updatesPaused: 'Updates paused; retrying…',
  catchingUp: 'Catching up…',
  historyRetrying: 'Could not load the history; retrying…',
  forbiddenOrigin: 'This page is not allowed to connect to the server (origin).',
};

/** The connection line for each state of the socket (socket.js). */
export const STATE_TEXT = {
  starting: 'Starting…',
  connecting: 'Connecting…',
  live: 'Live',
  offline: 'Offline: waiting for the network…',
  stopped: 'Not connected',
  'signed-out': 'Signed out',
  error: 'Not connected',
};

/** Titles and texts of the notice shown instead of the stream. */
export const NOTICE = {
  signedOut: ['Signed out', 'Your session has ended. Open the login link from your invitation to sign in again.'],
  signedOutByUser: ['Signed out', 'You have signed out. You can close this page.'],
  signIn: ['Sign in', 'Open the login link from your invitation to see your matters.'],
  badLink: ['This link does not work', 'The login link is not valid any more. Ask the firm for a new one.'],
  accessChanged: ['Not connected', 'Your access has changed. Reload the page to continue.'],
  noMatters: ['No matters yet', 'When the firm opens a matter for you, it appears here.'],
  notConnected: (message) => ['Not connected', `${message}. Reload the page to try again.`],
  cannotSignIn: (message) => ['Cannot sign in', `The portal cannot be reached (${message}). Try again later.`],
  cannotLoad: (message) => ['Cannot load the portal', `${message}. Try again later.`],
  cannotConnect: (message) => ['Cannot connect', message],
  broken: (message) => ['Something went wrong', `Reload the page to try again. (${message})`],
};

/** "Connection lost: reconnecting in 3 s…" */
export const reconnectingIn = (seconds) => `Connection lost: reconnecting in ${seconds} s…`;

/** The connection line when signing out failed. */
export const signOutFailed = (message) => `Could not sign out (${message}). Try again.`;

/** A matter's state line when a subscribe frame was refused. */
export const liveBroken = (code) => `Live updates are not working (${code}). Reload the page.`;

/** Placeholder of an end-to-end encrypted event this page cannot decrypt yet. */
export const encryptedMessage = (size) => `Encrypted message, ${size}`;

/** "1 byte", "2,048 bytes" in the reader's locale. */
export const bytesText = (n) => `${n.toLocaleString()} ${n === 1 ? 'byte' : 'bytes'}`;

/** "Sam Finch (staff)" */
export const actorText = (name, kind) => (kind ? `${name} (${kind})` : name);

/** Accessible names: "event 12", "Conversation: Smith v Jones". */
export const eventLabel = (seq) => `event ${seq}`;
export const conversationLabel = (title) => `Conversation: ${title}`;

/** A matter in the navigation: "Smith v Jones (M-0001)". */
export const matterLink = (title, ref) => `${title} (${ref})`;

/** The phase form's status line when the post failed. */
export const notPosted = (message) => `Not posted: ${message}`;
