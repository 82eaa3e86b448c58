// Every text the portal shows a user, in one place per string (English today;
// a translation replaces these modules). This module holds the page's own
// texts, sign-in and encryption; each screen's texts are in a module of its
// own beside it: strings_threads.js (conversations, attachments),
// strings_docs.js (timeline, documents), strings_staff.js (the staff app,
// which a client's page never loads). Other modules never hold user-visible
// text: they take it from these. Server text (titles, names, payload
// values, error messages of the API) is data, not a string of these modules.

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
  posting: 'Posting…',
  posted: 'Posted.',
  noAccess: 'You no longer have access to this matter.',
  updatesPaused: 'Updates paused; retrying…',
  catchingUp: 'Catching up…',
  historyRetrying: 'Could not load the history; retrying…',
  forbiddenOrigin: 'This page is not allowed to connect to the server (origin).',
  pageOutdated: 'This page is out of date. Reload it to continue.',
};

/** The connection line for each state of the socket (socket.js). */
export const STATE_TEXT = {
  idle: '',
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
  signedOut: ['Signed out', 'Your session has ended. Sign in again to continue.'],
  signedOutByUser: ['Signed out', 'You have signed out. You can close this page.'],
  signIn: ['Sign in', 'Sign in with your email address and password.'],
  passwordSet: ['Password set', 'Sign in with your new password to continue.'],
  badLink: ['This link does not work', 'The login link is not valid any more. Ask the firm for a new one.'],
  badInvite: ['This link does not work', 'This invitation link was used already, replaced by a newer one, or has expired. Ask the firm to send you a new one.'],
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

/** "Sam Finch (staff)" */
export const actorText = (name, kind) => (kind ? `${name} (${kind})` : name);

/** Accessible names: "event 12", "Conversation: Smith v Jones". */
export const eventLabel = (seq) => `event ${seq}`;

export const conversationLabel = (title) => `Conversation: ${title}`;

/** A matter in the navigation: "Smith v Jones (M-0001)". */
export const matterLink = (title, ref) => `${title} (${ref})`;

/** The phase form's status line when the post failed. */
export const notPosted = (message) => `Not posted: ${message}`;

/** End-to-end encryption in the conversation and the account page (static/shared/keyring.js). */
export const CRYPTO = {
  decrypting: 'Decrypting…',
  noKeys: 'This message is end-to-end encrypted. Sign out and sign in again on this device to read it.',
  cannotRead: 'This message cannot be read on this device: its key was not shared with you.',
  keysUnavailable: 'The keys to read this message could not be loaded. Reload the page to try again.',
  failedTitle: 'Warning: this message failed its security check and is not shown.',
  failedText: 'It may have been changed after it was sent. Tell the firm (by phone) if this keeps happening.',
  senderMismatch: 'The server names another sender than the one who signed this message.',
  visMismatch: 'This message is marked for another audience than the one it was encrypted for.',
  internalNote: 'Internal note (staff only)',
  systemUpdate: 'System update',
  matterWarning: 'Warning: the keys of this matter failed a security check. New messages cannot be verified; tell the firm.',
  firmWarning: 'Warning: the firm’s keys on the server do not match the ones this device trusts. Do not continue; call the firm.',
  notReady: 'End-to-end encryption is not set up for this matter yet.',
  waitingApproval: 'Your keys are waiting for approval by an administrator of your firm. You can read and write encrypted messages once they are approved.',
  replyLabel: 'Your message',
  replyPlaceholder: 'Write a reply…',
  send: 'Send',
  sending: 'Encrypting and sending…',
  sent: 'Sent.',
  noteToggle: 'Internal note (only staff can read it)',
  accountTitle: 'Encryption keys',
  myFingerprint: 'Your key fingerprint',
  firmFingerprint: 'Your firm’s root key fingerprint',
  fingerprintHint: 'Compare these with the ones your firm shows you; if they differ, call the firm.',
  noDeviceKeys: 'No encryption keys on this device. Sign out and sign in again to unlock them.',
  unpinned: 'This device has not confirmed your firm’s root key yet: encryption waits until an administrator approves your keys. Then compare the fingerprint below with your administrator’s.',
  chainBlocked: 'The server served older keys for this matter than this device saw before. Nothing can be sent until it serves the current ones; tell the firm.',
  verifyTitle: 'Verification code',
  verifyText: 'Read this code to your adviser when they call.',
  itemMismatch: 'This message is not the one its place in the conversation names (sender or message id differ).',
};

/** Why a message is not shown (the stable code stays visible for support). */
export const cryptoFailed = (code) => `${CRYPTO.failedTitle} (${code})`;

/** A notice that someone's key changed since this device last looked. */
export const keyChanged = (name) => `The security key of ${name} changed. If you did not expect this, ask the firm.`;

/** Who signed a message, as shown above it. */
export const signedBy = (name, role) =>
  role === 'bot' ? `${CRYPTO.systemUpdate}, signed by ${name}` : `End-to-end encrypted, signed by ${name}`;

/** Sign-in, invitation and password screens (shared by clients and staff). */
export const AUTH = {
  signInTitle: 'Sign in',
  firm: 'Firm code',
  email: 'Email address',
  password: 'Password',
  totp: 'Authenticator code',
  totpHint: 'Enter the 6-digit code from your authenticator app (or a recovery code).',
  signInSubmit: 'Sign in',
  enrolText:
    'Your account needs two-step sign-in. We have emailed you a key: add it to an authenticator app (or open the email\'s link on your phone), then enter the 6-digit code the app shows.',
  recoveryTitle: 'Your recovery codes',
  recoveryText:
    'Two-step sign-in is on. If you lose your phone, each of these codes signs you in once instead of a code from the app. Keep them somewhere safe: they are not shown again.',
  continue: 'Continue',
  totpTitle: 'Two-step sign-in (authenticator app)',
  totpIntro: 'Add this account to an authenticator app with the key or the link below, then enter the code it shows.',
  totpStart: 'Set up an authenticator app',
  totpCode: 'Code from the app',
  totpConfirm: 'Confirm',
  totpDone: 'Two-step sign-in is on. Keep these recovery codes somewhere safe; each works once:',
  starting: 'Starting…',
  totpKey: 'Key',
  totpLink: 'Link for the app',
  checking: 'Checking…',
  forgotPassword: 'Forgot your password?',
  forgotText:
    'For your security the portal does not send password reset emails. Contact the firm that invited you and ask them to send you new login details.',
  welcomeTitle: 'Welcome to your secure client portal',
  setupTitle: 'Set up your staff account',
  passcode: 'Passcode from the text message',
  passcodeHint: 'We sent a 6-digit passcode to your mobile phone. It is valid for 10 minutes.',
  newPassword: 'Choose a password',
  confirmPassword: 'Type the password again',
  existingPassword: 'Your portal password',
  passwordHint: 'At least 10 characters. A few unrelated words make a strong password.',
  acceptSubmit: 'Open my portal',
  setupSubmit: 'Create my account',
  opening: 'Opening your invitation…',
  mismatch: 'The two passwords are not the same.',
  accountTitle: 'Your account',
  account: 'Account',
  changePasswordTitle: 'Change password',
  currentPassword: 'Current password',
  changePasswordSubmit: 'Change password',
  passwordChanged: 'Your password was changed.',
  signOutEverywhere: 'Sign out on every device',
  close: 'Close',
};

/** "Invited to AAAA0000 by Smith & Co as Jane Citizen (jane@example.com)" */
export const inviteFor = (firm, matter, name, email) =>
  [firm, matter, name && email ? `${name} (${email})` : name || email].filter(Boolean).join(' · ');

/** Texts of the API's stable error codes (docs/api.md); other codes show the server's message. */
export const ERRORS = {
  network: 'The server cannot be reached. Check your connection and try again.',
  invalid_credentials: 'Wrong email address or password.',
  second_factor_required: 'Enter the code from your authenticator app.',
  invalid_link: 'This link was used already, replaced by a newer one, or has expired. Ask the firm for a new one.',
  invalid_passcode: 'Wrong or expired passcode. Ask the firm to resend the invitation if it keeps failing.',
  weak_password: 'Choose a stronger password: at least 10 characters, and not a common one.',
  rate_limited: 'Too many tries. Wait a little and try again.',
  forbidden: 'Your role does not allow this.',
  csrf_failed: 'Your session has changed. Reload the page.',
  unauthenticated: 'Your session has ended. Sign in again.',
  not_found: 'Not found.',
  contact_no_email: 'This contact has no email address.',
  contact_no_mobile: 'This contact has no phone number marked as personal mobile.',
  login_in_use: 'Another contact of the firm already signs in with this email address.',
  invite_not_pending: 'This invitation is no longer pending.',
  mismatch: 'The two passwords are not the same.',
};
