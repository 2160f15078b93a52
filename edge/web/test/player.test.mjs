// Unit tests of the player's client features: vitals shapes and mappings,
// echo modes, aliases, triggers, key macros and the profile document.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { expandLine, parseAliasText, splitCommands, substitute } from '../static/aliases.js';
import { EchoState, compilePrompt, echoedBack } from '../static/echo.js';
import { KEYPAD, commandForKey, parseMacroText } from '../static/keys.js';
import { MAX_PROFILE_BYTES, decodeProfile, encodeProfile, rulesFor, sanitizeProfile, RemoteProfile } from '../static/profile.js';
import { Triggers, parseTriggerText } from '../static/triggers.js';
import { mappedVitals, vitalPairs } from '../static/vitals.js';
import { MsdpState } from '../static/msdp.js';

test('vitals: the issue shapes, nested values and "a/b" strings', () => {
  assert.deepEqual(vitalPairs({ hp: 6, hp_max: 6, sp: 5, sp_max: 5 }), [
    { name: 'hp', value: 6, max: 6 },
    { name: 'sp', value: 5, max: 5 },
  ]);
  assert.deepEqual(vitalPairs({ hp: '1000', maxhp: '1200' }), [{ name: 'hp', value: 1000, max: 1200 }]);
  assert.deepEqual(vitalPairs({ health: { current: 5, max: 9 }, mana: '3/4', mood: { value: 'x', max: 2 } }), [
    { name: 'health', value: 5, max: 9 },
    { name: 'mana', value: 3, max: 4 },
  ]);
});

test('vitals: a registry mapping reads split packages, key paths, MSDP and constants', () => {
  const packages = new Map([
    ['char.status', { stats: { Health: '40' } }],
    ['char.maxstats', { maxHealth: 80 }],
  ]);
  const msdp = new MsdpState();
  msdp.set('FOCUS', '30');
  const specs = [
    { label: 'HP', package: 'Char.Status', value: 'stats.health', max: 'maxHealth', max_package: 'Char.MaxStats', kind: 'hp' },
    { label: 'Focus', package: 'msdp', value: 'FOCUS', max: '100' },
    { label: 'Gone', package: 'Char.Nope', value: 'x', max: 'y' },
  ];
  assert.deepEqual(mappedVitals(specs, packages, msdp), [
    { name: 'HP', value: 40, max: 80, kind: 'hp' },
    { name: 'Focus', value: 30, max: 100, kind: undefined },
  ]);
  assert.deepEqual(mappedVitals(null, packages, msdp), []);
});

test('echo: a password prompt masks and keeps the line out of history', () => {
  const e = new EchoState();
  e.output('Name: ');
  assert.equal(e.masked, false);
  assert.equal(e.sent('alice'), false);
  e.output('\r\nPassword: ');
  e.setServerEcho(true);
  assert.equal(e.masked, true);
  assert.equal(e.sent('hunter2'), true);
  e.setServerEcho(false);
  e.output('\r\nWelcome!\r\n> ');
  assert.equal(e.masked, false);
});

test('echo: a character-mode server that prints lines back unmasks', () => {
  const e = new EchoState();
  e.setServerEcho(true);
  e.output('Name: ');
  assert.equal(e.masked, true); // the first line is a guess on the safe side
  assert.equal(e.sent('alice'), true);
  e.output('alice\r\nWelcome.\r\n> ');
  assert.equal(e.masked, false);
  assert.equal(e.sent('look'), false);
  e.output('look\r\nA room.\r\nPassword: ');
  assert.equal(e.masked, true, 'a password prompt still masks in character mode');
});

test('echo: WILL ECHO that never ends, and the worker saying so', () => {
  const e = new EchoState();
  e.setServerEcho(true);
  e.output('> ');
  assert.equal(e.sent('a'), true);
  e.output('\n> ');
  assert.equal(e.sent('b'), true);
  e.output('\n> ');
  assert.equal(e.masked, false, 'after two lines at ordinary prompts');
  const w = new EchoState();
  w.setServerEcho(true);
  w.recorded({ type: 'input', text: 'look' });
  assert.equal(w.masked, false, 'the worker recorded a line in plain text under echo');
  const r = new EchoState();
  r.setServerEcho(true);
  r.recorded({ type: 'input', redacted: true });
  assert.equal(r.masked, true);
});

test('echo: the registry overrides the guess', () => {
  const p = new EchoState({ mode: 'password' });
  p.setServerEcho(true);
  for (let i = 0; i < 4; i++) {
    p.output('> ');
    p.sent('look');
    p.output('look\n');
  }
  assert.equal(p.masked, true);
  const c = new EchoState({ mode: 'character', passwordPrompt: '(?i)secret word:\\s*$' });
  c.setServerEcho(true);
  c.output('> ');
  assert.equal(c.masked, false);
  c.output('\nSecret word: ');
  assert.equal(c.masked, true);
  assert.ok(compilePrompt('(?i)PASSWORD:').test('password:'));
  assert.ok(compilePrompt('([').test('Password: '), 'a broken pattern falls back to the default');
  assert.equal(echoedBack('Welcome', 'me'), false);
  assert.equal(echoedBack('> look', 'look'), true);
});

