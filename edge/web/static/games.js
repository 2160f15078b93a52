// The game list: /api/games turned into links to the play page.

/** The play page address for a game id. */
export function playPath(id) {
  return '/play/' + encodeURIComponent(id);
}

/**
 * Keeps the well-formed entries of an /api/games answer:
 * [{id, name, description, players}], players a number or null (unknown).
 */
export function normalizeGames(json) {
  if (!Array.isArray(json)) return [];
  return json
    .filter((g) => g && typeof g === 'object' && typeof g.id === 'string' && g.id !== '')
    .map((g) => ({
      id: g.id,
      name: typeof g.name === 'string' && g.name !== '' ? g.name : g.id,
      description: typeof g.description === 'string' ? g.description : '',
      players: typeof g.players === 'number' && Number.isFinite(g.players) ? g.players : null,
    }));
}

/**
 * A short phrase for the number of players, or '' when unknown. The
 * number is the game's own count (its MSSP PLAYERS): everyone playing it,
 * by any client, not only on Trellis.
 */
export function playersLabel(players) {
  if (players === null) return '';
  return players === 1 ? '1 player in the game' : `${players} players in the game`;
}

/** The badge's longer explanation. */
export const PLAYERS_TITLE = "Players in the game now, as the game reports it (MSSP): every client, not only Trellis";

/** Renders the games into list (a <ul>), replacing what it held. */
export function renderGames(list, games) {
  const doc = list.ownerDocument;
  const items = games.map((g) => {
    const item = doc.createElement('li');
    item.className = 'game-card';
    const link = doc.createElement('a');
    link.href = playPath(g.id);
    link.className = 'game-link';
    link.textContent = g.name;
    item.appendChild(link);
    const players = playersLabel(g.players);
    if (players) {
      const badge = doc.createElement('span');
      badge.className = 'game-players';
      badge.textContent = players;
      badge.title = PLAYERS_TITLE;
      item.appendChild(badge);
    }
    if (g.description) {
      const p = doc.createElement('p');
      p.className = 'game-description';
      p.textContent = g.description;
      item.appendChild(p);
    }
    return item;
  });
  list.replaceChildren(...items);
}
