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

/** Staff app: navigation, matters, the portal control and its invitation flyout, administration. */
export const STAFF = {
  nav: 'Staff sections',
  conversations: 'Conversations',
  matters: 'Matters',
  staff: 'Staff',
  outbox: 'Outbox',
  audit: 'Audit log',
  account: 'Account',
  loading: 'Loading…',
  saving: 'Saving…',
  saved: 'Saved.',
  ref: 'Reference',
  title: 'Title',
  matterType: 'Matter type',
  portal: 'Portal',
  portalOn: 'Portal ON',
  portalOff: 'Portal OFF',
  newMatter: 'New matter',
  refHint: 'Four capital letters and four digits, such as ABCD1234. Leave empty to have one made.',
  createMatter: 'Create matter',
  noMatters: 'No matters yet.',
  backToMatters: 'All matters',
  applicants: 'Applicants',
  noApplicants: 'No applicants yet: add a contact below.',
  turnPortalOn: 'Turn portal on',
  inviteMore: 'Invite contacts',
  invitesTitle: 'Portal access',
  noInvites: 'Nobody has been invited yet.',
  flyoutTitle: 'Invite to the portal',
  pickContacts: 'Who to invite',
  addContact: 'Add a contact',
  contactName: 'Full name',
  contactEmail: 'Email address',
  contactPhone: 'Mobile phone',
  personalMobile: 'This is a personal mobile',
  addContactSubmit: 'Add contact',
  method: 'How to send',
  methodEmail: 'Email with a login link',
  methodSms: 'Text message with a login link',
  methodEmailSms: 'Email link and SMS passcode',
  seeApplicants: 'May see the other applicants',
  yes: 'Yes',
  no: 'No',
  subject: 'Subject',
  body: 'Welcome message',
  mergeHint: 'Merge fields: {company}, {client_name}, {matter_ref}, {portal_link}.',
  send: 'Send invitation',
  sending: 'Sending…',
  sent: 'Invitation sent.',
  cancel: 'Cancel',
  pickSomeone: 'Choose at least one contact.',
  status: 'Status',
  delivery: 'Delivery',
  resend: 'Resend',
  resendBy: 'Resend by',
  remove: 'Remove from portal',
  confirmRemove: 'Yes, remove',
  regenerate: 'Generate new login details',
  confirmRegenerate: 'Yes, send new details',
  done: 'Done.',
  stream: 'Conversation',
  staffTitle: 'Staff and roles',
  firmTitle: 'Firm settings',
  requireTotp: 'Every staff member needs two-step sign-in (org admins always do)',
  accessDays: "Client access lasts (days after accepting)",
  accessDaysHint: 'Leave empty: access lasts until staff remove it.',
  save: 'Save',
  inviteStaff: 'Invite a staff member',
  name: 'Name',
  email: 'Email',
  role: 'Role',
  inviteStaffSubmit: 'Send setup link',
  disable: 'Disable',
  enable: 'Enable',
  outboxTitle: 'Outbox (messages not sent through a provider)',
  outboxEmpty: 'The outbox is empty.',
  to: 'To',
  channel: 'Channel',
  auditTitle: 'Audit log',
  auditEmpty: 'Nothing recorded yet.',
  exportCsv: 'Export CSV',
  exportJson: 'Export JSON',
  action: 'Action',
  actor: 'Actor',
  when: 'When',
  source: 'Source address',
};

/** Role names as shown. */
export const ROLE = { org_admin: 'Organisation admin', matter_admin: 'Matter admin', staff: 'Staff' };

/** Invite states and delivery as shown. */
export const INVITE_STATUS = {
  pending: 'Pending acceptance',
  active: 'Active',
  removed: 'Removed',
  expired: 'Expired',
  regenerated: 'New details sent',
};
export const METHOD = { email: 'Email', sms: 'SMS', email_sms: 'Email + SMS passcode' };
export const STAFF_STATUS = { active: 'Active', invited: 'Invited', disabled: 'Disabled' };

/** "email: sent", "sms: failed: no route" */
export const deliveryLine = (channel, status, error) =>
  `${METHOD[channel] || channel}: ${status === 'failed' && error ? `failed: ${error}` : status}`;

/** The matter heading: "Smith purchase (ABCD1234)" */
export const matterHeading = (title, ref) => (title ? `${title} (${ref})` : ref);

/** "Remove Jane Citizen from the portal?" */
export const confirmRemoveText = (name) => `Remove ${name} from the portal? Their sessions end at once.`;
export const confirmRegenerateText = (name) =>
  `Send ${name} new login details? Their password stops working and their sessions end.`;

