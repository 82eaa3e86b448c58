// Verify an rtp1 golden-vector directory written by either language
// (docs/security.md §13). For every `ok` case the derived bytes are rebuilt
// from the case's inputs and compared, then the transport object is decoded
// and opened the way a client would; every `reject` case must be refused with
// an rtp1 error (its code must equal the vector's unless lenient).
// Pure ES module (no Node APIs), so the same verifier runs in Node
// (verify.mjs, verify_vectors.mjs) and in Chromium (browser/browser_check.js).

import { bytesEqual, fromHex, toHex, utf8 } from '../bytes.js';
import { decode, encode } from '../encoding.js';
import { CryptoInvalid } from '../errors.js';
import { attachmentKey, D, epochCommit, internalKey, messageKey, recoveryKey } from '../kdf.js';
import { hkdf, ed25519Sign, x25519Public } from '../primitives.js';
import {
  fekFromSecret, fingerprintLink, fingerprintText, frkFromSeed, keyFile, readKeyFile, uikFromSeeds,
} from '../keys.js';
import { CERT, CERT_TBS, REVOCATION, REVOCATION_TBS, TrustStore } from '../certs.js';
import { MANIFEST, MANIFEST_TBS, ManifestVerifier } from '../manifest.js';
import { WRAP, WRAP_SIG, unwrapKey, wrapInfo } from '../wrap.js';
import * as hpke from '../hpke.js';
import { AAD, ENVELOPE, ReplayGuard, SIG_INPUT, decodeBody, openMessage } from '../envelope.js';
import { aesGcmEncrypt } from '../primitives.js';
import { AttachmentDecryptor, attachmentHeader, blobLength, encryptAttachment } from '../attachment.js';
import { BACKUP, BACKUP_HEADER, BACKUP_PLAINTEXT, openBackup, passwordKeys } from '../backup.js';
import {
  makeRecoveryProof, parseRecoveryCode, recoveryCodeFromLink, recoveryCodeLink, recoveryCodeText, verifyRecoveryProof,
} from '../recovery.js';
import { sha256 } from '../primitives.js';

export const FILES = [
  'keys.json', 'certs.json', 'manifests.json', 'wraps.json', 'envelopes.json', 'attachments.json', 'backups.json',
  'recovery.json',
];
const PIECE = 10007; // odd-sized pieces so chunk seams are exercised

class Mismatch extends Error {}

const u = (h) => fromHex(h);

function eq(got, want, what) {
  const g = got instanceof Uint8Array ? toHex(got) : JSON.stringify(got);
  const w = want instanceof Uint8Array ? toHex(want) : JSON.stringify(want);
  if (g !== w) throw new Mismatch(`${what}: got ${g.slice(0, 80)}, vector has ${w.slice(0, 80)}`);
}

/** The attachment plaintext of the vectors: byte i is i mod 251. */
export function pattern(size, from = 0) {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (from + i) % 251;
  return b;
}

export class Verifier {
  constructor({ strictCodes = true, readBin = null } = {}) {
    this.strict = strictCodes;
    this.readBin = readBin ?? (async (name) => {
      throw new Mismatch(`no reader for blob file ${name}`);
    });
    this.passed = 0;
    this.warnings = 0;
    this.failures = [];
    this.lines = [];
    this.users = {};
    this.frk = null;
    this.fek = null;
    this.trust = null;
    this.manifests = null;
    this.meks = new Map();
    this.replay = new ReplayGuard();
    this.pendingRevocations = [];
  }

  fail(msg) {
    this.failures.push(msg);
    this.lines.push(`FAIL ${msg}`);
  }

  async run(file, c, ok, reject) {
    const name = `${file}:${c.name ?? '?'}`;
    if ((c.expect ?? 'ok') === 'ok') {
      try {
        await ok(c);
        this.passed++;
      } catch (e) {
        this.fail(`${name}: ${e.name}: ${e.message}`);
      }
      return;
    }
    try {
      await reject(c);
    } catch (e) {
      if (e instanceof CryptoInvalid) {
        if (c.error && e.code !== c.error) {
          const msg = `${name}: rejected with ${e.code}, vector names ${c.error} (${e.message})`;
          if (this.strict) return this.fail(msg);
          this.warnings++;
          this.lines.push(`WARN ${msg}`);
        }
        this.passed++;
        return;
      }
      return this.fail(`${name}: rejected with a non-rtp1 error ${e.name}: ${e.message}`);
    }
    this.fail(`${name}: accepted, but the vector expects a rejection`);
  }

