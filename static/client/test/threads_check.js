// A page for tests/test_threads_dom.py: a ThreadsView (client/threads.js)
// fed the event shapes of docs/threads.md in Chromium, with no thread
// endpoints on the static server that serves it (their 404s are what a v1
// server answers). Keys: none on the device (bodies say so), or a device
// whose every check fails (`keys: 'failing'`: each body must be a warning,
// never content; the composer is offered as to a certified writer).
// The test drives it through `window.check` and reads the DOM hooks that
// client/threads.js documents.
import { ThreadsView } from '../threads.js';
import { threadTools } from '../../staff/threadtools.js';

const REF = 'ABCD1234';
const S3 = { kind: 'staff', id: 3, name: 'Sam Staff' };
const S4 = { kind: 'staff', id: 4, name: 'Tess Staff' };
const C12 = { kind: 'contact', id: 12, name: 'Cleo Client' };
const at = (n) => new Date(Date.UTC(2026, 11, 6, 9, n)).toISOString();
const ev = (seq, kind, actor, payload, audience = 'portal', blob = `b${seq}`) =>
  ({ seq, kind, actor, payload, blob, audience, created_at: at(seq) });

const CLIENT_EVENTS = [
  ev(1, 'message', S3, { thread: 'T1', item: 's3.aaaa', to: [12] }),
  ev(2, 'message', C12, { thread: 'T1', item: 'c12.bbbb', parent: 's3.aaaa', to: [12] }),
  ev(3, 'message', S3, { thread: 'T1', item: 's3.cccc', parent: 's3.aaaa', to: [12] }),
  ev(5, 'edit', C12, { thread: 'T1', item: 'c12.bbbb' }),
  ev(6, 'edit', S3, { thread: 'T1', item: 'c12.bbbb' }),
  ev(9, 'phase', S3, { phase: 'Lodged' }, 'portal', null),
  ev(10, 'message', C12, { thread: 'T2', item: 'c12.gggg', to: [12] }),
  ev(11, 'delete', C12, { thread: 'T2', item: 'c12.hhhh' }, 'portal', null),
  ev(12, 'message', C12, { thread: 'T2', item: 'c12.hhhh', parent: 'c12.gggg' }),
];
const STAFF_EVENTS = [
  ...CLIENT_EVENTS,
  ev(4, 'note', S4, { thread: 'T1', item: 's4.dddd', parent: 's3.aaaa' }, 'staff'),
  ev(7, 'note', S4, { thread: 'N1', item: 's4.eeee' }, 'staff'),
  ev(8, 'tag', S3, { item: 'c12.bbbb', tag: 'tagAAAAAAAAAAAAAAAAAAA' }, 'staff', null),
];

/** The token a contact gets for the event at `seq` ('tok-y' for 1: later events sort first as text). */
export const contactToken = (seq) => `tok-${String.fromCharCode(122 - seq)}`;
window.contactToken = contactToken;

function failingKeyring() {
  return {
    problems: [],
    keyChanges: [],
    certified: () => ({ user: 'me' }),
    epochOf: () => 1,
    canSeal: () => true,
    open: async () => ({ ok: false, code: 'crypto_signature' }),
  };
}

// Bodies with attachments (`keys: 'attached'`): every item opens as verified,
// its descriptors from ATTACHED by blob; the file ids are in the events'
// payload.files (the second item names fewer ids than descriptors: none usable).
export const XSS_NAME = '<img src=x onerror=alert(1)>.svg';
const descriptor = (name, size) => ({ att_id: new Uint8Array(16), fk: new Uint8Array(32), ct_sha256: new Uint8Array(32), size, name, mime: '' });
const ATTACHED = {
  x1: { sender: 's3', msg: 'aaaa', attachments: [descriptor(XSS_NAME, 123), descriptor('report.pdf', 4200000)] },
  x2: { sender: 'c12', msg: 'bbbb', attachments: [descriptor('a.txt', 1), descriptor('b.txt', 2)] },
  x3: { sender: 's3', msg: 'eeee', parent: 'aaaa', attachments: [] }, // an edit of the opener (check.add)
};
const bytesOf = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const ATTACHED_EVENTS = [
  ev(1, 'message', S3, { thread: 'T1', item: 's3.aaaa', to: [12], files: ['F1', 'F2'] }, 'portal', 'x1'),
  ev(2, 'message', C12, { thread: 'T1', item: 'c12.bbbb', parent: 's3.aaaa', to: [12], files: ['F3'] }, 'portal', 'x2'),
];

