import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DEFAULT_STYLE,
  applySgr,
  initialState,
  paletteColour,
  parseAnsi,
  parseCommandLink,
  safeLink,
  stripAnsi,
  styleAttributes,
} from '../static/ansi.js';

const ESC = '\x1b';

// Parses chunks in order, carrying state, and returns all segments.
function parseChunks(...chunks) {
  let state = initialState();
  const segments = [];
  for (const chunk of chunks) {
    const r = parseAnsi(state, chunk);
    state = r.state;
    segments.push(...r.segments);
  }
  return { state, segments };
}

// The style in force after an SGR parameter string.
function sgr(params, from = DEFAULT_STYLE) {
  return applySgr(from, params);
}

test('plain text passes through as one default-style segment', () => {
  const { segments } = parseChunks('Hello, world.\n\tIndented.');
  assert.deepEqual(segments, [{ text: 'Hello, world.\n\tIndented.', style: DEFAULT_STYLE }]);
});

test('basic foreground and background colours 30-37 and 40-47', () => {
  for (let i = 0; i < 8; i++) {
    assert.equal(sgr(String(30 + i)).fg, i);
    assert.equal(sgr(String(40 + i)).bg, i);
  }
});

test('bright colours 90-97 and 100-107 map to 8-15', () => {
  for (let i = 0; i < 8; i++) {
    assert.equal(sgr(String(90 + i)).fg, 8 + i);
    assert.equal(sgr(String(100 + i)).bg, 8 + i);
  }
});

test('attributes switch on and off', () => {
  const on = sgr('1;2;3;4;7;8;9');
  assert.deepEqual(
    [on.bold, on.dim, on.italic, on.underline, on.reverse, on.conceal, on.strike],
    [true, true, true, true, true, true, true],
  );
  const off = sgr('22;23;24;27;28;29', on);
  assert.deepEqual(off, { ...DEFAULT_STYLE });
  // 22 clears both bold and dim.
  assert.equal(sgr('22', sgr('1;2')).bold, false);
  assert.equal(sgr('22', sgr('1;2')).dim, false);
  // 21 is double underline; 4:0 is "no underline", 4:3 a curly one.
  assert.equal(sgr('21').underline, true);
  assert.equal(sgr('4:0', sgr('4')).underline, false);
  assert.equal(sgr('4:3').underline, true);
});

test('reset forms: 0, empty parameter list, and 39/49 defaults', () => {
  const styled = sgr('1;31;44;4');
  assert.deepEqual(sgr('0', styled), { ...DEFAULT_STYLE });
  assert.deepEqual(sgr('', styled), { ...DEFAULT_STYLE });
  // An empty parameter between semicolons is a 0 too.
  assert.deepEqual(sgr(';', styled), { ...DEFAULT_STYLE });
  assert.equal(sgr(';32', styled).fg, 2);
  assert.equal(sgr(';32', styled).bold, false);
  const fgDefault = sgr('39', styled);
  assert.equal(fgDefault.fg, null);
  assert.equal(fgDefault.bg, 4);
  assert.equal(fgDefault.bold, true);
  const bgDefault = sgr('49', styled);
  assert.equal(bgDefault.bg, null);
  assert.equal(bgDefault.fg, 1);
});

test('reset in the middle of a parameter list applies in order', () => {
  const s = sgr('1;31;0;32');
  assert.equal(s.bold, false);
  assert.equal(s.fg, 2);
});

test('256 colours in semicolon and colon forms', () => {
  assert.equal(sgr('38;5;196').fg, 196);
  assert.equal(sgr('48;5;21').bg, 21);
  assert.equal(sgr('38:5:208').fg, 208);
  assert.equal(sgr('48:5:0').bg, 0);
  // Parameters after an extended colour are still applied.
  const s = sgr('38;5;100;1;48;5;7');
  assert.equal(s.fg, 100);
  assert.equal(s.bold, true);
  assert.equal(s.bg, 7);
});

test('true colour in semicolon and colon forms, with and without colour space', () => {
  assert.equal(sgr('38;2;255;128;0').fg, '#ff8000');
  assert.equal(sgr('48;2;0;0;0').bg, '#000000');
  assert.equal(sgr('38:2:1:2:3').fg, '#010203');
  assert.equal(sgr('38:2::10:20:30').fg, '#0a141e');
  assert.equal(sgr('38:2:0:10:20:30').fg, '#0a141e');
  const s = sgr('38;2;1;2;3;4');
  assert.equal(s.fg, '#010203');
  assert.equal(s.underline, true);
});