  user(name) {
    const c = this.users[name];
    if (!c) throw new Mismatch(`no key for user ${name}`);
    return { xSk: u(c.x_sk), edSk: u(c.ed_sk), xPk: u(c.x_pk), edPk: u(c.ed_pk), kid: u(c.kid) };
  }

  signerSk(name) {
    return name === 'frk' ? u(this.frk.ed_sk) : this.user(name).edSk;
  }

  // ---- keys.json
  async keys(c) {
    if (c.type === 'frk') {
      const k = await frkFromSeed(u(c.ed_sk));
      eq(k.edPk, u(c.ed_pk), 'ed_pk');
      eq(k.record, u(c.record), 'record');
      eq(k.fingerprint, u(c.fingerprint), 'fingerprint');
      eq(k.kid, u(c.kid), 'kid');
      eq(fingerprintText(k.fingerprint), c.fingerprint_text, 'fingerprint_text');
      eq(fingerprintLink(k.fingerprint), c.link, 'link');
      this.frk = c;
      this.trust = new TrustStore({ firm: c.firm, frkEdPk: k.edPk });
      this.manifests = new ManifestVerifier(this.trust);
    } else if (c.type === 'uik') {
      const k = await uikFromSeeds(u(c.x_sk), u(c.ed_sk));
      eq(k.xPk, u(c.x_pk), 'x_pk');
      eq(k.edPk, u(c.ed_pk), 'ed_pk');
      eq(k.record, u(c.record), 'record');
      eq(k.fingerprint, u(c.fingerprint), 'fingerprint');
      eq(k.kid, u(c.kid), 'kid');
      eq(keyFile(c.firm, c.user, k), u(c.key_file), 'key_file');
      const back = await readKeyFile(u(c.key_file));
      eq([back.firm, back.user, toHex(back.xSk), toHex(back.edSk)], [c.firm, c.user, c.x_sk, c.ed_sk], 'key_file decode');
      this.users[c.user] = c;
    } else if (c.type === 'fek') {
      const f = await fekFromSecret(c.firm, c.version, u(c.x_sk), u(c.fir));
      eq(f.xPk, u(c.x_pk), 'x_pk');
      eq(f.record, u(c.record), 'record');
      eq(f.kid, u(c.kid), 'kid');
      this.fek = c;
    } else if (c.type === 'kdf') {
      const info = D(c.label, ...c.ctx.map(u));
      eq(info, u(c.info), 'info');
      eq(await hkdf(u(c.ikm), u(c.salt), info, c.length), u(c.okm), 'okm');
    } else if (c.type === 'commit') {
      eq(await epochCommit(u(c.mek), c.firm, c.matter, c.epoch), u(c.commit), 'commit');
      if (c.input) eq(D('rtp1/commit', c.firm, c.matter, Uint8Array.of(...u32be(c.epoch))), u(c.input), 'input');
    } else {
      throw new Mismatch(`unknown key case type ${c.type}`);
    }
  }

  // ---- certs.json
  async certOk(c) {
    if (c.type === 'revocation') return this.revocation(c);
    const tbs = encode(CERT_TBS, {
      firm: c.firm, role: c.role, user: c.user, x_pk: u(c.x_pk), ed_pk: u(c.ed_pk), serial: c.serial,
      issued_at_ms: c.issued_at_ms, expires_at_ms: c.expires_at_ms, flags: c.flags, scopes: c.scopes,
      issuer: c.issuer_id, issuer_kid: u(c.issuer_kid),
    });
    eq(tbs, u(c.tbs), 'tbs');
    eq(await ed25519Sign(this.signerSk(c.issuer), tbs), u(c.sig), 'sig');
    eq(encode(CERT, { tbs, sig: u(c.sig) }), u(c.cert), 'cert');
    const d = decode(CERT, u(c.cert));
    eq([d.tbs.user, d.tbs.role, d.tbs.scopes], [c.user, c.role, c.scopes], 'decoded cert');
    await this.trust.addCert(u(c.cert), c.now_ms);
  }

  async certReject(c) {
    if (c.type === 'revocation') {
      return this.trust.addRevocation(u(c.revocation), c.now_ms);
    }
    await this.trust.addCert(u(c.cert), c.now_ms);
  }

  async revocation(c) {
    const rtbs = encode(REVOCATION_TBS, {
      firm: c.firm, user: c.user, kid: u(c.kid), serial: c.serial, revoked_at_ms: c.revoked_at_ms,
      issuer: c.issuer_id, issuer_kid: u(c.issuer_kid),
    });
    eq(rtbs, u(c.rtbs), 'rtbs');
    eq(await ed25519Sign(this.signerSk(c.issuer), rtbs), u(c.sig), 'sig');
    eq(encode(REVOCATION, { rtbs, sig: u(c.sig) }), u(c.revocation), 'revocation');
    this.pendingRevocations.push(c); // applied after all certificate cases (§13)
  }

