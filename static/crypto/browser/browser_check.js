// Runs the rtp1 library in a real browser (Chromium): standards KATs, the
// Python golden vectors through the shared verifier, and a streamed
// attachment through TransformStreams. Result in window.__rtp1Result.
import { fromHex, toHex } from '../bytes.js';
import * as p from '../primitives.js';
import * as hpke from '../hpke.js';
import { argon2idRaw } from '../argon2.js';
import { decryptStream, encryptStream } from '../attachment.js';
import { FILES, verifyDocs } from '../tools/vector_verifier.mjs';

const lines = [];
let failures = 0;
let passed = 0;
const ok = (cond, what) => {
  if (cond) passed++;
  else {
    failures++;
    lines.push(`FAIL ${what}`);
  }
};
const root = new URL('../../../', import.meta.url);
const getJson = async (rel) => (await fetch(new URL(rel, root))).json();

async function standards() {
  const S = await getJson('tests/vectors/standards.json');
  for (const v of S.hkdf) ok(toHex(await p.hkdf(fromHex(v.ikm), fromHex(v.salt), fromHex(v.info), v.L)) === v.okm, 'hkdf');
  for (const v of S.x25519) ok(toHex(await p.x25519(fromHex(v.scalar), fromHex(v.u))) === v.out, 'x25519');
  for (const lo of S.x25519_low_order) {
    let code = null;
    try {
      await p.x25519(fromHex(S.x25519[0].scalar), fromHex(lo));
    } catch (e) {
      code = e.code;
    }
    ok(code === 'crypto_low_order', `low order ${lo}`);
  }
  for (const v of S.ed25519) {
    ok(toHex(await p.ed25519Public(fromHex(v.sk))) === v.pk, 'ed25519 pk');
    ok(toHex(await p.ed25519Sign(fromHex(v.sk), fromHex(v.msg))) === v.sig, 'ed25519 sig');
  }
  for (const v of S.hpke) {
    const e0 = v.encryptions[0];
    const s = await hpke.seal(fromHex(v.pkRm), fromHex(v.info), fromHex(e0.pt), fromHex(e0.aad), { skE: fromHex(v.skEm) });
    ok(toHex(s.enc) === v.enc && toHex(s.ct) === e0.ct, 'hpke seal');
  }
  for (const v of S.argon2id.filter((x) => x.password !== '')) {
    const out = await argon2idRaw({ password: fromHex(v.password), salt: fromHex(v.salt), memoryKiB: v.m_kib, iterations: v.t,
      parallelism: v.p, length: v.length });
    ok(toHex(out) === v.out, `argon2id m=${v.m_kib}`);
  }
}

async function pythonVectors() {
  const docs = {};
  for (const f of FILES) docs[f] = await getJson(`tests/vectors/py/${f}`);
  const readBin = async (name) => new Uint8Array(await (await fetch(new URL(`tests/vectors/py/${name}`, root))).arrayBuffer());
  const v = await verifyDocs(docs, { readBin });
  passed += v.passed;
  failures += v.failures.length;
  lines.push(...v.lines, `python vectors: ${v.passed} passed, ${v.failures.length} failed`);
  ok(v.passed > 50, 'python vectors ran');
}

async function streamedAttachment() {
  const SIZE = 1024 * 1024 + 7;
  let made = 0;
  const src = new ReadableStream({
    pull(c) {
      if (made >= SIZE) return c.close();
      const n = Math.min(9999, SIZE - made);
      c.enqueue(new Uint8Array(n).fill(made % 251));
      made += n;
    },
  });
  const enc = await encryptStream(); // fresh (attId, fk) drawn by the encryptor
  const { fk, attId: att } = enc;
  const parts = [];
  await src.pipeThrough(enc).pipeTo(new WritableStream({ write: (c) => parts.push(c) }));
  const { ctSha256 } = await enc.result;
  let got = 0;
  const dec = await decryptStream(fk, att, ctSha256, SIZE);
  await new Blob(parts).stream().pipeThrough(dec).pipeTo(new WritableStream({ write: (c) => { got += c.length; } }));
  ok(got === SIZE, 'streamed attachment round trip');
}

try {
  await standards();
  await pythonVectors();
  await streamedAttachment();
} catch (e) {
  failures++;
  lines.push(`FAIL exception ${e && e.stack}`);
}
window.__rtp1Result = { passed, failures, lines, userAgent: navigator.userAgent };
document.getElementById('out').textContent = JSON.stringify(window.__rtp1Result, null, 1);
