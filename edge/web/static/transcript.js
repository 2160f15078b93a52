// The tail of what the output showed, kept across a page reload.
//
// A reload resumes from the last stream id seen, so the edge sends only what
// came after it: without a copy of its own, the reloaded page would start
// blank. This keeps the last frames that drew the output (up to a size cap),
// saves them to sessionStorage when the page is hidden or unloaded, and
// hands them back on load to be drawn again before the edge's backlog
// arrives. Lines typed while the game echoed are never recorded (the edge
// sends them redacted, with no text).

const DEFAULT_MAX_CHARS = 200000;

// The frame fields worth keeping, by frame type.
const KEPT = {
  output: (f) => (typeof f.text === 'string' ? { type: 'output', text: f.text, prompt: f.prompt === true } : null),
  input: (f) => (f.redacted ? null : { type: 'input', text: typeof f.text === 'string' ? f.text : '' }),
  gap: (f) => ({ type: 'gap', message: typeof f.message === 'string' ? f.message : '' }),
  status: (f) => ({ type: 'status', state: String(f.state), message: typeof f.message === 'string' ? f.message : '' }),
  // Only errors the page writes into the output come here (input_lost).
  error: (f) => ({ type: 'error', code: String(f.code), message: typeof f.message === 'string' ? f.message : '' }),
};

export class Transcript {
  /**
   * @param {Storage|null} storage sessionStorage, or null.
   * @param {string} game the game id: each game keeps its own transcript.
   * @param {{maxChars?: number}} options the size cap, in characters of text.
   */
  constructor(storage, game, { maxChars = DEFAULT_MAX_CHARS } = {}) {
    this.storage = storage;
    this.key = 'trellis.transcript.' + game;
    this.maxChars = maxChars;
    this.frames = [];
    this.chars = 0;
  }

  /** Records a frame if it is one that draws the output. */
  record(frame) {
    const keep = KEPT[frame.type];
    const kept = keep ? keep(frame) : null;
    if (kept === null) return;
    this.frames.push(kept);
    this.chars += size(kept);
    let drop = 0;
    while (this.chars > this.maxChars && drop < this.frames.length) this.chars -= size(this.frames[drop++]);
    if (drop > 0) this.frames.splice(0, drop);
  }

  /** Writes the recorded frames to storage. */
  save() {
    try {
      this.storage?.setItem(this.key, JSON.stringify(this.frames));
    } catch {
      // Over quota: a reload will start blank, and the game goes on.
    }
  }

  /**
   * Reads the frames saved by the previous page view, takes them as the
   * start of this view's record, and returns them for drawing.
   */
  restore() {
    let saved = [];
    try {
      saved = JSON.parse(this.storage?.getItem(this.key) ?? '[]');
    } catch {
      saved = [];
    }
    if (!Array.isArray(saved)) saved = [];
    this.frames = [];
    this.chars = 0;
    for (const f of saved) if (f && typeof f === 'object' && typeof f.type === 'string') this.record(f);
    return this.frames.slice();
  }
}

function size(frame) {
  return 16 + (frame.text?.length ?? 0) + (frame.message?.length ?? 0);
}
