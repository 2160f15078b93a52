// ANSI parsing for game output.
//
// Games send text coloured with ECMA-48 "Select Graphic Rendition" sequences
// (ESC [ ... m), edit the line they are on (a bare CR, ESC [ K erase in line,
// ESC [ G cursor to a column), mark links (OSC 8, and Trellis's own OSC 7701
// command links: see docs/PROTOCOL.md) and, now and then, send sequences a
// MUD client has no use for: cursor moves up and down, screen clears, device
// status queries, window-title OSC strings. This module turns the first kinds
// into styled text and line-editing operations and strips the rest. It is a
// pure module: no DOM, no globals, so the whole grammar is unit-tested under
// Node.
//
// A scrollback is not a screen: what scrolled up was read and may have been
// copied, so nothing moves the cursor off the current line. Cursor up/down
// and positioning (CSI A B E F H f d), screen erases (CSI J) and scroll
// regions are dropped; the line being written is the only one that can be
// edited.
//
// The parser is a streaming state machine. Output reaches the browser in
// chunks cut wherever the worker batched them, so an escape sequence can be
// split across two messages; the state returned by parseAnsi carries the
// half-read sequence into the next call. Nothing of the text itself is held
// back: only escape bytes wait for their end.

/** The rendition in force when nothing has been set: the theme's colours. */
export const DEFAULT_STYLE = Object.freeze({
  fg: null, // null: theme default; 0..255: palette index; '#rrggbb': true colour
  bg: null,
  bold: false,
  dim: false,
  italic: false,
  underline: false,
  reverse: false,
  strike: false,
  conceal: false,
});

// Modes of the escape-sequence state machine.
const TEXT = 0; // plain text
const ESC = 1; // after ESC
const CSI = 2; // after ESC [ : collecting parameter and intermediate bytes
const STRING = 3; // inside OSC / DCS / SOS / PM / APC, waiting for BEL or ST
const STRING_ESC = 4; // ESC seen inside a string: ST if a backslash follows
const NF = 5; // ESC followed by intermediate bytes (charset designation etc.)

// A CSI longer than this is not something any terminal would act on; the
// parser stops recording it (but still consumes it to its final byte) so a
// hostile stream cannot grow the state without bound.
const MAX_CSI = 64;
// An OSC or DCS string that runs this long without a terminator is almost
// certainly a game that forgot the BEL. Give up on it so the game's text after
// it is not swallowed for the rest of the session.
const MAX_STRING = 4096;

// Every C0 and C1 control character except TAB and LF: ESC starts a sequence,
// CR returns to column 0 (the worker keeps a bare CR as "\r"), the rest (BEL,
// BS, NUL, ...) are dropped. "\n" is the only line break the edge sends.
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
const STRING_END = /[\x07\x1b\x9c]/g;
const CSI_END = /[^\x20-\x3f]/g;

/** Returns the parser state to use for the first chunk of a session. */
export function initialState() {
  return Object.freeze({ style: DEFAULT_STYLE, mode: TEXT, csi: '', length: 0, osc: null });
}

/**
 * Parses one chunk of game output.
 *
 * @param {object} state the state returned for the previous chunk (or initialState()).
 * @param {string} chunk text that may contain escape sequences.
 * @returns {{state: object, segments: Array<object>}}
 *   segments, in order, are runs of text with one style ({text, style}; text
 *   keeps its "\n" and "\t" characters; adjacent runs with the same style are
 *   merged) and operations ({op, ...}):
 *     {op: 'cr'}                       bare CR: back to column 0
 *     {op: 'erase', mode: 0|1|2}        ESC [ n K: to the end, to the start (the
 *                                      cursor's column included), the whole line
 *     {op: 'column', column: n}         ESC [ n G: to column n (0-based)
 *     {op: 'link', uri: string|null}    OSC 8 open (an http(s) URI) or close
 *     {op: 'command', command: object|null}  OSC 7701 open (see parseCommandLink) or close
 */
