// The play page: wires the modules to the DOM of play.html.
//
// Everything with logic worth testing lives in the other modules; this file
// only connects them: frames from the edge go to the terminal, the gauges,
// the inspector and the status bar; the input box goes to the edge.

import { Connection } from './connection.js';
import { GmcpInspector, parseGmcpForm } from './gmcp.js';
import { InputHistory } from './history.js';
import { MSDP_REPORT, MsdpReporter, MsdpState } from './msdp.js';
import {
  SessionMemory,
  errorIsFatal,
  errorKeepsLine,
  errorShownInOutput,
  gameFromLocation,
  gmcpFrame,
  helloFrame,
  inputFrame,
  msdpFrame,
  parseServerFrame,
  resizeFrame,
  resolveToken,
  socketURL,
} from './protocol.js';
import { installSearch } from './search.js';
import { sanitizeSettings } from './settings.js';
import { Terminal, gridSize } from './terminal.js';
import { Transcript } from './transcript.js';
import { mappedVitals, renderVitals, vitalPairs } from './vitals.js';
// ---- Player features (aliases, triggers, keys, echo modes, profiles) ----
import { MAX_COMMANDS, aliasText, expandLine, parseAliasText } from './aliases.js';
import { EchoState } from './echo.js';
import { commandForKey, keyName, macroText, parseMacroText } from './keys.js';
import {
  RemoteProfile,
  decodeProfile,
  encodeProfile,
  loadLocalProfile,
  rulesFor,
  sanitizeProfile,
  saveLocalProfile,
} from './profile.js';
import { Triggers, parseTriggerText, triggerText } from './triggers.js';
import { downloadName, transcriptHTML, transcriptText } from './download.js';
// ---- end player features ----

const $ = (selector) => document.querySelector(selector);

// Storage can be missing or throw (privacy modes, sandboxed frames): every
// module accepts null and keeps its state in memory instead.
function storageOrNull(name) {
  try {
    const s = window[name];
    s.getItem('trellis.probe');
    return s;
  } catch {
    return null;
  }
}

const local = storageOrNull('localStorage');
const session = storageOrNull('sessionStorage');

const game = gameFromLocation(location.pathname, location.search);
const { token, cleanSearch } = resolveToken(location.search, session);
if (cleanSearch !== null) {
  window.history.replaceState(null, '', location.pathname + cleanSearch + location.hash);
}

const output = $('#output');
const input = $('#input');
const status = $('#status');
const notice = $('#notice');
const moreBelow = $('#more-below');
const vitals = $('.vitals');
const retry = $('#retry');

// The player's profile holds the display settings too; the page address's
// ?scrollback= still overrides them for this page view (loadSettings).
let profile = loadLocalProfile(local);
let settings = sanitizeSettings({ ...profile.settings, ...scrollbackOverride(location.search) });
let rules = rulesFor(profile, game);
const triggers = new Triggers(rules.triggers);
const echoState = new EchoState();
const remoteProfile = new RemoteProfile({ token });
// The registry's vitals mapping for this game, from /api/games.
let vitalSpecs = null;
const gmcpPackages = new Map(); // lower-case package -> last body, for the mapping
const memory = new SessionMemory(session, game);
const lineHistory = new InputHistory({ storage: local, key: 'trellis.history.' + game });
const inspector = new GmcpInspector($('#gmcp-list'));
const transcript = new Transcript(session, game);
const terminal = new Terminal(output, {
  scrollback: settings.scrollback,
  boldIsBright: settings.boldIsBright,
  onMoreBelow: (below) => {
    moreBelow.hidden = !below;
  },
  live: $('#output-live'),
  // A command link (OSC 7701, the game's MXP <send>): sent as typed, or put
  // in the input box when the game asked for a prompt.
  onCommand: (command, { prompt }) => sendCommand(command, { prompt }),
});

// ---- Status bar -----------------------------------------------------------

const STATE_LABELS = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnected: 'Reconnected',
  disconnected: 'Disconnected',
  failed: 'Connection failed',
  draining: 'Server restarting — moving you shortly',
  offline: 'Offline',
  closed: 'Closed',
};

/** Shows a connection state: the game's (from status frames) or the socket's. */
function setStatus(state, message = '') {
  status.dataset.state = state;
  status.textContent = statusText(state, message);
}

/** "Connected to Dune", not "Connected: connected to Dune". */
function statusText(state, message) {
  const label = STATE_LABELS[state] ?? state;
  const to = /^(re)?connected to (.+)$/i.exec(message);
  if (to && (state === 'connected' || state === 'reconnected')) return `${label} to ${to[2]}`;
  return message ? `${label}: ${message}` : label;
}

