// The document checklist's file transfer, and nothing else: one file
// encrypted with RTA1 (crypto/attachment.js) and POSTed to the matter's
// files endpoint by XMLHttpRequest (fetch reports no upload progress); one
// file downloaded and decrypted against its descriptor.
//
// A stand-in, kept minimal on purpose: attachments in threads bring their own
// pipeline (static/shared/attachfile.js on wip/attachui, same shapes:
// {id, descriptor}, onProgress(done, total)). When that module is on main,
// these two functions become calls to it and this file goes.

import { AttachmentDecryptor, AttachmentEncryptor } from '../crypto/attachment.js';
import { ApiError, csrfHeaders } from '../shared/http.js';

const SLICE = 256 * 1024; // plaintext sealed per step: the page gets a turn between steps

const enc = encodeURIComponent;

function b64std(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function errorOf(status, text) {
  let error = {};
  try {
    error = JSON.parse(text).error || {};
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  const failure = new ApiError(status, typeof error.code === 'string' ? error.code : 'internal', error.message || `HTTP ${status}`);
  if (error.details && typeof error.details === 'object') failure.details = error.details;
  return failure;
}

async function encrypt(file) {
  const encryptor = await AttachmentEncryptor.create();
  const parts = [];
  for (let at = 0; at < file.size; at += SLICE) {
    const out = await encryptor.push(new Uint8Array(await file.slice(at, at + SLICE).arrayBuffer()));
    if (out.length) parts.push(out);
  }
  const { bytes, ctSha256, size } = await encryptor.finish();
  parts.push(bytes);
  const descriptor = { att_id: encryptor.attId, fk: encryptor.fk, ct_sha256: ctSha256, size, name: String(file.name || ''), mime: String(file.type || '') };
  return { blob: new Blob(parts, { type: 'application/octet-stream' }), descriptor };
}

function post(path, blob, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.withCredentials = true;
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : blob.size));
    xhr.addEventListener('load', () => {
      if (xhr.status !== 201) reject(errorOf(xhr.status, xhr.responseText));
      else resolve(JSON.parse(xhr.responseText).file);
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'the server cannot be reached')));
    xhr.send(blob);
  });
}

/**
 * Encrypt `file` and upload it to matter `ref`: resolves with {id, descriptor}
 * (the descriptor, name and type included, goes only into an envelope).
 * `onProgress(sent, total)` in ciphertext bytes as the upload moves.
 */
export async function uploadDocumentFile(ref, file, onProgress = () => {}) {
  const { blob, descriptor } = await encrypt(file);
  onProgress(0, blob.size);
  const path = `/api/v1/matters/${enc(ref)}/files`;
  const base = { 'Content-Type': 'application/octet-stream', Accept: 'application/json', 'Content-Digest': `sha-256=:${b64std(descriptor.ct_sha256)}:` };
  let answer;
  try {
    answer = await post(path, blob, { ...base, ...(await csrfHeaders()) }, onProgress);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'csrf_failed')) throw err;
    answer = await post(path, blob, { ...base, ...(await csrfHeaders(true)) }, onProgress);
  }
  return { id: answer.id, descriptor };
}

/**
 * Download file `fileId` of matter `ref` and decrypt it against `descriptor`
 * (att_id, size and ct_sha256 checked before anything is returned). The Blob
 * is always octet-stream: a blob: URL is of the portal's origin, and an HTML
 * or SVG file given its own type could run there if opened as a page.
 */
export async function downloadDocumentFile(ref, fileId, descriptor) {
  let response;
  try {
    response = await fetch(`/api/v1/matters/${enc(ref)}/files/${enc(fileId)}`, { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (!response.ok) throw errorOf(response.status, await response.text().catch(() => ''));
  const d = descriptor;
  const decryptor = await AttachmentDecryptor.create(d.fk, d.att_id, d.ct_sha256, d.size);
  const parts = [];
  const reader = response.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const out = await decryptor.push(value);
    if (out.length) parts.push(out);
  }
  parts.push(await decryptor.finish());
  return new Blob(parts, { type: 'application/octet-stream' });
}
