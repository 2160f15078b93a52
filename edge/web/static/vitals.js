// Gauges from GMCP Char.Vitals (and MSDP variables, see msdp.js).
//
// Games disagree on names (hp/maxhp, mana/maxmana, sp/max_sp, moves/movesmax,
// MSDP's HEALTH/HEALTH_MAX) and on types (IRE games and MSDP send numbers as
// strings). Rather than know every game, this finds pairs: any key x with a
// sibling maxx, max_x, xmax or x_max whose values are both numbers gets a
// bar. Values may also come as {"hp": {"current": 5, "max": 10}} or as
// "5/10". A game whose names fit none of this gets a mapping in the
// registry (Game.vitals, delivered with /api/games; see mappedVitals).

/**
 * Finds the gauge pairs in a Char.Vitals body, in the order the keys came.
 * @returns {Array<{name: string, value: number, max: number}>}
 */
export function vitalPairs(data) {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return [];
  const keys = Object.keys(data);
  const lower = new Map(keys.map((k) => [k.toLowerCase(), k]));
  const pairs = [];
  for (const key of keys) {
    const name = key.toLowerCase();
    const whole = wholeGauge(data[key]);
    if (whole) {
      pairs.push({ name: key, ...whole });
      continue;
    }
    if (name.startsWith('max')) continue;
    if (name.endsWith('max') && name.length > 3 && lower.has(name.slice(0, -3))) continue;
    if (name.endsWith('_max') && name.length > 4 && lower.has(name.slice(0, -4))) continue;
    const maxKey =
      lower.get('max' + name) ?? lower.get('max_' + name) ?? lower.get(name + 'max') ?? lower.get(name + '_max');
    if (maxKey === undefined) continue;
    const value = toNumber(data[key]);
    const max = toNumber(data[maxKey]);
    if (value === null || max === null) continue;
    pairs.push({ name: key, value, max });
  }
  return pairs;
}

// A value that carries its own maximum: {current|cur|value|now: 5, max|maximum: 10}
// or the string "5/10".
function wholeGauge(v) {
  if (typeof v === 'string') {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(v);
    return m ? { value: Number(m[1]), max: Number(m[2]) } : null;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const lower = new Map(Object.keys(v).map((k) => [k.toLowerCase(), k]));
  const pick = (names) => {
    for (const n of names) if (lower.has(n)) return toNumber(v[lower.get(n)]);
    return null;
  };
  const value = pick(['current', 'cur', 'value', 'now', 'val']);
  const max = pick(['max', 'maximum']);
  return value === null || max === null ? null : { value, max };
}

/**
 * The gauges of a registry mapping (store.VitalSpec: label, package, value,
 * max, max_package, kind). packages maps a lower-case GMCP package name to
 * its last body; msdp holds the MSDP variables (an MsdpState or any object
 * with get). A gauge whose values are missing is left out.
 * @returns {Array<{name: string, value: number, max: number, kind?: string}>}
 */
export function mappedVitals(specs, packages, msdp) {
  if (!Array.isArray(specs)) return [];
  const source = (pkg) => {
    if (typeof pkg !== 'string') return undefined;
    if (pkg.toLowerCase() === 'msdp') return { msdp: true };
    return packages.get(pkg.toLowerCase());
  };
  const lookup = (src, path) => {
    if (src === undefined || typeof path !== 'string') return null;
    if (src.msdp) return toNumber(msdp?.get(path));
    let v = src;
    for (const part of path.split('.')) {
      if (!v || typeof v !== 'object') return null;
      const k = Object.keys(v).find((x) => x.toLowerCase() === part.toLowerCase());
      if (k === undefined) return null;
      v = v[k];
    }
    return toNumber(v);
  };
  const out = [];
  for (const spec of specs.slice(0, 8)) {
    if (!spec || typeof spec.label !== 'string') continue;
    const value = lookup(source(spec.package), spec.value);
    const max = /^\d+$/.test(String(spec.max))
      ? Number(spec.max)
      : lookup(source(spec.max_package || spec.package), spec.max);
    if (value === null || max === null) continue;
    out.push({ name: spec.label, value, max, kind: spec.kind || undefined });
  }
  return out;
}

function toNumber(v) {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

/** The fill of a gauge as a fraction in [0, 1]. */
export function fraction(value, max) {
  if (!(max > 0)) return 0;
  return Math.min(1, Math.max(0, value / max));
}

// A colour family for the common names; anything else gets a neutral bar.
const KINDS = [
  [/^(hp|health|hits?|life)$/i, 'hp'],
  [/^(mp|mana|sp|spell|magic)$/i, 'mp'],
  [/^(mv|moves?|movement|ep|endurance|stamina|fatigue)$/i, 'mv'],
  [/^(wp|willpower)$/i, 'wp'],
];

/** The CSS modifier for a gauge name: hp, mp, mv, wp or other. */
export function gaugeKind(name) {
  for (const [re, kind] of KINDS) if (re.test(name)) return kind;
  return 'other';
}

/**
 * Renders the gauges into container (the .vitals element), reusing the
 * elements of gauges that stay so the bars animate instead of flashing.
 */
export function renderVitals(container, pairs) {
  const doc = container.ownerDocument;
  const existing = new Map();
  for (const el of Array.from(container.children)) existing.set(el.dataset.name, el);
  const keep = new Set();
  for (const { name, value, max, kind } of pairs) {
    keep.add(name);
    let gauge = existing.get(name);
    if (!gauge) {
      gauge = doc.createElement('div');
      gauge.className = 'gauge gauge-' + (kind || gaugeKind(name));
      gauge.dataset.name = name;
      gauge.setAttribute('role', 'meter');
      gauge.setAttribute('aria-label', name);
      const label = doc.createElement('span');
      label.className = 'gauge-label';
      label.textContent = name;
      const bar = doc.createElement('span');
      bar.className = 'gauge-bar';
      const fill = doc.createElement('span');
      fill.className = 'gauge-fill';
      bar.appendChild(fill);
      const text = doc.createElement('span');
      text.className = 'gauge-text';
      gauge.append(label, bar, text);
    }
    container.appendChild(gauge); // appending an existing child moves it: keeps key order
    const [, bar, text] = gauge.children;
    bar.firstChild.style.width = (fraction(value, max) * 100).toFixed(1) + '%';
    text.textContent = `${value}/${max}`;
    gauge.setAttribute('aria-valuemin', '0');
    gauge.setAttribute('aria-valuemax', String(max));
    gauge.setAttribute('aria-valuenow', String(value));
  }
  for (const [name, el] of existing) if (!keep.has(name)) el.remove();
  container.hidden = pairs.length === 0;
}
