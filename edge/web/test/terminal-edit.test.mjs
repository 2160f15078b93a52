import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Terminal, findUrls } from '../static/terminal.js';
import { Document, Element, lineTexts } from './helpers.mjs';

const ESC = '\x1b';
const ST = `${ESC}\\`;

// What the live pane and the command menu use beyond the shared fake DOM.
Object.defineProperties(Element.prototype, {
  lastElementChild: {
    configurable: true,
    get() {
      return this.children[this.children.length - 1] ?? null;
    },
  },
  previousElementSibling: {
    configurable: true,
    get() {
      if (!this.parentNode) return null;
      const siblings = this.parentNode.children;
      return siblings[siblings.indexOf(this) - 1] ?? null;
    },
  },
});
Element.prototype.cloneNode = function cloneNode(deep) {
  const c = this.ownerDocument.createElement(this.tagName);
  c.className = this.className;
  for (const [k, v] of this.attributes) c.setAttribute(k, v);
  if (deep) for (const n of this.childNodes) c.appendChild(n.nodeType === 3 ? this.ownerDocument.createTextNode(n.data) : n.cloneNode(true));
  return c;
};
Element.prototype.contains = function contains(n) {
  for (let x = n; x; x = x.parentNode) if (x === this) return true;
  return false;
};
Element.prototype.focus = function focus() {
  this.ownerDocument.activeElement = this;
};

function setup(options = {}) {
  const doc = new Document();
  const wrap = doc.createElement('div');
  const output = doc.createElement('div');
  wrap.appendChild(output);
  const frames = [];
  const commands = [];
  const term = new Terminal(output, {
    schedule: (cb) => frames.push(cb),
    onCommand: (cmd, how) => commands.push([cmd, how.prompt]),
    ...options,
  });
  const flush = () => {
    while (frames.length) frames.shift()();
  };
  return { doc, wrap, output, term, flush, commands };
}

// Every element under a node, depth first.
function elements(node, out = []) {
  for (const c of node.childNodes) {
    if (c.nodeType === 1) {
      out.push(c);
      elements(c, out);
    }
  }
  return out;
}

test('bare CR overwrites the line from column 0, as a terminal does', () => {
  const { output, term } = setup();
  term.write('Loading 10%');
  term.write('\rLoading 50%');
  term.write('\rLoading 100%\n');
  term.write('abcdef\rXY\n');
  assert.deepEqual(lineTexts(output), ['Loading 100%', 'XYcdef']);
});

test('ESC[G ESC[2K wipes a prompt and the message takes its line (issue 14)', () => {
  const { output, term } = setup();
  term.write('[HP:6/6 MP:5/5]:');
  term.write(`${ESC}[G${ESC}[2K(broadcast) someone: hello\n[HP:6/6 MP:5/5]:`);
  assert.deepEqual(lineTexts(output), ['(broadcast) someone: hello', '[HP:6/6 MP:5/5]:']);
});

test('a GA prompt edited by the next chunk is overwritten, not ended', () => {
  const { output, term } = setup();
  term.write('> ', { prompt: true });
  term.write(`${ESC}[1G${ESC}[Knews\n`);
  term.write('> ', { prompt: true });
  term.write('\r\x1b[2Kmore\n');
  term.write('> ', { prompt: true });
  term.write('plain');
  assert.deepEqual(lineTexts(output), ['news', 'more', '> ', 'plain']);
});

test('erase in line: to the end, to the start (cursor included), whole line', () => {
  const { output, term } = setup();
  term.write(`abcdef${ESC}[3G${ESC}[K\n`);
  term.write(`abcdef${ESC}[3G${ESC}[0KXY\n`);
  term.write(`abcdef${ESC}[3G${ESC}[1K\n`);
  term.write(`abcdef${ESC}[2K\n`);
  term.write(`abcdef${ESC}[2Kgh\n`);
  assert.deepEqual(lineTexts(output), ['ab', 'abXY', '   def', '', '      gh']);
});

test('cursor to column pads past the end and overwrites inside', () => {
  const { output, term } = setup();
  term.write(`ab${ESC}[6Gx\n`);
  term.write(`hello${ESC}[2GEL\n`);
  term.write(`x${ESC}[99999Gy\n`);
  assert.deepEqual(lineTexts(output).slice(0, 2), ['ab   x', 'hELlo']);
  assert.equal(lineTexts(output)[2].length, 1000, 'a huge column is clamped');
});

