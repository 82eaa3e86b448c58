"""The browser keyring (static/shared/keyring.js) in a real Chromium, on what its
pages rely on: signing out forgets the keys for good (work still under way at
sign-out, a message being opened that saves its id soon, a sync that saves when
it ends, in this tab or in another tab of the browser, must not write the
removed record back into IndexedDB, or the keys would outlive the sign-out);
and whether a matter can be written in does not flicker while a firm sync has
its chain verified again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.staticsite import chromium_page

FORGET = """async () => {
  const K = await import('/static/shared/keyring.js');
  const who = { firm: 'demo', user: 'c7' };
  const kr = await (await K.createIdentity(who)).store();
  const stored = (await K.openKeyring(who)) !== null;
  kr.saveSoon();               // a message just opened: its id saved soon
  const late = kr.save();      // a sync that ends while the user signs out
  await kr.forget();
  await late;
  await kr.save();             // the work that finishes after the sign-out
  kr.saveSoon();
  return { stored, timer: kr._saveTimer, held: (await K.openKeyring(who)) !== null };
}"""


def test_forgotten_keyring_is_never_saved_again() -> None:
    with chromium_page("/static/staff/") as (page, errors):
        result: dict[str, Any] = page.evaluate(FORGET)
    assert not errors, errors
    assert result == {"stored": True, "timer": None, "held": False}


CAN_SEAL = """async () => {
  const K = await import('/static/shared/keyring.js');
  const who = { firm: 'demo', user: 's3' };
  const kr = await (await K.createIdentity(who)).store();
  const unknown = kr.canSeal('R1');
  // what this device verified on an earlier sync, kept with its trust state; no
  // verifier holds the matter now (a new page, or a firm sync swapped it)
  kr.state.matters.R1 = { epoch: 2, hash: new Uint8Array(32), seen: {} };
  const remembered = [kr.epochOf('R1'), kr.canSeal('R1'), kr.canSeal('R2')];
  kr.chainAlarms.set('R1', 'crypto_rollback');  // the last sync disagreed: no writing
  const alarmed = kr.canSeal('R1');
  await kr.forget();
  return { unknown, remembered, alarmed };
}"""


def test_a_remembered_epoch_can_be_sealed_until_a_sync_disagrees() -> None:
    with chromium_page("/static/staff/") as (page, errors):
        result: dict[str, Any] = page.evaluate(CAN_SEAL)
    assert not errors, errors
    assert result == {"unknown": False, "remembered": [0, True, False], "alarmed": False}


RESEAL = """async () => {
  const K = await import('/static/shared/keyring.js');
  const kr = await (await K.createIdentity({ firm: 'demo', user: 's3' })).store();
  // the first matter sync seal() waits for was one begun before a firm sync swapped
  // the verifier: it leaves the new one without the matter; the next one verifies it
  let calls = 0;
  kr.verifier = { state: () => null };
  kr.syncMatter = async () => {
    calls += 1;
    if (calls === 2) kr.verifier = { state: () => ({ epoch: 1, manifest: { fek_version: 1 } }) };
    return { epoch: calls === 2 ? 1 : 0, problems: [] };
  };
  let code = null;
  try {
    await kr.seal('R1', 'T1', { text: 'x' });
  } catch (err) {
    code = err.code;
  }
  await kr.forget();
  return { calls, code };
}"""


def test_seal_syncs_again_after_a_sync_of_a_swapped_verifier() -> None:
    """Sealed past the stale sync: it gets as far as the epoch's key (none in this
    stub, ``crypto_wrong_context``), where it stopped at ``crypto_stale_epoch``."""
    with chromium_page("/static/staff/") as (page, errors):
        result: dict[str, Any] = page.evaluate(RESEAL)
    assert not errors, errors
    assert result == {"calls": 2, "code": "crypto_wrong_context"}


@contextmanager
def two_tabs(user: str) -> Iterator[tuple[Any, Any, list[str]]]:
    """Tabs A and B of one browser: A stored a new identity of ``user``
    (``window.pending`` in A), B opened its keyring (``window.kr`` in B)."""
    with chromium_page("/static/staff/") as (a, errors):
        a.evaluate(
            """async (user) => {
              const K = await import('/static/shared/keyring.js');
              window.pending = await K.createIdentity({ firm: 'demo', user });
              await window.pending.store();
            }""",
            user,
        )
        b = a.context.new_page()
        b.on("pageerror", lambda e: errors.append(str(e)))
        b.goto(a.url)
        assert b.evaluate(
            """async (user) => {
              const K = await import('/static/shared/keyring.js');
              window.kr = await K.openKeyring({ firm: 'demo', user });
              return window.kr !== null;
            }""",
            user,
        )
        yield a, b, errors


SIGN_OUT_IN_A = """async () => {
  const K = await import('/static/shared/keyring.js');
  const kr = await K.openKeyring({ firm: 'demo', user: 'c8' });
  await kr.forget();
  return (await K.openKeyring({ firm: 'demo', user: 'c8' })) !== null;
}"""

SAVE_IN_B = """async () => {
  const K = await import('/static/shared/keyring.js');
  window.kr.state.matters.R1 = { epoch: 3, hash: null, seen: {} };
  await window.kr.save();   // a sync that ended after the other tab signed out
  window.kr.saveSoon();
  return { held: (await K.openKeyring({ firm: 'demo', user: 'c8' })) !== null,
           timer: window.kr._saveTimer };
}"""


def test_a_tab_open_during_a_sign_out_in_another_never_saves_the_keys_back() -> None:
    """Two tabs of one browser hold the same keyring; signing out in one removes it
    from IndexedDB, and the other's later saves (a sync, messages opened) must not
    put it back. Before the sign-out, the other tab's saves do reach the store."""
    with two_tabs("c8") as (a, b, errors):
        # while the record is there, the other tab's saves update it
        b.evaluate(
            """async () => {
              window.kr.state.matters.R0 = { epoch: 2, hash: null, seen: {} };
              await window.kr.save();
            }"""
        )
        epoch = a.evaluate(
            """async () => {
              const K = await import('/static/shared/keyring.js');
              return (await K.openKeyring({ firm: 'demo', user: 'c8' })).state.matters.R0.epoch;
            }"""
        )
        assert epoch == 2
        assert a.evaluate(SIGN_OUT_IN_A) is False
        after: dict[str, Any] = b.evaluate(SAVE_IN_B)
    assert not errors, errors
    assert after == {"held": False, "timer": None}


