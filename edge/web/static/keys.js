// Macros on keys, and the direction keypad.
//
// A macro binds a key (as KeyboardEvent.code or key names it, with Ctrl+,
// Alt+, Shift+ in that order: "F1", "Ctrl+KeyK", "Numpad8") to a line sent
// as if typed (aliases and the separator apply). With the keypad on, the
// number pad walks: 8 north, 2 south, 4 west, 6 east, 7 9 1 3 the
// diagonals, + and - up and down, 5 look. The on-screen keypad sends the
// same commands for phones.

export const MAX_MACROS = 100;

export const KEYPAD = Object.freeze({
  Numpad8: 'north',
  Numpad2: 'south',
  Numpad4: 'west',
  Numpad6: 'east',
  Numpad7: 'northwest',
  Numpad9: 'northeast',
  Numpad1: 'southwest',
  Numpad3: 'southeast',
  NumpadAdd: 'up',
  NumpadSubtract: 'down',
  Numpad5: 'look',
});

/** The name of a key event: modifiers, then the code ("Ctrl+F1"). */
export function keyName(event) {
  const mods = [];
  if (event.ctrlKey) mods.push('Ctrl');
  if (event.altKey) mods.push('Alt');
  if (event.shiftKey) mods.push('Shift');
  if (event.metaKey) mods.push('Meta');
  return [...mods, event.code || event.key].join('+');
}

const KEY_PATTERN = /^((Ctrl|Alt|Shift|Meta)\+)*[A-Za-z0-9]{1,20}$/;

/** Keeps the well-formed macros: [{key, command}]. */
export function sanitizeMacros(raw) {
  if (!Array.isArray(raw)) return [];
  const out = [];
  for (const m of raw) {
    if (!m || typeof m.key !== 'string' || typeof m.command !== 'string') continue;
    if (!KEY_PATTERN.test(m.key) || m.command.length > 1000) continue;
    out.push({ key: m.key, command: m.command });
    if (out.length >= MAX_MACROS) break;
  }
  return out;
}

// Keys a macro may not take: typing and the input box's own keys.
function reserved(name) {
  return /^(Shift\+)?(Key[A-Z]|Digit\d|Space|Enter|Backspace|Tab|Arrow\w+|Page\w+|Escape|Home|End|Delete)$/.test(name);
}

/**
 * The command a key event sends, or null.
 * @param {{code, key, ctrlKey, altKey, shiftKey, metaKey}} event
 * @param {{macros?: Array<{key, command}>, keypad?: boolean}} options
 */
export function commandForKey(event, { macros = [], keypad = true } = {}) {
  const name = keyName(event);
  for (const m of macros) if (m.key === name && !reserved(name)) return m.command;
  if (keypad && !event.ctrlKey && !event.altKey && !event.metaKey && Object.hasOwn(KEYPAD, name)) return KEYPAD[name];
  return null;
}

/** Parses the macro editor's text: one "key = command" a line. */
export function parseMacroText(text) {
  const macros = [];
  const errors = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const eq = l.indexOf('=');
    const key = eq < 0 ? '' : l.slice(0, eq).trim();
    if (!KEY_PATTERN.test(key)) {
      errors.push(`line ${i + 1}: write a macro as key = command (F1 = kick, Ctrl+KeyK = kill $1)`);
      return;
    }
    if (reserved(key)) {
      errors.push(`line ${i + 1}: ${key} is for typing; pick a function key or a modifier`);
      return;
    }
    macros.push({ key, command: l.slice(eq + 1).trim() });
  });
  return { macros: sanitizeMacros(macros), errors };
}

export function macroText(macros) {
  return macros.map((m) => `${m.key} = ${m.command}`).join('\n');
}
