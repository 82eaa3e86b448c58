// The browser keyring's tag names (static/shared/tagnames.js) driven from a
// Python test (tests/test_tagnames_js.py): a real Keyring syncs the firm
// directory the test built with the Python library (served through `fetch`,
// as GET /api/v1/keys/firm would), then seals and opens the names it is asked
// to. Reads one JSON object on stdin, writes one on stdout:
//   in:  {firm, user, x_sk, ed_sk, frk_fingerprint, directory, ops: [op]}
//        op {op: 'seal', tag, name, now_ms?, rand?} (rand: base64url bytes handed out in order)
//         | {op: 'open', tag, blob}
//   out: {sync: {ready, problems}, results: [{ok: true, value} | {ok: false, code}]}
import { Keyring } from '../../static/shared/keyring.js';
import { sealTagName } from '../../static/shared/tagnames.js';
import * as C from '../../static/crypto/index.js';

const { bytes, keys, primitives } = C;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function keyringOf(input) {
  const xSk = bytes.fromB64url(input.x_sk);
  const edSk = bytes.fromB64url(input.ed_sk);
  const uik = await keys.uikFromSeeds(xSk, edSk);
  const identity = {
    id: input.user, kid: uik.kid, fingerprint: uik.fingerprint, record: uik.record, xPk: uik.xPk, edPk: uik.edPk,
    xSk: await primitives.x25519PrivateKey(xSk, false),
    edSk: await primitives.ed25519PrivateKey(edSk, false),
  };
  const state = { v: 1, frkFingerprint: bytes.fromB64url(input.frk_fingerprint), pinSealed: true, keys: {},
    revocationVersion: 0, escrowVersion: 0, matters: {} };
  return new Keyring({ firm: input.firm, user: input.user, identity, state });
}

/** A fixed byte stream (the test's) so a seal can be compared byte for byte with the SDK's. */
function streamOf(b64) {
  const all = bytes.fromB64url(b64);
  let at = 0;
  return (n) => {
    if (at + n > all.length) throw new Error('the test gave too few random bytes');
    const out = all.slice(at, at + n);
    at += n;
    return out;
  };
}

const input = await readStdin();
globalThis.fetch = async (path) => {
  const found = path === '/api/v1/keys/firm' ? input.directory : null;
  return new Response(JSON.stringify(found ?? { error: { code: 'not_found' } }), { status: found ? 200 : 404 });
};
const kr = await keyringOf(input);
const sync = await kr.syncFirm();
const results = [];
for (const op of input.ops) {
  try {
    if (op.op === 'seal' && op.rand) {
      results.push({ ok: true, value: await sealTagName(kr, op.tag, op.name, { nowMs: op.now_ms, rand: streamOf(op.rand) }) });
    } else if (op.op === 'seal') {
      results.push({ ok: true, value: await kr.sealTagName(op.tag, op.name) });
    } else {
      results.push({ ok: true, value: await kr.openTagName(op.tag, op.blob) });
    }
  } catch (err) {
    results.push({ ok: false, code: err && err.code ? err.code : String(err) });
  }
}
process.stdout.write(JSON.stringify({ sync, problems: kr.problems, results }));
