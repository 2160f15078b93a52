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
import { loadSettings, saveSettings } from './settings.js';
import { Terminal, gridSize } from './terminal.js';
import { Transcript } from './transcript.js';
import { renderVitals, vitalPairs } from './vitals.js';

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

let settings = loadSettings(local, location.search);
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
  const label = STATE_LABELS[state] ?? state;
  status.textContent = message ? `${label}: ${message}` : label;
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
  // A password field hides the text and keeps it out of autofill history.
  input.type = on ? 'password' : 'text';
  input.classList.toggle('masked', on);
  lineHistory.reset();
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
      draw(frame);
      transcript.record(frame);
      break;
    case 'input':
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
    case 'output':
      terminal.write(frame.text, { prompt: frame.prompt === true });
      break;
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
        const label = STATE_LABELS[frame.state] ?? frame.state;
        terminal.writeNotice(`— ${label}${frame.message ? ': ' + frame.message : ''} —`, frame.state);
      }
      break;
  }
}

function handleGmcp(pkg, data) {
  inspector.update(pkg, data);
  const name = pkg.toLowerCase();
  // Some games split current and maximum values over two packages.
  if ((name === 'char.vitals' || name === 'char.maxstats') && data && typeof data === 'object') {
    vitalsData = { ...vitalsData, ...data };
    drawVitals();
  }
}

/** The gauges: GMCP vitals first, then MSDP pairs (HEALTH / HEALTH_MAX). */
function drawVitals() {
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
  hello: () => helloFrame({ game, token, resume: memory.resume, cols: size.cols, rows: size.rows }),
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
  lineHistory.add(command, { secret: serverEcho });
  input.focus({ preventScroll: true });
}

installSearch(document, { onClose: () => input.focus({ preventScroll: true }) });

$('#input-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  if (!connection.send(inputFrame(text))) {
    showNotice('Not connected: your line is kept and can be sent once the connection is back.');
    return;
  }
  // The line appears in the output when the edge echoes it back; nothing is
  // echoed here, so every tab shows the same transcript.
  lastSent = text;
  lineHistory.add(text, { secret: serverEcho });
  input.value = '';
});

input.addEventListener('keydown', (event) => {
  if (event.isComposing) return;
  switch (event.key) {
    case 'ArrowUp':
    case 'ArrowDown': {
      if (serverEcho) return; // no history at a password prompt
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
  settings = saveSettings(local, {
    fontSize: fontSize.value,
    noColour: noColour.checked,
    boldIsBright: boldBright.checked,
    scrollback: scrollback.value,
  });
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
      if (entry && typeof entry.name === 'string' && entry.name) {
        $('#game-name').textContent = entry.name;
        document.title = `${entry.name} · Trellis`;
      }
    })
    .catch(() => {});
}
input.focus();
