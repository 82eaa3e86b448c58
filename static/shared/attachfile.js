// Attachments in the browser (docs/files.md, docs/security.md §9): a File
// encrypted with RTA1 a slice at a time, uploaded by XMLHttpRequest (fetch
// reports no upload progress) with its Content-Digest, and a download
// streamed through the decryptor, checked against its descriptor (att_id in
// the header, size, ct_sha256) before anything is handed to the reader.
// No DOM here: static/client/attachui.js draws it; Node runs the tests of
// what does not need a server (static/shared/test/attachfile.test.mjs).

import { AttachmentDecryptor, AttachmentEncryptor, blobLength } from '../crypto/attachment.js';
import { ApiError, csrfHeaders } from './http.js';

/** Plaintext read and sealed per step: its SHA-256 runs in JavaScript, about 8 ms here, so no step holds the page for long. */
export const SLICE = 256 * 1024;
export const MAX_FILES = 20; // payload.files holds 1–20 ids (docs/files.md)

/** Standard base64 (RFC 9530's byte sequences), not base64url. */
export function b64std(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The Content-Digest header of a blob whose SHA-256 is `ctSha256`. */
export function contentDigest(ctSha256) {
  return `sha-256=:${b64std(ctSha256)}:`;
}

const aborted = () => new ApiError(0, 'cancelled', 'cancelled');
/**
 * Give the page a turn (input, painting) between two slices. Not setTimeout:
 * a tab in the background runs timers at most once a second, and an upload
 * started before switching tabs would crawl; a message is not throttled.
 */
function yieldToPage() {
  if (globalThis.scheduler && typeof globalThis.scheduler.yield === 'function') return globalThis.scheduler.yield();
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * Encrypt `file` (a File or Blob) under a fresh (att_id, fk): read and sealed
 * a SLICE at a time, the page given back between slices. Resolves with
 * {blob (the RTA1 ciphertext as a Blob of parts), descriptor} where the
 * descriptor is the RTAD record's fields (the name and type stay in the
 * encrypted message). `onProgress(done, total)` in plaintext bytes.
 */
export async function encryptFile(file, { name = file.name, signal = null, onProgress = null } = {}) {
  const enc = await AttachmentEncryptor.create();
  const parts = [];
  for (let at = 0; at < file.size; at += SLICE) {
    if (signal && signal.aborted) throw aborted();
    const plain = new Uint8Array(await file.slice(at, at + SLICE).arrayBuffer());
    const out = await enc.push(plain);
    if (out.length) parts.push(out);
    if (onProgress) onProgress(Math.min(at + SLICE, file.size), file.size);
    await yieldToPage();
  }
  const { bytes, ctSha256, size } = await enc.finish();
  parts.push(bytes);
  const blob = new Blob(parts, { type: 'application/octet-stream' });
  const descriptor = {
    att_id: enc.attId,
    fk: enc.fk,
    ct_sha256: ctSha256,
    size,
    name: String(name || ''),
    mime: String(file.type || ''),
  };
  return { blob, descriptor };
}

/** The ApiError of an answer's JSON error body (the upload's 413s carry their stable codes). */
function answerError(status, text) {
  let error = {};
  try {
    const data = JSON.parse(text);
    if (data && typeof data === 'object' && data.error) error = data.error;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  const failure = new ApiError(
    status,
    typeof error.code === 'string' ? error.code : 'internal',
    typeof error.message === 'string' ? error.message : `HTTP ${status}`,
  );
  if (error.details && typeof error.details === 'object') failure.details = error.details;
  return failure;
}

function sendOnce(path, blob, digest, headers, { signal, onProgress }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Content-Digest', digest);
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : blob.size));
    const stop = () => xhr.abort();
    if (signal) signal.addEventListener('abort', stop, { once: true });
    const done = (fn) => {
      if (signal) signal.removeEventListener('abort', stop);
      fn();
    };
    xhr.addEventListener('load', () =>
      done(() => {
        if (xhr.status === 201) {
          try {
            resolve(JSON.parse(xhr.responseText).file);
          } catch {
            reject(new ApiError(xhr.status, 'internal', 'not a file answer'));
          }
        } else reject(answerError(xhr.status, xhr.responseText));
      }),
    );
    xhr.addEventListener('error', () => done(() => reject(new ApiError(0, 'network', 'the server cannot be reached'))));
    xhr.addEventListener('abort', () => done(() => reject(aborted())));
    if (signal && signal.aborted) {
      done(() => reject(aborted()));
      return;
    }
    xhr.send(blob);
  });
}

