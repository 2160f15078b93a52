import { test } from 'node:test';
import assert from 'node:assert/strict';

import { normalizeGames, playPath, playersLabel, renderGames } from '../static/games.js';
import { Document } from './helpers.mjs';

test('games are normalised from the /api/games answer', () => {
  assert.deepEqual(
    normalizeGames([
      { id: 'demo', name: 'Trellis Demo', description: 'A demo.', players: 3 },
      { id: 'quiet', name: '', players: null },
      { id: '', name: 'no id' },
      null,
      'x',
      { id: 'odd', name: 5, description: 7, players: 'many' },
    ]),
    [
      { id: 'demo', name: 'Trellis Demo', description: 'A demo.', players: 3 },
      { id: 'quiet', name: 'quiet', description: '', players: null },
      { id: 'odd', name: 'odd', description: '', players: null },
    ],
  );
  assert.deepEqual(normalizeGames({ games: [] }), []);
});

test('play links escape the id', () => {
  assert.equal(playPath('demo'), '/play/demo');
  assert.equal(playPath('a/b?c'), '/play/a%2Fb%3Fc');
});

test('players labels', () => {
  assert.equal(playersLabel(null), '');
  assert.equal(playersLabel(1), '1 player in the game');
  assert.equal(playersLabel(0), '0 players in the game');
});

test('the list renders links, counts and descriptions as text', () => {
  const doc = new Document();
  const ul = doc.createElement('ul');
  ul.appendChild(doc.createElement('li'));
  renderGames(ul, normalizeGames([
    { id: 'demo', name: '<b>Demo</b>', description: 'Fun', players: 2 },
    { id: 'x', name: 'X', players: null },
  ]));
  assert.equal(ul.children.length, 2);
  const [demo, x] = ul.children;
  assert.equal(demo.children[0].href, '/play/demo');
  assert.equal(demo.children[0].textContent, '<b>Demo</b>');
  assert.equal(demo.children[1].textContent, '2 players in the game');
  assert.equal(demo.children[2].textContent, 'Fun');
  assert.equal(x.children.length, 1, 'no players badge or description when unknown');
});
