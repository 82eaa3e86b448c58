// A small firm for tests: FRK, staff, clients, bots, FEK, certificates, the
// FRK-signed revocation list and escrow record, a trust store. Deterministic
// (seeded RNG) so failures reproduce.
import { utf8 } from '../bytes.js';
import { FLAG, FRK_ISSUER, ROLE, TrustStore, issueCert, signRevocationList } from '../certs.js';
import { fekFromSecret, frkFromSeed, signEscrowRecord, uikFromSeeds } from '../keys.js';
import { deterministicRng } from '../rng.js';

export const FIRM = 'firm-1';
export const MATTER = 'M-0001';
export const NOW = 1_700_000_000_000;
export const DAY = 86_400_000;

/** The FRK-signed revocation list: issued a day ago, next update in 30 days. */
export async function revocationList(frk, { version = 1, entries = [], nextUpdateMs = NOW + 30 * DAY } = {}) {
  return (await signRevocationList({ firm: FIRM, version, issuedAtMs: NOW - DAY, nextUpdateMs, entries }, frk)).list;
}

/** A trust store as a client sets it up: the pinned FRK, the current list, the escrow records. */
export async function newTrust(w) {
  const trust = new TrustStore({ firm: FIRM, frkEdPk: w.frk.edPk });
  await trust.setRevocationList(w.revocations, NOW);
  for (const r of w.escrow) await trust.addEscrowRecord(r);
  return trust;
}

export async function makeWorld(seedText = 'world') {
  const rand = deterministicRng(utf8(seedText));
  const frk = await frkFromSeed(rand(32));
  const frkIssuer = { id: FRK_ISSUER, kid: frk.kid, edSk: frk.edSk };
  const users = {};
  const certs = {};
  const specs = [
    ['staff-1', ROLE.staff, FLAG.CERTIFY_CLIENTS, []],
    ['staff-2', ROLE.staff, 0, []],
    ['bot-1', ROLE.bot, 0, [MATTER]],
    ['custodian', ROLE.bot, FLAG.CUSTODIAN, []],
    ['client-1', ROLE.client, 0, []],
    ['client-2', ROLE.client, 0, []],
  ];
  let serial = 1;
  for (const [name, role, flags, scopes] of specs) {
    const k = await uikFromSeeds(rand(32), rand(32));
    users[name] = { ...k, id: name, role, flags, scopes, signer: { id: name, kid: k.kid, edSk: k.edSk } };
    const issuer = role === ROLE.client ? users['staff-1'].signer : frkIssuer;
    certs[name] = (
      await issueCert(
        { firm: FIRM, role, user: name, xPk: k.xPk, edPk: k.edPk, serial: serial++, issuedAtMs: NOW - DAY, flags, scopes },
        issuer,
      )
    ).cert;
  }
  const fek = await fekFromSecret(FIRM, 1, rand(32), rand(32));
  const escrow = [(await signEscrowRecord({ firm: FIRM, version: 1, xPk: fek.xPk, createdAtMs: NOW - DAY }, frk)).record];
  const w = { rand, frk, frkIssuer, users, certs, fek, escrow, revocations: await revocationList(frk) };
  w.trust = await newTrust(w);
  for (const name of Object.keys(certs)) await w.trust.addCert(certs[name], NOW);
  return w;
}
