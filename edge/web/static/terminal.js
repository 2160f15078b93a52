// The scrollback: game output rendered as lines of styled spans.
//
// The output element holds one element per line (class "line"); the last one
// is open while the game has not ended it, which is how a prompt without a
// newline shows at once. Text reaches the DOM only through text nodes and
// textContent, never as markup, so a game (or a player on it) cannot inject
// HTML into the page.
//
// The open line is kept as runs of text ({text, style, url, command}) with a
// cursor column, so the line editing games do (a bare CR to redraw a
// progress bar or a prompt, ESC [ K / ESC [ 2K, ESC [ G) overwrites it as a
// terminal would. Finished lines are never touched again: a scrollback is not
// a screen (see ansi.js for what is dropped). Appending to the open line only
// appends nodes; its nodes are rebuilt only when the game edited what was
// already drawn, so a screen reader following the log (aria-live) hears new
// text, not repaints.
//
// Links: http(s) URLs in plain text, OSC 8 hyperlinks and OSC 7701 command
// links (the worker's MXP <send>; docs/PROTOCOL.md). Every link closes at the
// end of its line. Web links open in a new tab with rel="noopener
// noreferrer"; command links are buttons that hand their command to
// onCommand, or open a small menu when there are several.
//
// Lines past the scrollback cap are removed from the top. Auto-scroll follows
// new output only while the player is at the bottom; once they scroll up to
// read, new output waits below, the "more below" button offers the way back,
// and the live pane (if given) shows the newest lines under the scrolled-back
// view, so the game is not lost from sight while reading.

import { initialState, parseAnsi, styleAttributes, DEFAULT_STYLE } from './ansi.js';

// Within this many pixels of the bottom counts as "at the bottom": sub-pixel
// layout and zoom make exact equality unreliable.
const BOTTOM_SLACK_PX = 4;

// How many of the newest lines the live pane shows while scrolled back.
const LIVE_LINES = 6;

// A column past this is padding nobody wants: ESC [ 9999 G is clamped.
const MAX_COLUMN = 1000;

export class Terminal {
  /**
   * @param {HTMLElement} output the scrollback element (#output).
   * @param {object} options
   * @param {number} options.scrollback how many lines to keep.
   * @param {boolean} options.boldIsBright see styleAttributes.
   * @param {(below: boolean) => void} [options.onMoreBelow] told when unseen
   *   output starts or stops waiting below the visible part.
   * @param {(command: string, how: {prompt: boolean}) => void} [options.onCommand]
   *   a command link was chosen: send the command as if typed, or with
   *   prompt, put it in the input box.
   * @param {HTMLElement} [options.live] the live pane: filled with copies of
   *   the newest lines and shown while the player reads back.
   * @param {(callback: () => void) => void} [options.schedule] runs a callback
   *   before the next paint; requestAnimationFrame in the browser.
   */
  constructor(
    output,
    { scrollback = 5000, boldIsBright = true, onMoreBelow = () => {}, onCommand = () => {}, live = null, schedule } = {},
  ) {
    this.output = output;
    this.doc = output.ownerDocument;
    this.scrollback = scrollback;
    this.boldIsBright = boldIsBright;
    this.onMoreBelow = onMoreBelow;
    this.onCommand = onCommand;
    this.live = live;
    this.schedule = schedule ?? ((cb) => globalThis.requestAnimationFrame(cb));
    this.ansi = initialState();
    this.line = null; // the open line's element, or null when the next text starts a new one
    this.runs = []; // the open line's content
    this.len = 0; // its length, in UTF-16 code units
    this.column = 0; // the cursor, in UTF-16 code units from the line's start
    this.drawn = 0; // how much of the open line (code units) is in the DOM already
    this.edited = false; // something already drawn changed: the line is rebuilt
    this.url = null; // the OSC 8 link open, if any
    this.command = null; // the OSC 7701 command link open, if any
    this.lines = output.children.length;
    this.afterPrompt = false;
    this.following = true; // auto-scroll on
    this.moreBelow = false;
    this.framePending = false;
    this.grew = false;
    this.lastTop = 0;
    this.menu = null;
    output.addEventListener('scroll', () => this.scrolled());
  }