let noticeTimer = null;

/** Shows a message under the status bar; errors stay until the next success. */
function showNotice(text, { sticky = false } = {}) {
  clearTimeout(noticeTimer);
  notice.textContent = text;
  notice.hidden = false;
  if (!sticky) noticeTimer = setTimeout(hideNotice, 10000);
}

function hideNotice() {
  clearTimeout(noticeTimer);
  notice.hidden = true;
  notice.textContent = '';
}

// ---- Window size ------------------------------------------------------------

const measureEl = $('#measure');

function measure() {
  const cs = getComputedStyle(output);
  const width = output.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const height = output.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
  const box = measureEl.getBoundingClientRect();
  return gridSize({
    width,
    height,
    charWidth: box.width / measureEl.textContent.length,
    lineHeight: box.height,
  });
}

let size = measure();
let resizeTimer = null;

// Games redraw on NAWS, so a window being dragged is sent once it settles.
function sizeMayHaveChanged() {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    const next = measure();
    if (next.cols === size.cols && next.rows === size.rows) return;
    size = next;
    connection.send(resizeFrame(size.cols, size.rows));
  }, 250);
}

new ResizeObserver(sizeMayHaveChanged).observe(output);

// ---- Echo (password) mode -----------------------------------------------------

let serverEcho = false;

function setEcho(on) {
  serverEcho = on;
  memory.setEcho(on);
  echoState.setServerEcho(on);
  applyMask();
  lineHistory.reset();
}

// The box is masked when the game's echo means a password prompt (see
// echo.js): on a character-mode server it stays a text box with history.
function applyMask() {
  const masked = echoState.masked;
  if (input.classList.contains('masked') === masked) return;
  // A password field hides the text and keeps it out of autofill history.
  input.type = masked ? 'password' : 'text';
  input.classList.toggle('masked', masked);
  input.dataset.echo = masked ? 'password' : serverEcho ? 'character' : 'off';
}

setEcho(memory.echo);

// ---- Frames from the edge ---------------------------------------------------------

let vitalsData = {};
const msdp = new MsdpState();
const msdpReporter = new MsdpReporter();
// The last line sent, put back in the box if the edge says it was not sent.
let lastSent = null;

function handleFrame(frame) {
  if (frame.id) memory.see(frame.id);
  switch (frame.type) {
    case 'welcome':
      connection.welcomed();
      hideNotice();
      msdpReporter.arm();
      // A resumed session may not repeat its last status: show the one
      // remembered from before the reload until a new one arrives.
      setStatus(memory.state || 'connected');
      break;
    case 'gmcp':
      handleGmcp(frame.package, frame.data);
      break;
    case 'msdp':
      msdp.set(frame.var, frame.val);
      drawVitals();
      break;
    case 'echo':
      setEcho(frame.server === true);
      break;
    case 'status':
      if (typeof frame.state !== 'string') return;
      memory.setState(frame.state);
      setStatus(frame.state, frame.message || '');
      // A new or lost game connection starts with the game not echoing.
      if (frame.state !== 'draining' && frame.state !== 'connected' && serverEcho) setEcho(false);
      if (frame.state === 'connected' || frame.state === 'reconnected') {
        echoState.reset();
        echoState.setServerEcho(serverEcho);
        applyMask();
      }
      // A new game connection knows no REPORT: ask again once it speaks.
      if (frame.state === 'connected' || frame.state === 'reconnected') msdpReporter.arm();
      draw(frame);
      transcript.record(frame);
      break;
    case 'gap':
      if (frame.reset === true) memory.forgetResume();
      draw(frame);
      transcript.record(frame);
      break;
    case 'output':
      if (msdpReporter.due()) connection.send(msdpFrame('REPORT', MSDP_REPORT));
      if (typeof frame.text === 'string') {
        echoState.output(frame.text);
        applyMask();
      }
      draw(frame);
      transcript.record(frame);
      break;
    case 'input':
      // The worker's verdict on the oldest line this page sent and kept in
      // history: a line it recorded redacted (typed ahead of a password
      // prompt) leaves the history, so it is not stored in the browser.
      if (unconfirmed.length > 0) {
        const line = unconfirmed.shift();
        if (frame.redacted && line !== null) lineHistory.forget(line);
      }
      echoState.recorded(frame);
      applyMask();
      draw(frame);
      transcript.record(frame);
      break;
    case 'error':
      if (errorShownInOutput(frame.code)) {
        draw(frame);
        transcript.record(frame);
      }
      handleError(frame.code, frame.message || frame.code);
      break;
  }
}

