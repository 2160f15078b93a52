// Input-line history, as in a shell: Up walks back through the lines sent
// before, Down walks forward and finally returns to the line being drafted.
//
// Lines typed while the game echoes (a password prompt) are never recorded:
// the caller says so with {secret: true} and the line is dropped before it
// can reach memory or localStorage.

const DEFAULT_CAP = 200;

/**
 * A bounded list of sent lines, persisted in a Storage (localStorage in the
 * browser; any object with getItem/setItem in tests). Storage failures
 * (private browsing, quota) degrade to an in-memory history.
 */
export class InputHistory {
  /**
   * @param {{storage?: Storage|null, key?: string, cap?: number}} options
   */
  constructor({ storage = null, key = 'trellis.history', cap = DEFAULT_CAP } = {}) {
    this.storage = storage;
    this.key = key;
    this.cap = cap;
    this.lines = load(storage, key).slice(-cap);
    this.position = this.lines.length; // lines.length means "the draft"
    this.draft = '';
  }

  /**
   * Records a sent line. Empty lines, repeats of the line just before, and
   * secret lines are not recorded. Navigation starts again from the newest.
   */
  add(line, { secret = false } = {}) {
    this.reset();
    if (secret || line.trim() === '') return;
    // Another tab may have added lines since this one loaded.
    this.lines = load(this.storage, this.key, this.lines);
    if (this.lines[this.lines.length - 1] === line) return;
    this.lines.push(line);
    if (this.lines.length > this.cap) this.lines.splice(0, this.lines.length - this.cap);
    this.position = this.lines.length;
    save(this.storage, this.key, this.lines);
  }

  /**
   * Removes the newest record of line: the game's session recorded it as
   * a secret after all (a password typed ahead of its prompt), so it must
   * not stay in memory or storage.
   */
  forget(line) {
    this.lines = load(this.storage, this.key, this.lines);
    const i = this.lines.lastIndexOf(line);
    if (i < 0) return;
    this.lines.splice(i, 1);
    this.position = this.lines.length;
    save(this.storage, this.key, this.lines);
  }

  /**
   * Moves one line back. current is what the input box holds now: leaving
   * the draft position remembers it so Down can bring it back.
   * @returns {string|null} the line to show, or null when already at the oldest.
   */
  previous(current) {
    if (this.position === 0) return null;
    if (this.position === this.lines.length) this.draft = current;
    this.position--;
    return this.lines[this.position];
  }

  /**
   * Moves one line forward.
   * @returns {string|null} the line to show (the draft past the newest), or
   *   null when already at the draft.
   */
  next() {
    if (this.position >= this.lines.length) return null;
    this.position++;
    return this.position === this.lines.length ? this.draft : this.lines[this.position];
  }

  /** Forgets the navigation position and the draft. */
  reset() {
    this.position = this.lines.length;
    this.draft = '';
  }

  /** Returns a copy of the recorded lines, oldest first. */
  entries() {
    return this.lines.slice();
  }
}

function load(storage, key, fallback = []) {
  if (!storage) return fallback;
  try {
    const raw = storage.getItem(key);
    if (raw === null) return fallback;
    const lines = JSON.parse(raw);
    return Array.isArray(lines) ? lines.filter((l) => typeof l === 'string') : fallback;
  } catch {
    return fallback;
  }
}

function save(storage, key, lines) {
  if (!storage) return;
  try {
    storage.setItem(key, JSON.stringify(lines));
  } catch {
    // Quota or privacy mode: the in-memory history still works for this page.
  }
}