SIGN_IN_AGAIN_IN_A = """async () => {
  const K = await import('/static/shared/keyring.js');
  const who = { firm: 'demo', user: 'c9' };
  await (await K.openKeyring(who)).forget();
  // a sign-in stores the same identity again (as a backup opened again would): only
  // the record's generation tells it from the one tab B holds
  const kr = await window.pending.store();
  return Array.from(kr.identity.kid);
}"""

SAVE_STALE_IN_B = """async () => {
  const K = await import('/static/shared/keyring.js');
  window.kr.state.matters.R1 = { epoch: 3, hash: null, seen: {} };
  await window.kr.save();
  const held = await K.openKeyring({ firm: 'demo', user: 'c9' });
  const kid = Array.from(held.identity.kid);
  return { kid, r1: 'R1' in held.state.matters, gone: window.kr.gone };
}"""


def test_a_stale_tab_never_overwrites_the_record_a_later_sign_in_stored() -> None:
    """Tab B holds the keyring of an earlier sign-in; tab A signs out and in again (a
    new record of the same identity). B's next save must leave A's record as it is,
    and B's keyring says it is gone (the page opens the stored one again)."""
    with two_tabs("c9") as (a, b, errors):
        new_kid = a.evaluate(SIGN_IN_AGAIN_IN_A)
        after: dict[str, Any] = b.evaluate(SAVE_STALE_IN_B)
    assert not errors, errors
    assert after == {"kid": new_kid, "r1": False, "gone": True}


MOVE_ON_IN_A = """async () => {
  const K = await import('/static/shared/keyring.js');
  const kr = await K.openKeyring({ firm: 'demo', user: 'c10' });
  kr.state.revocationVersion = 3;
  kr.state.escrowVersion = 2;
  kr.state.keys.s1 = { kid: 'aa', serial: 5 };
  kr.state.matters.R1 = { epoch: 4, hash: new Uint8Array([4, 4]), seen: { m2: 7 } };
  await kr.save();
}"""

SAVE_BEHIND_IN_B = """async () => {
  const K = await import('/static/shared/keyring.js');
  const st = window.kr.state;   // what tab B learnt before tab A moved on
  st.revocationVersion = 1;
  st.keys.s1 = { kid: 'aa', serial: 2 };
  st.keys.c4 = { kid: 'bb', serial: 1 };
  st.matters.R1 = { epoch: 2, hash: new Uint8Array([2, 2]), seen: { m1: 3 } };
  st.matters.R2 = { epoch: 1, hash: new Uint8Array([1]), seen: {} };
  await window.kr.save();
  const read = (s) => ({
    rv: s.revocationVersion, ev: s.escrowVersion, s1: s.keys.s1.serial, c4: s.keys.c4.serial,
    r1: [s.matters.R1.epoch, Array.from(s.matters.R1.hash), Object.keys(s.matters.R1.seen).sort()],
    r2: s.matters.R2.epoch,
  });
  const held = await K.openKeyring({ firm: 'demo', user: 'c10' });
  return { stored: read(held.state), page: read(window.kr.state) };
}"""


