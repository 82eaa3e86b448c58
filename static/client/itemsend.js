// Writing thread items (docs/threads.md): an opener, a reply, an internal
// note, an edit, a delete. Bodies are sealed by the keyring before anything
// leaves the page; the send's client_id is the envelope's msg_id, which is
// what makes the item id `<sender>.<msg_id>` and a retry the same item.

import * as C from '../crypto/index.js';
import { b64url, fromB64url } from '../crypto/bytes.js';
import { newClientId } from '../shared/format.js';
import { ApiError, api } from '../shared/http.js';
import { VIS } from '../shared/keyring.js';
import { msgIdOfItem } from '../shared/threadmodel.js';

/** A new thread id: 16 random bytes, base64url (docs/threads.md "Ids"). */
export function newThreadId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return b64url(bytes);
}

/** The msg_id of a sealed envelope, base64url (the send's client_id). */
export function envelopeMsgId(envelope) {
  return b64url(C.encoding.decode(C.envelope.ENVELOPE, envelope).aad.msg_id);
}

/** POST an event; a network failure is retried once with the same client_id (no second event). */
export async function postEvent(ref, body) {
  const path = `/api/v1/matters/${encodeURIComponent(ref)}/events`;
  try {
    return (await api('POST', path, body)).event;
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'network')) throw err;
    return (await api('POST', path, body)).event;
  }
}

/**
 * Seal with `seal()` and post `body(envelope)`; a new epoch since the last
 * sync (`stale_epoch`) reads the keys again and seals once more (staff
 * first post the epoch without a client who left: `onRekey`).
 */
export async function sealAndPost(ref, keyring, seal, body, onRekey = null) {
  try {
    return await postEvent(ref, body(await seal()));
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'stale_epoch')) throw err;
    const rekey = err.details.reason === 'rekey_required';
    if (rekey && !(onRekey && (await onRekey(err.details.users || [])))) throw err;
    await keyring.syncMatter(ref);
    return postEvent(ref, body(await seal()));
  }
}

/**
 * A new item: an opener, or a reply (the server sets its `parent`); staff may address a new
 * client thread `to` contacts, or write an internal note (`internal`). `attached`: uploaded
 * files [{id, descriptor}]: the ids go in payload.files, the descriptors (name, type, file
 * key) in the sealed body, in the same order (docs/files.md "Attaching").
 */
export function sendItem(ref, keyring, { thread, to = null, subject = '', text, internal = false, attached = [], onRekey = null }) {
  const vis = internal ? VIS.STAFF : VIS.PORTAL;
  const payload = { thread };
  if (to && to.length && !internal) payload.to = to;
  if (attached.length) payload.files = attached.map((a) => a.id);
  const attachments = attached.map((a) => a.descriptor);
  return sealAndPost(
    ref,
    keyring,
    () => keyring.seal(ref, thread, { subject, text, attachments }, { vis }),
    (envelope) => ({
      kind: internal ? 'note' : 'message',
      audience: internal ? 'staff' : 'portal',
      payload,
      blob: b64url(envelope),
      client_id: envelopeMsgId(envelope),
    }),
    onRekey,
  );
}

/**
 * An edit of my item `item` (the thread model's item view): a new envelope
 * whose `parent` is the item's msg_id, in the item's thread and audience.
 * An edit cannot name files: it carries the item's `attachments` (their
 * descriptors) unchanged, matched with the item's payload.files as before.
 */
export function editItem(ref, keyring, item, { subject = '', text, attachments = [], onRekey = null }) {
  const parent = msgIdOfItem(item.id);
  return sealAndPost(
    ref,
    keyring,
    () =>
      keyring.seal(ref, item.thread, { subject, text, attachments }, {
        vis: item.internal ? VIS.STAFF : VIS.PORTAL,
        parent: parent ? fromB64url(parent) : null,
      }),
    (envelope) => ({
      kind: 'edit',
      audience: item.audience,
      payload: { item: item.id },
      blob: b64url(envelope),
      client_id: envelopeMsgId(envelope),
    }),
    onRekey,
  );
}

/** A delete of `item` (mine, or any item for staff): no body; the server erases its blobs. */
export function deleteItem(ref, item) {
  return postEvent(ref, { kind: 'delete', audience: item.audience, payload: { item: item.id }, client_id: newClientId('del') });
}
