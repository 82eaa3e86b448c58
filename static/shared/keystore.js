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

async function run(mode, fn) {
  const db = await database();
  const tx = db.transaction(STORE, mode);
  const result = await request(fn(tx.objectStore(STORE)));
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
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

export function remove(firm, user) {
  return run('readwrite', (s) => s.delete(keyOf(firm, user)));
}

/** Every (firm, user) this browser holds keys for (sign-out of an unknown session forgets them all). */
export async function removeAll() {
  await run('readwrite', (s) => s.clear());
}
