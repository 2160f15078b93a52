// The console's calls to its JSON API, and the small DOM helpers every view
// uses. Text reaches the page through textContent only, never markup: session
// names, game text and event data come from players and games.

/** Thrown when the console answers 401: the page shows the sign-in form. */
export class Unauthorized extends Error {}

/**
 * Calls the API. A body is sent as JSON (the console refuses state changes
 * without a JSON body and the page's Origin, which the browser adds).
 */
export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text };
    }
  }
  if (res.status === 401) throw new Unauthorized(data?.error ?? 'not signed in');
  if (!res.ok) throw new Error(data?.error ?? `${res.status} ${res.statusText}`);
  return data;
}

/** el('td', {className: 'x', text: 'y', onclick}, child...) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'className') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/** Replaces a table body's rows. */
export function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

/** "3s", "4m", "2h 5m", "3d 4h" since an RFC 3339 time ("" for none). */
export function since(iso, now = Date.now()) {
  if (!iso) return '';
  return duration((now - Date.parse(iso)) / 1000);
}

/** Seconds as "3s", "4m 2s", "2h 5m", "3d 4h". */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** The time of an RFC 3339 string as the operator's clock shows it. */
export function clock(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) + ' ' + d.toLocaleTimeString();
}

/**
 * A button that asks for a second click within a few seconds before it
 * acts: no modal dialogs, and a stray click does nothing.
 */
export function confirmButton(label, confirmLabel, action, className = 'danger') {
  let armed = null;
  const b = el('button', { type: 'button', className, text: label });
  b.addEventListener('click', async () => {
    if (!armed) {
      b.textContent = confirmLabel;
      b.classList.add('armed');
      armed = setTimeout(() => {
        armed = null;
        b.textContent = label;
        b.classList.remove('armed');
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    b.disabled = true;
    try {
      await action();
    } finally {
      b.disabled = false;
      b.textContent = label;
      b.classList.remove('armed');
    }
  });
  return b;
}

/** Runs fn every ms until stop() is called; one run at a time. */
export function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try {
      await fn();
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