export function parseAnsi(state, chunk) {
  let { style, mode, csi, length, osc } = state;
  const segments = [];
  const emit = (text) => {
    const last = segments[segments.length - 1];
    if (last && last.op === undefined && sameStyle(last.style, style)) last.text += text;
    else segments.push({ text, style });
  };

  const n = chunk.length;
  let i = 0;
  while (i < n) {
    switch (mode) {
      case TEXT: {
        CONTROL.lastIndex = i;
        const m = CONTROL.exec(chunk);
        const end = m ? m.index : n;
        if (end > i) emit(chunk.slice(i, end));
        if (!m) {
          i = n;
          break;
        }
        i = end + 1;
        const c = chunk.charCodeAt(end);
        if (c === 0x1b) mode = ESC;
        else if (c === 0x0d) segments.push(CR_OP);
        break;
      }
      case ESC: {
        const c = chunk.charCodeAt(i);
        if (c === 0x5b) {
          // [
          mode = CSI;
          csi = '';
          length = 0;
          i++;
        } else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) {
          // ] P X ^ _ : OSC, DCS, SOS, PM, APC. Only an OSC's text is kept.
          mode = STRING;
          length = 0;
          osc = c === 0x5d ? '' : null;
          i++;
        } else if (c >= 0x20 && c <= 0x2f) {
          mode = NF;
          i++;
        } else if (c === 0x1b) {
          i++; // ESC ESC: the first one was lone; stay in ESC
        } else if (c >= 0x30 && c <= 0x7e) {
          mode = TEXT; // a two-character escape (ESC 7, ESC M, ESC c ...)
          i++;
        } else {
          mode = TEXT; // a lone ESC before text or a control: keep what follows
        }
        break;
      }
      case CSI: {
        // Parameter and intermediate bytes run up to the first other byte.
        CSI_END.lastIndex = i;
        const m = CSI_END.exec(chunk);
        const end = m ? m.index : n;
        if (end > i) {
          if (length + (end - i) <= MAX_CSI) csi += chunk.slice(i, end);
          length += end - i;
        }
        if (!m) {
          i = n;
          break;
        }
        const c = chunk.charCodeAt(end);
        if (c >= 0x40 && c <= 0x7e) {
          if (length <= MAX_CSI) {
            if (c === 0x6d) style = applySgr(style, csi);
            else if (c === 0x4b || c === 0x47) {
              const op = lineEdit(c, csi);
              if (op) segments.push(op);
            }
          }
          i = end + 1;
        } else {
          // Not part of any CSI: a malformed sequence. Drop it and let the
          // text mode have this character, so no game text is lost.
          i = end;
        }
        mode = TEXT;
        break;
      }
      case STRING: {
        STRING_END.lastIndex = i;
        const m = STRING_END.exec(chunk);
        const end = m ? m.index : n;
        if (osc !== null) {
          if (length + (end - i) <= MAX_STRING) osc += chunk.slice(i, end);
          else osc = null; // too long to be one we act on: dropped
        }
        length += end - i;
        if (!m) {
          i = n;
          if (length > MAX_STRING) mode = TEXT;
          break;
        }
        i = end + 1;
        const c = chunk.charCodeAt(end);
        if (c === 0x1b) {
          mode = STRING_ESC;
        } else {
          mode = TEXT;
          oscDone(segments, osc); // BEL, or the C1 string terminator
          osc = null;
        }
        break;
      }
      case STRING_ESC: {
        if (chunk.charCodeAt(i) === 0x5c) {
          mode = TEXT; // ESC \ : string terminator
          oscDone(segments, osc);
          osc = null;
          i++;
        } else {
          osc = null;
          mode = ESC; // ESC inside a string cancels it and starts a new sequence
        }
        break;
      }
      case NF: {
        const c = chunk.charCodeAt(i);
        if (c >= 0x20 && c <= 0x2f) {
          i++;
        } else if (c >= 0x30 && c <= 0x7e) {
          mode = TEXT;
          i++;
        } else {
          mode = TEXT;
        }
        break;
      }
    }
  }
  if (mode !== CSI) csi = '';
  if (mode !== STRING && mode !== STRING_ESC) osc = null;
  return { state: Object.freeze({ style, mode, csi, length, osc }), segments };
}

