import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Transcript } from '../static/transcript.js';
import { memoryStorage } from './helpers.mjs';

test('frames that draw the output survive a save and restore', () => {
  const storage = memoryStorage();
  const a = new Transcript(storage, 'demo');
  a.record({ type: 'output', id: '1-0', text: '\x1b[31mred\x1b[0m\n', prompt: false });
  a.record({ type: 'output', id: '2-0', text: '> ', prompt: true });
  a.record({ type: 'input', id: '3-0', text: 'look' });
  a.record({ type: 'input', id: '3-1' }); // an empty line: the edge omits the text
  a.record({ type: 'gap', message: 'lost' });
  a.record({ type: 'status', id: '4-0', state: 'reconnected', message: 'back' });
  a.record({ type: 'gmcp', id: '5-0', package: 'Char.Vitals', data: {} });
  a.record({ type: 'echo', id: '6-0', server: true });
  a.record({ type: 'error', code: 'input_lost', message: '1 line you typed did not reach the game' });
  a.save();
  const b = new Transcript(storage, 'demo');
  assert.deepEqual(b.restore(), [
    { type: 'output', text: '\x1b[31mred\x1b[0m\n', prompt: false },
    { type: 'output', text: '> ', prompt: true },
    { type: 'input', text: 'look' },
    { type: 'input', text: '' },
    { type: 'gap', message: 'lost' },
    { type: 'status', state: 'reconnected', message: 'back' },
    { type: 'error', code: 'input_lost', message: '1 line you typed did not reach the game' },
  ]);
  assert.deepEqual(new Transcript(storage, 'other').restore(), [], 'each game has its own');
});

test('redacted input is never recorded', () => {
  const storage = memoryStorage();
  const t = new Transcript(storage, 'demo');
  t.record({ type: 'input', id: '1-0', redacted: true });
  t.record({ type: 'input', id: '2-0', redacted: true, text: 'hunter2' });
  t.save();
  assert.deepEqual(new Transcript(storage, 'demo').restore(), []);
  assert.ok(!storage.getItem('trellis.transcript.demo').includes('hunter2'));
});

test('the oldest frames go first past the size cap', () => {
  const storage = memoryStorage();
  const t = new Transcript(storage, 'demo', { maxChars: 1000 });
  for (let i = 0; i < 100; i++) t.record({ type: 'output', text: `line ${i}`.padEnd(100, '.') + '\n' });
  t.save();
  const frames = new Transcript(storage, 'demo', { maxChars: 1000 }).restore();
  assert.ok(frames.length > 0 && frames.length < 10, `${frames.length} frames kept`);
  assert.match(frames[frames.length - 1].text, /^line 99/);
  // A single frame larger than the cap is not kept at all.
  const big = new Transcript(storage, 'big', { maxChars: 100 });
  big.record({ type: 'output', text: 'x'.repeat(500) });
  assert.deepEqual(big.frames, []);
});

test('junk in storage restores as nothing, and a broken storage is harmless', () => {
  const storage = memoryStorage();
  storage.setItem('trellis.transcript.demo', '{"not":"an array"}');
  assert.deepEqual(new Transcript(storage, 'demo').restore(), []);
  storage.setItem('trellis.transcript.demo', '[null, 5, {"type":"output"}, {"type":"output","text":"ok"}]');
  assert.deepEqual(new Transcript(storage, 'demo').restore(), [{ type: 'output', text: 'ok', prompt: false }]);
  storage.setItem('trellis.transcript.demo', 'not json');
  assert.deepEqual(new Transcript(storage, 'demo').restore(), []);
  const broken = {
    getItem() {
      throw new Error('denied');
    },
    setItem() {
      throw new Error('quota');
    },
  };
  const t = new Transcript(broken, 'demo');
  t.record({ type: 'output', text: 'x' });
  t.save();
  assert.deepEqual(t.restore(), []);
  assert.deepEqual(new Transcript(null, 'demo').restore(), []);
});

test('line edits and links split across frames redraw the same after a restore', async () => {
  const { Terminal } = await import('../static/terminal.js');
  const { Document, lineTexts } = await import('./helpers.mjs');
  const frames = [
    { type: 'output', id: '1-0', text: '[HP:6/6]:', prompt: false },
    { type: 'output', id: '2-0', text: '\x1b[G\x1b[2K(chat) hi\nProgress 10%', prompt: false },
    { type: 'output', id: '3-0', text: '\rProgress 99%\n\x1b]8;;https://x.test/\x1b\\', prompt: false },
    { type: 'output', id: '4-0', text: 'docs\x1b]8;;\x1b\\ \x1b]7701;{"cmds":["look"]}\x1b\\look\n', prompt: false },
  ];
  const draw = (list) => {
    const doc = new Document();
    const output = doc.createElement('div');
    const term = new Terminal(output, { schedule: () => {} });
    for (const f of list) term.write(f.text, { prompt: f.prompt });
    return output;
  };
  const storage = memoryStorage();
  const a = new Transcript(storage, 'demo');
  for (const f of frames) a.record(f);
  a.save();
  const live = draw(frames);
  const restored = draw(new Transcript(storage, 'demo').restore());
  assert.deepEqual(lineTexts(restored), ['(chat) hi', 'Progress 99%', 'docs look']);
  assert.deepEqual(lineTexts(restored), lineTexts(live));
  const tags = (o) => o.children[2].childNodes.map((n) => n.tagName ?? '#text');
  assert.deepEqual(tags(restored), ['A', '#text', 'BUTTON']);
});
