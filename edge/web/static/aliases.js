// Aliases and the command separator.
//
// A line the player sends is split at the separator (default ";"; "\;"
// sends a literal one, "\\" a backslash), and each command whose first
// word names an alias is replaced by the alias's body: $1..$9 are the
// words after the name, $* all of them, $$ a dollar sign; a body without
// any $ gets the arguments appended. Bodies may hold separators and other
// aliases, expanded to a bounded depth so "a = b; b = a" cannot loop.

export const DEFAULT_SEPARATOR = ';';
export const MAX_ALIASES = 200;
export const MAX_DEPTH = 8;
export const MAX_COMMANDS = 100;

/**
 * Splits line at unescaped separators. An empty separator disables it.
 * @returns {string[]}
 */
export function splitCommands(line, separator = DEFAULT_SEPARATOR) {
  const out = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length) {
      const next = line[i + 1];
      if (separator && line.startsWith(separator, i + 1)) {
        cur += separator;
        i += separator.length;
        continue;
      }
      if (next === '\\') {
        cur += '\\';
        i++;
        continue;
      }
    }
    if (separator && line.startsWith(separator, i)) {
      out.push(cur);
      cur = '';
      i += separator.length - 1;
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

/** Keeps the well-formed aliases: [{name, body}], names one word. */
export function sanitizeAliases(raw) {
  if (!Array.isArray(raw)) return [];
  const out = [];
  for (const a of raw) {
    if (!a || typeof a.name !== 'string' || typeof a.body !== 'string') continue;
    const name = a.name.trim();
    if (!/^\S{1,32}$/.test(name) || a.body.length > 1000) continue;
    out.push({ name, body: a.body });
    if (out.length >= MAX_ALIASES) break;
  }
  return out;
}

/** Replaces $1..$9, $* and $$ in body with the arguments. */
export function substitute(body, args) {
  if (!body.includes('$')) return args.length ? `${body} ${args.join(' ')}` : body;
  return body.replace(/\$(\d|\*|\$)/g, (_, k) => {
    if (k === '$') return '$';
    if (k === '*') return args.join(' ');
    return args[Number(k) - 1] ?? '';
  });
}

/**
 * The commands a typed line sends: split, aliases expanded.
 * @param {string} line
 * @param {{aliases?: Array<{name, body}>, separator?: string}} options
 * @returns {string[]}
 */
export function expandLine(line, { aliases = [], separator = DEFAULT_SEPARATOR } = {}) {
  const byName = new Map();
  for (const a of aliases) if (!byName.has(a.name)) byName.set(a.name, a.body);
  const out = [];
  const walk = (text, depth) => {
    for (const cmd of splitCommands(text, separator)) {
      if (out.length >= MAX_COMMANDS) return;
      const words = cmd.trim().split(/\s+/).filter(Boolean);
      const body = words.length ? byName.get(words[0]) : undefined;
      if (body === undefined || depth >= MAX_DEPTH) {
        out.push(cmd);
        continue;
      }
      walk(substitute(body, words.slice(1)), depth + 1);
    }
  };
  walk(line, 0);
  return out;
}

/** Parses the alias editor's text: one "name = body" a line. */
export function parseAliasText(text) {
  const aliases = [];
  const errors = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const eq = l.indexOf('=');
    const name = eq < 0 ? '' : l.slice(0, eq).trim();
    if (eq < 0 || !/^\S{1,32}$/.test(name)) {
      errors.push(`line ${i + 1}: write an alias as name = commands`);
      return;
    }
    aliases.push({ name, body: l.slice(eq + 1).trim() });
  });
  return { aliases: sanitizeAliases(aliases), errors };
}

export function aliasText(aliases) {
  return aliases.map((a) => `${a.name} = ${a.body}`).join('\n');
}
