// Throughput of the ANSI parser on colourful MUD-like output.
// Run: node edge/web/bench/ansi.bench.mjs
// (Not a test: kept out of test/ so `node --test edge/web/test/` stays fast.)

import { initialState, parseAnsi } from '../static/ansi.js';

const line =
  '\x1b[1;33mThe Town Square\x1b[0m\n' +
  'A fountain bubbles here. Exits: \x1b[32mnorth\x1b[0m, \x1b[32msouth\x1b[0m.\n' +
  '\x1b[38;5;208mA goblin\x1b[0m hits you for \x1b[1;31m12\x1b[0m damage! \x1b[38;2;120;200;255m(ouch)\x1b[0m\n';
const chunk = line.repeat(200); // ~32 KiB, like one worker batch
const plain = 'Plain text without any escapes at all, as many games send it.\n'.repeat(500);

function bench(name, text) {
  let state = initialState();
  // Warm up, then time a fixed amount of work.
  for (let i = 0; i < 200; i++) state = parseAnsi(state, text).state;
  const rounds = 2000;
  const start = process.hrtime.bigint();
  let segments = 0;
  for (let i = 0; i < rounds; i++) {
    const r = parseAnsi(state, text);
    state = r.state;
    segments += r.segments.length;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const mb = (text.length * rounds) / 1e6;
  console.log(`${name}: ${(mb / seconds).toFixed(0)} MB/s (${((segments / rounds) | 0)} segments per ${text.length}-char chunk)`);
}

bench('coloured', chunk);
bench('plain', plain);