/** The staff browser's key administration (static/staff/keysetup.js, approvals.js, keyflows.js). */
export const KEYS = {
  title: 'Firm keys',
  intro: 'The firm root key certifies every staff member. Its private part stays in your browser and in the key file you download; the server never sees it.',
  unpinned: 'This device has not confirmed your firm’s root key yet (it is set when an administrator approves your keys). Compare the fingerprint on your account page with your administrator’s.',
  noKeyring: 'Your encryption keys are not unlocked on this device. Sign out and sign in again with your password.',
  setUp: 'Set up the firm keys',
  settingUp: 'Making the firm keys…',
  fingerprint: 'Firm root key fingerprint',
  fingerprintHint: 'Clients check this code. Read it to a colleague or keep it with the key file.',
  download: 'Download the key file',
  keyFileWarning: 'Keep this file offline. Whoever holds it can certify staff of the firm.',
  saved: 'I have saved the key file in a safe place',
  finish: 'Finish set-up',
  finishing: 'Publishing the firm keys…',
  ready: 'The firm keys are set up.',
  heldHere: 'This browser holds the firm root key (non-extractable: no page can read it back).',
  notHere: 'This browser does not hold the firm root key. Load the key file to approve staff.',
  loadFile: 'Firm root key file',
  loaded: 'Key file loaded.',
  wrongFile: 'This key file belongs to another firm root key.',
  forget: 'Forget the firm key on this device',
  approvalsTitle: 'Staff waiting for approval',
  noPending: 'Nobody is waiting.',
  keyFingerprint: 'Key fingerprint',
  approve: 'Approve',
  approving: 'Approving…',
  approved: 'Approved.',
  needFrk: 'Load the firm root key file (Firm keys, below) to approve.',
  delivery: 'Delivery',
  ownMail: 'Send from my email',
  portalMail: 'Send by the portal',
  portalNote: 'The portal sends the link with the key inside. The server could read it once; the client shows a 6-digit code you confirm by phone.',
  ownMailTitle: 'Send the invitation from your email',
  openMail: 'Open in my mail program',
  copyLink: 'Copy the link',
  copied: 'Copied.',
  linkLabel: 'Personal link (for webmail: paste it into your message)',
  notVerified: 'not verified',
  codeLabel: 'The 6-digit code the client reads out',
  confirmCode: 'Confirm the code',
  confirming: 'Checking…',
  codeWrong: 'The code does not match. Ask the client to read it again.',
  verified: 'Verified.',
  newLogin: 'New login details: deliver this link yourself',
  leaving: 'Re-keying after a staff member left…',
  leavingDone: 'Re-keyed: the staff member reads nothing new.',
  keysFailed: 'The keys could not be updated. Try again.',
  close: 'Done',
};
export const leavingProgress = (done, total) => `Re-keying matters: ${done} of ${total}`;

/** The phase timeline: the client's steps, the staff phase control and the matter types editor. */
export const TIMELINE = {
  title: 'Progress',
  current: 'Current step',
  done: 'Done',
  upcoming: 'Coming up',
  // staff: the phase control on a matter
  phase: 'Phase (internal)',
  noType: 'No matter type yet: choose a phase to start its timeline.',
  move: 'Move',
  moving: 'Moving…',
  moved: 'Moved.',
  unchanged: 'Already in that phase.',
  noTypes: 'The firm has no matter types yet. An organisation admin adds them in Firm settings.',
  hiddenFromClients: 'The firm hides the timeline from clients.',
  // org admins: firm settings
  showTimeline: 'Clients see the timeline of steps of their matters',
  typesTitle: 'Matter types',
  typesIntro: 'Each type has internal phases (staff only) and the steps its clients see. Each phase shows one step, or keeps the client on the step before it.',
  newType: 'New matter type',
  typeName: 'Type name',
  steps: 'Client steps',
  phases: 'Internal phases',
  stepName: 'Step name',
  stepDescription: 'What the client reads',
  phaseName: 'Phase name',
  phaseStep: 'Client step',
  noStep: '(keeps the step before)',
  addStep: 'Add step',
  addPhase: 'Add phase',
  remove: 'Remove',
  up: 'Up',
  down: 'Down',
  save: 'Save type',
  create: 'Create type',
  saving: 'Saving…',
  saved: 'Saved.',
  errors: {
    invalid_name: 'Every name needs 1 to 200 characters on one line.',
    invalid_description: 'A description holds at most 2000 characters.',
    too_many_phases: 'A type has at most 50 phases.',
    too_many_steps: 'A type has at most 50 steps.',
    duplicate_name: 'That name is used already (names differ within a list, and types within the firm).',
    too_many_types: 'The firm has the most matter types allowed (100).',
    unknown_step: 'A phase names a step that is not in the list.',
  },
};

