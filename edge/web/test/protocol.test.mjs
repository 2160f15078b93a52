import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  SessionMemory,
  backoffDelay,
  closeMessage,
  compareStreamIds,
  errorIsFatal,
  errorKeepsLine,
  errorShownInOutput,
  gameFromLocation,
  gmcpFrame,
  helloFrame,
  inputFrame,
  parseServerFrame,
  resizeFrame,
  resolveToken,
  shouldReconnect,
  socketURL,
} from '../static/protocol.js';
import { memoryStorage } from './helpers.mjs';

test('fatal close codes stop reconnecting; everything else reconnects', () => {
  for (const code of [4000, 4001, 4004, 4029]) {
    assert.equal(shouldReconnect(code), false, String(code));
    assert.notEqual(closeMessage(code), closeMessage(1006));
  }
  for (const code of [1000, 1001, 1005, 1006, 1011, 1012, 4008, 4500]) {
    assert.equal(shouldReconnect(code), true, String(code));
  }
  assert.match(closeMessage(4008), /keep up/);
});

test('error codes: which keep the typed line, which are fatal', () => {
  for (const code of ['no_session', 'rate_limited', 'line_too_long']) {
    assert.equal(errorKeepsLine(code), true, code);
    assert.equal(errorIsFatal(code), false, code);
  }
  for (const code of ['bad_request', 'internal']) {
    assert.equal(errorKeepsLine(code), true, code);
    assert.equal(errorIsFatal(code), false, code);
  }
  for (const code of ['unknown_game', 'unauthorized', 'too_many_sessions']) {
    assert.equal(errorIsFatal(code), true, code);
    assert.equal(errorKeepsLine(code), false, code);
  }
  assert.equal(errorKeepsLine('gap'), false);
});

test('input_lost goes into the output, leaves the box alone and keeps the connection', () => {
  assert.equal(errorShownInOutput('input_lost'), true);
  assert.equal(errorKeepsLine('input_lost'), false, 'the lost lines are not the one in the box');
  assert.equal(errorIsFatal('input_lost'), false);
  for (const code of ['no_session', 'rate_limited', 'line_too_long', 'bad_request', 'internal', 'unauthorized']) {
    assert.equal(errorShownInOutput(code), false, code);
  }
  const f = parseServerFrame(
    '{"type":"error","code":"input_lost","message":"2 lines you typed did not reach the game: the server holding it stopped. Type them again."}',
  );
  assert.equal(f.code, 'input_lost');
});

test('backoff grows exponentially from 0.5 s and is capped at 15 s', () => {
  const low = (n) => backoffDelay(n, { random: () => 0 });
  const high = (n) => backoffDelay(n, { random: () => 0.999999 });
  assert.equal(low(0), 500);
  assert.equal(high(0), 500);
  assert.equal(low(1), 500);
  assert.equal(high(1), 1000);
  assert.equal(low(2), 1000);
  assert.equal(high(2), 2000);
  assert.equal(high(4), 8000);
  assert.equal(low(5), 7500);
  assert.equal(high(5), 15000);
  assert.equal(high(100), 15000, 'huge attempt counts do not overflow');
  assert.equal(low(100), 7500);
  for (let attempt = 0; attempt < 40; attempt++) {
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      const d = backoffDelay(attempt, { random: () => r });
      assert.ok(d >= 500 && d <= 15000, `attempt ${attempt} r ${r}: ${d}`);
    }
  }
});

test('backoff jitter spreads a crowd', () => {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(6, { random })));
  assert.ok(delays.size > 40, `only ${delays.size} distinct delays`);
});

test('client frames have the documented shapes', () => {
  assert.deepEqual(helloFrame({ game: 'demo', token: 't', resume: '1-0', cols: 100, rows: 30 }), {
    type: 'hello',
    game: 'demo',
    token: 't',
    resume: '1-0',
    cols: 100,
    rows: 30,
  });
  assert.deepEqual(helloFrame({ game: 'demo', token: null, resume: undefined, cols: 80, rows: 24 }), {
    type: 'hello',
    game: 'demo',
    token: '',
    resume: '',
    cols: 80,
    rows: 24,
  });
  assert.deepEqual(helloFrame({ game: 'demo', cols: 80, rows: 24, screenReader: true }), {
    type: 'hello',
    game: 'demo',
    token: '',
    resume: '',
    cols: 80,
    rows: 24,
    screen_reader: true,
  });
  assert.deepEqual(inputFrame('look'), { type: 'input', text: 'look' });
  assert.deepEqual(gmcpFrame('Core.Ping'), { type: 'gmcp', package: 'Core.Ping', data: {} });
  assert.deepEqual(resizeFrame(120, 40), { type: 'resize', cols: 120, rows: 40 });
});

