// A small firm for tests: FRK, staff, clients, bots, FEK, certificates, a
// trust store. Deterministic (seeded RNG) so failures reproduce.
import { utf8 } from '../bytes.js';
import { FLAG, FRK_ISSUER, ROLE, TrustStore, issueCert } from '../certs.js';
import { fekFromSecret, frkFromSeed, uikFromSeeds } from '../keys.js';
import { deterministicRng } from '../rng.js';

export const FIRM = 'firm-1';
export const MATTER = 'M-0001';
export const NOW = 1_700_000_000_000;

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
        { firm: FIRM, role, user: name, xPk: k.xPk, edPk: k.edPk, serial: serial++, issuedAtMs: NOW - 1000, flags, scopes },
        issuer,
      )
    ).cert;
  }
  const fek = await fekFromSecret(FIRM, 1, rand(32), rand(32));
  const trust = new TrustStore({ firm: FIRM, frkEdPk: frk.edPk });
  for (const name of Object.keys(certs)) await trust.addCert(certs[name], NOW);
  return { rand, frk, frkIssuer, users, certs, fek, trust };
}