  /**
   * Renders a chunk of game output. prompt marks a chunk the game flagged as
   * ending in a prompt (telnet GA or EOR): output arriving after it starts on
   * a new line, so a prompt is never glued to the text that follows it, unless
   * it edits the prompt's line first (CR, ESC [ G, ESC [ K: the game is
   * wiping its prompt to print over it).
   */
  write(text, { prompt = false } = {}) {
    const { state, segments } = parseAnsi(this.ansi, text);
    this.ansi = state;
    if (segments.length === 0) return;
    if (this.afterPrompt && this.line !== null) {
      const first = segments.find((s) => s.op === undefined || s.op === 'cr' || s.op === 'erase' || s.op === 'column');
      if (first && first.op === undefined && !first.text.startsWith('\n')) this.endLine();
    }
    this.afterPrompt = prompt;
    for (const seg of segments) {
      switch (seg.op) {
        case undefined: {
          const pieces = seg.text.split('\n');
          for (let i = 0; i < pieces.length; i++) {
            if (i > 0) this.newline();
            if (pieces[i] !== '') this.put(pieces[i], seg.style);
          }
          break;
        }
        case 'cr':
          this.column = 0;
          break;
        case 'column':
          this.column = Math.min(seg.column, MAX_COLUMN);
          break;
        case 'erase':
          this.erase(seg.mode);
          break;
        case 'link':
          this.url = seg.uri;
          break;
        case 'command':
          this.command = seg.command;
          break;
      }
    }
    this.draw();
    this.changed();
  }

  /**
   * Renders a line the player typed, as the edge echoes it from the
   * transcript. It finishes the open line (normally the prompt it answers),
   * as a terminal with local echo would show it.
   */
  writeInput(text) {
    this.draw();
    const span = this.doc.createElement('span');
    span.className = 'input-echo';
    span.textContent = text;
    this.ensureLine().appendChild(span);
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
    this.showLive(false);
  }

  /** Scrolls by a page (direction -1 up, +1 down), as PageUp/PageDown would. */
  page(direction) {
    const step = Math.max(1, this.output.clientHeight - 2 * this.lineHeight());
    this.output.scrollTop += direction * step;
  }

  // ---- The open line ----

  // The open line's length, kept as runs change: a line of many styles must
  // not cost a walk of its runs per piece of text.
  length() {
    return this.len;
  }

  // Writes text at the cursor: appended at the end, or over what is there.
  put(text, style) {
    this.ensureLine();
    const run = { text, style, url: this.url, command: this.command };
    const len = this.length();
    if (this.column === len) {
      const last = this.runs[this.runs.length - 1];
      if (last && sameRun(last, run)) last.text += text;
      else this.runs.push(run);
    } else if (this.column > len) {
      this.runs.push({ text: ' '.repeat(this.column - len), style: DEFAULT_STYLE, url: null, command: null }, run);
    } else {
      const end = this.column + text.length;
      this.runs = [...sliceRuns(this.runs, 0, this.column), run, ...sliceRuns(this.runs, end, Math.max(end, len))];
      if (this.column < this.drawn) this.edited = true;
    }
    this.column += text.length;
    this.len = Math.max(len, this.column);
  }

  // ESC [ n K. Erasing to the start blanks the cursor's column too, as ECMA-48 says.
  erase(mode) {
    const len = this.length();
    let from = 0;
    let to = len;
    if (mode === 0) from = Math.min(this.column, len);
    else if (mode === 1) to = Math.min(this.column + 1, len);
    if (from >= to) return;
    const blank = mode === 1 ? [{ text: ' '.repeat(to), style: DEFAULT_STYLE, url: null, command: null }] : [];
    this.runs = [...sliceRuns(this.runs, 0, from), ...blank, ...sliceRuns(this.runs, to, len)];
    if (mode !== 1) this.len = from;
    if (from < this.drawn) this.edited = true;
    if (this.line === null && this.runs.length > 0) this.ensureLine();
  }

  // Brings the open line's DOM up to date with its runs.
  draw() {
    if (this.line === null) return;
    const len = this.length();
    if (!this.edited && this.drawn > 0 && urlAcross(this.runs, this.drawn)) this.edited = true;
    if (this.edited) {
      this.line.replaceChildren(...this.nodes(this.runs));
    } else if (len > this.drawn) {
      this.line.append(...this.nodes(sliceRuns(this.runs, this.drawn, len)));
    }
    this.drawn = len;
    this.edited = false;
  }

  ensureLine() {
    if (this.line === null) {
      this.line = this.newLineElement();
      this.runs = [];
      this.len = 0;
      this.drawn = 0;
      this.edited = false;
    }
    return this.line;
  }

  // A "\n": the open line ends (its links with it); an empty line is still a line.
  newline() {
    this.ensureLine();
    this.endLine();
  }

