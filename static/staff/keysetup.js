// Firm keys (org admins, firm page): set up the firm root key (FRK) in this
// browser with its fingerprint and key file, or show that it is set up and
// whether this browser holds it (else load the key file). On opening the app
// an org admin's browser holding the FRK re-signs the revocation list once it
// is past half its life (maintainFirmKeys).

import { el } from '../shared/dom.js';
import { button, busy, control, field, say, statusLine } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { KEYS } from '../shared/strings_staff.js';
import * as C from '../crypto/index.js';
import { failed, load, panel } from './common.js';
import { forgetFrk, keepFrk, loadFrk } from './frkstore.js';
import { firmSetup, frkKeyFileText, listFacts, listNeedsResign, newFirmRoot, readFrkKeyFile, resignedList } from './keyflows.js';
import { b64, firmOf, keyringOf, unb64 } from './keyctx.js';

function fingerprintBox(text) {
  const box = el('div', 'fingerprint');
  box.append(el('p', 'hint', KEYS.fingerprint), el('code', 'fingerprint-text', text));
  return box;
}

/** A link that downloads `text` as a file. */
function downloadLink(name, text) {
  const a = el('a', 'button', KEYS.download);
  a.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  a.download = name;
  return a;
}

function setupForm(ctx, kr, section, done) {
  const form = el('form', 'stack');
  form.id = 'frk-setup';
  const line = statusLine();
  const start = button(KEYS.setUp);
  form.append(start, line);
  let made = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (made) return;
    made = await newFirmRoot();
    const firm = await firmOf(ctx);
    const saved = control('saved', { type: 'checkbox' });
    const label = el('label', 'inline', KEYS.saved);
    label.prepend(saved);
    const finish = button(KEYS.finish, 'button', 'button');
    finish.disabled = true;
    saved.addEventListener('change', () => (finish.disabled = !saved.checked));
    form.replaceChildren(
      fingerprintBox(made.frk.text),
      el('p', 'hint', KEYS.fingerprintHint),
      downloadLink(`${firm}-firm-root-key.txt`, frkKeyFileText(firm, made.frk, made.seed)),
      label,
      finish,
      line,
    );
    finish.addEventListener('click', async () => {
      const ok = await busy(form, line, KEYS.finishing, async () => {
        const frk = await keepFrk(firm, made.seed);
        made.seed.fill(0); // the key file and the non-extractable key are the only copies now
        const now = Date.now();
        await api('PUT', '/api/v1/keys/root', { frk: b64(made.frk.record) });
        const out = await firmSetup({ firm, frk, me: kr.identity, nowMs: now });
        await api('POST', '/api/v1/keys/certs', { certs: [b64(out.cert)] });
        await api('POST', '/api/v1/keys/escrow', { record: b64(out.escrow.record), wraps: out.escrow.wraps.map(b64) });
        await api('PUT', '/api/v1/keys/revocations', { list: b64(out.list) });
        if (kr.pinFrk) await kr.pinFrk(made.frk.fingerprint);
        await kr.syncFirm();
        return true;
      }, (err) => {
        failed(ctx, line, err);
        return true;
      });
      if (ok) done();
    });
  });
  section.append(form);
}

function loadFileForm(ctx, frkRecord, onLoaded) {
  const form = el('form', 'stack');
  form.id = 'frk-load';
  const file = control('frk_file', { type: 'file', accept: '.txt,text/plain' });
  const line = statusLine();
  form.append(field(KEYS.loadFile, file), line);
  file.addEventListener('change', async () => {
    try {
      const read = await readFrkKeyFile(await file.files[0].text());
      if (!C.bytes.bytesEqual(read.frk.record, frkRecord)) return say(line, KEYS.wrongFile, 'error');
      await keepFrk(await firmOf(ctx), read.seed);
      read.seed.fill(0);
      say(line, KEYS.loaded, 'ok');
      onLoaded();
    } catch (err) {
      failed(ctx, line, err);
    }
  });
  return form;
}

/** The firm keys panel of the firm page. */
export function firmKeysPanel(ctx) {
  const section = panel('firm-keys', KEYS.title);
  const draw = async () => {
    section.querySelectorAll('form, .fingerprint, p').forEach((n) => n.remove());
    const kr = await keyringOf(ctx);
    if (!kr) return section.append(el('p', 'notice', KEYS.noKeyring));
    const data = await load(ctx, section, () => api('GET', '/api/v1/keys/firm'));
    if (!data) return undefined;
    if (!data.frk) {
      section.append(el('p', 'hint', KEYS.intro));
      return setupForm(ctx, kr, section, draw);
    }
    const record = unb64(data.frk);
    const { fingerprint } = await C.keys.fingerprintOf(record);
    section.append(fingerprintBox(C.keys.fingerprintText(fingerprint)));
    if (await loadFrk(await firmOf(ctx))) {
      const forget = button(KEYS.forget, 'button quiet', 'button');
      forget.addEventListener('click', async () => {
        await forgetFrk(await firmOf(ctx));
        draw();
      });
      const p = el('p', 'hint', KEYS.heldHere);
      const form = el('form', 'stack');
      form.append(p, forget);
      return section.append(form);
    }
    section.append(el('p', 'hint', KEYS.notHere));
    return section.append(loadFileForm(ctx, record, draw));
  };
  draw();
  return section;
}

/**
 * On opening the app (org admins): re-sign the revocation list when it is
 * past half its life and this browser holds the FRK. Silent; false when
 * nothing was due or possible.
 */
export async function maintainFirmKeys(ctx) {
  try {
    const frk = await loadFrk(await firmOf(ctx));
    if (!frk) return false;
    const data = await api('GET', '/api/v1/keys/firm');
    const list = data.revocations && data.revocations.list;
    if (!data.frk || !list) return false;
    const facts = listFacts(unb64(list));
    if (!listNeedsResign(facts, Date.now())) return false;
    const next = await resignedList(await firmOf(ctx), frk, facts, Date.now());
    await api('PUT', '/api/v1/keys/revocations', { list: b64(next) });
    return true;
  } catch {
    return false; // another admin may have done it (version_conflict); tried again next time
  }
}
