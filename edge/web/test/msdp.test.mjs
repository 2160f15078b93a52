import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MSDP_REPORT, MsdpReporter, MsdpState } from '../static/msdp.js';
import { msdpFrame, parseServerFrame } from '../static/protocol.js';
import { vitalPairs } from '../static/vitals.js';

test('HEALTH / HEALTH_MAX as MSDP strings make a gauge pair', () => {
  const s = new MsdpState();
  s.set('HEALTH', '93');
  s.set('HEALTH_MAX', '100');
  s.set('ROOM', { VNUM: '6008' }); // a table: no gauge
  s.set('LEVEL', '5');
  assert.deepEqual(s.pairs(), [{ name: 'HEALTH', value: 93, max: 100 }]);
  s.set('HEALTH', '80');
  assert.deepEqual(s.pairs(), [{ name: 'HEALTH', value: 80, max: 100 }]);
  assert.deepEqual(s.get('ROOM'), { VNUM: '6008' });
});

test('the state is bounded: the least recently updated variable goes', () => {
  const s = new MsdpState(3);
  for (const n of ['A', 'B', 'C']) s.set(n, '1');
  s.set('A', '2'); // A is now the newest
  s.set('D', '1');
  assert.deepEqual([...s.vars.keys()], ['C', 'A', 'D']);
  s.set('', 'x');
  s.set(7, 'x');
  assert.equal(s.vars.size, 3);
});

test('x_max pairs in GMCP bodies too, and x_max is not a gauge of its own', () => {
  assert.deepEqual(vitalPairs({ hp: 1, hp_max: 2, hp_max_max: 3 }), [{ name: 'hp', value: 1, max: 2 }]);
});

test('the REPORT is due once per arming, on the next output', () => {
  const r = new MsdpReporter();
  assert.equal(r.due(), false);
  r.arm();
  r.arm();
  assert.equal(r.due(), true);
  assert.equal(r.due(), false);
  assert.deepEqual(msdpFrame('REPORT', MSDP_REPORT), { type: 'msdp', var: 'REPORT', val: MSDP_REPORT });
  assert.ok(MSDP_REPORT.includes('HEALTH') && MSDP_REPORT.includes('HEALTH_MAX'));
});

test('msdp frames parse; one without a var is dropped', () => {
  assert.deepEqual(parseServerFrame('{"type":"msdp","id":"1-0","var":"HEALTH","val":"95"}'), {
    type: 'msdp',
    id: '1-0',
    var: 'HEALTH',
    val: '95',
  });
  assert.equal(parseServerFrame('{"type":"msdp","val":"95"}'), null);
});