test('overwriting keeps the styles of what is left', () => {
  const { output, term } = setup();
  term.write(`${ESC}[31mred${ESC}[32mgreen${ESC}[0m\r${ESC}[34mB\n`);
  const nodes = output.children[0].childNodes;
  assert.deepEqual(
    nodes.map((n) => [n.className ?? '', n.textContent]),
    [
      ['fg-4', 'B'],
      ['fg-1', 'ed'],
      ['fg-2', 'green'],
    ],
  );
});

test('appending to the open line only appends nodes; an edit rebuilds it', () => {
  const { output, term } = setup();
  term.write('Name: ');
  const line = output.children[0];
  const first = line.childNodes[0];
  term.write('bob');
  assert.equal(line.childNodes[0], first, 'the drawn text was not redrawn');
  assert.equal(line.childNodes.length, 2);
  term.write('\rX');
  assert.notEqual(line.childNodes[0], first);
  assert.equal(line.textContent, 'Xame: bob');
  assert.equal(output.children.length, 1);
});

test('CR and line edits never touch a finished line', () => {
  const { output, term } = setup();
  term.write('done\n');
  term.write(`\r${ESC}[2K${ESC}[1Knext`);
  assert.deepEqual(lineTexts(output), ['done', 'next']);
});

test('plain http(s) URLs become safe links; nothing else does', () => {
  const { output, term } = setup();
  term.write('see https://example.com/a_b?c=d, or (http://x.test/p) and ftp://no javascript:alert(1) www.no.test\n');
  const links = elements(output).filter((e) => e.tagName === 'A');
  assert.deepEqual(
    links.map((a) => a.getAttribute('href')),
    ['https://example.com/a_b?c=d', 'http://x.test/p'],
  );
  for (const a of links) {
    assert.equal(a.getAttribute('target'), '_blank');
    assert.equal(a.getAttribute('rel'), 'noopener noreferrer');
  }
  assert.equal(output.textContent, 'see https://example.com/a_b?c=d, or (http://x.test/p) and ftp://no javascript:alert(1) www.no.test');
});

test('a URL split across two writes is one link', () => {
  const { output, term } = setup();
  term.write('go to https://exa');
  term.write('mple.com/path now\n');
  const links = elements(output).filter((e) => e.tagName === 'A');
  assert.deepEqual(
    links.map((a) => a.getAttribute('href')),
    ['https://example.com/path'],
  );
  assert.equal(output.textContent, 'go to https://example.com/path now');
});

test('findUrls trims sentence punctuation and unbalanced brackets', () => {
  const t = 'a https://w.test/wiki/Foo_(bar). b http://h.test/x], c https://h.test/?q="x" https://';
  assert.deepEqual(
    findUrls(t).map((u) => t.slice(u.start, u.end)),
    ['https://w.test/wiki/Foo_(bar)', 'http://h.test/x', 'https://h.test/?q='],
  );
});

test('OSC 8 hyperlinks: http(s) only, one element across styles, closed at end of line', () => {
  const { output, term } = setup();
  term.write(`${ESC}]8;;https://mud.test/help${ST}the ${ESC}[1mhelp${ESC}[0m page\nnot a link\n`);
  term.write(`${ESC}]8;;javascript:alert(1)${ST}evil${ESC}]8;;${ST}\n`);
  const links = elements(output).filter((e) => e.tagName === 'A');
  assert.equal(links.length, 1);
  assert.equal(links[0].getAttribute('href'), 'https://mud.test/help');
  assert.equal(links[0].getAttribute('rel'), 'noopener noreferrer');
  assert.equal(links[0].getAttribute('target'), '_blank');
  assert.equal(links[0].textContent, 'the help page');
  assert.deepEqual(lineTexts(output), ['the help page', 'not a link', 'evil']);
});

test('OSC 8 closed explicitly ends the link mid-line', () => {
  const { output, term } = setup();
  term.write(`a ${ESC}]8;;https://x.test/${ST}link${ESC}]8;;${ST} after\n`);
  const [a] = elements(output).filter((e) => e.tagName === 'A');
  assert.equal(a.textContent, 'link');
  assert.equal(output.textContent, 'a link after');
});

const cmdLink = (obj, text) => `${ESC}]7701;${JSON.stringify(obj)}${ST}${text}${ESC}]7701;${ST}`;

