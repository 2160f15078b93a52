// The browser side of the edge protocol: JSON text frames over one WebSocket.
//
// Pure helpers only (no DOM, no WebSocket): building client frames, checking
// server frames, deciding what a close code means, computing reconnect
// delays, and remembering per-game session state across page reloads.

/** Close codes after which reconnecting would only fail the same way. */
export const FATAL_CLOSE_CODES = new Map([
  [4000, 'The server did not understand this client (protocol error).'],
  [4001, 'Not authorised to play. Open the game again from the portal to sign in.'],
  [4004, 'There is no such game.'],
  [4029, 'Too many sessions are open for this account.'],
]);

/** Reports whether the client should reconnect after the socket closed with code. */
export function shouldReconnect(code) {
  return !FATAL_CLOSE_CODES.has(code);
}

/** A sentence for the status area explaining why the socket closed. */
export function closeMessage(code) {
  if (FATAL_CLOSE_CODES.has(code)) return FATAL_CLOSE_CODES.get(code);
  if (code === 4008) return 'The connection could not keep up with the game.';
  if (code === 1001) return 'The server is restarting.';
  return 'The connection was lost.';
}

/** Error codes after which the line the player typed must stay in the input box. */
const KEEP_LINE_ERRORS = new Set(['no_session', 'rate_limited', 'line_too_long', 'bad_request', 'internal']);

/** Reports whether an error frame means the last typed line was not sent. */
export function errorKeepsLine(code) {
  return KEEP_LINE_ERRORS.has(code);
}

/**
 * Error codes the edge follows by closing the socket for good. bad_request is
 * not among them: the edge keeps the connection up after it (a frame it could
 * not take), and when it does close (4000) the close code says so.
 */
const FATAL_ERRORS = new Set(['unknown_game', 'unauthorized', 'too_many_sessions']);

/** Reports whether an error frame means reconnecting cannot help. */
export function errorIsFatal(code) {
  return FATAL_ERRORS.has(code);
}

/**
 * Error codes that are about the game session rather than the last key press,
 * so they are also written into the output, where they happened, and kept with
 * it. input_lost says lines typed earlier never reached the game (they may be
 * several, none of them the line in the box): the player has to see it in
 * context to know what to type again.
 */
const OUTPUT_ERRORS = new Set(['input_lost']);

/** Reports whether an error frame belongs in the output as well as the notice bar. */
export function errorShownInOutput(code) {
  return OUTPUT_ERRORS.has(code);
}

/**
 * The delay before reconnect attempt number attempt (0 for the first retry):
 * exponential from base to max with "equal jitter", so a fleet of browsers
 * cut off by one edge does not come back in one wave, while no single
 * browser waits less than base or more than max.
 */
export function backoffDelay(attempt, { base = 500, max = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.max(base, Math.round(ceiling / 2 + random() * (ceiling / 2)));
}

// Client frames.

export function helloFrame({ game, token = '', resume = '', cols, rows, screenReader = false }) {
  const f = { type: 'hello', game, token: token || '', resume: resume || '', cols, rows };
  if (screenReader) f.screen_reader = true; // MTTS bit 64 for the game
  return f;
}

export function inputFrame(text) {
  return { type: 'input', text };
}

export function gmcpFrame(pkg, data = {}) {
  return { type: 'gmcp', package: pkg, data };
}

/** One MSDP message to the game: a command (LIST, REPORT...) or a variable. */
export function msdpFrame(name, val) {
  return { type: 'msdp', var: name, val };
}

export function resizeFrame(cols, rows) {
  return { type: 'resize', cols, rows };
}

const SERVER_TYPES = new Set(['welcome', 'output', 'input', 'gmcp', 'msdp', 'echo', 'status', 'gap', 'error']);

/**
 * Parses one server frame. Returns null for anything that is not a JSON
 * object of a known type, so a newer edge can add frame types without
 * breaking older clients still open in a tab.
 */
export function parseServerFrame(data) {
  if (typeof data !== 'string') return null;
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return null;
  }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) return null;
  if (!SERVER_TYPES.has(frame.type)) return null;
  if (frame.id !== undefined && typeof frame.id !== 'string') return null;
  switch (frame.type) {
    case 'output':
      if (typeof frame.text !== 'string') return null;
      break;
    case 'input':
      if (frame.text !== undefined && typeof frame.text !== 'string') return null;
      break;
    case 'gmcp':
      if (typeof frame.package !== 'string') return null;
      break;
    case 'msdp':
      if (typeof frame.var !== 'string') return null;
      break;
  }
  return frame;
}