  // ---- manifests.json
  async manifestOk(c) {
    const mek = u(c.mek);
    const commit = await epochCommit(mek, c.firm, c.matter, c.epoch);
    eq(commit, u(c.commit), 'commit');
    const tbs = encode(MANIFEST_TBS, {
      firm: c.firm, matter: c.matter, epoch: c.epoch, prev_hash: u(c.prev_hash), fek_version: c.fek_version,
      members: c.members.map((m) => ({ user: m.user, kid: u(m.kid), role: m.role })), share_history: c.share_history,
      creator: c.creator, creator_kid: u(c.creator_kid), ts_ms: c.ts_ms, commit,
    });
    eq(tbs, u(c.tbs), 'tbs');
    eq(await ed25519Sign(this.user(c.creator).edSk, tbs), u(c.sig), 'sig');
    eq(encode(MANIFEST, { tbs, sig: u(c.sig) }), u(c.manifest), 'manifest');
    eq(await sha256(tbs), u(c.hash), 'hash');
    await this.manifests.accept(u(c.manifest), c.firm, c.verifier_matter ?? c.matter, c.now_ms);
    this.meks.set(`${c.matter}\u0000${c.epoch}`, mek);
  }

  async manifestReject(c) {
    const matter = c.verifier_matter ?? c.matter;
    const firm = this.frk.firm;
    const before = this.manifests.describe(firm, matter);
    try {
      await this.manifests.accept(u(c.manifest), firm, matter, c.now_ms);
    } finally {
      if (this.manifests.describe(firm, matter) !== before) throw new Mismatch('a rejected manifest changed the state');
    }
  }

  // ---- wraps.json
  recipient(id) {
    if (id === '#fek') return { xSk: u(this.fek.x_sk), xPk: u(this.fek.x_pk) };
    return this.user(id);
  }

  ctx(c) {
    return { firm: c.firm, matter: c.matter, epoch: c.epoch, kind: c.kind, recipient: c.recipient_id, recipientKid: u(c.recipient_kid) };
  }

  commitFor(c) {
    if (c.kind !== 1) return null;
    const m = this.manifests.manifestAt(c.firm, c.matter, c.epoch);
    return m ? m.commit : null;
  }

  async wrapOk(c) {
    const ctx = this.ctx(c);
    const info = wrapInfo(ctx);
    eq(info, u(c.info), 'info');
    const r = this.recipient(c.recipient_id);
    eq(await x25519Public(u(c.eph_sk)), u(c.enc), 'enc');
    const { ct } = await hpke.seal(r.xPk, info, u(c.key), new Uint8Array(0), { skE: u(c.eph_sk) });
    eq(ct, u(c.ct), 'ct');
    const w = this.user(c.wrapper);
    const fields = { info, wrapper: c.wrapper, wrapper_kid: w.kid, enc: u(c.enc), ct };
    const sigInput = encode(WRAP_SIG, fields);
    eq(sigInput, u(c.sig_input), 'sig_input');
    const sig = await ed25519Sign(w.edSk, sigInput);
    eq(sig, u(c.sig), 'sig');
    eq(encode(WRAP, { ...fields, sig }), u(c.wrap), 'wrap');
    if (c.commit) eq(this.commitFor(c), u(c.commit), 'manifest commit');
    const key = await unwrapKey(u(c.wrap), ctx, r, this.trust, c.now_ms, this.commitFor(c));
    eq(key, u(c.key), 'unwrapped key');
  }

  async wrapReject(c) {
    const x = { ...c, ...(c.expect_context ?? {}) };
    const ctx = this.ctx(x);
    await unwrapKey(u(c.wrap), ctx, this.recipient(x.recipient_id), this.trust, c.now_ms, this.commitFor(x));
  }

  // ---- envelopes.json
  fekVersionAt(matter, epoch) {
    const m = this.manifests.manifestAt(this.frk.firm, matter, epoch);
    return m ? m.fek_version : this.fek.version;
  }

  keysFor(matter) {
    return async ({ epoch, vis }) => {
      if (vis === 1) return { fir: u(this.fek.fir), fekVersion: this.fekVersionAt(matter, epoch) };
      return { mek: this.meks.get(`${matter}\u0000${epoch}`) };
    };
  }

