// A matter's epochs as the staff browser makes them (docs/keys.md "Portal on /
// client invited", "Removal", "Regenerate login details", "Staff member
// leaves"): pure functions over static/crypto that return the records to post.
// Inputs are what the keyring verified: the previous epoch {epoch, hash}, the
// members of the next one [{user, kid, role, xPk}] (clients and bots; staff
// read through the FEK), the current firm escrow key {version, kid, xPk}, and
// `me` (the keyring's identity {id, kid, edSk, ...}) with a certificate that may certify clients.

import * as C from '../crypto/index.js';
import { welcomeThread } from '../shared/keyids.js';
import { HEAD_REFRESH_MS, clientUser } from './keyflows.js';

const { bytes, certs, kdf, wrap, manifest, envelope } = C;
const b64 = (b) => bytes.b64url(b);
const signer = (me) => ({ id: me.id, kid: me.kid, edSk: me.edSk });

/** A signed head of (epoch, hash) at nowMs. */
export async function signHead(firm, matter, me, epoch, hash, nowMs) {
  return (await manifest.signHead({ firm, matter, epoch, hash, tsMs: nowMs }, signer(me))).head;
}

/** The MEK of `epoch` wrapped to a recipient ({user, kid, xPk}). */
async function mekWrap(firm, matter, epoch, mek, to, me) {
  const ctx = {
    firm,
    matter,
    epoch,
    kind: wrap.KIND.MEK,
    recipient: to.user,
    recipientKid: to.kid,
    recipientXPk: to.xPk,
  };
  return (await wrap.wrapKey(ctx, mek, signer(me))).wrap;
}

/**
 * The next epoch: a new MEK, the manifest chained to `prev` (null: epoch 1),
 * a fresh head and the MEK wrapped to `#fek` and every client or bot member.
 * Returns {epoch, mek, hash, manifest, head, wraps} (bytes) and `post`, the
 * body of POST /keys/matters/{ref}/epochs (base64url).
 */
export async function nextEpoch({ firm, matter, me, fek, prev, members, shareHistory, nowMs, rand = bytes.randomBytes }) {
  const epoch = prev ? prev.epoch + 1 : 1;
  const mek = rand(32);
  const commit = await kdf.epochCommit(mek, firm, matter, epoch);
  const made = await manifest.createManifest(
    {
      firm,
      matter,
      epoch,
      prevHash: prev ? prev.hash : manifest.ZERO_HASH,
      fekVersion: fek.version,
      members: members.map((m) => ({ user: m.user, kid: m.kid, role: m.role })),
      shareHistory,
      tsMs: nowMs,
      commit,
    },
    signer(me),
  );
  const head = await signHead(firm, matter, me, epoch, made.hash, nowMs);
  const wraps = [await mekWrap(firm, matter, epoch, mek, { user: wrap.FEK_RECIPIENT, kid: fek.kid, xPk: fek.xPk }, me)];
  for (const m of members) wraps.push(await mekWrap(firm, matter, epoch, mek, m, me));
  return {
    epoch,
    mek,
    hash: made.hash,
    manifest: made.manifest,
    head,
    wraps,
    post: { manifest: b64(made.manifest), head: b64(head), wraps: wraps.map(b64) },
  };
}

/** A client certificate for `key` ({xPk, edPk}) of `user`, scoped to the matter, signed by me. */
export async function clientCert(firm, matter, me, user, key, nowMs) {
  // key.scopes / key.serial: a key certified again for one more matter keeps its other
  // scopes under a higher serial (docs/keys.md "A second matter")
  const scopes = key.scopes ? [...new Set([...key.scopes, matter])].sort() : [matter];
  const serial = key.serial !== undefined ? Math.max(nowMs, Number(key.serial) + 1) : nowMs;
  const p = { firm, role: 'client', user, xPk: key.xPk, edPk: key.edPk, serial, issuedAtMs: nowMs, scopes };
  return (await certs.issueCert(p, signer(me))).cert;
}

/**
 * The writer's view after making `ep` (what readers will verify): a ManifestVerifier
 * over the keyring's `trust` (fresh revocation list, escrow records, the members'
 * certificates, plus `newCerts` made for this epoch), the chain pinned at `prev`,
 * the new manifest and head accepted by the library's own rules.
 */