/** Draws a frame that shows in the output: live, or restored after a reload. */
function draw(frame) {
  switch (frame.type) {
    case 'output': {
      // Triggers see the game's text on its way to the screen; the
      // transcript keeps what the game sent.
      const { text, notify } = triggers.apply(typeof frame.text === 'string' ? frame.text : '');
      terminal.write(text, { prompt: frame.prompt === true });
      for (const line of notify) notifyPlayer(line);
      break;
    }
    case 'input':
      // Redacted lines (typed while the game echoed) show nothing at all. An
      // empty line (the edge omits its text) still ends the prompt line.
      if (!frame.redacted) terminal.writeInput(typeof frame.text === 'string' ? frame.text : '');
      break;
    case 'gap':
      terminal.writeNotice(`— ${frame.message || 'Some earlier output was lost.'} —`, 'gap');
      break;
    case 'error':
      terminal.writeNotice(`— ${frame.message || frame.code} —`, 'lost');
      break;
    case 'status':
      if (frame.state !== 'connecting') {
        terminal.writeNotice(`— ${statusText(frame.state, frame.message || '')} —`, frame.state);
      }
      break;
  }
}

function handleGmcp(pkg, data) {
  inspector.update(pkg, data);
  const name = pkg.toLowerCase();
  if (data && typeof data === 'object') {
    if (!gmcpPackages.has(name) && gmcpPackages.size >= 64) gmcpPackages.delete(gmcpPackages.keys().next().value);
    gmcpPackages.set(name, data);
  }
  // Some games split current and maximum values over two packages.
  if ((name === 'char.vitals' || name === 'char.maxstats') && data && typeof data === 'object') {
    vitalsData = { ...vitalsData, ...data };
    drawVitals();
  }
}

/** The gauges: GMCP vitals first, then MSDP pairs (HEALTH / HEALTH_MAX). */
function drawVitals() {
  // A registry mapping replaces the guess: the game's admin knows better.
  if (Array.isArray(vitalSpecs) && vitalSpecs.length > 0) {
    renderVitals(vitals, mappedVitals(vitalSpecs, gmcpPackages, msdp));
    return;
  }
  renderVitals(vitals, [...vitalPairs(vitalsData), ...msdp.pairs()]);
}

function handleError(code, message) {
  if (errorKeepsLine(code) && lastSent !== null) {
    if (input.value === '') input.value = lastSent;
    lastSent = null;
  }
  if (errorIsFatal(code)) {
    connection.halt(message);
    return;
  }
  showNotice(message);
}

// ---- The connection ---------------------------------------------------------

const connection = new Connection({
  url: socketURL(location),
  hello: () => helloFrame({ game, token, resume: memory.resume, cols: size.cols, rows: size.rows, screenReader: profile.screenReader }),
  onMessage: (data) => {
    const frame = parseServerFrame(data);
    if (frame) handleFrame(frame);
  },
  onState: ({ state, message, delay }) => {
    retry.hidden = state !== 'waiting';
    switch (state) {
      case 'connecting':
        setStatus('connecting');
        break;
      case 'waiting':
        setStatus('offline', `${message} Retrying in ${Math.ceil(delay / 1000)} s.`);
        break;
      case 'closed':
        setStatus('closed', message);
        showNotice(message, { sticky: true });
        break;
    }
  },
});

retry.addEventListener('click', () => connection.retryNow());
// Coming back (network, tab, phone waking up): retry at once if waiting,
// else make sure the open socket still reaches the edge.
window.addEventListener('online', () => {
  connection.retryNow();
  connection.probe();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  connection.retryNow();
  connection.probe();
});
// A socket can also die quietly while the page is open (a NAT forgetting
// an idle flow); probe now and then while someone may be looking.
const PROBE_EVERY_MS = 30000;
setInterval(() => {
  if (document.visibilityState === 'visible') connection.probe();
}, PROBE_EVERY_MS);

// ---- Input ----------------------------------------------------------------------

function sendCommand(command, { prompt = false } = {}) {
  if (prompt) {
    input.value = command;
    input.focus();
    return;
  }
  if (!connection.send(inputFrame(command))) {
    showNotice('Not connected.');
    return;
  }
  lastSent = command;
  lineHistory.add(command, { secret: echoState.masked });
  noteSent(echoState.masked ? null : command);
  input.focus({ preventScroll: true });
}

