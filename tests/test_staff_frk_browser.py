"""The firm root key in a real Chromium (static/staff/frkstore.js): kept in
IndexedDB as a non-extractable Ed25519 CryptoKey that survives a reload,
signs the staff certificates the library verifies, and cannot be exported by
any script; forgetting it removes it."""

from __future__ import annotations

from typing import Any

from tests.support.staticsite import chromium_page

KEEP = """async () => {
  const store = await import('/static/staff/frkstore.js');
  const K = await import('/static/staff/keyflows.js');
  const { seed, frk } = await K.newFirmRoot();
  const signer = await store.keepFrk('demo', seed);
  return { text: frk.text, extractable: signer.edSk.extractable, type: signer.edSk.type };
}"""

USE = """async () => {
  const store = await import('/static/staff/frkstore.js');
  const K = await import('/static/staff/keyflows.js');
  const C = await import('/static/crypto/index.js');
  const frk = await store.loadFrk('demo');
  let exported = 'refused';
  try {
    await crypto.subtle.exportKey('pkcs8', frk.edSk);
    exported = 'exported';
  } catch (e) {
    exported = e.name;
  }
  const me = await C.keys.generateUik();
  const cert = await K.staffCert('demo', frk, 's1', me, Date.now());
  const trust = new C.TrustStore({ firm: 'demo', frkEdPk: frk.edPk });
  const t = await trust.addCert(cert, Date.now());
  await store.forgetFrk('demo');
  return {
    text: C.keys.fingerprintText(frk.fingerprint),
    exported,
    certified: t.user,
    gone: (await store.loadFrk('demo')) === null,
  };
}"""


def test_frk_kept_non_extractable_in_chromium() -> None:
    with chromium_page("/static/staff/") as (page, errors):
        kept: dict[str, Any] = page.evaluate(KEEP)
        page.reload()  # a new page: the key comes back from IndexedDB only
        used: dict[str, Any] = page.evaluate(USE)
    assert not errors, errors
    assert kept == {"text": kept["text"], "extractable": False, "type": "private"}
    assert used == {
        "text": kept["text"],
        "exported": "InvalidAccessError",
        "certified": "s1",
        "gone": True,
    }
