// The texts of a matter's progress and documents: the client's timeline, the
// staff phase control and matter types, the document checklist.
// One place per string, as shared/strings.js explains.

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