def test_a_tab_behind_another_never_saves_its_trust_state_back() -> None:
    """Tab A learns newer facts (a revocation list, a certificate serial, a matter's
    next epoch) and saves; tab B, which learnt older ones before, saves after it.
    What A remembered must survive (else the next visit would take a rollback for
    the truth), B's own facts too, and B's page moves forward to A's."""
    with two_tabs("c10") as (a, b, errors):
        a.evaluate(MOVE_ON_IN_A)
        after: dict[str, Any] = b.evaluate(SAVE_BEHIND_IN_B)
    assert not errors, errors
    want = {"rv": 3, "ev": 2, "s1": 5, "c4": 1, "r1": [4, [4, 4], ["m1", "m2"]], "r2": 1}
    assert after == {"stored": want, "page": want}


PIN_IN_A = """async () => {
  const K = await import('/static/shared/keyring.js');
  const kr = await K.openKeyring({ firm: 'demo', user: 's5' });
  await kr.pinFrk(new Uint8Array(32).fill(1));
}"""

PIN_ANOTHER_IN_B = """async () => {
  const K = await import('/static/shared/keyring.js');
  let code = null;
  try {
    await window.kr.pinFrk(new Uint8Array(32).fill(2));  // the server served this tab another root
  } catch (err) {
    code = err.code;
  }
  const held = await K.openKeyring({ firm: 'demo', user: 's5' });
  return { code, stored: held.frkFingerprint[0], page: window.kr.frkFingerprint[0] };
}"""


def test_two_tabs_pinning_two_roots_keep_the_first_and_the_second_is_refused() -> None:
    """A staff device with no pin in its backup pins at its first certified sync; two
    tabs open at once each pin, and a server serving each another root must not see
    both accepted (the stored pin flipping with every save): the tab that pins second
    keeps the stored pin and its pinning fails, as a served root unlike the pin does."""
    with two_tabs("s5") as (a, b, errors):
        a.evaluate(PIN_IN_A)
        after: dict[str, Any] = b.evaluate(PIN_ANOTHER_IN_B)
    assert not errors, errors
    assert after == {"code": "crypto_wrong_context", "stored": 1, "page": 1}


LATER_EPOCH_IN_A = """async () => {
  const K = await import('/static/shared/keyring.js');
  const kr = await K.openKeyring({ firm: 'demo', user: 's6' });
  kr.state.matters.R1 = { epoch: 4, hash: new Uint8Array([4]), seen: {} };
  kr.state.matters.R2 = { epoch: 3, hash: new Uint8Array([3]), seen: {} };
  kr.state.matters.R3 = { epoch: 2, hash: new Uint8Array([2]), seen: {} };
  await kr.save();
}"""

SEAL_IN_B = """async () => {
  const kr = window.kr;
  // what this page verified: R1 at an older epoch, R2 another chain at the same one, R3 as A
  const held = { R1: [2, 2], R2: [3, 9], R3: [2, 2] };
  const at = (ref) => ({ epoch: held[ref][0], hash: new Uint8Array([held[ref][1]]) });
  kr.verifier = { state: (_f, ref) => ({ ...at(ref), manifest: { fek_version: 1 } }) };
  for (const ref of Object.keys(held)) kr.state.matters[ref] = { ...at(ref), seen: {} };
  await kr.save();  // takes in what tab A stored
  const synced = [];
  kr.syncMatter = async (ref) => {
    synced.push(ref);  // the server still serves this page's chain: the sync's verdict
    kr.chainAlarms.set(ref, ref === 'R1' ? 'crypto_rollback' : 'crypto_chain');
    return { epoch: held[ref][0], problems: [] };
  };
  const codes = {};
  for (const ref of Object.keys(held)) {
    try {
      await kr.seal(ref, 'T1', { text: 'x' });
    } catch (err) {
      codes[ref] = err.code;
    }
  }
  return { synced, codes };
}"""


