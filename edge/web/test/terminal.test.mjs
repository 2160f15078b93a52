import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Terminal, gridSize } from '../static/terminal.js';
import { Document, lineTexts } from './helpers.mjs';

const ESC = '\x1b';

// A terminal on a fake output element; frames run when flush() is called,
// standing in for requestAnimationFrame.
function setup(options = {}) {
  const doc = new Document();
  const output = doc.createElement('div');
  const frames = [];
  const moreBelow = [];
  const term = new Terminal(output, {
    schedule: (cb) => frames.push(cb),
    onMoreBelow: (b) => moreBelow.push(b),
    ...options,
  });
  const flush = () => {
    while (frames.length) frames.shift()();
  };
  return { doc, output, term, flush, moreBelow };
}

test('text becomes one element per line, blank lines included', () => {
  const { output, term } = setup();
  term.write('first\n\nthird\n');
  assert.deepEqual(lineTexts(output), ['first', '', 'third']);
  assert.ok(output.children.every((l) => l.classList.contains('line')));
});

test('a chunk without a newline shows at once and the next chunk continues it', () => {
  const { output, term } = setup();
  term.write('Hit points: ');
  assert.deepEqual(lineTexts(output), ['Hit points: ']);
  term.write('50\nnext');
  assert.deepEqual(lineTexts(output), ['Hit points: 50', 'next']);
});

test('typed input finishes the prompt line it answers and is marked', () => {
  const { output, term } = setup();
  term.write('> ', { prompt: true });
  term.writeInput('look');
  term.write('You see a room.\n');
  assert.deepEqual(lineTexts(output), ['> look', 'You see a room.']);
  const echo = output.children[0].childNodes[1];
  assert.equal(echo.className, 'input-echo');
  assert.equal(echo.textContent, 'look');
});

test('input with no open line gets a line of its own', () => {
  const { output, term } = setup();
  term.write('Welcome.\n');
  term.writeInput('north');
  assert.deepEqual(lineTexts(output), ['Welcome.', 'north']);
});

test('output after a marked prompt starts a new line unless it starts with one', () => {
  const { output, term } = setup();
  term.write('HP 10> ', { prompt: true });
  term.write('A rat arrives.\n');
  term.write('HP 10> ', { prompt: true });
  term.write('\nA rat leaves.\n');
  term.write('unmarked> ');
  term.write('continues');
  assert.deepEqual(lineTexts(output), ['HP 10> ', 'A rat arrives.', 'HP 10> ', 'A rat leaves.', 'unmarked> continues']);
});

test('colours render as classes for the theme palette and inline styles otherwise', () => {
  const { output, term } = setup();
  term.write(`plain ${ESC}[31mred ${ESC}[1;34mbold-blue ${ESC}[0;38;5;208morange ${ESC}[48;2;1;2;3mtrue${ESC}[0m end`);
  const nodes = output.children[0].childNodes;
  assert.equal(nodes[0].nodeType, 3, 'default style is a bare text node');
  assert.equal(nodes[0].textContent, 'plain ');
  assert.equal(nodes[1].className, 'fg-1');
  assert.equal(nodes[2].className, 'fg-12 bold', 'bold is bright by default');
  assert.equal(nodes[3].style.color, '#ff8700');
  assert.equal(nodes[4].style.color, '#ff8700');
  assert.equal(nodes[4].style.backgroundColor, '#010203');
  assert.equal(nodes[5].nodeType, 3);
  assert.equal(output.textContent, 'plain red bold-blue orange true end');
});

test('bold as bright can be turned off', () => {
  const { output, term } = setup({ boldIsBright: false });
  term.write(`${ESC}[1;31mx`);
  assert.equal(output.children[0].childNodes[0].className, 'fg-1 bold');
});

test('colour state carries across writes and lines', () => {
  const { output, term } = setup();
  term.write(`${ESC}[32mgreen\nstill`);
  term.write(` green${ESC}[`);
  term.write('0m plain');
  const [l1, l2] = output.children;
  assert.equal(l1.childNodes[0].className, 'fg-2');
  assert.equal(l2.childNodes[0].className, 'fg-2');
  assert.equal(l2.childNodes[0].textContent, 'still');
  assert.equal(l2.childNodes[1].textContent, ' green');
  assert.equal(l2.childNodes[2].nodeType, 3);
  assert.equal(l2.textContent, 'still green plain');
});

test('HTML-looking game text stays text', () => {
  const { output, term } = setup();
  const evil = '<img src=x onerror="alert(1)"><b>bold?</b>&lt;';
  term.write(`${evil}\n${ESC}[31m${evil}\n`);
  term.writeInput('<script>alert(2)</script>');
  term.writeNotice('<i>notice</i>');
  assert.deepEqual(lineTexts(output), [evil, evil, '<script>alert(2)</script>', '<i>notice</i>']);
  // Every element the terminal made is a line div or a span: nothing parsed from the text.
  const tags = new Set();
  const walk = (n) => {
    if (n.nodeType === 1) tags.add(n.tagName);
    n.childNodes.forEach(walk);
  };
  output.childNodes.forEach(walk);
  assert.deepEqual([...tags].sort(), ['DIV', 'SPAN']);
});

