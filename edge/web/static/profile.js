// The player's client profile: display settings, the command separator,
// aliases, triggers, key macros and per-game profiles, as one document.
//
// Guests keep it in localStorage. A signed-in player's lives on the edge
// (GET/PUT /api/settings, the same signed token as the WebSocket), so the
// phone and the desktop share it; localStorage then only caches it. The
// document can be exported to a file and imported from one.

import { DEFAULT_SEPARATOR, sanitizeAliases } from './aliases.js';
import { sanitizeMacros } from './keys.js';
import { sanitizeSettings } from './settings.js';
import { sanitizeTriggers } from './triggers.js';

export const PROFILE_KEY = 'trellis.profile';
export const PROFILE_VERSION = 1;
/** The edge refuses documents over this (store.MaxUserSettings). */
export const MAX_PROFILE_BYTES = 64 << 10;
const MAX_GAMES = 50;

function sanitizeRules(raw) {
  const r = raw && typeof raw === 'object' ? raw : {};
  return {
    aliases: sanitizeAliases(r.aliases),
    triggers: sanitizeTriggers(r.triggers),
    macros: sanitizeMacros(r.macros),
  };
}

/** A complete, valid profile built from untrusted input. */
export function sanitizeProfile(raw) {
  const p = raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {};
  const sep = typeof p.separator === 'string' && p.separator.length <= 3 && !/[\s\\]/.test(p.separator) ? p.separator : DEFAULT_SEPARATOR;
  const games = {};
  if (p.games && typeof p.games === 'object') {
    for (const [id, g] of Object.entries(p.games).slice(0, MAX_GAMES)) {
      if (/^[a-z0-9][a-z0-9_-]{0,31}$/.test(id)) games[id] = sanitizeRules(g);
    }
  }
  return {
    version: PROFILE_VERSION,
    settings: { ...sanitizeSettings(p.settings) },
    separator: sep,
    keypad: p.keypad !== false, // the number pad walks
    padButtons: p.padButtons === true, // the on-screen direction buttons
    screenReader: p.screenReader === true,
    ...sanitizeRules(p),
    games,
  };
}

/**
 * The rules in force for game: the game's own first (they win a name
 * clash), then everyone's.
 */
export function rulesFor(profile, game) {
  const g = profile.games[game] || { aliases: [], triggers: [], macros: [] };
  return {
    separator: profile.separator,
    keypad: profile.keypad,
    aliases: [...g.aliases, ...profile.aliases],
    triggers: [...g.triggers, ...profile.triggers],
    macros: [...g.macros, ...profile.macros],
  };
}

/** Serialises a profile, or throws if it is over the edge's bound. */
export function encodeProfile(profile) {
  const text = JSON.stringify(profile);
  if (new TextEncoder().encode(text).length > MAX_PROFILE_BYTES) {
    throw new Error(`your settings are over ${MAX_PROFILE_BYTES >> 10} KiB: remove some aliases or triggers`);
  }
  return text;
}

/** Parses an imported file; throws with a message for the player. */
export function decodeProfile(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`the file is not a Trellis settings file (${err.message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('the file is not a Trellis settings file');
  return sanitizeProfile(raw);
}

export function loadLocalProfile(storage) {
  let raw = null;
  try {
    raw = JSON.parse(storage?.getItem(PROFILE_KEY) ?? 'null');
  } catch {
    raw = null;
  }
  if (raw === null) {
    // Settings saved before profiles existed.
    try {
      raw = { settings: JSON.parse(storage?.getItem('trellis.settings') ?? 'null') };
    } catch {
      raw = {};
    }
  }
  return sanitizeProfile(raw);
}

export function saveLocalProfile(storage, profile) {
  try {
    storage?.setItem(PROFILE_KEY, JSON.stringify(profile));
  } catch {
    // Quota or privacy mode: the profile applies to this page view only.
  }
}

/**
 * The edge's copy of a signed-in player's profile.
 */
export class RemoteProfile {
  /**
   * @param {{token: string, fetch?: Function, url?: string}} options
   */
  constructor({ token, fetch: f = globalThis.fetch?.bind(globalThis), url = '/api/settings' }) {
    this.token = token;
    this.fetch = f;
    this.url = url;
  }

  get enabled() {
    return typeof this.token === 'string' && this.token !== '';
  }

  async request(method, body) {
    const res = await this.fetch(this.url, {
      method,
      credentials: 'same-origin',
      headers: { Authorization: 'Bearer ' + this.token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body,
    });
    if (!res.ok) {
      let msg = `the server answered ${res.status}`;
      try {
        const j = await res.json();
        if (j && typeof j.error === 'string') msg = j.error;
      } catch {
        // not JSON: keep the status
      }
      throw new Error(msg);
    }
    return res;
  }

  /** The stored profile, or null when the player has none yet. */
  async load() {
    const res = await this.request('GET');
    const raw = await res.json();
    return raw && typeof raw === 'object' && Object.keys(raw).length > 0 ? sanitizeProfile(raw) : null;
  }

  async save(profile) {
    await this.request('PUT', encodeProfile(profile));
  }
}