const CR_OP = Object.freeze({ op: 'cr' });

// Turns ESC [ params K|G into an operation, or null for private or malformed
// forms (ESC [ ? K is DECSEL, not an erase).
function lineEdit(final, params) {
  if (!/^\d*$/.test(params)) return null;
  const n = params === '' ? 0 : Number.parseInt(params, 10);
  if (final === 0x4b) return n <= 2 ? { op: 'erase', mode: n } : null;
  return { op: 'column', column: Math.min(Math.max(n, 1), 1000) - 1 };
}

// Acts on a finished OSC string: 8 (hyperlink) and 7701 (command link).
// Every other OSC (window titles, palette changes) is dropped.
function oscDone(segments, osc) {
  if (osc === null) return;
  if (osc.startsWith('8;')) {
    const rest = osc.slice(2);
    const semi = rest.indexOf(';');
    if (semi < 0) return;
    segments.push({ op: 'link', uri: safeLink(rest.slice(semi + 1)) });
  } else if (osc.startsWith('7701;')) {
    const body = osc.slice(5);
    segments.push({ op: 'command', command: body === '' ? null : parseCommandLink(body) });
  }
}

/**
 * Returns the URI as a link target if it is an absolute http: or https: URL,
 * else null: nothing else (javascript:, data:, file:, relative) may become a
 * link.
 */
