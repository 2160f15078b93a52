// The games page: lists the games from /api/games, each linking to its play page.

import { normalizeGames, renderGames } from './games.js';

const list = document.querySelector('#games');
const status = document.querySelector('#games-status');

async function load() {
  try {
    const response = await fetch('/api/games', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const games = normalizeGames(await response.json());
    renderGames(list, games);
    status.textContent = games.length === 0 ? 'No games are open right now.' : '';
    status.hidden = games.length !== 0;
  } catch (err) {
    status.hidden = false;
    status.textContent = `Could not load the list of games (${err.message}). Reload the page to try again.`;
  }
}

load();