/**
 * POST the ciphertext `blob` to matter `ref` (docs/files.md "Upload"); resolves
 * with the server's {id, size, created_at}. `onProgress(sent, total)`; an
 * aborted `signal` stops it (ApiError `cancelled`: the server keeps nothing
 * of a body cut short). A changed session's CSRF token is read once more.
 */
export async function uploadBlob(ref, blob, ctSha256, { signal = null, onProgress = null } = {}) {
  const path = `/api/v1/matters/${encodeURIComponent(ref)}/files`;
  const digest = contentDigest(ctSha256);
  try {
    return await sendOnce(path, blob, digest, await csrfHeaders(), { signal, onProgress });
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'csrf_failed')) throw err;
    return sendOnce(path, blob, digest, await csrfHeaders(true), { signal, onProgress });
  }
}

/**
 * Decrypt the blob read from `reader` (a ReadableStream reader of the
 * ciphertext) against `descriptor`; resolves with the plaintext parts only
 * once the last chunk, the size and ct_sha256 checked out (else
 * CryptoInvalid `crypto_attachment`: the parts are dropped). `onProgress(done,
 * total)` in ciphertext bytes.
 */
export async function decryptReader(reader, descriptor, { signal = null, onProgress = null } = {}) {
  const d = descriptor;
  const dec = await AttachmentDecryptor.create(d.fk, d.att_id, d.ct_sha256, d.size);
  const total = blobLength(d.size);
  const parts = [];
  let done = 0;
  for (;;) {
    if (signal && signal.aborted) throw aborted();
    const { value, done: end } = await reader.read();
    if (end) break;
    done += value.length;
    const out = await dec.push(value);
    if (out.length) parts.push(out);
    if (onProgress) onProgress(Math.min(done, total), total);
  }
  const last = await dec.finish();
  if (last.length) parts.push(last);
  return parts;
}

/**
 * Download file `fileId` of matter `ref` and decrypt it against `descriptor`.
 * The Blob is always `application/octet-stream`, whatever the descriptor's
 * type: a blob: URL belongs to the portal's origin, so an HTML or SVG file
 * given its own type could run there if it were ever opened as a page; as
 * octet-stream the browser only ever saves it.
 */
export async function downloadFile(ref, fileId, descriptor, { signal = null, onProgress = null } = {}) {
  const path = `/api/v1/matters/${encodeURIComponent(ref)}/files/${encodeURIComponent(fileId)}`;
  let response;
  try {
    response = await fetch(path, { credentials: 'same-origin', cache: 'no-store', signal: signal || undefined });
  } catch (err) {
    if (signal && signal.aborted) throw aborted();
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (!response.ok) throw answerError(response.status, await response.text().catch(() => ''));
  const parts = await decryptReader(response.body.getReader(), descriptor, { signal, onProgress });
  return new Blob(parts, { type: 'application/octet-stream' });
}

/** A name fit for a download attribute: no path, no control characters; `fallback` when empty. */
export function safeFileName(name, fallback) {
  // eslint-disable-next-line no-control-regex
  const clean = String(name || '').replace(/[\u0000-\u001f\u007f/\\]/g, '_').replace(/^\.+/, '_').trim();
  return clean.slice(0, 200) || fallback;
}