// Lines sent and not yet recorded by the game's session, oldest first (null
// for one kept out of history already), bounded like the edge's queue.
const unconfirmed = [];
function noteSent(line) {
  unconfirmed.push(line);
  if (unconfirmed.length > 64) unconfirmed.shift();
}

installSearch(document, { onClose: () => input.focus({ preventScroll: true }) });

$('#input-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  const masked = echoState.masked;
  // A password is sent as typed: no alias, no separator.
  const sent = sendLine(text, { raw: masked });
  if (sent === 0) {
    showNotice('Not connected: your line is kept and can be sent once the connection is back.');
    return;
  }
  // The line appears in the output when the edge echoes it back; nothing is
  // echoed here, so every tab shows the same transcript.
  lastSent = text;
  const secret = echoState.sent(text);
  applyMask();
  lineHistory.add(text, { secret });
  // One input record comes back per command sent; the first stands for
  // the line as typed.
  for (let i = 0; i < sent; i++) noteSent(i === 0 && !secret ? text : null);
  input.value = '';
});

/**
 * Sends a line as typed: split at the separator and aliases expanded
 * (unless raw). Returns how many commands were sent (0: none could be).
 */
function sendLine(text, { raw = false } = {}) {
  const commands = raw ? [text] : expandLine(text, rules);
  if (commands.length >= MAX_COMMANDS) showNotice(`An alias sends at most ${MAX_COMMANDS} commands; the rest were dropped.`);
  for (let i = 0; i < commands.length; i++) {
    if (!connection.send(inputFrame(commands[i]))) return i;
  }
  return commands.length;
}

function notifyPlayer(line) {
  showNotice(line);
  if (document.visibilityState === 'visible' || typeof Notification === 'undefined') return;
  if (Notification.permission === 'granted') new Notification(document.title, { body: line });
}

input.addEventListener('keydown', (event) => {
  if (event.isComposing) return;
  switch (event.key) {
    case 'ArrowUp':
    case 'ArrowDown': {
      if (echoState.masked) return; // no history at a password prompt
      const line = event.key === 'ArrowUp' ? lineHistory.previous(input.value) : lineHistory.next();
      if (line === null) return;
      event.preventDefault();
      input.value = line;
      input.setSelectionRange(line.length, line.length);
      break;
    }
    case 'PageUp':
    case 'PageDown':
      event.preventDefault();
      terminal.page(event.key === 'PageUp' ? -1 : 1);
      break;
    case 'Escape':
      input.value = '';
      lineHistory.reset();
      break;
  }
});

// Typing anywhere on the page types into the input line.
document.addEventListener('keydown', (event) => {
  const t = event.target;
  if (t === input || t.closest?.('input, textarea, select, button, summary, [contenteditable]')) return;
  if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) input.focus();
});

// A click on the output (not a text selection) returns focus to the input.
output.addEventListener('click', () => {
  if (String(window.getSelection())) return;
  input.focus({ preventScroll: true });
});

moreBelow.addEventListener('click', () => {
  terminal.jumpToBottom();
  input.focus({ preventScroll: true });
});

// ---- Settings ---------------------------------------------------------------------

const fontSize = $('#setting-font-size');
const noColour = $('#setting-no-colour');
const boldBright = $('#setting-bold-bright');
const scrollback = $('#setting-scrollback');

function applySettings() {
  document.documentElement.style.setProperty('--font-size', settings.fontSize + 'px');
  output.classList.toggle('no-colour', settings.noColour);
  terminal.setScrollback(settings.scrollback);
  terminal.setBoldIsBright(settings.boldIsBright);
  fontSize.value = String(settings.fontSize);
  noColour.checked = settings.noColour;
  boldBright.checked = settings.boldIsBright;
  scrollback.value = String(settings.scrollback);
  sizeMayHaveChanged();
}

$('#settings-form').addEventListener('change', () => {
  settings = sanitizeSettings({
    fontSize: fontSize.value,
    noColour: noColour.checked,
    boldIsBright: boldBright.checked,
    scrollback: scrollback.value,
  });
  profile = { ...profile, settings: { ...settings } };
  persistProfile();
  applySettings();
});
$('#settings-form').addEventListener('submit', (event) => event.preventDefault());

// Side panels: each toggle button shows or hides its panel.
for (const button of document.querySelectorAll('[data-panel]')) {
  const panel = document.getElementById(button.dataset.panel);
  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    button.setAttribute('aria-expanded', String(!panel.hidden));
    $('#side').hidden = Array.from(document.querySelectorAll('#side > section')).every((p) => p.hidden);
  });
}

