import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fraction, gaugeKind, renderVitals, vitalPairs } from '../static/vitals.js';
import { Document } from './helpers.mjs';

test('pairs x/maxx in the order the keys came', () => {
  assert.deepEqual(vitalPairs({ hp: 50, maxhp: 100, mp: 20, maxmp: 40, mv: 90, maxmv: 100, level: 5 }), [
    { name: 'hp', value: 50, max: 100 },
    { name: 'mp', value: 20, max: 40 },
    { name: 'mv', value: 90, max: 100 },
  ]);
});

test('other spellings of the maximum and numbers sent as strings', () => {
  assert.deepEqual(vitalPairs({ sp: '7', max_sp: '10', moves: 3, movesmax: 9, ep: 1, MaxEp: 2 }), [
    { name: 'sp', value: 7, max: 10 },
    { name: 'moves', value: 3, max: 9 },
    { name: 'ep', value: 1, max: 2 },
  ]);
});

test('keys without a maximum, or with non-numbers, get no gauge', () => {
  assert.deepEqual(vitalPairs({ hp: 'lots', maxhp: 100, string: 'x', mp: 5, maxmp: null, wp: 1 }), []);
  assert.deepEqual(vitalPairs(null), []);
  assert.deepEqual(vitalPairs([1, 2]), []);
  assert.deepEqual(vitalPairs('hp'), []);
});

test('fraction is clamped to [0, 1] and safe for a zero maximum', () => {
  assert.equal(fraction(50, 100), 0.5);
  assert.equal(fraction(150, 100), 1);
  assert.equal(fraction(-5, 100), 0);
  assert.equal(fraction(5, 0), 0);
});

test('gauge kinds for colour', () => {
  assert.equal(gaugeKind('hp'), 'hp');
  assert.equal(gaugeKind('Mana'), 'mp');
  assert.equal(gaugeKind('moves'), 'mv');
  assert.equal(gaugeKind('xp'), 'other');
});

test('rendering creates, updates and removes gauges', () => {
  const doc = new Document();
  const box = doc.createElement('div');
  box.hidden = true;
  renderVitals(box, vitalPairs({ hp: 50, maxhp: 100, mp: 1, maxmp: 4 }));
  assert.equal(box.hidden, false);
  assert.equal(box.children.length, 2);
  const hp = box.children[0];
  assert.equal(hp.className, 'gauge gauge-hp');
  assert.equal(hp.getAttribute('role'), 'meter');
  assert.equal(hp.getAttribute('aria-valuenow'), '50');
  assert.equal(hp.children[1].firstChild.style.width, '50.0%');
  assert.equal(hp.children[2].textContent, '50/100');

  renderVitals(box, vitalPairs({ hp: 75, maxhp: 100 }));
  assert.equal(box.children.length, 1);
  assert.equal(box.children[0], hp, 'the element is reused');
  assert.equal(hp.children[2].textContent, '75/100');
  assert.equal(hp.children[1].firstChild.style.width, '75.0%');

  renderVitals(box, []);
  assert.equal(box.children.length, 0);
  assert.equal(box.hidden, true);
});

test('a gauge name from the game is text, not markup', () => {
  const doc = new Document();
  const box = doc.createElement('div');
  renderVitals(box, vitalPairs({ '<b>x</b>': 1, 'max<b>x</b>': 2 }));
  assert.equal(box.children[0].children[0].textContent, '<b>x</b>');
});
