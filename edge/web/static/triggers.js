// Triggers: regular expressions run over each line the game prints, which
// highlight the match, gag (hide) the line or notify the player.
//
// Triggers see the game's text a frame at a time, line by line: a line
// split over two output frames is matched as two pieces (the worker sends
// whole lines in one frame unless a line is huge). Highlighting works by
// wrapping the match in SGR sequences, so the terminal needs no hook: the
// text stays text and is never parsed as markup.

export const MAX_TRIGGERS = 100;
export const ACTIONS = ['highlight', 'gag', 'notify'];
const COLOURS = { red: 41, green: 42, yellow: 43, blue: 44, magenta: 45, cyan: 46, white: 47 };

/** Keeps the well-formed triggers: [{pattern, action, colour?}]. */
export function sanitizeTriggers(raw) {
  if (!Array.isArray(raw)) return [];
  const out = [];
  for (const t of raw) {
    if (!t || typeof t.pattern !== 'string' || t.pattern === '' || t.pattern.length > 200) continue;
    if (!ACTIONS.includes(t.action)) continue;
    try {
      new RegExp(t.pattern, 'u');
    } catch {
      continue;
    }
    const trig = { pattern: t.pattern, action: t.action };
    if (typeof t.colour === 'string' && COLOURS[t.colour]) trig.colour = t.colour;
    out.push(trig);
    if (out.length >= MAX_TRIGGERS) break;
  }
  return out;
}

// CSI, OSC and two-byte escapes, as in echo.js.
const ESCAPE = /\x1b(?:\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/y;

// The plain text of a raw line and, for each plain character, its index in
// the raw line.
function plainWithMap(raw) {
  let plain = '';
  const map = [];
  for (let i = 0; i < raw.length; ) {
    if (raw[i] === '\x1b') {
      ESCAPE.lastIndex = i;
      const m = ESCAPE.exec(raw);
      if (m) {
        i += m[0].length;
        continue;
      }
    }
    plain += raw[i];
    map.push(i);
    i++;
  }
  map.push(raw.length);
  return { plain, map };
}

export class Triggers {
  constructor(list = []) {
    this.set(list);
  }

  set(list) {
    this.list = sanitizeTriggers(list).map((t) => ({ ...t, re: new RegExp(t.pattern, 'gu') }));
  }

  get size() {
    return this.list.length;
  }

  /**
   * Runs the triggers over a chunk of game text.
   * @returns {{text: string, notify: string[]}} the text to draw (gagged
   *   lines gone, matches highlighted) and the lines that asked to notify.
   */
  apply(text) {
    if (this.list.length === 0) return { text, notify: [] };
    const notify = [];
    const lines = text.split('\n');
    const kept = [];
    for (let n = 0; n < lines.length; n++) {
      const last = n === lines.length - 1;
      let raw = lines[n];
      const { plain, map } = plainWithMap(raw);
      const body = plain.replace(/\r$/, '');
      let gag = false;
      const spans = [];
      for (const t of this.list) {
        t.re.lastIndex = 0;
        if (t.action === 'highlight') {
          for (const m of body.matchAll(t.re)) {
            if (m[0] === '') break;
            spans.push([m.index, m.index + m[0].length, t.colour]);
            if (spans.length > 50) break;
          }
        } else if (t.re.test(body)) {
          if (t.action === 'gag') gag = true;
          else notify.push(body.trim());
        }
      }
      if (gag && body !== '') {
        if (last) kept.push(''); // the unfinished line is gone, nothing follows it
        continue;
      }
      // Insert from the end so earlier indices stay valid.
      spans.sort((a, b) => b[0] - a[0]);
      let prevStart = Infinity;
      for (const [s, e, colour] of spans) {
        if (e > prevStart) continue; // overlapping: the later match wins
        const on = colour ? `\x1b[${COLOURS[colour]}m` : '\x1b[7m';
        const off = colour ? '\x1b[49m' : '\x1b[27m';
        raw = raw.slice(0, map[e]) + off + raw.slice(map[e]);
        raw = raw.slice(0, map[s]) + on + raw.slice(map[s]);
        prevStart = s;
      }
      kept.push(raw);
    }
    return { text: kept.join('\n'), notify };
  }
}

/** Parses the trigger editor's text: one "action /pattern/ [colour]" a line. */
export function parseTriggerText(text) {
  const triggers = [];
  const errors = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const m = /^(highlight|gag|notify)\s+\/(.+)\/(?:\s+(\w+))?$/.exec(l);
    if (!m) {
      errors.push(`line ${i + 1}: write a trigger as highlight|gag|notify /pattern/ [colour]`);
      return;
    }
    try {
      new RegExp(m[2], 'u');
    } catch (err) {
      errors.push(`line ${i + 1}: ${err.message}`);
      return;
    }
    if (m[3] && !COLOURS[m[3]]) {
      errors.push(`line ${i + 1}: colours are ${Object.keys(COLOURS).join(', ')}`);
      return;
    }
    triggers.push({ action: m[1], pattern: m[2], ...(m[3] ? { colour: m[3] } : {}) });
  });
  return { triggers: sanitizeTriggers(triggers), errors };
}

export function triggerText(triggers) {
  return triggers.map((t) => `${t.action} /${t.pattern}/${t.colour ? ' ' + t.colour : ''}`).join('\n');
}
