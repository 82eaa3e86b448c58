// The browser's key store: one IndexedDB record per (firm, user) holding the
// identity's private keys as non-extractable CryptoKey objects (IndexedDB
// stores CryptoKeys by structured clone without ever exposing their bytes)
// and the trust state the keyring must remember across visits (pinned root,
// certificate serials, each matter's epoch and hash, seen message ids).

const DB = 'rtportal-keys';
const STORE = 'keyrings';
const VERSION = 1;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let opening = null;

function database() {
  if (!opening) {
    const req = indexedDB.open(DB, VERSION);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    opening = request(req).catch((err) => {
      opening = null;
      throw err;
    });
  }
  return opening;
}

/** Resolves once `tx` committed (rejects if it failed or was aborted). */
function completed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

async function run(mode, fn) {
  const db = await database();
  const tx = db.transaction(STORE, mode);
  const result = await request(fn(tx.objectStore(STORE)));
  await completed(tx);
  return result;
}

const keyOf = (firm, user) => `${firm}/${user}`;

/** The stored record of (firm, user), or null. */
export async function load(firm, user) {
  return (await run('readonly', (s) => s.get(keyOf(firm, user)))) ?? null;
}

export function save(record) {
  return run('readwrite', (s) => s.put(record, keyOf(record.firm, record.user)));
}

/**
 * Overwrite the record of (firm, user) only if the stored one is still of the
 * same generation (`gen`, set when a sign-in or a new identity stores it);
 * resolves true if written. A keyring's own saves use this: after a sign-out
 * in another tab removed the record (or a sign-in there stored a new one), a
 * page still open must not write its keys back. `merge(stored)`, if given, is
 * called with the stored record in the same transaction, just before the put
 * (synchronously: another tab's save cannot come between its read and this
 * write). If `merge` throws (or the put does), nothing is written and update
 * rejects with that error.
 */
export async function update(record, merge = null) {
  const db = await database();
  const tx = db.transaction(STORE, 'readwrite');
  const s = tx.objectStore(STORE);
  const key = keyOf(record.firm, record.user);
  let written = false;
  let failure = null;
  // get and put in one readwrite transaction: no removal can come between them
  s.get(key).onsuccess = (e) => {
    const stored = e.target.result;
    if (stored === undefined || stored.gen !== record.gen) return;
    try {
      if (merge) merge(stored);
      s.put(record, key); // throws at once for a record IndexedDB cannot clone
    } catch (err) {
      // nothing is written (the stored record stays as it is) and the caller
      // gets the merge's or the put's own error, not the abort it causes
      failure = err;
      tx.abort();
      return;
    }
    written = true;
  };
  try {
    await completed(tx);
  } catch (err) {
    throw failure ?? err;
  }
  return written;
}

export function remove(firm, user) {
  return run('readwrite', (s) => s.delete(keyOf(firm, user)));
}

/** Every (firm, user) this browser holds keys for (sign-out of an unknown session forgets them all). */
export async function removeAll() {
  await run('readwrite', (s) => s.clear());
}
