// The /ws connection: connect, hello, liveness pings, reconnect with backoff.
//
// Knows nothing about matters: it hands every frame after `hello` to
// `onFrame` and calls `onOpen(hello)` on each new connection, where the
// feed resubscribes from its cursors. Close codes (docs/protocol.md) decide
// what happens next:
//   4001/4010  the session is gone        -> stop, ask the user to sign in
//   4011       removed from a matter      -> stop; the page reloads its matters
//   4003       origin not allowed         -> stop (misconfigured site)
//   4006       protocol version refused   -> stop (this page is out of date)
//   4008       slow consumer              -> reconnect at once, resume
//   1012       server restarting          -> reconnect soon, spread out
//   anything else, network loss           -> exponential backoff with jitter

const PING_EVERY_MS = 25_000; // phones move between networks; find dead sockets
const PONG_WITHIN_MS = 10_000;
const HELLO_WITHIN_MS = 15_000; // a handshake stuck on a bad network is abandoned
const STABLE_MS = 10_000; // a connection this old resets the backoff
const MAX_DELAY_MS = 30_000;

export const CLOSE_SIGNED_OUT = new Set([4001, 4010]);
export const CLOSE_FATAL = new Set([4003]);
export const CLOSE_ACCESS_REMOVED = 4011;
export const CLOSE_UNSUPPORTED_VERSION = 4006;
// The protocol this page speaks, said in the client's hello (docs/protocol.md).
export const PROTOCOL_VERSION = 2;

/** Delay before reconnect attempt `attempt` (0-based) after close `code`. */
export function reconnectDelay(attempt, code, random = Math.random) {
  if (attempt === 0 && code === 4008) return 100 + random() * 400;
  if (attempt === 0 && code === 1012) return 300 + random() * 1500; // not all at once
  const base = Math.min(MAX_DELAY_MS, 1000 * 2 ** attempt);
  return base / 2 + random() * (base / 2);
}

export class Socket {
  /**
   * Callbacks: onOpen(hello), onFrame(frame), onState(state, detail),
   * onEnd(reason) with reason 'signed-out' | 'access-removed' | 'forbidden-origin' |
   * 'outdated' (the server no longer speaks this page's protocol: reload).
   * States: connecting, live, reconnecting (detail: ms), offline, stopped.
   */
  constructor(callbacks) {
    this.cb = callbacks;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.helloTimer = null;
    this.openedAt = 0;
    this.stopped = false;
    this.live = false; // hello received on the current socket
    this.pingId = 0;
    this.url = `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${window.location.host}/ws`;
    this.onOnline = () => this.connectNow();
    this.onVisible = () => {
      if (document.visibilityState !== 'visible') return;
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ping();
      else this.connectNow();
    };
    window.addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  /** Close for good (logout, page leaving); no reconnect. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.detach(1000, 'bye');
    window.removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    this.cb.onState('stopped');
  }

  /** Skip the remaining backoff (network came back, page visible, user asked). */
  connectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  /** Send one frame; false when not connected (the caller resends on the next open). */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.live) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    if (this.stopped) return;
    this.cb.onState('connecting');
    this.live = false;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect(1006);
      return;
    }
    this.ws = ws;
    this.helloTimer = setTimeout(() => {
      if (this.ws !== ws || this.live) return;
      this.detach(1000, 'no hello');
      this.scheduleReconnect(1006);
    }, HELLO_WITHIN_MS);
    ws.onmessage = (msg) => this.receive(msg);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.afterClose(ev.code);
    };
    // onerror is always followed by onclose; nothing to do here.
  }

  receive(msg) {
    let frame;
    try {
      frame = JSON.parse(msg.data);
    } catch (err) {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    this.alive();
    if (frame.type === 'hello') {
      // Our version first: the server refuses any other first frame (4006).
      this.ws.send(JSON.stringify({ type: 'hello', id: 'hello', v: PROTOCOL_VERSION }));
      clearTimeout(this.helloTimer);
      this.helloTimer = null;
      this.live = true;
      this.openedAt = Date.now();
      this.cb.onState('live');
      this.schedulePing();
      this.cb.onOpen(frame);
      return;
    }
    if (frame.type === 'pong') return;
    this.cb.onFrame(frame);
  }

  afterClose(code) {
    this.clearPing();
    const wasLive = this.live;
    this.live = false;
    if (this.stopped) return;
    if (CLOSE_SIGNED_OUT.has(code)) {
      this.stopped = true;
      this.cb.onEnd('signed-out');
      return;
    }
    if (code === CLOSE_ACCESS_REMOVED) {
      this.stopped = true;
      this.cb.onEnd('access-removed');
      return;
    }
    if (code === CLOSE_UNSUPPORTED_VERSION) {
      this.stopped = true;
      this.cb.onEnd('outdated');
      return;
    }
    if (CLOSE_FATAL.has(code)) {
      this.stopped = true;
      this.cb.onEnd('forbidden-origin');
      return;
    }
    if (wasLive && Date.now() - this.openedAt >= STABLE_MS) this.attempt = 0;
    this.scheduleReconnect(code);
  }

  scheduleReconnect(code) {
    const delay = reconnectDelay(this.attempt, code);
    this.attempt += 1;
    // Offline: the 'online' event calls connectNow(); the timer stays as a
    // fallback for webviews whose online/offline events are unreliable.
    if (navigator.onLine === false) this.cb.onState('offline');
    else this.cb.onState('reconnecting', delay);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  /** Drop a socket that stopped answering and reconnect as after a network loss. */
  detach(code, reason) {
    const ws = this.ws;
    this.ws = null;
    this.clearPing();
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close(code, reason);
    } catch (err) {
      // already closing
    }
  }

  ping() {
    if (!this.send({ type: 'ping', id: `p${(this.pingId += 1)}` })) return;
    if (!this.pongTimer) {
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        this.detach(1000, 'no pong');
        this.live = false;
        if (!this.stopped) this.scheduleReconnect(1006);
      }, PONG_WITHIN_MS);
    }
  }

  /** Any frame proves the connection works. */
  alive() {
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  schedulePing() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
  }

  clearPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.helloTimer);
    this.pingTimer = null;
    this.pongTimer = null;
    this.helloTimer = null;
  }
}
