// Find in the scrollback.
//
// The browser's own find (Ctrl+F) works on the output too, but it cannot
// tell game lines from the page, starts wherever it likes and loses its place
// as lines are trimmed. This search looks only at the output, starts from the
// newest line (in a MUD the newest match is the one wanted), steps to older
// and newer matches, and marks them with the CSS Custom Highlight API: no
// element is added to or changed in the log, so a screen reader following it
// hears nothing, and the game's output is never re-rendered to show a match.
//
// findMatches is pure (unit-tested under Node); ScrollbackSearch wires a
// search bar to an output element.

/** At most this many matches are marked: a one-letter query in 100 000 lines must stay cheap. */
export const MAX_MATCHES = 1000;

/**
 * Finds a query in lines of text, case-insensitively.
 *
 * @param {string[]} texts the lines, oldest first.
 * @param {string} query
 * @returns {Array<{line: number, start: number, end: number}>} in order,
 *   oldest first; the newest MAX_MATCHES if there are more.
 */
export function findMatches(texts, query) {
  if (query === '') return [];
  const q = query.toLocaleLowerCase();
  const out = [];
  // Newest first, so a cap keeps the matches nearest the bottom.
  for (let line = texts.length - 1; line >= 0 && out.length < MAX_MATCHES; line--) {
    const t = texts[line].toLocaleLowerCase();
    // toLocaleLowerCase can change the length of some characters (İ); then
    // offsets would not map back onto the line, so such lines are matched
    // on their own text only.
    const hay = t.length === texts[line].length ? t : texts[line];
    const found = [];
    for (let at = hay.indexOf(q); at >= 0; at = hay.indexOf(q, at + Math.max(1, q.length))) {
      found.push({ line, start: at, end: at + q.length });
    }
    out.push(...found.reverse());
  }
  return out.slice(0, MAX_MATCHES).reverse();
}

/**
 * Moves through matches: the index after a step from current (-1: none
 * yet) in direction -1 (older) or +1 (newer), wrapping. With no current
 * match the first step lands on the newest.
 */
export function step(count, current, direction) {
  if (count === 0) return -1;
  if (current < 0 || current >= count) return count - 1;
  return (current + direction + count) % count;
}

/** A label for the match counter: "3 of 12", "No matches", or "" for no query. */
export function counterText(query, count, current) {
  if (query === '') return '';
  if (count === 0) return 'No matches';
  return `${current + 1} of ${count}${count >= MAX_MATCHES ? '+' : ''}`;
}