async function writerView(trust, firm, matter, prev, ep, newCerts, nowMs) {
  for (const c of newCerts) await trust.addCert(c, nowMs);
  const view = new manifest.ManifestVerifier(trust);
  if (prev) view.pin(firm, matter, prev.epoch, prev.hash);
  await view.accept(ep.manifest, firm, matter, nowMs);
  await view.acceptHead(ep.head, firm, matter, nowMs);
  return view;
}

/**
 * The welcome item of a contact as an ordinary message of the epoch (thread
 * `welcome-<contact id>`), sealed with the library's writer checks against `view`
 * (writerView: the new epoch is the newest, its head fresh, its escrow version the newest).
 */
export async function welcomeEnvelope(firm, matter, me, ep, contactId, subject, text, nowMs, view) {
  const head = {
    firm,
    matter,
    thread: welcomeThread(contactId),
    sender: me.id,
    senderKid: me.kid,
    epoch: ep.epoch,
    vis: envelope.VIS.PORTAL,
    ctype: envelope.CTYPE.BODY,
    tsMs: nowMs,
  };
  const body = envelope.encodeBody({ subject, text });
  return (await envelope.sealMessage(head, body, { mek: ep.mek }, { edSk: me.edSk }, { verifier: view })).envelope;
}

/**
 * The crypto part of an invite round delivered by `delivery` ('own_mail' |
 * 'portal', one per round). invites: [{contactId, subject, text}]; trust: the keyring's
 * TrustStore (writerView). Per contact a fresh invite secret
 * R, the identity derived from it, its certificate; one next epoch with the
 * new clients; an encrypted welcome each. Returns {crypto, secrets, epoch}:
 * `crypto` is the round's `crypto` field (`secrets` only for portal
 * delivery), `secrets` every R (for the own-mail links the browser builds).
 */
export async function inviteBundle({ firm, matter, me, trust, fek, prev, members, shareHistory, delivery, invites, nowMs, rand = bytes.randomBytes }) {
  const secrets = {};
  const certList = [];
  const joining = [];
  for (const inv of invites) {
    const user = clientUser(inv.contactId);
    const R = rand(32);
    const key = await C.keys.identityFromInviteSecret(R, firm, user);
    secrets[inv.contactId] = R;
    certList.push(await clientCert(firm, matter, me, user, key, nowMs));
    joining.push({ user, kid: key.kid, role: certs.ROLE.client, xPk: key.xPk });
  }
  const stay = members.filter((m) => !joining.some((j) => j.user === m.user));
  const ep = await nextEpoch({ firm, matter, me, fek, prev, members: [...stay, ...joining], shareHistory, nowMs, rand });
  const view = await writerView(trust, firm, matter, prev, ep, certList, nowMs);
  const welcome = {};
  const portalSecrets = {};
  for (const inv of invites) {
    welcome[inv.contactId] = b64(await welcomeEnvelope(firm, matter, me, ep, inv.contactId, inv.subject, inv.text, nowMs, view));
    if (delivery === 'portal') portalSecrets[inv.contactId] = b64(secrets[inv.contactId]);
  }
  const crypto = { delivery, certs: certList.map(b64), epoch: ep.post, welcome };
  if (delivery === 'portal') crypto.secrets = portalSecrets;
  return { crypto, secrets, epoch: ep };
}

/** The firm's portal page on this page's origin (no secret): where invite links point. */
export function portalPage(firm, origin = globalThis.location && globalThis.location.origin) {
  return `${origin}/?firm=${encodeURIComponent(firm)}`;
}

/**
 * The link a client opens: the portal page `url` (portalPage, never a server's url), with the
 * fragment the browser never sends: the link token `t`, the invite secret `r`
 * and the firm root fingerprint `frk` to pin (the server never sees `r`).
 */
export function inviteLink(url, token, R, frkLink) {
  return `${url}#t=${encodeURIComponent(token)}&r=${b64(R)}&frk=${frkLink}`;
}

/** The prepared message of the staff member's own mail client. */
export function mailtoHref(to, subject, text, link) {
  const body = text.includes(link) ? text : `${text}\n\n${link}`;
  return `mailto:${encodeURIComponent(to || '')}?subject=${encodeURIComponent(subject)}&body=${encodeURIComponent(body)}`;
}

