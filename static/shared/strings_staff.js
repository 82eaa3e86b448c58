// The texts of the staff app's screens (static/staff/): navigation, matters,
// portal invitations, administration, firm keys, the activity feed, the review
// inbox. A client's page never loads this module.
// One place per string, as shared/strings.js explains.

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

/** The review inbox (static/staff/reviews.js) and its count in the navigation (staff/reviewcount.js). */
export const REVIEWS = {
  nav: 'Reviews',
  title: 'Review inbox',
  intro: 'What clients sent that awaits your review, oldest review date first.',
  show: 'Show',
  all: 'Everything awaiting review',
  due: 'Due',
  overdue: 'Overdue',
  empty: 'Nothing awaits your review.',
  emptyFiltered: 'Nothing here with this filter.',
  more: 'Show more',
  kind: { document: 'Portal Doc', message: 'Portal Message' },
  client: 'Client',
  reviewOn: 'Review date',
  received: 'Received',
  files: 'Files',
  open: 'Open',
  markReviewed: 'Mark reviewed',
  marking: 'Marking…',
  reviewed: 'Marked reviewed.',
  reassign: 'Reassign',
  reassignTo: 'Give to',
  reassignSubmit: 'Reassign',
  reassigned: 'Reassigned.',
  changeDate: 'Change date',
  newDate: 'New review date',
  changeDateSubmit: 'Move',
  moved: 'Review date changed.',
  saving: 'Saving…',
  cancel: 'Cancel',
  changed: 'New items arrived.',
  reload: 'Show them',
  unknownSender: 'Unknown client',
  errors: {
    already_reviewed: 'Someone has already marked this reviewed.',
    no_such_reviewer: 'That staff member cannot review (disabled or not set up yet).',
    review_date: 'Choose a real date within ten years of today.',
    no_such_review: 'This review no longer exists.',
  },
};

/** The count's accessible name: "Reviews: 3 awaiting review, 2 due, 1 overdue". */
export const reviewCountLabel = (open, due, overdue) =>
  `${REVIEWS.nav}: ${open} awaiting review, ${due} due, ${overdue} overdue`;
/** The overdue part of the count: "1 overdue". */
export const overdueCount = (n) => `${n} overdue`;
/** A row's accessible name of its actions: "Actions for Portal Doc from Cleo Client". */
export const reviewActions = (label, sender) => `Actions for ${label} from ${sender}`;
/** The due part of the count: "2 due". */
export const dueCount = (n) => `${n} due`;