  endLine() {
    this.draw();
    this.line = null;
    this.runs = [];
    this.len = 0;
    this.column = 0;
    this.drawn = 0;
    this.edited = false;
    this.url = null;
    this.command = null;
  }

  // ---- Rendering runs ----

  // The nodes for a list of runs: runs sharing a link share one element.
  nodes(runs) {
    const out = [];
    for (let i = 0; i < runs.length; ) {
      const { url, command } = runs[i];
      let j = i + 1;
      while (j < runs.length && runs[j].url === url && runs[j].command === command) j++;
      const group = runs.slice(i, j);
      if (command) out.push(this.commandLink(command, group));
      else if (url) out.push(this.webLink(url, group.map((r) => this.styledNode(r.text, r.style))));
      else for (const r of group) out.push(...this.autolinked(r.text, r.style));
      i = j;
    }
    return out;
  }

  // Plain text with its http(s) URLs made links.
  autolinked(text, style) {
    const found = findUrls(text);
    if (found.length === 0) return [this.styledNode(text, style)];
    const out = [];
    let at = 0;
    for (const { start, end, href } of found) {
      if (start > at) out.push(this.styledNode(text.slice(at, start), style));
      const a = this.webLink(href, [this.styledNode(text.slice(start, end), style)]);
      a.classList.add('autolink');
      out.push(a);
      at = end;
    }
    if (at < text.length) out.push(this.styledNode(text.slice(at), style));
    return out;
  }

  webLink(href, children) {
    const a = this.doc.createElement('a');
    a.className = 'link';
    a.setAttribute('href', href);
    a.setAttribute('target', '_blank');
    a.setAttribute('rel', 'noopener noreferrer');
    a.setAttribute('title', href);
    a.append(...children);
    return a;
  }

  commandLink(command, runs) {
    const b = this.doc.createElement('button');
    b.className = 'cmd-link';
    b.setAttribute('type', 'button');
    const labels = command.hints ?? command.cmds;
    if (command.cmds.length > 1) {
      b.setAttribute('aria-haspopup', 'menu');
      b.setAttribute('aria-expanded', 'false');
      b.setAttribute('title', labels.join(' · '));
    } else {
      b.setAttribute('title', labels[0]);
    }
    if (command.prompt) b.dataset.prompt = 'true';
    b.append(...runs.map((r) => this.styledNode(r.text, r.style)));
    b.addEventListener('click', (event) => {
      event?.stopPropagation?.(); // the output's own click handler would take focus away
      if (command.cmds.length === 1) this.onCommand(command.cmds[0], { prompt: command.prompt });
      else this.openMenu(b, command);
    });
    return b;
  }

  // The menu of a command link with several commands: keyboard first
  // (arrows, Home/End, Escape), closed by a choice, Escape, Tab or a click
  // elsewhere.
  openMenu(link, command) {
    this.closeMenu();
    const menu = this.doc.createElement('div');
    menu.className = 'cmd-menu';
    menu.setAttribute('role', 'menu');
    const items = command.cmds.map((cmd, i) => {
      const item = this.doc.createElement('button');
      item.className = 'cmd-menu-item';
      item.setAttribute('type', 'button');
      item.setAttribute('role', 'menuitem');
      item.setAttribute('tabindex', '-1');
      item.textContent = command.hints ? command.hints[i] : cmd;
      if (command.hints) item.setAttribute('title', cmd);
      item.addEventListener('click', (event) => {
        event?.stopPropagation?.();
        this.closeMenu({ refocus: false });
        this.onCommand(cmd, { prompt: command.prompt });
      });
      return item;
    });
    menu.append(...items);
    menu.addEventListener('keydown', (event) => {
      const at = items.indexOf(event.target);
      let next = -1;
      if (event.key === 'ArrowDown') next = (at + 1) % items.length;
      else if (event.key === 'ArrowUp') next = (at - 1 + items.length) % items.length;
      else if (event.key === 'Home') next = 0;
      else if (event.key === 'End') next = items.length - 1;
      else if (event.key === 'Escape') {
        event.preventDefault?.();
        event.stopPropagation?.();
        this.closeMenu();
        return;
      } else if (event.key === 'Tab') {
        this.closeMenu();
        return;
      }
      if (next >= 0) {
        event.preventDefault?.();
        items[next].focus?.();
      }
    });
    const host = this.output.parentNode ?? this.output;
    host.appendChild(menu);
    // Placed under the link, inside the output's box (the host is positioned).
    const box = link.getBoundingClientRect();
    const hostBox = host.getBoundingClientRect();
    menu.style.left = Math.max(0, (box.left ?? 0) - (hostBox.left ?? 0)) + 'px';
    menu.style.top = (box.bottom ?? box.height ?? 0) - (hostBox.top ?? 0) + 'px';
    link.setAttribute('aria-expanded', 'true');
    this.menu = { element: menu, link, items };
    items[0].focus?.();
    if (!this.menuWatch && this.doc.addEventListener) {
      this.menuWatch = true;
      this.doc.addEventListener('pointerdown', (event) => {
        if (this.menu && !this.menu.element.contains(event.target) && event.target !== this.menu.link) this.closeMenu({ refocus: false });
      });
    }
  }

