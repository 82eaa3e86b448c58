// rtp1 canonical binary encoding (docs/security.md §1): a 4-byte ASCII tag,
// then each field as u16 big-endian length ‖ bytes (u32 for *long* fields).
// Records are described by small schemas; decoding is strict, so every value
// has exactly one encoding and encode(decode(b)) == b for every accepted b.
// Everything signed, every AAD and every HPKE info is built here.

import { bytesEqual, concat, u16, u32, u64, u8 } from './bytes.js';
import { CryptoInvalid, check } from './errors.js';

const te = new TextEncoder();
// ignoreBOM: a leading U+FEFF is kept (the default strips it, so "\ufeffclient-1" would
// read as "client-1" here and not in Python): text keeps it, ids refuse it (checkIdText)
const td = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const FIXED = { b12: 12, b16: 16, b32: 32, b64: 64 };
const INTW = { u8: 1, u16: 2, u32: 4, u64: 8 };

const bad = (msg) => new CryptoInvalid('crypto_encoding', msg);

/** Define a record schema: tag (4 ASCII bytes) and ordered [name, type] fields. */
export function schema(tag, fields) {
  if (!/^[\x21-\x7e]{4}$/.test(tag)) throw new TypeError(`bad tag ${tag}`);
  return Object.freeze({ tag, tagBytes: te.encode(tag), fields: Object.freeze(fields.map((f) => Object.freeze(f))) });
}

function typeName(t) {
  return typeof t === 'string' ? t : t.type ?? (t.rec ? 'rec' : t.list ? 'list' : '?');
}

function isLong(t) {
  return typeof t === 'object' && t.long === true;
}

function utf8Strict(s, what) {
  if (typeof s !== 'string') throw bad(`${what} must be a string`);
  if (typeof s.isWellFormed === 'function' && !s.isWellFormed()) throw bad(`${what} is not well-formed Unicode`);
  return te.encode(s);
}

/**
 * Ids never silently change between languages (docs/security.md "One rule each"):
 * no leading U+FEFF, no C0/C1 control character (NUL would split joined map keys).
 */
function checkIdText(s, name) {
  check(!s.startsWith('\ufeff') && !/[\u0000-\u001f\u007f-\u009f]/.test(s), 'crypto_encoding',
    `${name}: ids may not start with U+FEFF or hold control characters`);
}

function intBytes(name, v, w) {
  if (w === 8) {
    if (typeof v !== 'bigint' && !Number.isSafeInteger(v)) throw bad(`${name} must be a safe integer or bigint`);
    return u64(v);
  }
  if (!Number.isInteger(v)) throw bad(`${name} must be an integer`);
  try {
    return w === 1 ? u8(v) : w === 2 ? u16(v) : u32(v);
  } catch {
    throw bad(`${name} out of range`);
  }
}

/** Compare byte strings: lexicographic, a shorter prefix first. */
export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** The bytes inside a field (before its length prefix) for value v of type t. */
function encodeValue(name, t, v) {
  const tn = typeName(t);
  if (tn in INTW) {
    const b = intBytes(name, v, INTW[tn]);
    if (typeof t === 'object') validateInt(name, t, typeof v === 'bigint' ? v : v);
    return b;
  }
  switch (tn) {
    case 'bool':
      if (typeof v !== 'boolean') throw bad(`${name} must be a boolean`);
      return u8(v ? 1 : 0);
    case 'id': {
      const b = utf8Strict(v, name);
      if (b.length < 1 || b.length > 255) throw bad(`${name}: id must be 1..255 bytes`);
      checkIdText(v, name);
      return b;
    }
    case 'text':
      return utf8Strict(v, name);
    case 'ascii': {
      if (typeof v !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(v)) throw bad(`${name}: ascii must be 1..64 printable`);
      return te.encode(v);
    }
    case 'b12':
    case 'b16':
    case 'b32':
    case 'b64':
      if (!(v instanceof Uint8Array) || v.length !== FIXED[tn]) throw bad(`${name} must be ${FIXED[tn]} bytes`);
      return v;
    case 'opt-b16':
      if (v === null || v === undefined || (v instanceof Uint8Array && v.length === 0)) return new Uint8Array(0);
      if (!(v instanceof Uint8Array) || v.length !== 16) throw bad(`${name} must be absent or 16 bytes`);
      return v;
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw bad(`${name} must be bytes`);
      return v;
    case 'rec':
      if (v instanceof Uint8Array) {
        decode(t.rec, v); // a pre-encoded record must itself be canonical
        return v;
      }
      return encode(t.rec, v);
    case 'list': {
      if (!Array.isArray(v)) throw bad(`${name} must be a list`);
      let items = v.map((item, i) => encodeValue(`${name}[${i}]`, t.list, item));
      if (t.sorted) {
        items = items.slice().sort(compareBytes);
        for (let i = 1; i < items.length; i++) {
          if (compareBytes(items[i - 1], items[i]) === 0) throw bad(`${name}: duplicate item`);
        }
      }
      return concat(...items.map((b) => field(b, false, `${name} item`)));
    }
    default:
      throw new TypeError(`unknown field type ${tn}`);
  }
}

function validateInt(name, t, v) {
  if (t.enum && !t.enum.includes(Number(v))) throw bad(`${name}: unknown value ${v}`);
  if (t.mask !== undefined && (Number(v) & ~t.mask) !== 0) throw bad(`${name}: unknown flag bits`);
  if (t.eq !== undefined && Number(v) !== t.eq) throw bad(`${name}: must be ${t.eq}`);
  if (t.min !== undefined && Number(v) < t.min) throw bad(`${name}: must be >= ${t.min}`);
}