function attachedKeyring() {
  return {
    problems: [],
    keyChanges: [],
    certified: () => ({ user: 'me' }),
    epochOf: () => 1,
    canSeal: () => true,
    open: async (_ref, _thread, blob) => {
      const b = ATTACHED[blob];
      const header = b.parent ? { parent: bytesOf(b.parent) } : {};
      return { ok: true, sender: b.sender, role: 'staff', vis: 0, msgId: bytesOf(b.msg), header, body: { subject: '', text: `text ${blob}`, attachments: b.attachments } };
    },
  };
}

const frames = [];
window.check = {
  frames,
  /**
   * A view as `who` ('client' | 'staff'), fed in `order` ('log' | 'reverse'), on protocol `v`;
   * `shape: 'contact'`: the events as protocol v2 sends them to a contact (no seq, an
   * opaque cursor token, `tok-<letters>`, whose text order is the reverse of the log's);
   * `open`: the thread a link named (it opens first, on any screen).
   */
  setup(who, { order = 'log', v = 2, keys = 'none', shape = 'seq', open } = {}) {
    const staff = who === 'staff';
    let events = keys === 'attached' ? ATTACHED_EVENTS : staff ? STAFF_EVENTS : CLIENT_EVENTS;
    if (shape === 'contact') events = events.map(({ seq, ...rest }) => ({ ...rest, cursor: contactToken(seq) }));
    const view = new ThreadsView({ ref: REF, title: 'Smith visa' }, {
      staff,
      me: staff ? 's3' : 'c12',
      keyring: { failing: failingKeyring, attached: attachedKeyring }[keys]?.() ?? null,
      onSignedOut() {},
      openThread: open, // a link named this thread (the staff review inbox's)
      threadTools: staff ? threadTools({ onSignedOut() {} }) : null,
    });
    view.sendFrame = (frame) => frames.push(frame) > 0;
    document.getElementById('matters').replaceChildren(view.section);
    for (const e of order === 'reverse' ? [...events].reverse() : events) view.add(e);
    view.serverVersion(v);
    window.view = view;
  },
  frame(frame) {
    window.view.liveFrame({ matter: REF, ...frame });
  },
  /**
   * The device's keys change (`'none'` | `'failing'` | `'resyncing'` | `'attached'` |
   * `'hanging'` | `'revoked'`): the composer is drawn again and every body opened again.
   */
  keys(kind) {
    // 'resyncing': a firm sync swapped the verifier; the matter is verified again at the next seal
    const resyncing = () => ({ ...failingKeyring(), epochOf: () => 0 });
    // 'hanging': opening never ends (a key directory read the server never answers)
    const hanging = () => ({ ...attachedKeyring(), open: () => new Promise(() => {}) });
    // 'revoked': a revocation of my own key is known (keysync: certified() is null)
    const revoked = () => ({ ...attachedKeyring(), certified: () => null });
    const make = { failing: failingKeyring, resyncing, attached: attachedKeyring, hanging, revoked }[kind];
    window.view.keyring = make ? make() : null;
    window.view.keysReady(); // as client/main.js does when a device's keys change
  },
  add(event) {
    window.view.add({ created_at: at(event.seq), audience: 'portal', blob: `b${event.seq}`, ...event });
  },
};