export class ScrollbackSearch {
  /**
   * @param {object} parts
   * @param {HTMLElement} parts.output the scrollback (its children are lines).
   * @param {HTMLElement} parts.bar the search bar, hidden when closed.
   * @param {HTMLInputElement} parts.field the query field.
   * @param {HTMLElement} parts.counter where "3 of 12" goes.
   * @param {HTMLButtonElement} parts.older @param {HTMLButtonElement} parts.newer
   * @param {HTMLButtonElement} parts.close
   * @param {() => void} [parts.onClose] called when the bar closes (focus the input line).
   */
  constructor({ output, bar, field, counter, older, newer, close, onClose = () => {} }) {
    Object.assign(this, { output, bar, field, counter, onClose });
    this.doc = output.ownerDocument;
    this.win = this.doc.defaultView;
    this.matches = []; // [{element, start, end}]
    this.current = -1;
    this.highlights = this.win?.CSS?.highlights ?? null;
    field.addEventListener('input', () => this.search());
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.move(event.shiftKey ? 1 : -1);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        this.close();
      }
    });
    older.addEventListener('click', () => this.move(-1));
    newer.addEventListener('click', () => this.move(1));
    close.addEventListener('click', () => this.close());
  }

  get isOpen() {
    return !this.bar.hidden;
  }

  open() {
    this.bar.hidden = false;
    this.field.focus();
    this.field.select();
    if (this.field.value !== '') this.search();
  }

  close() {
    this.bar.hidden = true;
    this.clearMarks();
    this.matches = [];
    this.current = -1;
    this.counter.textContent = '';
    this.onClose();
  }

  // Runs the query again on what the output holds now, landing on the newest match.
  search() {
    this.collect();
    this.current = step(this.matches.length, -1, -1);
    this.show();
  }

  /** Goes to the next older (-1) or newer (+1) match. */
  move(direction) {
    // Lines may have been trimmed or added since: collect again and find
    // where the current match is now.
    const was = this.matches[this.current];
    this.collect();
    const at = was ? this.matches.findIndex((m) => m.element === was.element && m.start === was.start) : -1;
    // A current match trimmed away: start again from the newest.
    this.current = step(this.matches.length, at, direction);
    this.show();
  }

  collect() {
    const lines = Array.from(this.output.children);
    const found = findMatches(
      lines.map((l) => l.textContent),
      this.field.value,
    );
    this.matches = found.map((m) => ({ element: lines[m.line], start: m.start, end: m.end }));
  }

  show() {
    const query = this.field.value;
    this.counter.textContent = counterText(query, this.matches.length, this.current);
    this.clearMarks();
    const m = this.matches[this.current];
    if (!m) return;
    if (this.highlights && this.win.Highlight) {
      const all = new this.win.Highlight();
      for (const x of this.matches) {
        const r = this.range(x);
        if (r) all.add(r);
      }
      const cur = new this.win.Highlight();
      const r = this.range(m);
      if (r) cur.add(r);
      this.highlights.set('search-hit', all);
      this.highlights.set('search-current', cur);
    }
    // Instant, never smooth: no motion for whoever asked for less of it.
    m.element.scrollIntoView({ block: 'center', inline: 'nearest' });
    m.element.classList.add('search-line');
    this.marked = m.element;
  }

  clearMarks() {
    this.highlights?.delete('search-hit');
    this.highlights?.delete('search-current');
    this.marked?.classList.remove('search-line');
    this.marked = null;
  }

  // A DOM range over characters start..end of a line's text.
  range({ element, start, end }) {
    const r = this.doc.createRange();
    let at = 0;
    let started = false;
    const walker = this.doc.createTreeWalker(element, 4 /* NodeFilter.SHOW_TEXT */);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const len = n.data.length;
      if (!started && start < at + len) {
        r.setStart(n, start - at);
        started = true;
      }
      if (started && end <= at + len) {
        r.setEnd(n, end - at);
        return r;
      }
      at += len;
    }
    return null;
  }
}

/**
 * Wires the search bar of play.html and its shortcuts: Ctrl+F (Cmd+F) opens
 * it (pressed again in the field, the browser's own find takes over), F3 and
 * Ctrl+G step to older matches (with Shift, newer), Escape closes.
 */
export function installSearch(doc, { onClose } = {}) {
  const $ = (id) => doc.getElementById(id);
  const search = new ScrollbackSearch({
    output: $('output'),
    bar: $('search'),
    field: $('search-field'),
    counter: $('search-count'),
    older: $('search-older'),
    newer: $('search-newer'),
    close: $('search-close'),
    onClose,
  });
  $('find-open')?.addEventListener('click', () => (search.isOpen ? search.close() : search.open()));
  doc.addEventListener('keydown', (event) => {
    const mod = event.ctrlKey || event.metaKey;
    if (mod && !event.altKey && (event.key === 'f' || event.key === 'F')) {
      if (search.isOpen && doc.activeElement === search.field) return; // the browser's find
      event.preventDefault();
      search.open();
    } else if (event.key === 'F3' || (mod && (event.key === 'g' || event.key === 'G'))) {
      if (!search.isOpen) return;
      event.preventDefault();
      search.move(event.shiftKey ? 1 : -1);
    }
  });
  return search;
}
