// What the game's echo means for the input box.
//
// A game that turns echo on (telnet WILL ECHO) is usually asking for a
// password: the box is masked and the line is kept out of the history.
// Character-mode servers keep echo on for the whole session and print back
// every line: masking there hides every command and loses the history. The
// registry's echo setting (auto, password, character) decides; auto guesses
// as the worker does (worker/echomode.go) and also takes the worker's word:
// a line the worker recorded in plain text while the game echoed means it
// judged the server to be in character mode.
//
// In character mode the box is still masked while the prompt on screen
// looks like a password prompt (the game's password_prompt pattern).

export const DEFAULT_PASSWORD_PROMPT = String.raw`(?i)\b(pass(word|phrase|wd)?|pin)\b[^\n]{0,40}[:?>]\s*$`;

// Two lines at ordinary prompts under one unbroken echo: character mode.
const PLAIN_LINES_FOR_CHAR_MODE = 2;

/** Compiles an RE2 prompt pattern for JavaScript; null if it cannot. */
export function compilePrompt(pattern) {
  let src = typeof pattern === 'string' && pattern !== '' ? pattern : DEFAULT_PASSWORD_PROMPT;
  let flags = '';
  const m = /^\(\?([a-z]+)\)/.exec(src);
  if (m) {
    src = src.slice(m[0].length);
    if (m[1].includes('i')) flags += 'i';
    if (m[1].includes('s')) flags += 's';
    if (m[1].includes('m')) flags += 'm';
  }
  try {
    return new RegExp(src, flags);
  } catch {
    return compilePrompt('');
  }
}

// CSI, OSC and two-byte escapes.
const ESCAPES = /\x1b(?:\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;

/** Game text without escapes, CR folded the way a terminal shows it. */
export function plainText(text) {
  return text.replace(ESCAPES, '');
}

export class EchoState {
  /**
   * @param {{mode?: string, passwordPrompt?: string}} options mode is the
   *   registry's echo setting (auto when missing or unknown).
   */
  constructor({ mode = 'auto', passwordPrompt = '' } = {}) {
    this.configure({ mode, passwordPrompt });
    this.serverEcho = false;
    this.charMode = false;
    this.plainUnderEcho = 0;
    this.watch = '';
    this.tail = ''; // the game's unfinished last line, plain
    this.lastLine = '';
    this.answered = false;
  }

  configure({ mode, passwordPrompt }) {
    this.mode = mode === 'password' || mode === 'character' ? mode : 'auto';
    this.prompt = compilePrompt(passwordPrompt);
  }

  /** A new game connection: its echo starts off and its guess starts over. */
  reset() {
    this.serverEcho = false;
    this.charMode = false;
    this.plainUnderEcho = 0;
    this.watch = '';
  }

  setServerEcho(on) {
    if (!on) {
      this.plainUnderEcho = 0;
      this.watch = '';
    }
    this.serverEcho = on;
  }

  /** Game output (with escapes). */
  output(text) {
    const plain = plainText(text);
    const parts = plain.split('\n');
    for (let i = 0; i < parts.length - 1; i++) {
      const done = lastCR(this.tail + parts[i]);
      this.tail = '';
      if (this.watch !== '') {
        if (echoedBack(done, this.watch)) this.charMode = true;
        this.watch = '';
      }
      if (done.trim() !== '') this.lastLine = done.trim().slice(-256);
    }
    this.tail = lastCR(this.tail + parts[parts.length - 1]).slice(-256);
    if (plain !== '') this.answered = false;
  }

  /** An input frame the worker recorded: its verdict on a line. */
  recorded(frame) {
    if (this.mode === 'auto' && this.serverEcho && !frame.redacted && typeof frame.text === 'string' && frame.text.trim() !== '') {
      this.charMode = true;
    }
  }

  /** Whether the prompt on screen, not yet typed at, asks for a password. */
  promptLooksSecret() {
    if (this.answered) return false;
    const p = this.tail !== '' ? this.tail : this.lastLine;
    return p.trim() !== '' && this.prompt.test(p);
  }

  /** Whether echo on hides what is typed (a password prompt). */
  echoHides() {
    if (this.mode === 'character') return false;
    if (this.mode === 'password') return true;
    return !this.charMode;
  }

  /** Whether the box is masked now. */
  get masked() {
    return this.serverEcho && (this.echoHides() || this.promptLooksSecret());
  }

  /** The player sent line: returns whether it was a secret (no history). */
  sent(line) {
    const secret = this.masked;
    if (this.serverEcho) {
      const promptSecret = this.promptLooksSecret();
      if (!promptSecret) this.plainUnderEcho++;
      // The worker judges the next line by the same count (echomode.go).
      if (this.mode === 'auto' && this.plainUnderEcho >= PLAIN_LINES_FOR_CHAR_MODE) this.charMode = true;
      const w = line.trim();
      if (w !== '') this.watch = w.slice(-256);
    }
    this.answered = true;
    return secret;
  }
}

// What a terminal shows of a line with bare CRs: the text after the last
// one (a CR before the LF only ends the line).
function lastCR(line) {
  const s = line.replace(/\r+$/, '');
  const i = s.lastIndexOf('\r');
  return i < 0 ? s : s.slice(i + 1);
}

/** Whether line ends with typed as a word of its own ("> look"; not "Welcome" after "me"). */
export function echoedBack(line, typed) {
  const l = line.replace(/[ \r\t]+$/, '');
  if (!l.endsWith(typed)) return false;
  const before = l.slice(0, l.length - typed.length);
  return before === '' || !/[\p{L}\p{N}]$/u.test(before);
}