/**
 * A client's key replaced (verified fresh key after portal delivery, or the
 * key of a regenerated secret): a certificate for the new key, a client
 * revocation of the old one, the next epoch with the new key in its place,
 * and every earlier MEK the client may read re-wrapped to the new key.
 * old: {user, kid, serial}; key: {xPk, edPk, kid}; history: [{epoch, mek}].
 */
export async function replaceClientKey({ firm, matter, me, fek, prev, members, shareHistory, old, key, history, nowMs, rand }) {
  const cert = await clientCert(firm, matter, me, old.user, key, nowMs);
  const revocation = (
    await certs.issueRevocation(
      { firm, user: old.user, kid: old.kid, serial: old.serial, revokedAtMs: nowMs },
      signer(me),
    )
  ).revocation;
  const next = members.filter((m) => m.user !== old.user);
  next.push({ user: old.user, kid: key.kid, role: certs.ROLE.client, xPk: key.xPk });
  const ep = await nextEpoch({ firm, matter, me, fek, prev, members: next, shareHistory, nowMs, rand });
  const historyWraps = [];
  for (const h of history) historyWraps.push(await mekWrap(firm, matter, h.epoch, h.mek, { user: old.user, ...key }, me));
  return {
    cert,
    revocation,
    epoch: ep,
    certs: [b64(cert)],
    revocations: [b64(revocation)],
    wraps: historyWraps.map(b64),
  };
}

/** A regenerated secret R': the key derived from it (then replaceClientKey). */
export async function regeneratedKey(firm, contactId, rand = bytes.randomBytes) {
  const R = rand(32);
  return { R, key: await C.keys.identityFromInviteSecret(R, firm, clientUser(contactId)) };
}

/** The six digits both sides compare, without its space. */
export const digits = (code) => String(code).replace(/\D/g, '');

/**
 * Check a client's fresh key: the handover signed by the invite key and the
 * code the client read out. Returns the new key {xPk, edPk, kid} or throws.
 */
export async function verifiedFreshKey(firm, user, handoverBytes, inviteKey, typedCode) {
  const t = await C.recovery.verifyHandover(handoverBytes, { xPk: inviteKey.xPk, edPk: inviteKey.edPk }, firm, user);
  const xPk = t.x_pk;
  const edPk = t.ed_pk;
  const code = await C.recovery.sasCode(firm, user, xPk, edPk);
  if (digits(typedCode).length !== 6 || digits(code) !== digits(typedCode)) {
    throw new C.CryptoInvalid('crypto_signature', 'the verification code does not match');
  }
  return { xPk, edPk, kid: await C.keys.uikKid(xPk, edPk) };
}

/**
 * A binding (docs/keys.md "A second matter"): the handover signed by the client's invite
 * key `inviteKey` names a key `trust` holds certified for the same client (their identity
 * in another matter). Returns that key {xPk, edPk, kid, scopes, serial}, or null when the
 * named key is not certified (an ordinary handover: its code must be compared).
 */
export async function boundKey(trust, firm, user, handoverBytes, inviteKey, nowMs) {
  const t = await C.recovery.verifyHandover(handoverBytes, { xPk: inviteKey.xPk, edPk: inviteKey.edPk }, firm, user);
  const kid = await C.keys.uikKid(t.x_pk, t.ed_pk);
  let held;
  try {
    held = trust.lookup(user, kid, nowMs);
  } catch {
    return null;
  }
  if (!held || !bytes.bytesEqual(held.x_pk, t.x_pk) || !bytes.bytesEqual(held.ed_pk, t.ed_pk)) return null;
  return { xPk: t.x_pk, edPk: t.ed_pk, kid, scopes: held.scopes, serial: held.serial };
}

/** Is the matter's head (ts_ms) older than the refresh age? */
export function headIsOld(headTsMs, nowMs) {
  return nowMs - headTsMs > HEAD_REFRESH_MS;
}

/** The head's ts_ms. */
export function headTime(headBytes) {
  return Number(manifest.decodeHead(headBytes).ts_ms);
}
