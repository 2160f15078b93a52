// The WebSocket to the edge, kept open.
//
// The edge is stateless, so losing the socket loses nothing: the client
// reconnects (to whichever edge the load balancer picks), sends hello with the
// last stream id it saw, and the edge replays what was missed. This module
// owns that loop: exponential backoff with jitter between attempts, an
// immediate retry when the network or the tab comes back, and no retry at all
// after a close that says retrying cannot help (bad token, unknown game, too
// many sessions, protocol error).
//
// The WebSocket constructor and the timer functions are injected, so the loop
// is tested under Node without a browser or a network.

import { backoffDelay, closeMessage, shouldReconnect } from './protocol.js';

/** How long a socket may stay in CONNECTING before it is abandoned. */
const CONNECT_TIMEOUT_MS = 10000;

/**
 * How long a probe waits for any frame before the socket is taken for dead.
 * A phone that slept, or a laptop that changed networks, often holds a socket
 * whose other end is long gone; the browser would only notice after its TCP
 * timeouts. Browsers cannot send WebSocket pings, so the client sends a
 * protocol ping and gives the edge this long to answer.
 */
export const PROBE_TIMEOUT_MS = 5000;

export class Connection {
  /**
   * @param {object} options
   * @param {string} options.url the edge's /ws address.
   * @param {() => object} options.hello builds the hello frame, called on every
   *   (re)connect so it carries the current resume id and window size.
   * @param {(data: string) => void} options.onMessage receives every text frame.
   * @param {(change: {state: string, message?: string, delay?: number}) => void} options.onState
   *   is told 'connecting', 'open', 'waiting' (with delay in ms until the next
   *   attempt), or 'closed' (for good, with a message).
   */
  constructor({
    url,
    hello,
    onMessage,
    onState,
    WebSocketImpl = globalThis.WebSocket,
    timers = globalThis,
    random = Math.random,
  }) {
    this.url = url;
    this.hello = hello;
    this.onMessage = onMessage;
    this.onState = onState;
    this.WebSocketImpl = WebSocketImpl;
    this.timers = timers;
    this.random = random;
    this.socket = null;
    this.retryTimer = null;
    this.connectTimer = null;
    this.probeTimer = null;
    this.attempt = 0; // failed attempts since the last welcome
    this.halted = false;
    this.waiting = false;
  }

  /** Opens the first socket. */
  start() {
    this.connect();
  }

  /** Reports whether a frame sent now would reach the edge. */
  get isOpen() {
    return this.socket !== null && this.socket.readyState === 1; // OPEN
  }

  /** Sends a frame. Returns false (and sends nothing) when not connected. */
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Tells the connection that the edge accepted the hello: the link is good
   * again, so the next failure starts the backoff from the beginning.
   */
  welcomed() {
    this.attempt = 0;
  }

  /**
   * Reconnects at once if the connection is waiting out a backoff delay.
   * Called when the browser comes back online or the tab becomes visible:
   * the reasons to wait are likely gone.
   */
  retryNow() {
    if (this.halted || !this.waiting) return;
    this.connect();
  }

  /**
   * Checks that the open socket still reaches the edge: sends a ping, and
   * if no frame of any kind arrives within PROBE_TIMEOUT_MS, drops the socket
   * and reconnects (the hello resumes from the last id, so nothing is lost).
   * Called when the tab becomes visible, when the network comes back, and
   * now and then while the page is open.
   */
  probe() {
    if (this.halted || !this.isOpen || this.probeTimer !== null) return;
    const socket = this.socket;
    socket.send(JSON.stringify({ type: 'ping' }));
    this.probeTimer = this.timers.setTimeout(() => {
      this.probeTimer = null;
      if (this.socket !== socket) return;
      this.socket = null;
      try {
        socket.close();
      } catch {
        // A dead socket may refuse to close; it is forgotten either way.
      }
      this.closed(1006);
    }, PROBE_TIMEOUT_MS);
  }

  /** Closes the connection for good and says why. */
  halt(message) {
    if (this.halted) return;
    this.halted = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState < 2) socket.close(1000);
    this.onState({ state: 'closed', message });
  }

  connect() {
    this.clearTimers();
    this.waiting = false;
    this.onState({ state: 'connecting' });
    let socket;
    try {
      socket = new this.WebSocketImpl(this.url);
    } catch (err) {
      this.halt(`Cannot open a connection to ${this.url}: ${err.message}`);
      return;
    }
    this.socket = socket;
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = null;
      if (this.socket === socket && socket.readyState === 0) socket.close();
    }, CONNECT_TIMEOUT_MS);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.timers.clearTimeout(this.connectTimer);
      this.connectTimer = null;
      socket.send(JSON.stringify(this.hello()));
      this.onState({ state: 'open' });
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      if (this.probeTimer !== null) {
        // Any frame proves the socket alive.
        this.timers.clearTimeout(this.probeTimer);
        this.probeTimer = null;
      }
      if (typeof event.data === 'string') this.onMessage(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.closed(event.code);
    };
    // Errors are always followed by a close event, which does the work.
    socket.onerror = () => {};
  }

  closed(code) {
    this.clearTimers();
    if (this.halted) return;
    if (!shouldReconnect(code)) {
      this.halt(closeMessage(code));
      return;
    }
    const delay = backoffDelay(this.attempt, { random: this.random });
    this.attempt++;
    this.waiting = true;
    this.onState({ state: 'waiting', delay, message: closeMessage(code) });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  clearTimers() {
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    if (this.connectTimer !== null) this.timers.clearTimeout(this.connectTimer);
    if (this.probeTimer !== null) this.timers.clearTimeout(this.probeTimer);
    this.retryTimer = null;
    this.connectTimer = null;
    this.probeTimer = null;
  }
}