def test_seal_syncs_first_when_another_tab_verified_more_of_the_chain() -> None:
    """Tab B verified a matter at epoch 2; tab A, at epoch 4 (a member removed meanwhile).
    B's save takes A's epoch in; B must not then seal under epoch 2 (readable by whoever
    left) on the word of its old verifier: seal syncs first, and a server still serving
    the old chain is refused (crypto_rollback; another chain at one epoch, crypto_chain).
    R3, where both tabs agree, seals with no sync (to the stub's missing key)."""
    with two_tabs("s6") as (a, b, errors):
        a.evaluate(LATER_EPOCH_IN_A)
        after: dict[str, Any] = b.evaluate(SEAL_IN_B)
    assert not errors, errors
    assert after == {
        "synced": ["R1", "R2"],
        "codes": {"R1": "crypto_rollback", "R2": "crypto_chain", "R3": "crypto_wrong_context"},
    }


KIDS = """async () => {
  const K = await import('/static/shared/keyring.js');
  const kid = (i) => (i ? Array.from(i.kid).slice(0, 4).join('.') : null);
  const read = (kr) => ({
    identity: kid(kr.identity),
    next: kid(kr._record.next),
    previous: kid(kr._record.previous),
    bound: Object.fromEntries(Object.entries(kr._record.bound || {}).map(([r, i]) => [r, kid(i)])),
    retired: (kr._record.retired || []).map(kid),
    signer: kid(kr.signerFor('R2')),
    code: kr.verificationCode,
  });
  const held = await K.openKeyring({ firm: 'demo', user: window.who });
  return { stored: read(held), page: window.kr ? read(window.kr) : null };
}"""

IN_A = """async ([who, step]) => {
  const K = await import('/static/shared/keyring.js');
  window.who = who;
  const kr = window.krA || (window.krA = await K.openKeyring({ firm: 'demo', user: who }));
  const fresh = async () => (await K.createIdentity({ firm: 'demo', user: who })).storedIdentity();
  if (step === 'handover') await kr.addNext(await fresh(), '123 456');
  if (step === 'promote') kr.promoteNext();    // staff certified the fresh identity
  if (step === 'bind') await kr.addBound('R2', await fresh());
  if (step === 'unbind') kr.unbind('R2');      // staff certified my identity in R2
  await kr.save();
  const kid = (i) => Array.from(i.kid).slice(0, 4).join('.');
  return { identity: kid(kr.identity), keys: kr.identities().map(kid) };
}"""

SAVE_IN_B_AGAIN = """async (who) => {
  window.who = who;
  window.kr.state.matters.R9 = { epoch: 1, hash: new Uint8Array([1]), seen: {} };
  await window.kr.save();   // a sync, messages opened: this tab saves
}"""


def test_a_tab_behind_a_handover_in_another_never_saves_the_fresh_identity_away() -> None:
    """Tab A hands the invite key over to a fresh identity (kept as ``next`` until staff
    certify it, then promoted, the invite key kept as ``previous``); tab B opened the
    record before. B's saves must keep the fresh key (else, A closed, the browser holds
    only the invite key: the fresh one's certificate is never its own, nothing wrapped
    to it opens) and B moves forward with A: the same next, then the same identity."""
    with two_tabs("c12") as (a, b, errors):
        first = a.evaluate(IN_A, ["c12", "handover"])
        invite, fresh = first["keys"][0], first["keys"][1]
        b.evaluate(SAVE_IN_B_AGAIN, "c12")
        handed: dict[str, Any] = b.evaluate(KIDS)
        assert a.evaluate(IN_A, ["c12", "promote"])["identity"] == fresh
        b.evaluate(SAVE_IN_B_AGAIN, "c12")
        promoted: dict[str, Any] = b.evaluate(KIDS)
    assert not errors, errors
    waiting = {"identity": invite, "next": fresh, "previous": None, "bound": {}, "retired": []}
    assert handed["stored"] == handed["page"] == {**waiting, "signer": invite, "code": "123 456"}
    done = {"identity": fresh, "next": None, "previous": invite, "bound": {}, "retired": []}
    assert promoted["stored"] == promoted["page"] == {**done, "signer": fresh, "code": None}


def test_a_tab_behind_a_second_matter_in_another_never_drops_its_invite_key() -> None:
    """Tab A keeps a second matter's invite key (bound to R2: the link is used up, it
    alone reads and signs there) and later retires it (staff certified my identity in
    R2). Tab B, opened before, must keep the key through its saves: bound, then retired
    (it still opens what was wrapped to it), and sign in R2 as A does."""
    with two_tabs("c13") as (a, b, errors):
        bound = a.evaluate(IN_A, ["c13", "bind"])
        me, key = bound["keys"][0], bound["keys"][1]
        b.evaluate(SAVE_IN_B_AGAIN, "c13")
        held: dict[str, Any] = b.evaluate(KIDS)
        a.evaluate(IN_A, ["c13", "unbind"])
        b.evaluate(SAVE_IN_B_AGAIN, "c13")
        retired: dict[str, Any] = b.evaluate(KIDS)
    assert not errors, errors
    base = {"identity": me, "next": None, "previous": None, "code": None}
    was_bound = {**base, "bound": {"R2": key}, "retired": [], "signer": key}
    assert held["stored"] == held["page"] == was_bound
    was_retired = {**base, "bound": {}, "retired": [key], "signer": me}
    assert retired["stored"] == retired["page"] == was_retired


