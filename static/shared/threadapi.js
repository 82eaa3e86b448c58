// The endpoints and websocket frames of threads, the feed and tags, exactly
// as docs/threads.md names them: thin calls through http.js, frame objects
// for socket.js. No logic lives here: what the answers mean is the thread
// model's (threadmodel.js) and the feed model's (feedmodel.js).

import { api } from './http.js';

const enc = encodeURIComponent;
const matterPath = (ref) => `/api/v1/matters/${enc(ref)}`;

/** `?a=1&b=x` of the set values of `query` (null, undefined, '' and false are left out). */
export function queryString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === null || value === undefined || value === '' || value === false) continue;
    params.set(key, value === true ? '1' : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** GET /matters/{ref}/threads: {threads: [{thread, kind, to, opener, last_at, items, unread}], …cursor}. */
export const listThreads = (ref, { before, limit } = {}) =>
  api('GET', `${matterPath(ref)}/threads${queryString({ before, limit })}`);

/** GET …/threads/{thread}/items: {events, prev, next, more, kind, opener, welcome}: a page of the thread's events, both ways. */
export const threadItems = (ref, thread, { before, after, limit } = {}) =>
  api('GET', `${matterPath(ref)}/threads/${enc(thread)}/items${queryString({ before, after, limit })}`);

/** GET …/threads/{thread}/first-unread: {thread, after (my read mark), first_unread (a cursor or null)}. */
export const firstUnread = (ref, thread) => api('GET', `${matterPath(ref)}/threads/${enc(thread)}/first-unread`);

/** POST …/threads/{thread}/read {upto}: my read mark (only forward); answers `unread` for the thread and the matter. */
export const markRead = (ref, thread, upto) => api('POST', `${matterPath(ref)}/threads/${enc(thread)}/read`, { upto });

/** GET …/unread: {matter: n, threads: {thread: n}}. */
export const unreadCounts = (ref) => api('GET', `${matterPath(ref)}/unread`);

/** GET …/threads/{thread}/receipts: {thread, receipts: [{reader, name, upto}]}, furthest first. */
export const threadReceipts = (ref, thread) => api('GET', `${matterPath(ref)}/threads/${enc(thread)}/receipts`);

/** GET /feed (staff): newest first across matters; filters matter, type, tag, unread; keyset pages. */
export const feedPage = ({ matter, type, tag, unread, before, limit } = {}) =>
  api('GET', `/api/v1/feed${queryString({ matter, type, tag, unread: unread ? 1 : null, before, limit })}`);

/** GET /firm/tags (staff): the firm's tags, names as ciphertext. */
export const firmTags = () => api('GET', '/api/v1/firm/tags');

/** POST /firm/tags (staff) {tag, name_blob}. */
export const createTag = (tag, nameBlob) => api('POST', '/api/v1/firm/tags', { tag, name_blob: nameBlob });

/** POST /matters/{ref}/items/{item}/tags (staff) {tag, removed?}: writes a `tag` event. */
export const tagItem = (ref, item, tag, removed = false) =>
  api('POST', `${matterPath(ref)}/items/${enc(item)}/tags`, removed ? { tag, removed: true } : { tag });

/** The list `answer[key]` of an answer (`[]` when the answer has none). */
export function rowsOf(answer, key) {
  if (answer && Array.isArray(answer[key])) return answer[key];
  return [];
}

/**
 * The events of a `GET /api/v1/feed` page (`{rows, next}`): each row's staff
 * view of its event, with the row's matter, feed type and tags on it.
 */
export const feedRows = (answer) =>
  rowsOf(answer, 'rows').map((r) => ({ ...r.event, matter: r.matter, type: r.type, tags: r.tags }));

let readFrames = 0;

/** Client -> server: a read mark (answered by an `ack` naming its id, which the server requires). */
export const readFrame = (matter, thread, upto) => ({ type: 'read', id: `r${(readFrames += 1)}`, matter, thread, upto });

/** Client -> server: I am typing (staff writing a note add `internal`: staff-only typing). */
export const typingFrame = (matter, thread, internal = false) =>
  internal ? { type: 'typing', matter, thread, internal: true } : { type: 'typing', matter, thread };

/** Server -> client frames a thread view folds (threadmodel.applyFrame). */
export const THREAD_FRAMES = new Set(['receipt', 'typing', 'unread']);

export const TYPING_EVERY_MS = 3000; // the server drops more than one per 3 s per thread
