#!/usr/bin/env node
// rtp1 crypto benchmark, JavaScript side (Node 20, WebCrypto). Not a test:
// it prints one JSON object per line and asserts nothing about time.
//   node bench/crypto_bench.mjs [--quick]
// Operations (the Python twin, bench/crypto_bench.py, uses the same names):
//   message_seal_1k    encrypt + sign a 1 KiB message body (envelope)
//   message_open_1k    verify + decrypt it (certificate lookup, membership, replay, AES-GCM)
//   attachment_seal_5m encrypt a 5 MiB attachment through the streaming encryptor (64 KiB pieces)
//   attachment_open_5m decrypt + check ct_sha256 through the streaming decryptor
//   wrap_mek           HPKE wrap of a 32-byte MEK + wrapper signature
//   unwrap_mek         verify + HPKE open + commitment check
//   backup_unlock      Argon2id (64 MiB, t=3, p=1) + HKDF + AES-GCM open of a key backup

import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { attachmentKey } from '../static/crypto/kdf.js';
import { AttachmentDecryptor, AttachmentEncryptor } from '../static/crypto/attachment.js';
import { createBackup, openBackup } from '../static/crypto/backup.js';
import { FLAG, FRK_ISSUER, ROLE, TrustStore, issueCert } from '../static/crypto/certs.js';
import { CTYPE, ReplayGuard, VIS, encodeBody, openMessage, sealMessage } from '../static/crypto/envelope.js';
import { epochCommit } from '../static/crypto/kdf.js';
import { frkFromSeed, uikFromSeeds } from '../static/crypto/keys.js';
import { ManifestVerifier, ZERO_HASH, createManifest } from '../static/crypto/manifest.js';
import { deterministicRng } from '../static/crypto/rng.js';
import { KIND, unwrapKey, wrapKey } from '../static/crypto/wrap.js';

const QUICK = process.argv.includes('--quick');
const FIRM = 'firm-1';
const MATTER = 'M-0001';
const NOW = Date.now();
const MIB = 1024 * 1024;

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, mean_ms: +mean.toFixed(4), median_ms: +q(0.5).toFixed(4), p95_ms: +q(0.95).toFixed(4), min_ms: +s[0].toFixed(4) };
}

async function bench(op, n, fn, extra = {}) {
  for (let i = 0; i < Math.min(3, n); i++) await fn(i); // warm-up (JIT, key imports)
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    samples.push(performance.now() - t0);
  }
  const st = stats(samples);
  const line = { lang: 'js', runtime: `node ${process.version}`, op, ...st, ops_per_s: +(1000 / st.mean_ms).toFixed(2), ...extra };
  if (extra.bytes) line.mib_per_s = +((extra.bytes / MIB) / (st.mean_ms / 1000)).toFixed(2);
  console.log(JSON.stringify(line));
}

const rand = deterministicRng(new TextEncoder().encode('bench'));
const frk = await frkFromSeed(rand(32));
const staff = await uikFromSeeds(rand(32), rand(32));
const client = await uikFromSeeds(rand(32), rand(32));
const trust = new TrustStore({ firm: FIRM, frkEdPk: frk.edPk });
const staffSigner = { id: 'staff-1', kid: staff.kid, edSk: staff.edSk };
await trust.addCert((await issueCert({ firm: FIRM, role: ROLE.staff, user: 'staff-1', xPk: staff.xPk, edPk: staff.edPk,
  serial: 1, issuedAtMs: NOW - 1000, flags: FLAG.CERTIFY_CLIENTS }, { id: FRK_ISSUER, kid: frk.kid, edSk: frk.edSk })).cert, NOW);
await trust.addCert((await issueCert({ firm: FIRM, role: ROLE.client, user: 'client-1', xPk: client.xPk, edPk: client.edPk,
  serial: 2, issuedAtMs: NOW - 1000 }, staffSigner)).cert, NOW);
