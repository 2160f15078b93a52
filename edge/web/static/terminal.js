// The scrollback: game output rendered as lines of styled spans.
//
// The output element holds one element per line (class "line"); the last one
// is open while the game has not ended it, which is how a prompt without a
// newline shows at once. Text reaches the DOM only through text nodes and
// textContent, never as markup, so a game (or a player on it) cannot inject
// HTML into the page.
//
// Lines past the scrollback cap are removed from the top. Auto-scroll follows
// new output only while the player is at the bottom; once they scroll up to
// read, new output waits below and the "more below" button offers the way
// back.

import { initialState, parseAnsi, styleAttributes, DEFAULT_STYLE } from './ansi.js';

// Within this many pixels of the bottom counts as "at the bottom": sub-pixel
// layout and zoom make exact equality unreliable.
const BOTTOM_SLACK_PX = 4;

export class Terminal {
  /**
   * @param {HTMLElement} output the scrollback element (#output).
   * @param {object} options
   * @param {number} options.scrollback how many lines to keep.
   * @param {boolean} options.boldIsBright see styleAttributes.
   * @param {(below: boolean) => void} [options.onMoreBelow] told when unseen
   *   output starts or stops waiting below the visible part.
   * @param {(callback: () => void) => void} [options.schedule] runs a callback
   *   before the next paint; requestAnimationFrame in the browser.
   */
  constructor(output, { scrollback = 5000, boldIsBright = true, onMoreBelow = () => {}, schedule } = {}) {
    this.output = output;
    this.doc = output.ownerDocument;
    this.scrollback = scrollback;
    this.boldIsBright = boldIsBright;
    this.onMoreBelow = onMoreBelow;
    this.schedule = schedule ?? ((cb) => globalThis.requestAnimationFrame(cb));
    this.ansi = initialState();
    this.line = null; // the open line, or null when the next text starts a new one
    this.lines = output.children.length;
    this.afterPrompt = false;
    this.following = true; // auto-scroll on
    this.moreBelow = false;
    this.framePending = false;
    this.grew = false;
    this.lastTop = 0;
    output.addEventListener('scroll', () => this.scrolled());
  }

