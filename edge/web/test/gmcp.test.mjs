import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GmcpInspector, parseGmcpForm } from '../static/gmcp.js';
import { Document } from './helpers.mjs';

test('the inspector keeps the last message per package, sorted by name', () => {
  const doc = new Document();
  const list = doc.createElement('ul');
  const inspector = new GmcpInspector(list);
  inspector.update('Room.Info', { num: 1 });
  inspector.update('Char.Vitals', { hp: 1 });
  inspector.update('Comm.Channel', { text: '<b>hi</b>' });
  inspector.update('Char.Vitals', { hp: 2 });
  assert.equal(inspector.size, 3);
  const names = list.children.map((li) => li.textContent.split(' ')[0]);
  assert.deepEqual(names, ['Char.Vitals', 'Comm.Channel', 'Room.Info']);
  const vitals = list.children[0];
  assert.match(vitals.textContent, /×2/);
  assert.match(vitals.textContent, /"hp": 2/);
  assert.doesNotMatch(vitals.textContent, /"hp": 1/);
  assert.match(list.children[1].textContent, /<b>hi<\/b>/);
  inspector.update('Core.Goodbye', undefined);
  assert.match(list.children[2].textContent, /^Core.Goodbye.*no body/);
});

test('the send form takes a package name and an optional JSON body', () => {
  assert.deepEqual(parseGmcpForm(' Core.Ping ', ''), { package: 'Core.Ping', data: {} });
  assert.deepEqual(parseGmcpForm('Char.Items.Inv', '{"a":1}'), { package: 'Char.Items.Inv', data: { a: 1 } });
  assert.deepEqual(parseGmcpForm('Core.Supports.Set', '["Char 1"]'), {
    package: 'Core.Supports.Set',
    data: ['Char 1'],
  });
  assert.ok(parseGmcpForm('Ping', '').error);
  assert.ok(parseGmcpForm('Core.Ping', '{oops').error);
  assert.ok(parseGmcpForm('', '').error);
});