$('#gmcp-send').addEventListener('submit', (event) => {
  event.preventDefault();
  const parsed = parseGmcpForm($('#gmcp-send-package').value, $('#gmcp-send-data').value);
  if (parsed.error) {
    showNotice(parsed.error);
    return;
  }
  if (!connection.send(gmcpFrame(parsed.package, parsed.data))) showNotice('Not connected.');
});

// Phones: keep the input line above the on-screen keyboard, which shrinks
// the visual viewport but not always the layout viewport.
if (window.visualViewport) {
  const fit = () => {
    document.documentElement.style.setProperty('--app-height', window.visualViewport.height + 'px');
  };
  window.visualViewport.addEventListener('resize', fit);
  fit();
}

// ---- Start ------------------------------------------------------------------------

applySettings();
size = measure();
// The output from before a reload, drawn before the edge sends what came after.
for (const frame of transcript.restore()) draw(frame);
window.addEventListener('pagehide', () => transcript.save());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') transcript.save();
});
document.title = game ? `${game} · Trellis` : 'Trellis';
$('#game-name').textContent = game;
if (!game) {
  setStatus('closed', 'No game was named in the address.');
} else {
  connection.start();
  // The display name is a nicety: the page works without it.
  fetch('/api/games', { credentials: 'same-origin' })
    .then((r) => (r.ok ? r.json() : []))
    .then((games) => {
      const entry = Array.isArray(games) && games.find((g) => g && g.id === game);
      if (entry) {
        echoState.configure({ mode: entry.echo, passwordPrompt: entry.password_prompt });
        applyMask();
        vitalSpecs = Array.isArray(entry.vitals) ? entry.vitals : null;
        drawVitals();
      }
      if (entry && typeof entry.name === 'string' && entry.name) {
        $('#game-name').textContent = entry.name;
        document.title = `${entry.name} · Trellis`;
      }
    })
    .catch(() => {});
}
input.focus();

// ---- Player features: the client panel, macros, keypad, profile sync ----

function scrollbackOverride(search) {
  const v = new URLSearchParams(search).get('scrollback');
  return v === null ? {} : { scrollback: v };
}

const clientStatus = $('#client-status');
let pushTimer = null;

function showClientStatus(text) {
  clientStatus.textContent = text;
}

/** Saves the profile here and, for a signed-in player, on the edge. */
function persistProfile() {
  saveLocalProfile(local, profile);
  rules = rulesFor(profile, game);
  triggers.set(rules.triggers);
  if (!remoteProfile.enabled) {
    showClientStatus('Saved in this browser (sign in to share settings between devices).');
    return;
  }
  clearTimeout(pushTimer);
  pushTimer = setTimeout(() => {
    remoteProfile
      .save(profile)
      .then(() => showClientStatus('Saved to your account.'))
      .catch((err) => showClientStatus(`Not saved to your account: ${err.message}`));
  }, 300);
}

function applyProfile() {
  settings = sanitizeSettings({ ...profile.settings, ...scrollbackOverride(location.search) });
  rules = rulesFor(profile, game);
  triggers.set(rules.triggers);
  applySettings();
  fillClientForm();
}

const scopeSelect = $('#client-scope');
const aliasBox = $('#client-aliases');
const triggerBox = $('#client-triggers');
const macroBox = $('#client-macros');

function scopeRules() {
  if (scopeSelect.value === 'game' && game) return profile.games[game] || { aliases: [], triggers: [], macros: [] };
  return profile;
}

function fillClientForm() {
  const r = scopeRules();
  aliasBox.value = aliasText(r.aliases);
  triggerBox.value = triggerText(r.triggers);
  macroBox.value = macroText(r.macros);
  $('#client-separator').value = profile.separator;
  $('#client-keypad').checked = profile.keypad;
  $('#client-pad-buttons').checked = profile.padButtons;
  $('#client-screen-reader').checked = profile.screenReader;
  $('#keypad').hidden = !profile.padButtons;
  document.body.classList.toggle('screen-reader', profile.screenReader);
}

scopeSelect.addEventListener('change', fillClientForm);