function field(b, long, name) {
  if (long) {
    if (b.length > 0xffffffff) throw bad(`${name} too long`);
    return concat(u32(b.length), b);
  }
  if (b.length > 0xffff) throw bad(`${name} longer than 65535 bytes`);
  return concat(u16(b.length), b);
}

/** Encode obj as the record `s` (fields taken by name). */
export function encode(s, obj) {
  if (obj === null || typeof obj !== 'object') throw bad(`${s.tag}: value must be an object`);
  const parts = [s.tagBytes];
  for (const [name, t] of s.fields) {
    if (!(name in obj) && typeName(t) !== 'opt-b16') throw bad(`${s.tag}: missing field ${name}`);
    parts.push(field(encodeValue(`${s.tag}.${name}`, t, obj[name]), isLong(t), name));
  }
  return concat(...parts);
}

/** A record with a variable list of plain fields (used by D(), the derivation info). */
export function rawRecord(tag, fields) {
  const tb = te.encode(tag);
  if (tb.length !== 4) throw new TypeError('tag must be 4 ASCII bytes');
  return concat(tb, ...fields.map((f) => field(f, false, tag)));
}

function decodeValue(name, t, b) {
  const tn = typeName(t);
  if (tn in INTW) {
    check(b.length === INTW[tn], 'crypto_encoding', `${name}: ${tn} must be ${INTW[tn]} bytes`);
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    let v;
    if (tn === 'u8') v = dv.getUint8(0);
    else if (tn === 'u16') v = dv.getUint16(0);
    else if (tn === 'u32') v = dv.getUint32(0);
    else {
      const big = dv.getBigUint64(0);
      v = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    if (typeof t === 'object') validateInt(name, t, v);
    return v;
  }
  switch (tn) {
    case 'bool':
      check(b.length === 1 && (b[0] === 0 || b[0] === 1), 'crypto_encoding', `${name}: bool must be 00 or 01`);
      return b[0] === 1;
    case 'id':
    case 'text':
    case 'ascii': {
      let s;
      try {
        s = td.decode(b);
      } catch {
        throw bad(`${name}: invalid UTF-8`);
      }
      if (tn === 'id') {
        check(b.length >= 1 && b.length <= 255, 'crypto_encoding', `${name}: id must be 1..255 bytes`);
        checkIdText(s, name);
      }
      if (tn === 'ascii') check(/^[\x21-\x7e]{1,64}$/.test(s), 'crypto_encoding', `${name}: bad ascii`);
      return s;
    }
    case 'b12':
    case 'b16':
    case 'b32':
    case 'b64':
      check(b.length === FIXED[tn], 'crypto_encoding', `${name} must be ${FIXED[tn]} bytes`);
      return new Uint8Array(b);
    case 'opt-b16':
      check(b.length === 0 || b.length === 16, 'crypto_encoding', `${name} must be empty or 16 bytes`);
      return b.length === 0 ? null : new Uint8Array(b);
    case 'bytes':
      return new Uint8Array(b);
    case 'rec':
      return decode(t.rec, b);
    case 'list': {
      const items = [];
      const raws = [];
      let o = 0;
      while (o < b.length) {
        check(b.length - o >= 2, 'crypto_encoding', `${name}: truncated list item length`);
        const n = (b[o] << 8) | b[o + 1];
        o += 2;
        check(b.length - o >= n, 'crypto_encoding', `${name}: list item runs past the end`);
        const ib = b.subarray(o, o + n);
        o += n;
        if (t.sorted && raws.length) {
          check(compareBytes(raws[raws.length - 1], ib) < 0, 'crypto_encoding', `${name}: list not strictly sorted`);
        }
        raws.push(ib);
        items.push(decodeValue(`${name}[]`, t.list, ib));
      }
      return items;
    }
    default:
      throw new TypeError(`unknown field type ${tn}`);
  }
}

/**
 * Strictly decode bytes as record `s`. The result has one property per field
 * and a non-enumerable `raw` (the exact input bytes); nested records likewise.
 */
export function decode(s, bytes) {
  check(bytes instanceof Uint8Array, 'crypto_encoding', 'record must be bytes');
  check(bytes.length >= 4 && bytesEqual(bytes.subarray(0, 4), s.tagBytes), 'crypto_encoding', `expected tag ${s.tag}`);
  const out = {};
  let o = 4;
  for (const [name, t] of s.fields) {
    const long = isLong(t);
    const w = long ? 4 : 2;
    check(bytes.length - o >= w, 'crypto_encoding', `${s.tag}.${name}: missing field`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + o, w);
    const n = long ? dv.getUint32(0) : dv.getUint16(0);
    o += w;
    check(bytes.length - o >= n, 'crypto_encoding', `${s.tag}.${name}: field runs past the end`);
    out[name] = decodeValue(`${s.tag}.${name}`, t, bytes.subarray(o, o + n));
    o += n;
  }
  check(o === bytes.length, 'crypto_encoding', `${s.tag}: trailing bytes`);
  Object.defineProperty(out, 'raw', { value: new Uint8Array(bytes), enumerable: false });
  return out;
}

/** The exact bytes of a decoded record (or encode an object). */
export function rawOf(s, v) {
  if (v instanceof Uint8Array) return v;
  if (v && v.raw instanceof Uint8Array) return v.raw;
  return encode(s, v);
}