test('malformed extended colours leave the colour unchanged', () => {
  const red = sgr('31');
  assert.equal(sgr('38;5;256', red).fg, 1);
  assert.equal(sgr('38;5', red).fg, 1);
  assert.equal(sgr('38;2;1;2', red).fg, 1);
  assert.equal(sgr('38;2;300;0;0', red).fg, 1);
  assert.equal(sgr('38;9;1', red).fg, 1);
  // 58 (underline colour) is consumed without touching fg/bg.
  const u = sgr('58;5;3;1', red);
  assert.equal(u.fg, 1);
  assert.equal(u.bold, true);
});

test('unknown SGR codes are ignored', () => {
  assert.deepEqual(sgr('5;6;10;11;25;53;73'), { ...DEFAULT_STYLE });
  assert.equal(sgr('5;6;10;11;25;53;73'), DEFAULT_STYLE, 'unchanged style keeps its identity');
});

test('the 256-colour palette: cube and grey ramp', () => {
  assert.equal(paletteColour(16), '#000000');
  assert.equal(paletteColour(21), '#0000ff');
  assert.equal(paletteColour(196), '#ff0000');
  assert.equal(paletteColour(46), '#00ff00');
  assert.equal(paletteColour(231), '#ffffff');
  assert.equal(paletteColour(208), '#ff8700');
  assert.equal(paletteColour(232), '#080808');
  assert.equal(paletteColour(244), '#808080');
  assert.equal(paletteColour(255), '#eeeeee');
});

test('styleAttributes: theme colours as classes, others inline', () => {
  assert.deepEqual(styleAttributes(sgr('31;42')), { classes: ['fg-1', 'bg-2'], color: null, background: null });
  assert.deepEqual(styleAttributes(sgr('97;100')), { classes: ['fg-15', 'bg-8'], color: null, background: null });
  // 256-colour indexes below 16 are theme colours too.
  assert.deepEqual(styleAttributes(sgr('38;5;9')).classes, ['fg-9']);
  assert.deepEqual(styleAttributes(sgr('38;5;196;48;5;232')), {
    classes: [],
    color: '#ff0000',
    background: '#080808',
  });
  assert.deepEqual(styleAttributes(sgr('38;2;1;2;3')), { classes: [], color: '#010203', background: null });
  assert.deepEqual(styleAttributes(sgr('1;2;3;4;9;8')).classes, ['bold', 'dim', 'italic', 'underline', 'strike', 'conceal']);
});

test('bold as bright is an option', () => {
  const boldRed = sgr('1;31');
  assert.deepEqual(styleAttributes(boldRed, { boldIsBright: true }).classes, ['fg-9', 'bold']);
  assert.deepEqual(styleAttributes(boldRed, { boldIsBright: false }).classes, ['fg-1', 'bold']);
  // Already-bright and extended colours are not shifted.
  assert.deepEqual(styleAttributes(sgr('1;91')).classes, ['fg-9', 'bold']);
  assert.equal(styleAttributes(sgr('1;38;5;2')).classes[0], 'fg-10');
  assert.equal(styleAttributes(sgr('1;38;5;100')).color, paletteColour(100));
});

test('reverse video swaps colours, using theme defaults when unset', () => {
  assert.deepEqual(styleAttributes(sgr('7;31;44')).classes, ['fg-4', 'bg-1']);
  assert.deepEqual(styleAttributes(sgr('7')).classes, ['fg-rev', 'bg-rev']);
  assert.deepEqual(styleAttributes(sgr('7;32')).classes, ['fg-rev', 'bg-2']);
  const rgb = styleAttributes(sgr('7;38;2;1;2;3'));
  assert.equal(rgb.background, '#010203');
  assert.deepEqual(rgb.classes, ['fg-rev']);
});

test('segments split where the style changes and merge where it does not', () => {
  const { segments } = parseChunks(`a${ESC}[31mb${ESC}[31mc${ESC}[0md`);
  assert.deepEqual(
    segments.map((s) => [s.text, s.style.fg]),
    [
      ['a', null],
      ['bc', 1],
      ['d', null],
    ],
  );
});