  closeMenu({ refocus = true } = {}) {
    if (!this.menu) return;
    const { element, link } = this.menu;
    this.menu = null;
    element.remove();
    link.setAttribute('aria-expanded', 'false');
    if (refocus) link.focus?.();
  }

  /** The open command menu, or null: for tests and the page's key handling. */
  get openMenuElement() {
    return this.menu?.element ?? null;
  }

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
    } else {
      if (this.grew) this.setMoreBelow(true);
      this.showLive(true);
    }
    this.grew = false;
  }

  // Fills the live pane with copies of the newest lines, or hides it. The
  // copies are inert and hidden from assistive technology: the log itself
  // already announced those lines once.
  showLive(on) {
    const live = this.live;
    if (!live) return;
    if (!on) {
      if (!live.hidden) {
        live.hidden = true;
        live.replaceChildren();
      }
      return;
    }
    const copies = [];
    for (let el = this.output.lastElementChild; el && copies.length < LIVE_LINES; el = el.previousElementSibling) {
      copies.unshift(el.cloneNode(true));
    }
    live.replaceChildren(...copies);
    live.classList.toggle('no-colour', this.output.classList.contains('no-colour'));
    live.hidden = false;
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
      this.showLive(false);
    } else if (top < this.lastTop - 1) {
      this.following = false;
      this.showLive(true);
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

function sameRun(a, b) {
  return a.url === b.url && a.command === b.command && a.style === b.style;
}

// The part of a line's runs between two columns.
function sliceRuns(runs, from, to) {
  const out = [];
  let at = 0;
  for (const r of runs) {
    const end = at + r.text.length;
    if (end > from && at < to) {
      out.push({ ...r, text: r.text.slice(Math.max(0, from - at), Math.min(r.text.length, to - at)) });
    }
    at = end;
    if (at >= to) break;
  }
  return out;
}

// Whether a URL in the plain text of a line touches the column where the
// drawn part ends: then it arrived in two writes and was drawn as two pieces
// (or as a shorter link), and the line is drawn again whole.
function urlAcross(runs, column) {
  const text = runs.map((r) => (r.url || r.command ? '\0'.repeat(r.text.length) : r.text)).join('');
  if (!text.includes('://')) return false;
  return findUrls(text).some(({ start, end }) => start < column && end >= column);
}

// Bare URLs in text: http:// or https:// and what follows up to a space or
// a character that cannot be in one; trailing punctuation is the sentence's,
// and a closing bracket is the URL's only if it opened one.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`\x00-\x1f\x7f]+/gi;
const TRAILING = /[.,;:!?'"]+$/;

/**
 * Finds the http(s) URLs in plain text. Returns [{start, end, href}], href
 * normalised by the URL parser; nothing that does not parse as an absolute
 * http or https URL is returned.
 */
export function findUrls(text) {
  const out = [];
  URL_PATTERN.lastIndex = 0;
  for (let m = URL_PATTERN.exec(text); m !== null; m = URL_PATTERN.exec(text)) {
    let url = m[0].replace(TRAILING, '');
    for (const [open, close] of [
      ['(', ')'],
      ['[', ']'],
      ['{', '}'],
    ]) {
      while (url.endsWith(close) && count(url, close) > count(url, open)) url = url.slice(0, -1).replace(TRAILING, '');
    }
    let href = null;
    try {
      const u = new URL(url);
      if ((u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '') href = u.href;
    } catch {
      href = null;
    }
    if (href !== null) out.push({ start: m.index, end: m.index + url.length, href });
  }
  return out;
}

function count(s, c) {
  let n = 0;
  for (const ch of s) if (ch === c) n++;
  return n;
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
