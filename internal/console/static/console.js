// The console page: sign-in, then one view at a time, chosen by the URL's
// hash (#sessions, #transcript?user=U&game=G, #games, #events, #control,
// #cluster). Each view refreshes itself while it is shown and stops when
// it is not.

import { api, Unauthorized } from './api.js';
import { SessionsView } from './sessions.js';
import { TranscriptView } from './transcript.js';
import { GamesView } from './games.js';
import { EventsView } from './events.js';
import { ControlView, ClusterView } from './health.js';

const $ = (id) => document.getElementById(id);

let current = null;

function showLogin(message = '') {
  if (current) current.hide();
  current = null;
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').focus();
}

/** What views call with a failed request's error. */
function failed(err) {
  if (err instanceof Unauthorized) {
    showLogin('Your sign-in expired; sign in again.');
    return true;
  }
  return false;
}

const views = {
  sessions: new SessionsView(failed),
  transcript: new TranscriptView(failed),
  games: new GamesView(failed),
  events: new EventsView(failed),
  control: new ControlView(failed),
  cluster: new ClusterView(failed),
};

function route() {
  const hash = location.hash.replace(/^#/, '') || 'sessions';
  const [name, query] = hash.split('?');
  const view = views[name] ?? views.sessions;
  if (current) current.hide();
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.view === name || (name === 'transcript' && a.dataset.view === 'sessions'));
  }
  current = view;
  view.show(new URLSearchParams(query ?? ''));
}

function signedIn(operator) {
  $('login').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('operator').textContent = operator;
  route();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  try {
    const me = await api('/api/login', { method: 'POST', body: { token: $('token').value.trim() } });
    $('token').value = '';
    signedIn(me.operator);
  } catch (err) {
    $('login-error').textContent = err.message;
  }
});

$('logout').addEventListener('click', async () => {
  try {
    await api('/api/logout', { method: 'POST', body: {} });
  } finally {
    showLogin();
  }
});

window.addEventListener('hashchange', () => {
  if ($('login').hidden) route();
});

(async () => {
  try {
    const me = await api('/api/me');
    signedIn(me.operator);
  } catch (err) {
    showLogin(err instanceof Unauthorized ? '' : err.message);
  }
})();