test('escape sequences the scrollback does not act on never reach the page', () => {
  const { output, term } = setup();
  term.write(`a${ESC}[Ab${ESC}[6nc${ESC}]0;title\x07d${ESC}[2J${ESC}[H\n`);
  assert.deepEqual(lineTexts(output), ['abcd']);
});

test('notices take a line of their own', () => {
  const { output, term } = setup();
  term.write('half a line');
  term.writeNotice('— some output was lost —', 'gap');
  term.write('more');
  assert.deepEqual(lineTexts(output), ['half a line', '— some output was lost —', 'more']);
  assert.ok(output.children[1].classList.contains('notice-gap'));
});

test('scrollback is capped at the next frame, oldest lines first', () => {
  const { output, term, flush } = setup({ scrollback: 10 });
  for (let i = 0; i < 15; i++) term.write(`line ${i}\n`);
  term.write('open');
  flush();
  const lines = lineTexts(output);
  assert.equal(lines.length, 10);
  assert.equal(lines[0], 'line 6');
  assert.equal(lines[9], 'open');
  term.write(' still open');
  assert.equal(lineTexts(output)[9], 'open still open');
});

test('a flood within one frame is trimmed at once past twice the cap', () => {
  const { output, term } = setup({ scrollback: 100 });
  term.write('x\n'.repeat(1000));
  assert.ok(output.children.length <= 201, `${output.children.length} lines before any frame`);
});

test('lowering the scrollback trims at the next frame', () => {
  const { output, term, flush } = setup({ scrollback: 100 });
  term.write('x\n'.repeat(50));
  term.setScrollback(20);
  flush();
  assert.equal(output.children.length, 20);
});

test('follows new output at the bottom, stops when the player scrolls up', () => {
  const { output, term, flush, moreBelow } = setup();
  output.clientHeight = 100;
  output.scrollHeight = 1000;
  term.write('a\n');
  flush();
  assert.equal(output.scrollTop, 1000, 'pinned to the bottom');

  // The browser clamps; model it: the player scrolls up to 400.
  output.scrollTop = 400;
  output.dispatch('scroll');
  output.scrollHeight = 1100;
  term.write('b\n');
  flush();
  assert.equal(output.scrollTop, 400, 'the reader keeps their place');
  assert.deepEqual(moreBelow, [true]);

  // Content growing below does not count as the player's scroll.
  output.dispatch('scroll');
  term.write('c\n');
  flush();
  assert.equal(output.scrollTop, 400);

  // Back at the bottom: following again.
  output.scrollTop = 1000;
  output.dispatch('scroll');
  assert.deepEqual(moreBelow, [true, false]);
  output.scrollHeight = 1200;
  term.write('d\n');
  flush();
  assert.equal(output.scrollTop, 1200);
});

test('jumpToBottom resumes following', () => {
  const { output, term, flush, moreBelow } = setup();
  output.clientHeight = 100;
  output.scrollHeight = 1000;
  output.scrollTop = 1000;
  output.dispatch('scroll');
  output.scrollTop = 200;
  output.dispatch('scroll');
  term.write('x\n');
  flush();
  assert.deepEqual(moreBelow, [true]);
  term.jumpToBottom();
  assert.equal(output.scrollTop, 1000);
  assert.deepEqual(moreBelow, [true, false]);
  output.scrollHeight = 1300;
  term.write('y\n');
  flush();
  assert.equal(output.scrollTop, 1300);
});

test('trimming while reading back keeps the text under the reader in place', () => {
  const { output, term, flush } = setup({ scrollback: 10 });
  output.clientHeight = 100;
  output.scrollHeight = 10000;
  term.write('x\n'.repeat(10));
  flush();
  output.scrollTop = 100;
  output.dispatch('scroll');
  term.write('y\n'.repeat(3));
  flush();
  // Three 16px lines went from the top, so the view moved up by 48px.
  assert.equal(output.scrollTop, 100 - 48);
  assert.equal(output.children.length, 10);
});

test('grid size fits the area and stays in bounds', () => {
  assert.deepEqual(gridSize({ width: 800, height: 390, charWidth: 8, lineHeight: 19.5 }), { cols: 100, rows: 20 });
  assert.deepEqual(gridSize({ width: 100, height: 20, charWidth: 8, lineHeight: 20 }), { cols: 20, rows: 5 });
  assert.deepEqual(gridSize({ width: 1e6, height: 1e6, charWidth: 8, lineHeight: 20 }), { cols: 500, rows: 200 });
  assert.deepEqual(gridSize({ width: 800, height: 600, charWidth: 0, lineHeight: 0 }), { cols: 80, rows: 24 });
});

test('an empty typed line still ends the prompt line', () => {
  const { output, term } = setup();
  term.write('[Press Enter] ');
  term.writeInput('');
  term.write('continued\n');
  assert.deepEqual(lineTexts(output), ['[Press Enter] ', 'continued']);
});
