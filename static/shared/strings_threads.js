// The texts of a matter's conversation: threads, notes, tags, receipts and
// attachments (static/client/threads.js and friends, staff/threadtools.js).
// One place per string, as shared/strings.js explains.

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