/** "Step 2 of 5" (index is 0-based). */
export const stepOf = (index, total) => `Step ${index + 1} of ${total}`;
/** A `step` event in the conversation: where the matter now stands. */
export const stepReached = (p) =>
  Number.isInteger(p.index) && Number.isInteger(p.total)
    ? `Now at step ${p.index + 1} of ${p.total}: ${p.name || ''}`
    : 'The timeline changed.';
/** A phase in the staff control: "Chasing documents → Preparing". */
export const phaseOption = (phase, step) => (step ? `${phase} → ${step}` : phase);
/** What the client currently sees, for staff. */
export const clientSees = (step, index, total) =>
  step ? `The client sees: ${stepOf(index, total)}, ${step}` : 'The client sees no step yet.';
/** Accessible names of the editor's rows. */
export const stepRow = (n) => `Step ${n}`;
export const phaseRow = (n) => `Phase ${n}`;

/** The document checklist: the client's Documents section (client/documents.js), the staff checklist (staff/checklist.js). */
export const DOCS = {
  title: 'Documents', requested: 'Requested of you', provided: 'From the firm', none: 'No documents requested yet.',
  status: { not_requested: 'Not requested', requested: 'Requested', uploaded: 'Uploaded', accepted: 'Accepted', rejected: 'Rejected', not_shared: 'Not shared', shared: 'Shared' },
  choose: 'Choose file', upload: 'Upload', uploadAgain: 'Upload again', uploading: 'Uploading…', uploaded: 'Uploaded. The firm will review it.',
  reason: 'Reason', reasonUnreadable: 'The reason cannot be read on this device.', download: 'Download', noKeys: 'Your keys are not on this device yet: uploads and downloads wait for them.',
  staffNoKeys: 'This device has no keys yet: rejecting, sharing and downloads wait for them.',
  blocking: 'Before the next step, the firm needs:', defaults: 'Add the matter type’s documents',
  checklist: 'Document checklist', addType: 'Document type', addToChecklist: 'Add to checklist', addToPortal: 'Add to portal', noTypes: 'The firm has no document types yet.',
  accept: 'Accept', reject: 'Reject', rejectReason: 'Why is it rejected? The client reads this.', confirmReject: 'Reject with this reason', cancel: 'Cancel', share: 'Share with the client', select: 'Select',
  errors: { document_accepted: 'Already accepted.', no_clients: 'The matter has no client in the portal yet.', no_matter_type: 'The matter has no matter type yet.' },
};
const DOC_EVENTS = { requested: 'Documents requested', uploaded: 'A document was uploaded', accepted: 'A document was accepted', rejected: 'A document was rejected', shared: 'The firm shared a document' };
/** A `document` or `document_shared` event in the matter's log, by its action. */
export const documentEvent = (action) => DOC_EVENTS[action] || 'Documents changed';
export const requestedOn = (date) => `Requested ${date}`;
export const fileLabel = (name, n) => name || `File ${n}`;
export const openRequests = (open, review) => `Open requests: ${open} · awaiting review: ${review}`;
export const docFailed = (message) => `Not done: ${message}`;
export const selectDoc = (label) => `Select ${label}`;

/** Threads of a matter's conversation (static/client/threads.js, staff/threadtools.js). */
export const THREADS = {
  showStaffReceipts: 'Clients see when staff have read their messages ("Seen by")',
  listLabel: 'Conversations',
  empty: 'No conversations yet.',
  untitled: 'Message',
  updates: 'Updates',
  newThread: 'New conversation',
  newThreadTitle: 'Start a new conversation',
  subject: 'Subject',
  message: 'Message',
  replyLabel: 'Your reply',
  replyPlaceholder: 'Write a reply…',
  send: 'Send',
  start: 'Start conversation',
  sending: 'Encrypting and sending…',
  sent: 'Sent.',
  saved: 'Saved.',
  back: 'All conversations',
  jumpUnread: 'Jump to first unread',
  earlier: 'Show earlier messages',
  newMessages: 'New',
  edited: 'Edited',
  deleted: 'This message was deleted.',
  editFlagged: 'Someone other than the sender tried to change this message; their change is not shown.',
  replayed: 'The server sent this message a second time. The copy is not shown: this should never happen.',
  moved: 'The server sent a copy of this message under another conversation. The copy is not shown: this should never happen.',
  edit: 'Edit',
  delete: 'Delete',
  confirmDelete: 'Delete this message for everyone?',
  yesDelete: 'Yes, delete',
  cancel: 'Cancel',
  save: 'Save changes',
  editLabel: 'Edit your message',
  internalThread: 'Internal thread: staff only',
  internalNote: 'Internal note: staff only',
  noteToggle: 'Internal note (clients never see it)',
  noteSend: 'Add internal note',
  noteLabel: 'Internal note: clients never see this',
  notePlaceholder: 'Write a note for your colleagues…',
  newClientThread: 'New message to the client',
  newInternalThread: 'New internal thread (staff only)',
  threadKind: 'Conversation with',
  recipients: 'Send to',
  noRecipients: 'No client of this matter has accepted the portal invitation yet.',
  pickRecipient: 'Choose at least one client.',
  tags: 'Tags',
  addTag: 'Add a tag',
  pickTag: 'Choose a tag',
  newTagName: 'New tag name',
  createTag: 'Create tag',
  filterTag: 'Show threads tagged',
  allThreads: 'All threads',
  tagUnnamed: 'Tag (name not readable here)',
  tagNamesUnavailable: 'Tag names are encrypted with the firm keys, which this device cannot use yet.',
  tagSealFailed: 'The tag could not be encrypted with the firm keys on this device. Reload the page and try again.',
  notYet: 'Not available on this server yet.',
};