const mek = rand(32);
const commit = await epochCommit(mek, FIRM, MATTER, 1);
const verifier = new ManifestVerifier(trust);
await verifier.accept((await createManifest({ firm: FIRM, matter: MATTER, epoch: 1, prevHash: ZERO_HASH, fekVersion: 1,
  members: [{ user: 'client-1', kid: client.kid, role: ROLE.client }], shareHistory: false, tsMs: NOW, commit }, staffSigner)).manifest,
FIRM, MATTER, NOW);

console.log(JSON.stringify({ lang: 'js', runtime: `node ${process.version}`, op: 'machine', cpus: os.cpus().length,
  cpu: os.cpus()[0]?.model ?? '?', loadavg: os.loadavg().map((x) => +x.toFixed(2)) }));

// ---- 1 KiB message
const body = encodeBody({ subject: 'Bench', text: 'x'.repeat(1024 - 16), attachments: [] });
const header = () => ({ firm: FIRM, matter: MATTER, thread: 't-1', parent: null, sender: 'staff-1', senderKid: staff.kid,
  epoch: 1, vis: VIS.PORTAL, ctype: CTYPE.BODY, tsMs: NOW });
const N_MSG = QUICK ? 50 : 500;
const sealed = [];
await bench('message_seal_1k', N_MSG + 3, async () => {
  sealed.push((await sealMessage(header(), body, { mek }, staffSigner, { verifier })).envelope);
}, { bytes: body.length });
let k = 0;
const replay = new ReplayGuard();
await bench('message_open_1k', N_MSG, async () => {
  await openMessage(sealed[k++], { firm: FIRM, matter: MATTER, thread: 't-1' },
    { trust, verifier, replay, nowMs: NOW, keys: async () => ({ mek }) });
}, { bytes: body.length });

// ---- 5 MiB attachment, streamed in 64 KiB pieces (never held twice)
const SIZE = 5 * MIB;
const piece = rand(65536);
let fk = null; // (attId, fk) of the last sealed blob: the encryptor draws fresh ones each time
let attId = null;
void attachmentKey;
let blobParts = [];
let ctSha = null;
const N_ATT = QUICK ? 3 : 10;
await bench('attachment_seal_5m', N_ATT, async () => {
  const enc = await AttachmentEncryptor.create(rand);
  ({ fk, attId } = enc);
  blobParts = [];
  for (let o = 0; o < SIZE; o += piece.length) blobParts.push(await enc.push(piece));
  const fin = await enc.finish();
  blobParts.push(fin.bytes);
  ctSha = fin.ctSha256;
}, { bytes: SIZE });
await bench('attachment_open_5m', N_ATT, async () => {
  const dec = await AttachmentDecryptor.create(fk, attId, ctSha, SIZE);
  for (const p of blobParts) await dec.push(p);
  await dec.finish();
}, { bytes: SIZE });

// ---- key wrap / unwrap
const ctx = { firm: FIRM, matter: MATTER, epoch: 1, kind: KIND.MEK, recipient: 'client-1', recipientKid: client.kid, recipientXPk: client.xPk };
const N_WRAP = QUICK ? 50 : 300;
const wraps = [];
await bench('wrap_mek', N_WRAP, async () => {
  wraps.push((await wrapKey(ctx, mek, staffSigner)).wrap);
});
k = 0;
await bench('unwrap_mek', N_WRAP, async () => {
  await unwrapKey(wraps[k++ % wraps.length], ctx, client, trust, NOW, commit);
});

// ---- backup unlock (Argon2id 64 MiB, t=3, p=1)
const backup = await createBackup({ firm: FIRM, user: 'client-1', password: 'correct horse battery staple', xSk: client.xSk,
  edSk: client.edSk, frkFingerprint: frk.fingerprint });
await bench('backup_unlock', QUICK ? 2 : 5, async () => {
  await openBackup(backup.blob, 'correct horse battery staple');
}, { argon2: 'm=65536KiB,t=3,p=1' });