/**
 * Compares two Redis stream ids ("<ms>-<seq>"). Returns <0, 0 or >0. An
 * empty id is older than every other.
 */
export function compareStreamIds(a, b) {
  if (a === b) return 0;
  if (!a) return -1;
  if (!b) return 1;
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  if (am.length !== bm.length) return am.length - bm.length;
  if (am !== bm) return am < bm ? -1 : 1;
  if (as.length !== bs.length) return as.length - bs.length;
  return as < bs ? -1 : as > bs ? 1 : 0;
}

/**
 * What one tab remembers about its game session across a reload, kept in
 * sessionStorage (per tab, per game): the last stream id seen (the resume
 * point), the last game-connection state, and whether the game is echoing.
 * The last two matter when the reload resumes after the frame that set them,
 * so the backlog will not repeat it.
 */
export class SessionMemory {
  constructor(storage, game) {
    this.storage = storage;
    this.key = 'trellis.session.' + game;
    this.value = { resume: '', state: '', echo: false };
    try {
      const saved = storage && JSON.parse(storage.getItem(this.key) || 'null');
      if (saved && typeof saved === 'object') {
        if (typeof saved.resume === 'string') this.value.resume = saved.resume;
        if (typeof saved.state === 'string') this.value.state = saved.state;
        if (typeof saved.echo === 'boolean') this.value.echo = saved.echo;
      }
    } catch {
      // Unreadable memory: start fresh, the edge sends the whole backlog.
    }
  }

  get resume() {
    return this.value.resume;
  }

  get state() {
    return this.value.state;
  }

  get echo() {
    return this.value.echo;
  }

  /** Records a stream id; ids older than the one kept are ignored. */
  see(id) {
    if (!id || compareStreamIds(id, this.value.resume) <= 0) return;
    this.value.resume = id;
    this.save();
  }

  /**
   * Forgets the resume point, when the edge says (a gap with reset: true)
   * that it is not a position of the stream: kept, it would hide every id
   * older than it and come back with each reconnect.
   */
  forgetResume() {
    this.value.resume = '';
    this.save();
  }

  setState(state) {
    this.value.state = state;
    this.save();
  }

  setEcho(echo) {
    this.value.echo = echo;
    this.save();
  }

  save() {
    try {
      this.storage?.setItem(this.key, JSON.stringify(this.value));
    } catch {
      // Quota or privacy mode: the resume point lives only in memory.
    }
  }
}

const TOKEN_KEY = 'trellis.token';

/**
 * Finds the player's token: a ?token= in the page address wins (and is
 * remembered in sessionStorage, so reloads of the cleaned-up address still
 * carry it), else the remembered one, else '' (guest mode: the edge's
 * HTTP-only cookie identifies the player and there is nothing for JS to do).
 *
 * @returns {{token: string, cleanSearch: string|null}} cleanSearch is the
 *   query string without the token when the address should be rewritten, so
 *   the token does not linger in the address bar, bookmarks or screenshots.
 */
export function resolveToken(search, storage) {
  const params = new URLSearchParams(search);
  const fromURL = params.get('token');
  if (fromURL !== null) {
    try {
      storage?.setItem(TOKEN_KEY, fromURL);
    } catch {
      // Without storage the token still works for this page view.
    }
    params.delete('token');
    const rest = params.toString();
    return { token: fromURL, cleanSearch: rest ? '?' + rest : '' };
  }
  let saved = null;
  try {
    saved = storage?.getItem(TOKEN_KEY) ?? null;
  } catch {
    saved = null;
  }
  return { token: saved || '', cleanSearch: null };
}

/**
 * The game id of a play page: the path segment after /play/, or ?game= as a
 * fallback for serving the page some other way. Returns '' when neither.
 */
export function gameFromLocation(pathname, search) {
  const m = /^\/play\/([^/]+)\/?$/.exec(pathname);
  if (m) {
    try {
      return decodeURIComponent(m[1]);
    } catch {
      return '';
    }
  }
  return new URLSearchParams(search).get('game') || '';
}

/** The WebSocket address of the edge serving this page. */
export function socketURL(location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return scheme + '//' + location.host + '/ws';
}
