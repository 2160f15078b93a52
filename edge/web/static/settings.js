// Player settings: kept in localStorage, so they follow the player across
// games and tabs on this browser. A ?scrollback= in the page address
// overrides the saved scrollback for that page view only.

const KEY = 'trellis.settings';

export const DEFAULT_SETTINGS = Object.freeze({
  fontSize: 15, // CSS pixels
  noColour: false, // render game text in the theme's colours only
  boldIsBright: true, // bold + basic colour draws the bright colour
  scrollback: 5000, // lines kept in the output
});

const LIMITS = {
  fontSize: [10, 32],
  scrollback: [100, 100000],
};

/** Returns a complete, valid settings object built from untrusted input. */
export function sanitizeSettings(raw) {
  const s = { ...DEFAULT_SETTINGS };
  if (raw && typeof raw === 'object') {
    for (const key of ['fontSize', 'scrollback']) {
      const n = Number(raw[key]);
      if (raw[key] !== undefined && raw[key] !== null && raw[key] !== '' && Number.isFinite(n)) {
        const [lo, hi] = LIMITS[key];
        s[key] = Math.min(hi, Math.max(lo, Math.round(n)));
      }
    }
    for (const key of ['noColour', 'boldIsBright']) {
      if (typeof raw[key] === 'boolean') s[key] = raw[key];
    }
  }
  return Object.freeze(s);
}

/**
 * Loads the saved settings and applies the page address's overrides.
 * @param {Storage|null} storage localStorage, or null.
 * @param {string} search the page's query string (location.search).
 */
export function loadSettings(storage, search = '') {
  let saved = null;
  try {
    saved = JSON.parse(storage?.getItem(KEY) ?? 'null');
  } catch {
    saved = null;
  }
  const scrollback = new URLSearchParams(search).get('scrollback');
  if (scrollback !== null) saved = { ...(saved || {}), scrollback };
  return sanitizeSettings(saved);
}

/** Saves settings; returns the sanitized settings that were saved. */
export function saveSettings(storage, settings) {
  const s = sanitizeSettings(settings);
  try {
    storage?.setItem(KEY, JSON.stringify(s));
  } catch {
    // Quota or privacy mode: the settings apply to this page view only.
  }
  return s;
}
