// Pure formatting helpers (no DOM): sizes, times, payload fields.

import { TEXT, actorText } from './strings.js';

/**
 * Decoded size in bytes of a blob (unpadded base64url, as the websocket and
 * the HTTP API both send it; padding is tolerated). Computed from the
 * length: the ciphertext is never decoded here.
 */
export function base64Bytes(text) {
  if (typeof text !== 'string') return 0;
  const body = text.replace(/=+$/, '');
  return Math.floor((body.length * 3) / 4);
}

// One formatter for every event: toLocaleString with options builds a new one per call,
// which was a large part of rendering a thousand events.
let timeFormat = null;

/** A short local date and time for `created_at` (ISO 8601 UTC), or the raw text. */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  if (!timeFormat) timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return timeFormat.format(date);
}

const MAX_VALUE_CHARS = 500;

/**
 * The payload as [key, text, staffOnly] rows. Payload values are plain JSON
 * metadata (message bodies are in the encrypted blob); nested values are
 * shown as compact JSON, long values are cut so one event cannot flood a
 * phone screen. Keys starting `staff_` only ever reach staff viewers.
 */
export function payloadRows(payload) {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return [];
  return Object.keys(payload)
    .sort()
    .map((key) => {
      const value = payload[key];
      let text = typeof value === 'string' ? value : JSON.stringify(value);
      if (text === undefined) text = String(value);
      if (text.length > MAX_VALUE_CHARS) text = `${text.slice(0, MAX_VALUE_CHARS)}…`;
      return [key, text, key.startsWith('staff_')];
    });
}

/** "Sam Finch (staff)" style label of an event's actor. */
export function actorLabel(actor) {
  if (!actor || typeof actor !== 'object') return TEXT.unknownActor;
  const name = typeof actor.name === 'string' && actor.name ? actor.name : TEXT.unknownActor;
  const kind = typeof actor.kind === 'string' ? actor.kind : '';
  return actorText(name, kind);
}

/** A client-chosen idempotency id for `send`/POST (1–64 of [A-Za-z0-9_.:~-]). */
export function newClientId(prefix = 'web') {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${prefix}-${hex}`;
}