$('#client-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const a = parseAliasText(aliasBox.value);
  const t = parseTriggerText(triggerBox.value);
  const m = parseMacroText(macroBox.value);
  const errors = [...a.errors.map((e) => 'Aliases, ' + e), ...t.errors.map((e) => 'Triggers, ' + e), ...m.errors.map((e) => 'Keys, ' + e)];
  $('#client-errors').textContent = errors.join('\n');
  $('#client-errors').hidden = errors.length === 0;
  const scoped = { aliases: a.aliases, triggers: t.triggers, macros: m.macros };
  const next = { ...profile, separator: $('#client-separator').value, keypad: $('#client-keypad').checked, padButtons: $('#client-pad-buttons').checked, screenReader: $('#client-screen-reader').checked };
  if (scopeSelect.value === 'game' && game) next.games = { ...profile.games, [game]: scoped };
  else Object.assign(next, scoped);
  const clean = sanitizeProfile(next);
  try {
    encodeProfile(clean);
  } catch (err) {
    showClientStatus(err.message);
    return;
  }
  profile = clean;
  persistProfile();
  fillClientForm();
  // Saving a notify trigger is the gesture browsers want before they ask.
  const wantsNotify = t.triggers.some((x) => x.action === 'notify');
  if (wantsNotify && typeof Notification !== 'undefined' && Notification.permission === 'default') {
    Notification.requestPermission().catch(() => {});
  }
});

$('#client-export').addEventListener('click', () => {
  saveFile('trellis-settings.json', 'application/json', JSON.stringify(profile, null, 2));
});

$('#client-import').addEventListener('change', async (event) => {
  const file = event.target.files?.[0];
  event.target.value = '';
  if (!file) return;
  if (file.size > 256 << 10) {
    showClientStatus('That file is too large to be a settings file.');
    return;
  }
  try {
    profile = decodeProfile(await file.text());
    encodeProfile(profile);
  } catch (err) {
    showClientStatus(`Not imported: ${err.message}`);
    return;
  }
  persistProfile();
  applyProfile();
  showClientStatus('Imported.');
});

// The transcript comes from the edge (the whole session as the stream keeps
// it); if the edge cannot give it, from what the page shows.
for (const button of document.querySelectorAll('[data-transcript]')) {
  button.addEventListener('click', async () => {
    const html = button.dataset.transcript === 'html';
    const name = downloadName(game, new Date(), html ? 'html' : 'txt');
    const type = html ? 'text/html' : 'text/plain';
    try {
      const res = await fetch(`/api/transcript?game=${encodeURIComponent(game)}&format=${html ? 'html' : 'text'}`, {
        credentials: 'same-origin',
        headers: token ? { Authorization: 'Bearer ' + token } : {},
      });
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      saveFile(name, type, await res.text());
      return;
    } catch {
      showClientStatus('The server could not give the whole transcript: this file holds what the page shows.');
    }
    saveFile(name, type, html ? transcriptHTML(output, document.title) : transcriptText(output));
  });
}

function saveFile(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type: type + ';charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Macros and the number-pad keypad, anywhere but in other form fields.
document.addEventListener(
  'keydown',
  (event) => {
    if (event.isComposing || event.repeat) return;
    const t = event.target;
    if (t !== input && t.closest?.('input, textarea, select')) return;
    const command = commandForKey(event, rules);
    if (command === null) return;
    // The number pad types digits into a line being written ("give 10
    // coins"); it walks only from an empty box, unless a macro took the key.
    const macro = rules.macros.some((m) => m.key === keyName(event));
    if (!macro && event.code.startsWith('Numpad') && input.value !== '') return;
    event.preventDefault();
    event.stopPropagation();
    sendUnrecorded(command);
  },
  true,
);

/** Sends a macro's or the keypad's command: not a line of the history. */
function sendUnrecorded(command) {
  const sent = sendLine(command);
  if (sent === 0) showNotice('Not connected.');
  for (let i = 0; i < sent; i++) noteSent(null);
}

for (const button of document.querySelectorAll('#keypad [data-command]')) {
  button.addEventListener('click', () => {
    sendUnrecorded(button.dataset.command);
  });
}

fillClientForm();
if (remoteProfile.enabled) {
  remoteProfile
    .load()
    .then((stored) => {
      if (stored === null) {
        // First visit with this account: the browser's profile becomes it.
        persistProfile();
        return;
      }
      profile = stored;
      saveLocalProfile(local, profile);
      applyProfile();
      showClientStatus('Settings loaded from your account.');
    })
    .catch((err) => showClientStatus(`Settings from your account could not be loaded: ${err.message}`));
} else {
  showClientStatus('Settings are kept in this browser (sign in to share them between devices).');
}
// ---- end player features ----
