// The firm root key in the org admin's browser: IndexedDB holds the FRK as
// a non-extractable Ed25519 CryptoKey (WebCrypto signs with it; no script can
// read its bytes back), with its public key and fingerprint. The seed exists
// only while the key file is made or read; the key file is the copy to keep
// offline. Signing out keeps it: it is the firm's, not the session's; "forget
// the firm key on this device" removes it.

import * as C from '../crypto/index.js';

const DB = 'rtportal-frk';
const STORE = 'frk';

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/**
 * Keep the FRK of `firm` from its 32-byte seed: imports it non-extractable and
 * stores it. Returns the signer {id: '#frk', kid, edSk, edPk, fingerprint}.
 */
export async function keepFrk(firm, seed) {
  const frk = await C.keys.frkFromSeed(seed);
  const edSk = await C.primitives.ed25519PrivateKey(seed, false);
  const signer = { id: C.certs.FRK_ISSUER, kid: frk.kid, edSk, edPk: frk.edPk, fingerprint: frk.fingerprint };
  try {
    await run('readwrite', (s) => s.put(signer, firm));
  } catch {
    // no IndexedDB (a private window): the key lives as long as this page; the key file is the copy
  }
  return signer;
}

/** The FRK signer of `firm` kept in this browser, or null. */
export async function loadFrk(firm) {
  try {
    return (await run('readonly', (s) => s.get(firm))) || null;
  } catch {
    return null;
  }
}

export async function forgetFrk(firm) {
  try {
    await run('readwrite', (s) => s.delete(firm));
  } catch {
    // nothing stored
  }
}