test('an OSC 7701 command link with one command is a button that sends it', () => {
  const { output, term, commands } = setup();
  term.write(`You see ${cmdLink({ cmds: ['look sword'], hints: ['look at it'] }, 'a sword')} here.\n`);
  const [b] = elements(output).filter((e) => e.tagName === 'BUTTON');
  assert.equal(b.textContent, 'a sword');
  assert.equal(b.getAttribute('type'), 'button');
  assert.equal(b.getAttribute('title'), 'look at it');
  assert.equal(b.getAttribute('aria-haspopup'), null);
  let stopped = false;
  b.dispatch('click', { stopPropagation: () => (stopped = true) });
  assert.deepEqual(commands, [['look sword', false]]);
  assert.ok(stopped);
  assert.equal(output.textContent, 'You see a sword here.');
});

test('prompt:true hands the command over for the input box', () => {
  const { output, term, commands } = setup();
  term.write(cmdLink({ cmds: ['say '], prompt: true }, 'talk') + '\n');
  elements(output).find((e) => e.tagName === 'BUTTON').dispatch('click', {});
  assert.deepEqual(commands, [['say ', true]]);
});

test('a command link with several commands opens a keyboard menu', () => {
  const { doc, wrap, output, term, commands } = setup();
  term.write(cmdLink({ cmds: ['n', 'look n'], hints: ['go north', 'look north'] }, 'north') + '\n');
  const b = elements(output).find((e) => e.tagName === 'BUTTON');
  assert.equal(b.getAttribute('aria-haspopup'), 'menu');
  b.dispatch('click', {});
  const menu = term.openMenuElement;
  assert.ok(menu);
  assert.equal(menu.parentNode, wrap, 'the menu is beside the output, not in the log');
  assert.equal(menu.getAttribute('role'), 'menu');
  const items = menu.children;
  assert.deepEqual(
    items.map((i) => [i.getAttribute('role'), i.textContent]),
    [
      ['menuitem', 'go north'],
      ['menuitem', 'look north'],
    ],
  );
  assert.equal(doc.activeElement, items[0], 'focus moves into the menu');
  assert.equal(b.getAttribute('aria-expanded'), 'true');
  menu.dispatch('keydown', { key: 'ArrowDown', target: items[0] });
  assert.equal(doc.activeElement, items[1]);
  menu.dispatch('keydown', { key: 'ArrowDown', target: items[1] });
  assert.equal(doc.activeElement, items[0], 'wraps');
  menu.dispatch('keydown', { key: 'Escape', target: items[0] });
  assert.equal(term.openMenuElement, null);
  assert.equal(doc.activeElement, b, 'Escape gives focus back to the link');
  assert.equal(b.getAttribute('aria-expanded'), 'false');
  assert.deepEqual(commands, []);

  b.dispatch('click', {});
  term.openMenuElement.children[1].dispatch('click', {});
  assert.deepEqual(commands, [['look n', false]]);
  assert.equal(term.openMenuElement, null);
});

test('a command link left open closes at the end of the line; a forged one is text', () => {
  const { output, term } = setup();
  term.write(`${ESC}]7701;{"cmds":["x"]}${ST}open\nnext line\n`);
  term.write(`${ESC}]7701;{"cmds":["a\\u0007"]}${ST}bad\n`);
  const buttons = elements(output).filter((e) => e.tagName === 'BUTTON');
  assert.equal(buttons.length, 1);
  assert.equal(buttons[0].textContent, 'open');
  assert.deepEqual(lineTexts(output), ['open', 'next line', 'bad']);
});

test('links inside a line the game then overwrites are rebuilt, not duplicated', () => {
  const { output, term } = setup();
  term.write('x https://a.test/ y');
  term.write(`\r${ESC}[2K${cmdLink({ cmds: ['go'] }, 'go')}\n`);
  const els = elements(output);
  assert.deepEqual(
    els.map((e) => e.tagName),
    ['DIV', 'BUTTON'],
  );
});

test('the live pane shows the newest lines while the player reads back', () => {
  const doc = new Document();
  const live = doc.createElement('div');
  live.hidden = true;
  const { output, term, flush } = setup({ live });
  output.clientHeight = 100;
  output.scrollHeight = 1000;
  for (let i = 0; i < 20; i++) term.write(`line ${i}\n`);
  flush();
  assert.ok(live.hidden, 'hidden while following');
  output.scrollTop = 300;
  output.dispatch('scroll');
  term.write('line 20\nprompt> ');
  flush();
  assert.equal(live.hidden, false);
  assert.deepEqual(lineTexts(live), ['line 16', 'line 17', 'line 18', 'line 19', 'line 20', 'prompt> ']);
  assert.notEqual(live.children[0], output.children[16], 'copies, not the lines themselves');
  term.jumpToBottom();
  assert.ok(live.hidden);
  assert.equal(live.children.length, 0);
});