export function safeLink(uri) {
  if (typeof uri !== 'string' || uri === '' || uri.length > 2048 || /[\x00-\x20\x7f]/.test(uri)) return null;
  if (!/^https?:\/\//i.test(uri)) return null;
  try {
    const u = new URL(uri);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return u.href;
  } catch {
    return null;
  }
}

const MAX_COMMANDS = 8;
const MAX_COMMAND_BYTES = 256;
const utf8 = new TextEncoder();

/**
 * Parses the JSON of an OSC 7701 command link: {"cmds": [...], "hints": [...],
 * "prompt": bool}. Returns {cmds, hints, prompt} with hints null when absent,
 * or null when anything is off (then the text renders plain, not as a link).
 */
export function parseCommandLink(json) {
  let v;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const { cmds, hints = null, prompt = false } = v;
  const ok = (s) =>
    typeof s === 'string' && utf8.encode(s).length <= MAX_COMMAND_BYTES && !/[\x00-\x1f\x7f-\x9f]/.test(s);
  if (!Array.isArray(cmds) || cmds.length < 1 || cmds.length > MAX_COMMANDS || !cmds.every(ok)) return null;
  if (hints !== null && (!Array.isArray(hints) || hints.length !== cmds.length || !hints.every(ok))) return null;
  if (typeof prompt !== 'boolean') return null;
  return Object.freeze({ cmds: Object.freeze(cmds.slice()), hints: hints && Object.freeze(hints.slice()), prompt });
}

/** Reports whether two styles render the same. */
export function sameStyle(a, b) {
  return (
    a === b ||
    (a.fg === b.fg &&
      a.bg === b.bg &&
      a.bold === b.bold &&
      a.dim === b.dim &&
      a.italic === b.italic &&
      a.underline === b.underline &&
      a.reverse === b.reverse &&
      a.strike === b.strike &&
      a.conceal === b.conceal)
  );
}

/**
 * Applies the parameters of one SGR sequence (the text between "ESC [" and
 * "m") to a style and returns the new style. Unknown codes are ignored, as a
 * terminal would. Both the common semicolon form of extended colours
 * (38;5;n and 38;2;r;g;b) and the ITU T.416 colon form (38:5:n, 38:2::r:g:b,
 * 38:2:r:g:b) are understood.
 */
export function applySgr(style, params) {
  // Games repeat a handful of sequences from a handful of styles, so results
  // are cached per style object. Besides speed (parsing dominates a flood of
  // colourful output), this keeps the set of style objects small and shared.
  let cache = sgrCache.get(style);
  if (cache === undefined) {
    cache = new Map();
    sgrCache.set(style, cache);
  }
  let next = cache.get(params);
  if (next === undefined) {
    next = computeSgr(style, params);
    if (cache.size < SGR_CACHE_SIZE) cache.set(params, next);
  }
  return next;
}

// Cached results of applySgr: style -> (params -> style). A WeakMap, so the
// entries of styles no longer in use go with them; each style's map is capped.
const sgrCache = new WeakMap();
const SGR_CACHE_SIZE = 64;

function computeSgr(style, params) {
  if (/[<=>?]/.test(params)) return style; // private-mode sequences are not SGR
  const parts = params.split(';');
  const s = { ...style };
  for (let i = 0; i < parts.length; i++) {
    const sub = parts[i].split(':');
    const code = number(sub[0], 0);
    if (code === 38 || code === 48 || code === 58) {
      let colour;
      if (sub.length > 1) {
        colour = extendedColour(sub.slice(1), true);
      } else {
        const taken = extendedColourLength(parts, i + 1);
        colour = extendedColour(parts.slice(i + 1, i + 1 + taken), false);
        i += taken;
      }
      if (colour === undefined) continue;
      if (code === 38) s.fg = colour;
      else if (code === 48) s.bg = colour;
      // 58 (underline colour) is consumed but not rendered.
      continue;
    }
    switch (code) {
      case 0:
        Object.assign(s, DEFAULT_STYLE);
        break;
      case 1:
        s.bold = true;
        break;
      case 2:
        s.dim = true;
        break;
      case 3:
        s.italic = true;
        break;
      case 4:
        // 4:0 is "no underline"; 4:1..4:5 are underline styles.
        s.underline = sub.length < 2 || number(sub[1], 1) !== 0;
        break;
      case 7:
        s.reverse = true;
        break;
      case 8:
        s.conceal = true;
        break;
      case 9:
        s.strike = true;
        break;
      case 21:
        s.underline = true; // double underline
        break;
      case 22:
        s.bold = false;
        s.dim = false;
        break;
      case 23:
        s.italic = false;
        break;
      case 24:
        s.underline = false;
        break;
      case 27:
        s.reverse = false;
        break;
      case 28:
        s.conceal = false;
        break;
      case 29:
        s.strike = false;
        break;
      case 39:
        s.fg = null;
        break;
      case 49:
        s.bg = null;
        break;
      default:
        if (code >= 30 && code <= 37) s.fg = code - 30;
        else if (code >= 40 && code <= 47) s.bg = code - 40;
        else if (code >= 90 && code <= 97) s.fg = code - 90 + 8;
        else if (code >= 100 && code <= 107) s.bg = code - 100 + 8;
      // Blink (5, 6, 25), fonts (10-20) and the rest: ignored.
    }
  }
  if (sameStyle(s, style)) return style;
  if (sameStyle(s, DEFAULT_STYLE)) return DEFAULT_STYLE;
  return Object.freeze(s);
}

// How many of the following semicolon parameters an extended colour takes.
function extendedColourLength(parts, at) {
  const kind = number(parts[at], -1);
  if (kind === 5) return Math.min(2, parts.length - at);
  if (kind === 2) return Math.min(4, parts.length - at);
  return Math.min(1, parts.length - at);
}

// Decodes the arguments after 38/48: ["5", n] or ["2", r, g, b]. In the colon
// form, true colour may carry a colour-space id before r, g, b. Returns
// undefined for anything malformed or out of range: the colour is left as it was.
function extendedColour(args, colonForm) {
  const kind = number(args[0], -1);
  if (kind === 5) {
    const n = number(args[1], -1);
    return n >= 0 && n <= 255 ? n : undefined;
  }
  if (kind === 2) {
    let rgb = args.slice(1);
    if (colonForm && rgb.length >= 4) rgb = rgb.slice(1); // drop the colour-space id
    if (rgb.length < 3) return undefined;
    const [r, g, b] = rgb.map((v) => number(v, 0));
    if (r > 255 || g > 255 || b > 255) return undefined;
    return '#' + hex(r) + hex(g) + hex(b);
  }
  return undefined;
}

function number(text, fallback) {
  if (text === undefined) return fallback;
  if (text === '') return 0;
  const n = Number.parseInt(text, 10);
  return Number.isNaN(n) ? fallback : n;
}

function hex(n) {
  return n.toString(16).padStart(2, '0');
}

const CUBE = [0, 95, 135, 175, 215, 255];

/**
 * Returns the xterm colour for a 256-colour palette index from 16 up, as
 * "#rrggbb": 16..231 are a 6x6x6 cube, 232..255 a grey ramp. Indexes 0..15
 * are the theme's own colours and are rendered through CSS classes instead.
 */
export function paletteColour(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return '#' + hex(v) + hex(v) + hex(v);
  }
  const i = n - 16;
  return '#' + hex(CUBE[Math.floor(i / 36)]) + hex(CUBE[Math.floor(i / 6) % 6]) + hex(CUBE[i % 6]);
}