test('aliases: separator, escapes, arguments, nesting and loops', () => {
  assert.deepEqual(splitCommands('n;e; s'), ['n', 'e', ' s']);
  assert.deepEqual(splitCommands('say a\\;b;n'), ['say a;b', 'n']);
  assert.deepEqual(splitCommands('say a\\\\;n'), ['say a\\', 'n']);
  assert.deepEqual(splitCommands('n&&e', '&&'), ['n', 'e']);
  assert.deepEqual(splitCommands('n;e', ''), ['n;e']);
  assert.equal(substitute('kill $1 with $2', ['orc', 'axe']), 'kill orc with axe');
  assert.equal(substitute('say $*; $$5', ['hi', 'there']), 'say hi there; $5');
  assert.equal(substitute('look', ['orc']), 'look orc');
  const aliases = [
    { name: 'k', body: 'kill $1' },
    { name: 'go', body: 'n;k $1;s' },
    { name: 'a', body: 'b' },
    { name: 'b', body: 'a' },
  ];
  assert.deepEqual(expandLine('go orc;say hi', { aliases }), ['n', 'kill orc', 's', 'say hi']);
  assert.equal(expandLine('a', { aliases }).length, 1, 'a loop stops at the depth bound');
  assert.deepEqual(expandLine('k', { aliases }), ['kill ']);
  const parsed = parseAliasText('k = kill $1\n# comment\nbad line\n');
  assert.deepEqual(parsed.aliases, [{ name: 'k', body: 'kill $1' }]);
  assert.equal(parsed.errors.length, 1);
});

test('triggers: highlight keeps the text, gag removes the line, notify reports it', () => {
  const t = new Triggers([
    { pattern: 'dragon', action: 'highlight', colour: 'red' },
    { pattern: '^spam', action: 'gag' },
    { pattern: 'tells you', action: 'notify' },
    { pattern: '(', action: 'gag' }, // invalid: dropped
  ]);
  assert.equal(t.size, 3);
  const { text, notify } = t.apply('A \x1b[32mgreen dragon\x1b[0m.\r\nspam spam\r\nBob tells you hi\r\n> ');
  assert.equal(text, 'A \x1b[32mgreen \x1b[41mdragon\x1b[0m\x1b[49m.\r\nBob tells you hi\r\n> ');
  assert.deepEqual(notify, ['Bob tells you hi']);
  assert.equal(t.apply('spam').text, '');
  assert.equal(new Triggers([]).apply('x\n').text, 'x\n');
  const parsed = parseTriggerText('highlight /orc/ yellow\ngag /^You hear/\nnotify /(/\nshout /x/');
  assert.deepEqual(parsed.triggers, [
    { action: 'highlight', pattern: 'orc', colour: 'yellow' },
    { action: 'gag', pattern: '^You hear' },
  ]);
  assert.equal(parsed.errors.length, 2);
});

test('keys: macros, the keypad, and keys kept for typing', () => {
  const macros = [{ key: 'F1', command: 'kick' }, { key: 'Ctrl+KeyK', command: 'kill' }, { key: 'KeyA', command: 'x' }];
  const ev = (code, mods = {}) => ({ code, key: code, ctrlKey: false, altKey: false, shiftKey: false, metaKey: false, ...mods });
  assert.equal(commandForKey(ev('F1'), { macros }), 'kick');
  assert.equal(commandForKey(ev('KeyK', { ctrlKey: true }), { macros }), 'kill');
  assert.equal(commandForKey(ev('KeyA'), { macros }), null, 'plain letters type');
  assert.equal(commandForKey(ev('Numpad8'), { macros }), 'north');
  assert.equal(commandForKey(ev('Numpad8'), { macros, keypad: false }), null);
  assert.equal(Object.keys(KEYPAD).length, 11);
  const parsed = parseMacroText('F2 = cast heal\nKeyQ = quit\nnonsense');
  assert.deepEqual(parsed.macros, [{ key: 'F2', command: 'cast heal' }]);
  assert.equal(parsed.errors.length, 2);
});

test('profile: sanitised, per-game rules first, bounded, round trips', async () => {
  const p = sanitizeProfile({
    separator: '&&',
    aliases: [{ name: 'k', body: 'kill $1' }],
    games: { dune: { aliases: [{ name: 'k', body: 'kick $1' }] }, 'Bad Id': {} },
    settings: { fontSize: 99 },
  });
  assert.equal(p.settings.fontSize, 32);
  assert.deepEqual(Object.keys(p.games), ['dune']);
  assert.deepEqual(rulesFor(p, 'dune').aliases[0], { name: 'k', body: 'kick $1' });
  assert.deepEqual(rulesFor(p, 'other').aliases, [{ name: 'k', body: 'kill $1' }]);
  assert.deepEqual(decodeProfile(encodeProfile(p)), p);
  assert.throws(() => decodeProfile('not json'), /not a Trellis settings file/);
  assert.equal(sanitizeProfile({ separator: ' ' }).separator, ';');
  const huge = sanitizeProfile({});
  huge.aliases = Array.from({ length: 200 }, (_, i) => ({ name: 'a' + i, body: 'x'.repeat(400) }));
  assert.throws(() => encodeProfile(huge), new RegExp(`over ${MAX_PROFILE_BYTES >> 10} KiB`));

  const calls = [];
  const fakeFetch = async (url, init) => {
    calls.push({ url, init });
    if (init.method === 'GET') return { ok: true, json: async () => ({}) };
    return { ok: false, status: 413, json: async () => ({ error: 'settings are larger than 64 KiB' }) };
  };
  const remote = new RemoteProfile({ token: 'tok', fetch: fakeFetch });
  assert.equal(await remote.load(), null);
  await assert.rejects(remote.save(p), /larger than 64 KiB/);
  assert.equal(calls[0].init.headers.Authorization, 'Bearer tok');
  assert.equal(new RemoteProfile({ token: '' }).enabled, false);
});