UNLOCK_AGAIN = """async () => {
  const K = await import('/static/shared/keyring.js');
  const { b64url } = await import('/static/crypto/bytes.js');
  const who = { firm: 'demo', user: 'c14' };
  const password = 'a long enough password';
  const salt = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const kdf = { salt, m_kib: 19456, t: 2, p: 1 };
  const pending = await K.createIdentity(who);
  const made = await pending.createBackup(password, kdf);
  const kr = await pending.store();
  const invite = await (await K.createIdentity(who)).storedIdentity();
  await kr.addBound('R2', invite);  // a second matter's invite key: the link is used up
  // the session ended (or a third matter's invite is accepted): the same backup is opened again
  const again = await K.unlockWithPassword({ ...who, password, kdf, backupBytes: made.backup });
  const held = await K.openKeyring(who);
  const kid = (i) => Array.from(i.kid).join('.');
  return {
    same: kid(again.identity) === kid(kr.identity),
    page: kid(again.signerFor('R2')) === kid(invite),
    stored: kid(held.signerFor('R2')) === kid(invite),
  };
}"""


def test_a_sign_in_that_opens_the_same_identity_again_keeps_its_other_keys() -> None:
    """A password sign-in (or a further matter's invite) opens the key backup, which
    holds the identity only, and stored a new record of it: the second matter's
    invite key this browser alone held was dropped, and with it what only it reads
    and signs. The same identity opened again keeps the keys stored beside it."""
    with chromium_page("/static/staff/") as (page, errors):
        result: dict[str, Any] = page.evaluate(UNLOCK_AGAIN)
    assert not errors, errors
    assert result == {"same": True, "page": True, "stored": True}


SPOIL_IN_A = """async () => {
  const S = await import('/static/shared/keystore.js');
  const record = await S.load('demo', 'c15');
  record.state.matters = { R1: null };  // a shape this code cannot merge (another version's)
  await S.save(record);
  let thrown = null;  // the store itself: a merge that throws writes nothing
  try {
    await S.update({ ...record, state: { marker: 1 } }, () => { throw new RangeError('no'); });
  } catch (err) {
    thrown = err.name;
  }
  let uncloned = null;  // a record IndexedDB cannot store: the put's own error, nothing written
  try {
    await S.update({ ...record, state: { marker: 2 }, extra: () => 1 });
  } catch (err) {
    uncloned = err.name;
  }
  return { thrown, uncloned, kept: (await S.load('demo', 'c15')).state.marker === undefined };
}"""

SAVE_OVER_SPOILT_IN_B = """async () => {
  const S = await import('/static/shared/keystore.js');
  const logged = [];
  const log = console.error;
  console.error = (...args) => logged.push(String(args[0]));
  try {
    window.kr.state.matters.R1 = { epoch: 2, hash: null, seen: {} };
    await window.kr.save();
    await window.kr.save();  // said once
  } finally {
    console.error = log;
  }
  const stored = await S.load('demo', 'c15');
  return { error: window.kr.saveError, gone: window.kr.gone, logged,
           stored: stored.state.matters.R1 };
}"""


def test_a_stored_record_that_cannot_be_merged_is_kept_and_the_failure_said() -> None:
    """A save merges what another tab stored, in the store's transaction; a stored
    record that merge cannot read must neither be overwritten (with a state that may
    know less) nor fail in silence like a browser without IndexedDB: the store
    rejects with the merge's own error (not the abort it causes), the record stays,
    and the keyring says ``keyring_unmergeable`` once. Fails without the catch in
    ``keystore.update`` (an AbortError) or in ``keyring.save`` (nothing said)."""
    with two_tabs("c15") as (a, b, errors):
        spoilt: dict[str, Any] = a.evaluate(SPOIL_IN_A)
        after: dict[str, Any] = b.evaluate(SAVE_OVER_SPOILT_IN_B)
    assert not errors, errors
    assert spoilt == {"thrown": "RangeError", "uncloned": "DataCloneError", "kept": True}
    assert after == {
        "error": "keyring_unmergeable",
        "gone": False,
        "logged": ["rtportal keyring: keyring_unmergeable"],
        "stored": None,
    }