  async envelopeOk(c) {
    const aad = encode(AAD, {
      v: 1, firm: c.firm, matter: c.matter, thread: c.thread, msg_id: u(c.msg_id), parent: c.parent ? u(c.parent) : null,
      sender: c.sender, sender_kid: u(c.sender_kid), epoch: c.epoch, vis: c.vis, ts_ms: c.ts_ms, ctype: c.ctype,
    });
    eq(aad, u(c.aad), 'aad');
    const key = u(c.key);
    const msgKey = c.vis === 1
      ? await internalKey(key, c.firm, c.matter, this.fekVersionAt(c.matter, c.epoch))
      : await messageKey(key, c.firm, c.matter, c.epoch);
    eq(msgKey, u(c.msg_key), 'msg_key');
    const ct = await aesGcmEncrypt(msgKey, u(c.nonce), u(c.plaintext), aad);
    eq(ct, u(c.ct), 'ct');
    const sigInput = encode(SIG_INPUT, { aad, nonce: u(c.nonce), ct });
    eq(sigInput, u(c.sig_input), 'sig_input');
    const sig = await ed25519Sign(this.user(c.sender).edSk, sigInput);
    eq(sig, u(c.sig), 'sig');
    eq(encode(ENVELOPE, { aad, nonce: u(c.nonce), ct, sig }), u(c.envelope), 'envelope');
    const r = await openMessage(u(c.envelope), { firm: c.firm, matter: c.matter, thread: c.thread }, {
      trust: this.trust, verifier: this.manifests, replay: this.replay, nowMs: c.now_ms, keys: this.keysFor(c.matter),
    });
    eq(r.plaintext, u(c.plaintext), 'plaintext');
    if (c.body) {
      const b = decodeBody(r.plaintext);
      eq([b.subject, b.text], [c.body.subject, c.body.text], 'body text');
      const atts = b.attachments.map((a) => ({
        att_id: toHex(a.att_id), fk: toHex(a.fk), ct_sha256: toHex(a.ct_sha256), size: a.size, name: a.name, mime: a.mime,
      }));
      eq(atts, c.body.attachments, 'body attachments');
    }
  }

  async envelopeReject(c) {
    const x = { ...c, ...(c.expect_context ?? {}) };
    await openMessage(u(c.envelope), { firm: x.firm, matter: x.matter, thread: x.thread }, {
      trust: this.trust, verifier: this.manifests, replay: this.replay, nowMs: c.now_ms, keys: this.keysFor(x.matter),
    });
  }

  // ---- attachments.json
  async blob(c) {
    if (c.blob !== undefined) return u(c.blob);
    if (c.blob_file !== undefined) return this.readBin(c.blob_file);
    return null;
  }

  async decryptPieces(c, blob) {
    const d = await AttachmentDecryptor.create(u(c.fk), u(c.att_id), u(c.blob_sha256), c.size);
    const { Sha256 } = await import('../sha256.js');
    const h = new Sha256();
    const want = new Sha256().update(pattern(c.size)).digest();
    for (let i = 0; i < blob.length; i += PIECE) h.update(await d.push(blob.subarray(i, i + PIECE)));
    h.update(await d.finish());
    return bytesEqual(h.digest(), want);
  }

  async attachmentOk(c) {
    eq(await attachmentKey(u(c.fk), u(c.att_id)), u(c.chunk_key), 'chunk_key');
    eq(attachmentHeader(u(c.att_id)), u(c.header), 'header');
    const ids = { 16: u(c.att_id), 32: u(c.fk) }; // the encryptor draws the case's ids
    const mine = await encryptAttachment(pattern(c.size), (n) => ids[n]);
    eq(mine.blob.length, blobLength(c.size), 'blob length');
    eq(mine.ctSha256, u(c.blob_sha256), 'blob_sha256');
    const theirs = await this.blob(c);
    eq(await this.decryptPieces(c, theirs ?? mine.blob), true, 'plaintext');
  }

  async attachmentReject(c) {
    const b = await this.blob(c);
    if (!b) throw new Mismatch('a reject case needs its blob');
    await this.decryptPieces(c, b);
  }

