import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MAX_MATCHES, counterText, findMatches, step } from '../static/search.js';

test('finds every match, case-insensitively, oldest first', () => {
  const lines = ['A Rat arrives.', 'nothing', 'The rat bites you. rat!', ''];
  assert.deepEqual(findMatches(lines, 'rat'), [
    { line: 0, start: 2, end: 5 },
    { line: 2, start: 4, end: 7 },
    { line: 2, start: 19, end: 22 },
  ]);
  assert.deepEqual(findMatches(lines, ''), []);
  assert.deepEqual(findMatches(lines, 'dragon'), []);
});

test('overlapping occurrences count once each, left to right', () => {
  assert.deepEqual(
    findMatches(['aaaa'], 'aa').map((m) => m.start),
    [0, 2],
  );
});

test('a flood of matches keeps the newest MAX_MATCHES', () => {
  const lines = Array.from({ length: 3000 }, (_, i) => `x line ${i}`);
  const m = findMatches(lines, 'x');
  assert.equal(m.length, MAX_MATCHES);
  assert.equal(m[m.length - 1].line, 2999);
  assert.equal(m[0].line, 3000 - MAX_MATCHES);
});

test('stepping starts at the newest and wraps both ways', () => {
  assert.equal(step(0, -1, -1), -1);
  assert.equal(step(5, -1, -1), 4);
  assert.equal(step(5, 4, -1), 3);
  assert.equal(step(5, 0, -1), 4);
  assert.equal(step(5, 4, 1), 0);
  assert.equal(step(5, 9, 1), 4);
});

test('the counter says where the reader is', () => {
  assert.equal(counterText('', 0, -1), '');
  assert.equal(counterText('x', 0, -1), 'No matches');
  assert.equal(counterText('x', 12, 2), '3 of 12');
  assert.equal(counterText('x', MAX_MATCHES, 0), `1 of ${MAX_MATCHES}+`);
});
