// The golden vectors of accounts (docs/security.md §13): password key backups
// (backups.json) and recovery proofs (recovery.json), drawn from the world of
// generate.mjs in the same order as Python's generator. Tooling only.

import { toHex } from '../bytes.js';
import { encode } from '../encoding.js';
import { recoveryKey } from '../kdf.js';
import { uikFromSeeds } from '../keys.js';
import { MIN_PARAMS, createBackup } from '../backup.js';
import { makeRecoveryProof, recoveryCodeLink, recoveryCodeText } from '../recovery.js';

const FLOOR = Object.freeze({ ...MIN_PARAMS });
const h = toHex;

export async function caseBackups(w, FIRM) {
  const pw = 'correct horse — battery staple ✓';
  const u = w.ids['client-1'];
  const mk = async (name, password, makePassword, params, expect = 'ok', error = null, headerParams = null) => {
    const salt = w.rng(16);
    const b = await createBackup(
      { firm: FIRM, user: 'client-1', password: makePassword, xSk: u.xSk, edSk: u.edSk, frkFingerprint: w.frk.fingerprint, salt, params },
      w.rng,
    );
    let header = b.header;
    let blob = b.blob;
    let shown = params;
    if (headerParams) {
      const { BACKUP, BACKUP_HEADER } = await import('../backup.js');
      shown = headerParams;
      header = encode(BACKUP_HEADER, { v: 1, firm: FIRM, user: 'client-1', m_kib: shown.mKib, t: shown.t, p: shown.p, salt });
      const { decode } = await import('../encoding.js');
      const d = decode(BACKUP, b.blob);
      blob = encode(BACKUP, { header, nonce: d.nonce, ct: d.ct });
    }
    const c = {
      name, firm: FIRM, user: 'client-1', password, salt: h(salt), m_kib: shown.mKib, t: shown.t, p: shown.p,
      argon2_out: h(b.argon2Out), login_secret: h(b.loginSecret), kek: h(b.kek), x_sk: h(u.xSk), ed_sk: h(u.edSk),
      frk_fingerprint: h(w.frk.fingerprint), header: h(header), plaintext: h(b.plaintext), nonce: h(b.nonce), blob: h(blob),
      expect,
    };
    if (error) c.error = error;
    return c;
  };
  return [
    await mk('backup-default-params', pw, pw, { mKib: 65536, t: 3, p: 1 }),
    await mk('reject-wrong-password', 'wrong password', pw, { mKib: 65536, t: 3, p: 1 }, 'reject', 'crypto_decrypt'),
    await mk('reject-params-out-of-bounds', pw, pw, FLOOR, 'reject', 'crypto_encoding', { mKib: 4194304, t: 3, p: 1 }),
    await mk('reject-params-lowered', pw, pw, { ...FLOOR, t: FLOOR.t + 1 }, 'reject', 'crypto_decrypt', FLOOR),
    // below the library's floor: refused before any Argon2 work
    await mk('reject-params-below-floor', pw, pw, FLOOR, 'reject', 'crypto_encoding', { ...FLOOR, t: 1 }),
  ];
}

export async function caseRecovery(w, FIRM) {
  const cases = [];
  const add = async (name, code, firm, user, proof, expect = 'ok', error = null) => {
    const c = {
      name, firm, user, code: h(code), code_text: recoveryCodeText(code), link: recoveryCodeLink(code),
      rk: h(await recoveryKey(code, firm, user)), x_pk: h(proof.xPk), ed_pk: h(proof.edPk), input: h(proof.input),
      proof: h(proof.proof), transport: h(proof.transport), expect,
    };
    if (error) c.error = error;
    cases.push(c);
  };
  const code = w.rng(16);
  const nk = await uikFromSeeds(w.rng(32), w.rng(32));
  const good = { ...(await makeRecoveryProof(code, FIRM, 'client-1', nk.xPk, nk.edPk)), xPk: nk.xPk, edPk: nk.edPk };
  await add('recovery-client-1', code, FIRM, 'client-1', good);
  await add('reject-wrong-code', w.rng(16), FIRM, 'client-1', good, 'reject', 'crypto_recovery');
  const other = await uikFromSeeds(w.rng(32), w.rng(32));
  const { PROOF, PROOF_INPUT } = await import('../recovery.js');
  const sub = {
    xPk: other.xPk, edPk: other.edPk, proof: good.proof,
    input: encode(PROOF_INPUT, { firm: FIRM, user: 'client-1', x_pk: other.xPk, ed_pk: other.edPk }),
    transport: encode(PROOF, { firm: FIRM, user: 'client-1', x_pk: other.xPk, ed_pk: other.edPk, proof: good.proof }),
  };
  await add('reject-key-substituted', code, FIRM, 'client-1', sub, 'reject', 'crypto_recovery');
  await add('reject-other-user', code, FIRM, 'client-2', good, 'reject', 'crypto_recovery');
  return cases;
}