  /**
   * Renders a chunk of game output. prompt marks a chunk the game flagged as
   * ending in a prompt (telnet GA or EOR): output arriving after it starts on
   * a new line, so a prompt is never glued to the text that follows it.
   */
  write(text, { prompt = false } = {}) {
    const { state, segments } = parseAnsi(this.ansi, text);
    this.ansi = state;
    if (segments.length === 0) return;
    if (this.afterPrompt && this.line !== null && !segments[0].text.startsWith('\n')) this.endLine();
    this.afterPrompt = prompt;
    for (const { text: run, style } of segments) {
      const pieces = run.split('\n');
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0) this.newline();
        if (pieces[i] !== '') this.append(this.styledNode(pieces[i], style));
      }
    }
    this.changed();
  }

  /**
   * Renders a line the player typed, as the edge echoes it from the
   * transcript. It finishes the open line (normally the prompt it answers),
   * as a terminal with local echo would show it.
   */
  writeInput(text) {
    const span = this.doc.createElement('span');
    span.className = 'input-echo';
    span.textContent = text;
    this.append(span);
    this.endLine();
    this.afterPrompt = false;
    this.changed();
  }

  /** Renders a line of the client's own (a gap in the output, a notice) in its own style. */
  writeNotice(text, kind = 'notice') {
    this.endLine();
    const line = this.newLineElement();
    line.classList.add('notice', 'notice-' + kind);
    line.textContent = text;
    this.afterPrompt = false;
    this.changed();
  }

  /** Changes how many lines are kept, trimming at once if needed. */
  setScrollback(lines) {
    this.scrollback = lines;
    this.changed();
  }

  setBoldIsBright(on) {
    this.boldIsBright = on;
  }

  /** Scrolls to the newest output and resumes following it. */
  jumpToBottom() {
    this.following = true;
    this.output.scrollTop = this.output.scrollHeight;
    this.lastTop = this.output.scrollTop;
    this.setMoreBelow(false);
  }

  /** Scrolls by a page (direction -1 up, +1 down), as PageUp/PageDown would. */
  page(direction) {
    const step = Math.max(1, this.output.clientHeight - 2 * this.lineHeight());
    this.output.scrollTop += direction * step;
  }

  // Internals.

  styledNode(text, style) {
    if (style === DEFAULT_STYLE) return this.doc.createTextNode(text);
    const { classes, color, background } = attributesOf(style, this.boldIsBright);
    if (classes.length === 0 && color === null && background === null) return this.doc.createTextNode(text);
    const span = this.doc.createElement('span');
    if (classes.length) span.className = classes.join(' ');
    // CSSOM property writes, not a style attribute: allowed under a strict CSP.
    if (color !== null) span.style.color = color;
    if (background !== null) span.style.backgroundColor = background;
    span.textContent = text;
    return span;
  }

  append(node) {
    if (this.line === null) this.line = this.newLineElement();
    this.line.appendChild(node);
  }

  // A "\n": the open line ends; an empty line is still a line.
  newline() {
    if (this.line === null) this.newLineElement();
    this.line = null;
  }

  endLine() {
    this.line = null;
  }

  newLineElement() {
    const line = this.doc.createElement('div');
    line.className = 'line';
    this.output.appendChild(line);
    this.lines++;
    // Trimming waits for the next frame (see frame), unless a flood inside
    // one frame runs far past the cap: memory comes before scroll position.
    if (this.lines > 2 * this.scrollback) this.trim(false);
    return line;
  }

  // Removes the oldest lines past the cap. When the player is reading back,
  // the view is shifted up by the height removed, so the text under their
  // eyes stays put (the output has overflow-anchor: none; the browser's own
  // scroll anchoring would fight the stick-to-bottom logic).
  trim(keepView = !this.following) {
    const excess = this.lines - this.scrollback;
    if (excess <= 0) return;
    const doomed = [];
    let el = this.output.firstElementChild;
    while (doomed.length < excess && el && el !== this.line) {
      doomed.push(el);
      el = el.nextElementSibling;
    }
    if (doomed.length === 0) return;
    const shift = keepView && el ? el.offsetTop - doomed[0].offsetTop : 0;
    for (const d of doomed) d.remove();
    this.lines -= doomed.length;
    if (shift > 0) this.output.scrollTop -= shift;
  }

  changed() {
    this.grew = true;
    if (this.framePending) return;
    // Trim and scroll once per frame, however many frames arrived in it:
    // layout is the expensive part of a flood.
    this.framePending = true;
    this.schedule(() => this.frame());
  }

  frame() {
    this.framePending = false;
    this.trim();
    if (this.following) {
      this.output.scrollTop = this.output.scrollHeight;
      this.lastTop = this.output.scrollTop;
    } else if (this.grew) {
      this.setMoreBelow(true);
    }
    this.grew = false;
  }

  // Decides from a scroll event whether to keep following new output. Only
  // a move up is the player's doing: content growing below, or lines trimmed
  // above, never moves the view up on its own.
  scrolled() {
    const o = this.output;
    const top = o.scrollTop;
    if (o.scrollHeight - top - o.clientHeight <= BOTTOM_SLACK_PX) {
      this.following = true;
      this.setMoreBelow(false);
    } else if (top < this.lastTop - 1) {
      this.following = false;
    }
    this.lastTop = top;
  }

  setMoreBelow(below) {
    if (this.moreBelow === below) return;
    this.moreBelow = below;
    this.onMoreBelow(below);
  }

  lineHeight() {
    const first = this.output.firstElementChild;
    return first ? first.getBoundingClientRect().height || 16 : 16;
  }
}

// Style objects are shared and few (see applySgr), so their rendering is
// computed once per style and bold-as-bright setting.
const attributeCache = new WeakMap();

function attributesOf(style, boldIsBright) {
  let pair = attributeCache.get(style);
  if (pair === undefined) {
    pair = [null, null];
    attributeCache.set(style, pair);
  }
  const i = boldIsBright ? 1 : 0;
  if (pair[i] === null) pair[i] = styleAttributes(style, { boldIsBright });
  return pair[i];
}

/**
 * The terminal size, in characters, that fits an output area, for the game's
 * NAWS. Clamped to sizes games cope with.
 */
export function gridSize({ width, height, charWidth, lineHeight }) {
  const cols = charWidth > 0 ? Math.floor(width / charWidth) : 80;
  const rows = lineHeight > 0 ? Math.floor(height / lineHeight) : 24;
  return {
    cols: Math.min(500, Math.max(20, cols)),
    rows: Math.min(200, Math.max(5, rows)),
  };
}