test('style carries across chunks', () => {
  const { segments } = parseChunks(`${ESC}[1;33mgold`, ' coins', `${ESC}[m done`);
  assert.deepEqual(
    segments.map((s) => [s.text, s.style.fg, s.style.bold]),
    [
      ['gold', 3, true],
      [' coins', 3, true],
      [' done', null, false],
    ],
  );
});

test('an escape sequence split at every possible point is held for the next chunk', () => {
  const full = `x${ESC}[1;38;2;10;20;30my${ESC}]0;title${ESC}\\z${ESC}[2Kw`;
  for (let cut = 0; cut <= full.length; cut++) {
    const { segments } = parseChunks(full.slice(0, cut), full.slice(cut));
    const text = segments.map((s) => s.text).join('');
    assert.equal(text, 'xyzw', `cut at ${cut}`);
    const y = segments.find((s) => s.text.includes('y'));
    assert.equal(y.style.fg, '#0a141e', `cut at ${cut}`);
    assert.equal(y.style.bold, true, `cut at ${cut}`);
  }
});

test('a sequence split across many one-character chunks', () => {
  const chunks = Array.from(`${ESC}[38;5;196mred${ESC}[0m`);
  const { segments } = parseChunks(...chunks);
  assert.equal(segments.map((s) => s.text).join(''), 'red');
  assert.ok(segments.every((s) => s.style.fg === 196));
});

test('non-SGR CSI sequences are stripped', () => {
  const samples = [
    `${ESC}[2K`, // erase line
    `${ESC}[6n`, // device status report
    `${ESC}[10;20H`, // cursor position
    `${ESC}[A${ESC}[3B${ESC}[C${ESC}[D`, // cursor moves
    `${ESC}[2J`, // clear screen
    `${ESC}[?25l${ESC}[?1049h`, // private modes
    `${ESC}[?1;2m`, // private-marker "m" is not SGR
    `${ESC}[>4;1m`, // xterm modifyOtherKeys, not SGR
    `${ESC}[0 q`, // cursor style (intermediate byte)
    `${ESC}[s${ESC}[u`,
  ];
  for (const seq of samples) {
    const { segments } = parseChunks(`a${seq}b`);
    assert.equal(segments.map((s) => s.text ?? '').join(''), 'ab', JSON.stringify(seq));
    assert.ok(
      segments.every((s) => s.op !== undefined || s.style === DEFAULT_STYLE),
      `${JSON.stringify(seq)} must not change the style`,
    );
  }
});

test('OSC strings end at BEL or ST and are stripped', () => {
  assert.equal(stripAnsi(`a${ESC}]0;Window title\x07b`), 'ab');
  assert.equal(stripAnsi(`a${ESC}]8;;https://example.com${ESC}\\link${ESC}]8;;${ESC}\\b`), 'alinkb');
  assert.equal(stripAnsi(`a\x9d0;c1 string\x9cb`), 'a0;c1 stringb', 'C1 OSC is a control, dropped alone');
  assert.equal(stripAnsi(`a${ESC}P1$r0m${ESC}\\b`), 'ab', 'DCS');
  assert.equal(stripAnsi(`a${ESC}_apc${ESC}\\b${ESC}^pm\x07c${ESC}Xsos\x07d`), 'abcd');
});

test('an ESC inside an OSC string cancels it and starts a new sequence', () => {
  const { segments } = parseChunks(`a${ESC}]0;title${ESC}[31mred`);
  assert.equal(segments.map((s) => s.text).join(''), 'ared');
  assert.equal(segments[segments.length - 1].style.fg, 1);
});

test('an unterminated OSC gives up after a bound so game text is not lost forever', () => {
  const { segments, state } = parseChunks(`a${ESC}]0;` + 'x'.repeat(5000), 'after');
  assert.equal(segments.map((s) => s.text).join(''), 'aafter');
  assert.equal(state.mode, 0);
});

test('two-character and charset escapes are stripped', () => {
  assert.equal(stripAnsi(`a${ESC}7b${ESC}8c${ESC}Md${ESC}ce${ESC}=f${ESC}>g`), 'abcdefg');
  assert.equal(stripAnsi(`a${ESC}(Bb${ESC})0c${ESC}#8d${ESC}%Ge`), 'abcde');
});

