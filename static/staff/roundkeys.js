// The keys of an invite round, for the flyout: the bundle the round carries
// (certificates, next epoch, encrypted welcomes, and secrets only for
// "send by the portal"), and after the server's answer the own-mail result:
// per contact a prepared mailto: message and the link to copy (the link's
// fragment holds the invite secret and the firm root fingerprint, which the
// server never sees).

import { el } from '../shared/dom.js';
import { button } from '../shared/forms.js';
import { KEYS } from '../shared/strings_staff.js';
import * as C from '../crypto/index.js';
import { inviteBundle, inviteLink, mailtoHref, portalPage } from './epochflows.js';
import { clientUser } from './keyflows.js';
import { currentFek, keyedRing, matterState } from './keyctx.js';
import { api } from '../shared/http.js';

/**
 * The `crypto` field of a round for `chosen` [{contact_id, email, name}]
 * delivered by `delivery` ('own_mail' | 'portal': one per round) with the
 * welcome `subject`/`body`, and the secrets by contact id.
 * Null when this browser holds no keys (the round then goes without: the
 * server refuses it once the firm has keys).
 */
async function roundKeys(ctx, ref, delivery, chosen, subject, body) {
  const kr = await keyedRing(ctx);
  if (!kr) return null; // no keys on this device or in the firm yet: the round goes without crypto
  // the link's root fingerprint is the one this device pinned (from my backup), never the server's
  if (!kr.frkFingerprint) throw new C.CryptoInvalid('crypto_uncertified', KEYS.unpinned);
  const state = await matterState(kr, ref);
  const joining = new Set(chosen.map((c) => clientUser(c.contact_id)));
  const out = await inviteBundle({
    firm: kr.firm,
    matter: ref,
    me: kr.identity,
    trust: state.trust,
    fek: currentFek(kr),
    prev: state.prev,
    members: state.members.filter((m) => !joining.has(m.user)),
    shareHistory: state.shareHistory,
    delivery,
    // in the portal the welcome links to the portal page (the personal link is for the email only)
    trust: kr.trust,
    invites: chosen.map((c) => ({
      contactId: c.contact_id,
      subject,
      text: merge(body, c.name, portalPage(kr.firm)),
    })),
    nowMs: Date.now(),
  });
  return { ...out, frkLink: C.keys.fingerprintLink(kr.frkFingerprint), portal: portalPage(kr.firm) };
}

/** The welcome text with the merge fields the browser knows filled in. */
function merge(text, name, link) {
  return text.split('{client_name}').join(name || '').split('{portal_link}').join(link);
}

/** A read-only field with `link` and a Copy button (webmail users paste it into their message). */
export function copyableLink(link, label) {
  const text = el('input', 'link-text');
  text.readOnly = true;
  text.value = link;
  text.setAttribute('aria-label', label);
  const copy = button(KEYS.copyLink, 'button quiet', 'button');
  copy.addEventListener('click', async () => {
    text.select();
    try {
      await navigator.clipboard.writeText(link);
    } catch {
      // no clipboard permission: the selected text is there to copy by hand
    }
    copy.textContent = KEYS.copied;
  });
  return [text, copy];
}

/**
 * Send the invitations of the flyout: one round per delivery (the server
 * takes one delivery per round), portal first; each round's bundle is made
 * again once on 409 epoch_conflict. `about`: [{contact_id, method,
 * see_applicants, delivery, name, email}]. Returns {sent (the last answer),
 * own: {sent, keys, chosen} of the own-mail round or null}.
 */
export async function sendRounds(ctx, ref, about, subject, body) {
  const groups = [
    ['portal', about.filter((c) => c.delivery !== 'own_mail')],
    ['own_mail', about.filter((c) => c.delivery === 'own_mail')],
  ].filter(([, group]) => group.length);
  let sent = null;
  let own = null;
  for (const [delivery, group] of groups) {
    const invites = group.map((c) => ({ contact_id: c.contact_id, method: c.method, see_applicants: c.see_applicants }));
    // own mail: the server sends nothing, so it is not told the text (only the envelope)
    const payload = delivery === 'own_mail' ? { invites } : { invites, subject, body };
    for (let attempt = 0; ; attempt++) {
      const keys = ctx ? await roundKeys(ctx, ref, delivery, group, subject, body) : null;
      if (keys) payload.crypto = keys.crypto;
      else if (delivery === 'own_mail') throw new Error(KEYS.noKeyring); // the link needs keys this browser lacks
      try {
        sent = await api('POST', `/api/v1/matters/${encodeURIComponent(ref)}/invites`, payload);
        if (delivery === 'own_mail') own = { sent, keys, chosen: group };
        break;
      } catch (err) {
        if (attempt > 0 || err.code !== 'epoch_conflict') throw err;
      }
    }
  }
  return { sent, own };
}

/**
 * The link token the server answered for one contact (docs/keys.md: own_mail
 * answers the tokens). Its `url` is ignored: the link is built on this page's
 * origin, so a server cannot send the secret to another site.
 */
function tokenOf(sent, contactId) {
  return ((sent.links || []).find((l) => Number(l.contact_id) === Number(contactId)) || {}).token;
}

/**
 * The own-mail result panel: per own-mail contact an "Open in my mail
 * program" link (mailto:) and the link with a Copy button. `onDone()` closes.
 */
export function ownMailPanel(sent, keysOut, chosen, subject, body, onDone) {
  // `chosen`: the contacts of this own-mail round
  const box = el('div', 'stack own-mail');
  box.id = 'own-mail';
  box.append(el('h3', null, KEYS.ownMailTitle));
  for (const c of chosen) {
    const link = inviteLink(keysOut.portal, tokenOf(sent, c.contact_id), keysOut.secrets[c.contact_id], keysOut.frkLink);
    const row = el('div', 'own-mail-row');
    row.dataset.contact = String(c.contact_id);
    const open = el('a', 'button', KEYS.openMail);
    open.href = mailtoHref(c.email, subject, merge(body, c.name, link), link);
    open.dataset.action = 'mailto';
    const [text, copy] = copyableLink(link, KEYS.linkLabel);
    row.append(el('strong', null, c.name || ''), open, el('p', 'hint', KEYS.linkLabel), text, copy);
    box.append(row);
  }
  const done = button(KEYS.close, 'button quiet', 'button');
  done.addEventListener('click', onDone);
  box.append(done);
  return box;
}