/**
 * Turns a style into what the renderer puts on a span: CSS classes for the
 * attributes and the 16 theme colours (fg-0..fg-15, bg-0..bg-15), inline
 * colours for 256-colour and true-colour values.
 *
 * With boldIsBright, bold text in one of the 8 basic colours is drawn in its
 * bright variant, as most MUD clients and old terminals do.
 *
 * Reverse video swaps foreground and background; a default colour swapped
 * into the other slot becomes the classes fg-rev / bg-rev, which the style
 * sheet paints with the theme's background and foreground.
 *
 * @returns {{classes: string[], color: string|null, background: string|null}}
 */
export function styleAttributes(style, { boldIsBright = true } = {}) {
  const classes = [];
  let fg = style.fg;
  let bg = style.bg;
  if (boldIsBright && style.bold && typeof fg === 'number' && fg < 8) fg += 8;
  let fgClassDefault = null;
  let bgClassDefault = null;
  if (style.reverse) {
    [fg, bg] = [bg, fg];
    if (fg === null) fgClassDefault = 'fg-rev';
    if (bg === null) bgClassDefault = 'bg-rev';
  }
  let color = null;
  let background = null;
  if (typeof fg === 'number') {
    if (fg < 16) classes.push('fg-' + fg);
    else color = paletteColour(fg);
  } else if (typeof fg === 'string') {
    color = fg;
  } else if (fgClassDefault) {
    classes.push(fgClassDefault);
  }
  if (typeof bg === 'number') {
    if (bg < 16) classes.push('bg-' + bg);
    else background = paletteColour(bg);
  } else if (typeof bg === 'string') {
    background = bg;
  } else if (bgClassDefault) {
    classes.push(bgClassDefault);
  }
  if (style.bold) classes.push('bold');
  if (style.dim) classes.push('dim');
  if (style.italic) classes.push('italic');
  if (style.underline) classes.push('underline');
  if (style.strike) classes.push('strike');
  if (style.conceal) classes.push('conceal');
  return { classes, color, background };
}

/** Returns the text with every escape sequence and control character removed. */
export function stripAnsi(text) {
  return parseAnsi(initialState(), text)
    .segments.map((s) => s.text ?? '')
    .join('');
}