test('a lone ESC before a newline keeps the newline', () => {
  assert.equal(stripAnsi(`a${ESC}\nb`), 'a\nb');
  assert.equal(stripAnsi(`a${ESC}${ESC}[31mb`), 'ab');
});

test('a malformed CSI gives its stray character back to the text', () => {
  assert.equal(stripAnsi(`a${ESC}[12\nb`), 'a\nb');
  assert.equal(stripAnsi(`a${ESC}[1é`), 'aé');
});

test('an overlong CSI is consumed but not applied', () => {
  const params = '1;'.repeat(100) + '31';
  assert.deepEqual(parseChunks(`${ESC}[${'0'.repeat(100)}Kx`).segments, [{ text: 'x', style: DEFAULT_STYLE }]);
  const { segments, state } = parseChunks(`${ESC}[${params}mx`);
  assert.equal(segments.map((s) => s.text).join(''), 'x');
  assert.equal(state.style, DEFAULT_STYLE);
  assert.ok(state.csi.length <= 64);
});

test('control characters other than tab, newline and CR are dropped', () => {
  assert.equal(stripAnsi('a\rb\x07c\bd\x00e\x7ff\x0cg\x85h\tz\n'), 'abcdefgh\tz\n');
});

test('HTML-looking game text stays text', () => {
  const evil = `<img src=x onerror=alert(1)>&amp;<script>alert("x")</script>`;
  const { segments } = parseChunks(`${ESC}[31m${evil}`);
  assert.equal(segments.length, 1);
  assert.equal(segments[0].text, evil);
});

test('the state returned is not shared with the caller', () => {
  const s0 = initialState();
  const { state: s1 } = parseAnsi(s0, `${ESC}[31mx${ESC}[`);
  assert.equal(s0.style, DEFAULT_STYLE);
  assert.ok(Object.isFrozen(s1));
  assert.equal(s1.style.fg, 1);
  // Parsing the same continuation twice from s1 gives the same result.
  const a = parseAnsi(s1, '1mbold');
  const b = parseAnsi(s1, '1mbold');
  assert.deepEqual(a, b);
  assert.equal(a.segments[0].style.bold, true);
});

// ---- Line editing and links ----------------------------------------------

const ops = (segments) => segments.map((s) => (s.op === undefined ? s.text : s));

test('a bare CR is an operation, between the texts it separates', () => {
  assert.deepEqual(ops(parseChunks('50%\r60%').segments), ['50%', { op: 'cr' }, '60%']);
  assert.deepEqual(ops(parseChunks('a\r', '\rb').segments), ['a', { op: 'cr' }, { op: 'cr' }, 'b']);
});

test('erase in line: K, 0K, 1K, 2K; other parameters and private forms dropped', () => {
  assert.deepEqual(ops(parseChunks(`a${ESC}[Kb${ESC}[0Kc${ESC}[1Kd${ESC}[2Ke`).segments), [
    'a',
    { op: 'erase', mode: 0 },
    'b',
    { op: 'erase', mode: 0 },
    'c',
    { op: 'erase', mode: 1 },
    'd',
    { op: 'erase', mode: 2 },
    'e',
  ]);
  assert.deepEqual(ops(parseChunks(`a${ESC}[3K${ESC}[?2K${ESC}[1;2Kb`).segments), ['ab']);
});

test('cursor to column: G, 1G, nG are 0-based columns; split chunks survive', () => {
  assert.deepEqual(ops(parseChunks(`${ESC}[G${ESC}[1G${ESC}[0G${ESC}[12G`).segments), [
    { op: 'column', column: 0 },
    { op: 'column', column: 0 },
    { op: 'column', column: 0 },
    { op: 'column', column: 11 },
  ]);
  assert.deepEqual(ops(parseChunks('[HP:6/6]', `${ESC}[`, 'G', `${ESC}[2`, 'K', 'hello').segments), [
    '[HP:6/6]',
    { op: 'column', column: 0 },
    { op: 'erase', mode: 2 },
    'hello',
  ]);
});

test('cursor up, down, positioning and screen clears are dropped, not applied', () => {
  assert.deepEqual(ops(parseChunks(`a${ESC}[A${ESC}[2J${ESC}[H${ESC}[3;4H${ESC}[Jb`).segments), ['ab']);
});

