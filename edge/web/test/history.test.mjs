import { test } from 'node:test';
import assert from 'node:assert/strict';

import { InputHistory } from '../static/history.js';
import { memoryStorage } from './helpers.mjs';

test('Up walks back, Down walks forward and restores the draft', () => {
  const h = new InputHistory();
  h.add('north');
  h.add('look');
  h.add('say hi');
  assert.equal(h.previous('draft text'), 'say hi');
  assert.equal(h.previous('say hi'), 'look');
  assert.equal(h.previous('look'), 'north');
  assert.equal(h.previous('north'), null, 'stops at the oldest');
  assert.equal(h.next(), 'look');
  assert.equal(h.next(), 'say hi');
  assert.equal(h.next(), 'draft text', 'past the newest comes the draft back');
  assert.equal(h.next(), null, 'stops at the draft');
});

test('an empty history has nothing to show', () => {
  const h = new InputHistory();
  assert.equal(h.previous(''), null);
  assert.equal(h.next(), null);
});

test('sending restarts navigation from the newest line', () => {
  const h = new InputHistory();
  h.add('a');
  h.add('b');
  assert.equal(h.previous(''), 'b');
  assert.equal(h.previous('b'), 'a');
  h.add('a');
  assert.equal(h.previous(''), 'a');
  assert.equal(h.previous('a'), 'b');
});

test('no duplicates in a row, no empty lines', () => {
  const h = new InputHistory();
  h.add('look');
  h.add('look');
  h.add('');
  h.add('   ');
  h.add('north');
  h.add('look');
  assert.deepEqual(h.entries(), ['look', 'north', 'look']);
});

test('lines typed while the game echoes are never recorded, in memory or storage', () => {
  const storage = memoryStorage();
  const h = new InputHistory({ storage, key: 'k' });
  h.add('connect bob');
  h.add('hunter2', { secret: true });
  h.add('look');
  assert.deepEqual(h.entries(), ['connect bob', 'look']);
  assert.ok(!storage.getItem('k').includes('hunter2'));
  assert.equal(h.previous(''), 'look');
  assert.equal(h.previous('look'), 'connect bob');
  assert.equal(h.previous('connect bob'), null);
});

test('the history is capped, oldest lines going first', () => {
  const h = new InputHistory({ cap: 200 });
  for (let i = 0; i < 250; i++) h.add('line ' + i);
  const e = h.entries();
  assert.equal(e.length, 200);
  assert.equal(e[0], 'line 50');
  assert.equal(e[199], 'line 249');
});

test('the history persists in storage and is capped on load', () => {
  const storage = memoryStorage();
  const a = new InputHistory({ storage, key: 'trellis.history.demo', cap: 3 });
  a.add('one');
  a.add('two');
  const b = new InputHistory({ storage, key: 'trellis.history.demo', cap: 3 });
  assert.deepEqual(b.entries(), ['one', 'two']);
  storage.setItem('trellis.history.demo', JSON.stringify(['1', '2', '3', '4', '5']));
  assert.deepEqual(new InputHistory({ storage, key: 'trellis.history.demo', cap: 3 }).entries(), ['3', '4', '5']);
});

test('lines added by another tab are kept when this tab adds one', () => {
  const storage = memoryStorage();
  const a = new InputHistory({ storage, key: 'k' });
  const b = new InputHistory({ storage, key: 'k' });
  a.add('from a');
  b.add('from b');
  assert.deepEqual(new InputHistory({ storage, key: 'k' }).entries(), ['from a', 'from b']);
});

test('corrupt or failing storage degrades to memory', () => {
  const storage = memoryStorage();
  storage.setItem('k', '{not json');
  const h = new InputHistory({ storage, key: 'k' });
  assert.deepEqual(h.entries(), []);
  h.add('x');
  assert.deepEqual(h.entries(), ['x']);

  const broken = {
    getItem() {
      throw new Error('denied');
    },
    setItem() {
      throw new Error('quota');
    },
  };
  const g = new InputHistory({ storage: broken, key: 'k' });
  g.add('still works');
  assert.equal(g.previous(''), 'still works');

  storage.setItem('j', JSON.stringify(['ok', 42, null, 'fine']));
  assert.deepEqual(new InputHistory({ storage, key: 'j' }).entries(), ['ok', 'fine']);
});

test('forget removes the newest record of a line from memory and storage', () => {
  const storage = memoryStorage();
  const h = new InputHistory({ storage });
  h.add('look');
  h.add('hunter2');
  h.add('say hi');
  h.add('hunter2');
  h.forget('hunter2');
  assert.deepEqual(h.lines, ['look', 'hunter2', 'say hi']);
  h.forget('hunter2');
  h.forget('not there');
  assert.deepEqual(h.lines, ['look', 'say hi']);
  assert.ok(!storage.getItem('trellis.history').includes('hunter2'));
  assert.equal(h.previous(''), 'say hi');
});