/** "3 unread" */
export const unreadText = (n) => `${n} unread`;
/** "Seen by Cleo Client, Sam Staff" */
export const seenByText = (names) => `Seen by ${names.join(', ')}`;
/** "Cleo is typing…" / "Cleo, Sam are typing…" */
export const typingText = (names) => (names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`);
/** "To: Cleo Client, Carl Client" */
export const toText = (names) => `To: ${names.join(', ')}`;
/** "Remove tag urgent" */
export const removeTagText = (name) => `Remove tag ${name}`;
/** "Edited 6 Dec 2026, 10:01" */
export const editedAt = (time) => `Edited ${time}`;
/** "Not sent: …" */
export const notSent = (message) => `Not sent: ${message}`;

/** The staff activity feed (static/staff/feed.js). */
export const FEED = {
  nav: 'Activity',
  title: 'Activity across your matters',
  filters: 'Filters',
  matter: 'Matter',
  allMatters: 'All matters',
  type: 'Type',
  allTypes: 'All types',
  tag: 'Tag',
  allTags: 'All tags',
  unreadOnly: 'Unread only',
  fromClient: 'From the client',
  internal: 'Internal',
  empty: 'Nothing matches these filters.',
  more: 'Show older activity',
  open: 'Open',
  notYet: 'The activity feed is not available on this server yet.',
};

/** Feed item types as shown (docs/threads.md "Activity feed"). */
export const FEED_TYPE = {
  client_message: 'Client message',
  note: 'Internal note',
  phase: 'Phase change',
  invite: 'Invite',
  document: 'Document',
  bot: 'Bot card',
};

/** Attachments in threads (static/shared/attachfile.js, static/client/attachui.js). */
export const FILES = {
  attach: 'Attach files',
  chosen: 'Files to send',
  remove: 'Remove',
  encrypting: 'Encrypting…',
  uploading: 'Uploading…',
  cancel: 'Cancel upload',
  cancelled: 'Upload cancelled. Nothing was sent.',
  attachments: 'Attachments',
  download: 'Download',
  downloading: 'Downloading…',
  decrypting: 'Decrypting…',
  saved: 'Decrypted and saved.',
  unavailable: 'This file is not available.',
  corrupt: 'This file failed its integrity check and was not saved. Ask the sender to send it again.',
  file_too_large: 'A file is too large to send. Send a smaller file, or split it.',
  portal_quota_exceeded: 'This matter has no room left for more files. Ask the firm.',
  tooMany: 'At most 20 files per message.',
  defaultName: 'attachment', // a saved file whose name was empty
};

/** "1.5 MB", "320 KB", "12 bytes" (1000-based, as file managers show it). */
export const fileSize = (n) => {
  if (n < 1000) return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
  if (n < 1000 * 1000) return `${(n / 1000).toFixed(n < 10000 ? 1 : 0)} KB`;
  return `${(n / 1000000).toFixed(1)} MB`;
};
/** "Download report.pdf": a download button's accessible name. */
export const downloadName = (name) => `Download ${name}`;
/** "Remove report.pdf" */
export const removeFileName = (name) => `Remove ${name}`;
/** "Not sent: report.pdf could not be uploaded (…)" */
export const uploadFailed = (name, message) => `Not sent: ${name} could not be uploaded (${message}).`;
/** "Could not download (…)" */
export const downloadFailed = (message) => `Could not download (${message}).`;