test('OSC 8 opens an http(s) link and closes it; other schemes close', () => {
  const { segments } = parseChunks(`${ESC}]8;;https://example.com/a?b=c${ESC}\\x${ESC}]8;;${ESC}\\y`);
  assert.deepEqual(ops(segments), [{ op: 'link', uri: 'https://example.com/a?b=c' }, 'x', { op: 'link', uri: null }, 'y']);
  assert.deepEqual(ops(parseChunks(`${ESC}]8;id=1;http://h.test/\x07z`).segments), [{ op: 'link', uri: 'http://h.test/' }, 'z']);
  for (const bad of ['javascript:alert(1)', 'data:text/html,x', 'file:///etc/passwd', '/relative', 'https://', 'http://a b']) {
    assert.deepEqual(ops(parseChunks(`${ESC}]8;;${bad}${ESC}\\t`).segments), [{ op: 'link', uri: null }, 't'], bad);
  }
});

test('OSC 8 split across chunks', () => {
  const chunks = Array.from(`${ESC}]8;;https://x.test/${ESC}\\L`);
  assert.deepEqual(ops(parseChunks(...chunks).segments), [{ op: 'link', uri: 'https://x.test/' }, 'L']);
});

test('OSC 7701 command links: open with JSON, close empty', () => {
  const json = JSON.stringify({ cmds: ['look', 'say hi'], hints: ['look around', 'greet'], prompt: false });
  const { segments } = parseChunks(`${ESC}]7701;${json}${ESC}\\here${ESC}]7701;${ESC}\\`);
  assert.deepEqual(ops(segments), [
    { op: 'command', command: { cmds: ['look', 'say hi'], hints: ['look around', 'greet'], prompt: false } },
    'here',
    { op: 'command', command: null },
  ]);
  const one = parseChunks(`${ESC}]7701;{"cmds":["north"]}\x07n`).segments[0];
  assert.deepEqual(one, { op: 'command', command: { cmds: ['north'], hints: null, prompt: false } });
});

test('OSC 7701 that breaks the rules renders as plain text', () => {
  const bad = [
    '{"cmds":[]}',
    '{"cmds":["a","b","c","d","e","f","g","h","i"]}',
    '{"cmds":["' + 'x'.repeat(257) + '"]}',
    '{"cmds":["é'.concat('x'.repeat(255), '"]}'), // 257 bytes
    '{"cmds":["a\\nb"]}',
    '{"cmds":["a\\u001b[31m"]}',
    '{"cmds":["a"],"hints":["x","y"]}',
    '{"cmds":["a"],"prompt":"yes"}',
    '{"cmds":"look"}',
    '["look"]',
    'not json',
    'null',
  ];
  for (const body of bad) {
    const { segments } = parseChunks(`${ESC}]7701;${body}${ESC}\\t`);
    assert.deepEqual(ops(segments), [{ op: 'command', command: null }, 't'], body);
  }
  assert.equal(parseCommandLink('{"cmds":["' + 'x'.repeat(256) + '"]}').cmds[0].length, 256);
});

test('an OSC payload over 4 KiB is dropped whole', () => {
  const big = JSON.stringify({ cmds: ['a'], hints: ['x'.repeat(5000)] });
  assert.deepEqual(ops(parseChunks(`${ESC}]7701;${big}${ESC}\\t`).segments), ['t']);
  assert.deepEqual(ops(parseChunks(`${ESC}]8;;https://x.test/${'a'.repeat(4100)}${ESC}\\t`).segments), ['t']);
});

test('other OSC numbers stay stripped; text between ops keeps its style', () => {
  const { segments } = parseChunks(`${ESC}]0;title${ESC}\\${ESC}]80;x${ESC}\\${ESC}[31ma\rb`);
  assert.equal(segments.length, 3);
  assert.equal(segments[0].style.fg, 1);
  assert.equal(segments[2].style.fg, 1);
});

test('safeLink accepts only absolute http and https URLs', () => {
  assert.equal(safeLink('HTTPS://Example.COM'), 'https://example.com/');
  assert.equal(safeLink('http://example.com:8080/p#f'), 'http://example.com:8080/p#f');
  for (const bad of ['', 'ftp://x', 'javascript:x', ' https://x', 'https://x\ny', 'https:x', null]) assert.equal(safeLink(bad), null, String(bad));
});