test('server frames are parsed and anything malformed is dropped', () => {
  assert.deepEqual(parseServerFrame('{"type":"output","id":"1-0","text":"hi","prompt":false}'), {
    type: 'output',
    id: '1-0',
    text: 'hi',
    prompt: false,
  });
  assert.equal(parseServerFrame('{"type":"input","id":"2-0","redacted":true}').redacted, true);
  assert.equal(parseServerFrame('{"type":"gmcp","package":"Char.Vitals","data":{"hp":1}}').data.hp, 1);
  for (const bad of [
    'not json',
    '[]',
    'null',
    '"output"',
    '{"type":"nope"}',
    '{"text":"no type"}',
    '{"type":"output"}',
    '{"type":"output","text":7}',
    '{"type":"output","text":"x","id":5}',
    '{"type":"gmcp","data":{}}',
    '{"type":"input","text":{}}',
  ]) {
    assert.equal(parseServerFrame(bad), null, bad);
  }
  assert.equal(parseServerFrame(new ArrayBuffer(2)), null);
});

test('stream ids compare numerically, not as strings', () => {
  assert.ok(compareStreamIds('1700000000000-0', '1700000000000-1') < 0);
  assert.ok(compareStreamIds('1700000000000-10', '1700000000000-9') > 0);
  assert.ok(compareStreamIds('999-0', '1000-0') < 0);
  assert.ok(compareStreamIds('1000-0', '999-5') > 0);
  assert.equal(compareStreamIds('5-5', '5-5'), 0);
  assert.ok(compareStreamIds('', '0-1') < 0);
  assert.ok(compareStreamIds('0-1', '') > 0);
});

test('session memory keeps the newest id, state and echo across instances', () => {
  const storage = memoryStorage();
  const m = new SessionMemory(storage, 'demo');
  assert.equal(m.resume, '');
  m.see('1700000000000-2');
  m.see('1700000000000-1'); // older: ignored
  m.see(undefined);
  m.setState('connected');
  m.setEcho(true);
  const again = new SessionMemory(storage, 'demo');
  assert.equal(again.resume, '1700000000000-2');
  assert.equal(again.state, 'connected');
  assert.equal(again.echo, true);
  assert.equal(new SessionMemory(storage, 'other').resume, '', 'memory is per game');
  storage.setItem('trellis.session.bad', '{"resume":5,"echo":"yes"}');
  const bad = new SessionMemory(storage, 'bad');
  assert.equal(bad.resume, '');
  assert.equal(bad.echo, false);
  const none = new SessionMemory(null, 'demo');
  none.see('1-0');
  assert.equal(none.resume, '1-0');
});

test('a reset gap makes the memory forget a resume point the stream does not have', () => {
  const storage = memoryStorage();
  const m = new SessionMemory(storage, 'demo');
  m.see('99999999999999-0');
  m.see('1700000000000-5'); // older than the bogus point: hidden by it
  assert.equal(m.resume, '99999999999999-0');
  const gap = parseServerFrame('{"type":"gap","message":"your saved place in the output was not found","reset":true}');
  assert.equal(gap.reset, true);
  m.forgetResume();
  m.see('1700000000000-5');
  assert.equal(m.resume, '1700000000000-5');
  assert.equal(new SessionMemory(storage, 'demo').resume, '1700000000000-5', 'forgotten in storage too');
});

test('the token comes from the address, then from session storage', () => {
  const storage = memoryStorage();
  assert.deepEqual(resolveToken('', storage), { token: '', cleanSearch: null });
  assert.deepEqual(resolveToken('?token=abc.def&scrollback=100', storage), {
    token: 'abc.def',
    cleanSearch: '?scrollback=100',
  });
  assert.deepEqual(resolveToken('?token=xyz', storage), { token: 'xyz', cleanSearch: '' });
  assert.deepEqual(resolveToken('?scrollback=9', storage), { token: 'xyz', cleanSearch: null });
  assert.deepEqual(resolveToken('', null), { token: '', cleanSearch: null });
});

test('the game comes from /play/<id>, else ?game=', () => {
  assert.equal(gameFromLocation('/play/demo', ''), 'demo');
  assert.equal(gameFromLocation('/play/demo/', ''), 'demo');
  assert.equal(gameFromLocation('/play/my%20game', ''), 'my game');
  assert.equal(gameFromLocation('/play/%E0%A4%A', ''), '');
  assert.equal(gameFromLocation('/static/play.html', '?game=demo'), 'demo');
  assert.equal(gameFromLocation('/', ''), '');
});

test('the socket address follows the page scheme and host', () => {
  assert.equal(socketURL({ protocol: 'https:', host: 'play.example:8443' }), 'wss://play.example:8443/ws');
  assert.equal(socketURL({ protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080/ws');
});
