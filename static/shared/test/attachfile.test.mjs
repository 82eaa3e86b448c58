// Attachments in the browser (static/shared/attachfile.js) under Node: a
// File (here a Blob) encrypted a slice at a time into an RTA1 blob whose
// SHA-256 is the descriptor's and the Content-Digest's, decrypted back only
// when every check holds; the upload's request as docs/files.md names it
// (against a recording XMLHttpRequest: Node has none; the server side is
// tests/test_files.py and the browser journey tests/test_browser_attach.py).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';

import * as F from '../attachfile.js';
import { blobLength } from '../../crypto/attachment.js';
import { setCsrfToken } from '../http.js';
import { FILES, fileSize } from '../strings_threads.js';

const sha256 = (bytes) => new Uint8Array(createHash('sha256').update(bytes).digest());
const blobBytes = async (blob) => new Uint8Array(await blob.arrayBuffer());

function randomPlain(n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

async function sealed(n, opts = {}) {
  const plain = randomPlain(n);
  const file = new Blob([plain], { type: 'text/html' });
  const progress = [];
  const { blob, descriptor } = await F.encryptFile(file, { name: 'a.html', onProgress: (d, t) => progress.push([d, t]), ...opts });
  return { plain, blob, descriptor, progress, bytes: await blobBytes(blob) };
}

const readerOf = (bytes, piece = 50000) =>
  new ReadableStream({
    start(c) {
      for (let i = 0; i < bytes.length; i += piece) c.enqueue(bytes.slice(i, i + piece));
      c.close();
    },
  }).getReader();

test('a file is sealed slice by slice: the descriptor matches the blob, the progress reaches the end', async () => {
  const n = 2 * F.SLICE + 70000; // three slices, the last chunk short
  const { blob, descriptor, progress, bytes } = await sealed(n);
  assert.equal(descriptor.size, n);
  assert.equal(descriptor.name, 'a.html');
  assert.equal(descriptor.mime, 'text/html');
  assert.equal(blob.size, blobLength(n));
  assert.equal(blob.type, 'application/octet-stream');
  assert.deepEqual(descriptor.ct_sha256, sha256(bytes));
  assert.deepEqual(bytes.subarray(0, 5), new Uint8Array([82, 84, 65, 49, 1])); // "RTA1" v1
  assert.deepEqual(bytes.subarray(5, 21), descriptor.att_id);
  assert.deepEqual(progress, [[F.SLICE, n], [2 * F.SLICE, n], [n, n]]);
});

test('every file draws its own att_id and file key', async () => {
  const a = await sealed(10);
  const b = await sealed(10);
  assert.notDeepEqual(a.descriptor.att_id, b.descriptor.att_id);
  assert.notDeepEqual(a.descriptor.fk, b.descriptor.fk);
});

test('the empty file is a header and one tag', async () => {
  const { blob, descriptor } = await sealed(0);
  assert.equal(blob.size, 21 + 16);
  assert.equal(descriptor.size, 0);
});

test('decrypting gives the plaintext back, with progress in ciphertext bytes', async () => {
  const { plain, bytes, descriptor } = await sealed(300000);
  const seen = [];
  const parts = await F.decryptReader(readerOf(bytes), descriptor, { onProgress: (d, t) => seen.push([d, t]) });
  assert.deepEqual(await blobBytes(new Blob(parts)), plain);
  assert.deepEqual(seen[seen.length - 1], [bytes.length, bytes.length]);
});

test('a blob changed, cut, extended or not the descriptor\'s is refused (crypto_attachment)', async () => {
  const { bytes, descriptor } = await sealed(200000);
  const flipped = bytes.slice();
  flipped[100] ^= 1;
  const cut = bytes.slice(0, bytes.length - 65552);
  const longer = new Uint8Array([...bytes, 0]);
  for (const bad of [flipped, cut, longer]) {
    await assert.rejects(F.decryptReader(readerOf(bad), descriptor), (e) => e.code === 'crypto_attachment');
  }
  const other = await sealed(200000);
  await assert.rejects(F.decryptReader(readerOf(other.bytes), descriptor), (e) => e.code === 'crypto_attachment');
  const wrongSize = { ...descriptor, size: descriptor.size - 1 };
  await assert.rejects(F.decryptReader(readerOf(bytes), wrongSize), (e) => e.code === 'crypto_attachment');
});

test('Content-Digest is RFC 9530 with standard base64', () => {
  const digest = sha256(new Uint8Array([1, 2, 3]));
  assert.equal(F.contentDigest(digest), `sha-256=:${Buffer.from(digest).toString('base64')}:`);
});

test('a cancelled encryption stops (code cancelled)', async () => {
  const ctl = new AbortController();
  ctl.abort();
  await assert.rejects(F.encryptFile(new Blob([randomPlain(10)]), { signal: ctl.signal }), (e) => e.code === 'cancelled');
});

test('download names lose paths and control characters, never empty', () => {
  assert.equal(F.safeFileName('../../etc/passwd'), '__.._etc_passwd');
  assert.equal(F.safeFileName('a\u0000b\nc.txt'), 'a_b_c.txt');
  assert.equal(F.safeFileName('', FILES.defaultName), 'attachment');
  assert.equal(F.safeFileName('<img src=x onerror=alert(1)>.svg'), '<img src=x onerror=alert(1)>.svg');
});

test('sizes as a reader sees them', () => {
  assert.equal(fileSize(1), '1 byte');
  assert.equal(fileSize(999), '999 bytes');
  assert.equal(fileSize(1500), '1.5 KB');
  assert.equal(fileSize(4 * 1024 * 1024), '4.2 MB');
});

// --- the upload's request, against a recording XMLHttpRequest ---------------

const sent = [];
let answers = [];
class FakeXhr {
  constructor() {
    this.headers = {};
    this.listeners = {};
    this.uploadProgress = () => {};
    this.upload = { addEventListener: (type, fn) => (this.uploadProgress = fn) };
  }
  open(method, path) {
    Object.assign(this, { method, path });
  }
  setRequestHeader(k, v) {
    this.headers[k] = v;
  }
  addEventListener(type, fn) {
    this.listeners[type] = fn;
  }
  abort() {
    this.listeners.abort();
  }
  send(body) {
    sent.push(this);
    this.body = body;
    const answer = answers.shift();
    if (answer === 'hang') return; // until aborted
    queueMicrotask(() => {
      this.uploadProgress({ loaded: body.size / 2, total: body.size, lengthComputable: true });
      this.uploadProgress({ loaded: body.size, total: body.size, lengthComputable: true });
      this.status = answer.status;
      this.responseText = JSON.stringify(answer.body);
      this.listeners.load();
    });
  }
}
globalThis.XMLHttpRequest = FakeXhr;

test('an upload is the raw blob with its digest and the session\'s CSRF token, progress reported', async () => {
  setCsrfToken('tok');
  sent.length = 0;
  answers = [{ status: 201, body: { file: { id: 'F1', size: 53, created_at: 'now' } } }];
  const { blob, descriptor } = await sealed(16);
  const progress = [];
  const file = await F.uploadBlob('AB/1', blob, descriptor.ct_sha256, { onProgress: (s, t) => progress.push([s, t]) });
  assert.equal(file.id, 'F1');
  const [xhr] = sent;
  assert.equal(xhr.method, 'POST');
  assert.equal(xhr.path, '/api/v1/matters/AB%2F1/files');
  assert.equal(xhr.body, blob);
  assert.equal(xhr.headers['Content-Type'], 'application/octet-stream');
  assert.equal(xhr.headers['Content-Digest'], F.contentDigest(descriptor.ct_sha256));
  assert.equal(xhr.headers['X-CSRF-Token'], 'tok');
  assert.deepEqual(progress, [[blob.size / 2, blob.size], [blob.size, blob.size]]);
});

test('the limits come back as their stable codes, each with its own text', async () => {
  const { blob, descriptor } = await sealed(16);
  for (const code of ['file_too_large', 'portal_quota_exceeded']) {
    answers = [{ status: 413, body: { error: { code, message: 'm', details: { limit: 5 } } } }];
    await assert.rejects(F.uploadBlob('R', blob, descriptor.ct_sha256), (e) => e.code === code && e.status === 413 && e.details.limit === 5);
    assert.ok(FILES[code]);
  }
});

test('a changed session is tried once more with a fresh token; Cancel aborts the request', async () => {
  const { blob, descriptor } = await sealed(16);
  globalThis.fetch = async () => new Response(JSON.stringify({ csrf_token: 'new' }), { status: 200 });
  sent.length = 0;
  answers = [{ status: 403, body: { error: { code: 'csrf_failed' } } }, { status: 201, body: { file: { id: 'F2' } } }];
  assert.equal((await F.uploadBlob('R', blob, descriptor.ct_sha256)).id, 'F2');
  assert.equal(sent[1].headers['X-CSRF-Token'], 'new');
  answers = ['hang'];
  const ctl = new AbortController();
  const pending = F.uploadBlob('R', blob, descriptor.ct_sha256, { signal: ctl.signal });
  await new Promise((r) => setTimeout(r, 0));
  ctl.abort();
  await assert.rejects(pending, (e) => e.code === 'cancelled');
});

test('a download is decrypted into an octet-stream Blob, whatever type the file had', async () => {
  const { plain, bytes, descriptor } = await sealed(70000);
  const asked = [];
  globalThis.fetch = async (path) => {
    asked.push(path);
    return path.endsWith('/F9') ? new Response(bytes, { status: 200 }) : new Response('{"error":{"code":"not_found"}}', { status: 404 });
  };
  const blob = await F.downloadFile('AB/1', 'F9', descriptor);
  assert.equal(asked[0], '/api/v1/matters/AB%2F1/files/F9');
  assert.equal(blob.type, 'application/octet-stream');
  assert.deepEqual(await blobBytes(blob), plain);
  await assert.rejects(F.downloadFile('AB/1', 'nope', descriptor), (e) => e.code === 'not_found' && e.status === 404);
});