  // ---- backups.json
  async backupOk(c) {
    const params = { mKib: c.m_kib, t: c.t, p: c.p };
    const k = await passwordKeys(c.password, u(c.salt), params);
    eq(k.argon2Out, u(c.argon2_out), 'argon2_out');
    eq(k.loginSecret, u(c.login_secret), 'login_secret');
    eq(k.kek, u(c.kek), 'kek');
    const pt = encode(BACKUP_PLAINTEXT, { x_sk: u(c.x_sk), ed_sk: u(c.ed_sk), frk_fingerprint: u(c.frk_fingerprint) });
    eq(pt, u(c.plaintext), 'plaintext');
    const header = encode(BACKUP_HEADER, { v: 1, firm: c.firm, user: c.user, m_kib: c.m_kib, t: c.t, p: c.p, salt: u(c.salt) });
    eq(header, u(c.header), 'header');
    const ct = await aesGcmEncrypt(k.kek, u(c.nonce), pt, header);
    eq(encode(BACKUP, { header, nonce: u(c.nonce), ct }), u(c.blob), 'blob');
    const o = await openBackup(u(c.blob), c.password, { firm: c.firm, user: c.user });
    eq([o.xSk, o.edSk, o.frkFingerprint].map(toHex), [c.x_sk, c.ed_sk, c.frk_fingerprint], 'unlocked contents');
    eq(o.loginSecret, u(c.login_secret), 'unlocked login_secret');
  }

  async backupReject(c) {
    await openBackup(u(c.blob), c.password);
  }

  // ---- recovery.json
  async recoveryOk(c) {
    const code = u(c.code);
    eq(recoveryCodeText(code), c.code_text, 'code_text');
    eq(parseRecoveryCode(c.code_text), code, 'parse_code');
    eq(recoveryCodeLink(code), c.link, 'link');
    eq(recoveryCodeFromLink(c.link), code, 'code_from_link');
    eq(await recoveryKey(code, c.firm, c.user), u(c.rk), 'rk');
    const p = await makeRecoveryProof(code, c.firm, c.user, u(c.x_pk), u(c.ed_pk));
    eq(p.input, u(c.input), 'input');
    eq(p.proof, u(c.proof), 'proof');
    eq(p.transport, u(c.transport), 'transport');
    const keys = await verifyRecoveryProof(u(c.transport), code, c.firm, c.user);
    eq([keys.x_pk, keys.ed_pk].map(toHex), [c.x_pk, c.ed_pk], 'verified keys');
  }

  async recoveryReject(c) {
    await verifyRecoveryProof(u(c.transport), u(c.code), c.firm, c.user);
  }
}

function u32be(n) {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/**
 * Verify parsed vector documents {fileName: json}. opts: {strictCodes,
 * readBin(name) -> Promise<Uint8Array>}. Returns the Verifier (passed, failures, lines).
 */
export async function verifyDocs(docs, opts = {}) {
  const v = new Verifier(opts);
  for (const f of FILES) if (!docs[f]) v.fail(`${f}: missing`);
  const steps = [
    ['keys.json', (c) => v.keys(c), (c) => v.keys(c)],
    ['certs.json', (c) => v.certOk(c), (c) => v.certReject(c)],
    ['manifests.json', (c) => v.manifestOk(c), (c) => v.manifestReject(c)],
    ['wraps.json', (c) => v.wrapOk(c), (c) => v.wrapReject(c)],
    ['envelopes.json', (c) => v.envelopeOk(c), (c) => v.envelopeReject(c)],
    ['attachments.json', (c) => v.attachmentOk(c), (c) => v.attachmentReject(c)],
    ['backups.json', (c) => v.backupOk(c), (c) => v.backupReject(c)],
    ['recovery.json', (c) => v.recoveryOk(c), (c) => v.recoveryReject(c)],
  ];
  for (const [name, ok, reject] of steps) {
    const doc = docs[name];
    if (!doc) continue;
    if (doc.rtp1_vectors !== 1 || !Array.isArray(doc.cases)) {
      v.fail(`${name} is not an rtp1 vector file`);
      continue;
    }
    if (!doc.cases.length) v.fail(`${name}: no cases`);
    if (name !== 'keys.json' && !v.trust) {
      v.fail(`${name}: keys.json gave no frk`);
      continue;
    }
    // envelopes: ok cases first, then rejections, against one replay state
    const cases = name === 'envelopes.json'
      ? [...doc.cases.filter((c) => (c.expect ?? 'ok') === 'ok'), ...doc.cases.filter((c) => (c.expect ?? 'ok') !== 'ok')]
      : doc.cases;
    for (const c of cases) await v.run(name, c, ok, reject);
    if (name === 'certs.json') {
      for (const c of v.pendingRevocations) {
        try {
          await v.trust.addRevocation(u(c.revocation), c.now_ms);
        } catch (e) {
          v.fail(`certs.json:${c.name}: revocation not accepted: ${e.message}`);
        }
      }
    }
  }
  return v;
}
