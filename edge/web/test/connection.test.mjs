import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Connection } from '../static/connection.js';

// A scripted stand-in for the browser's WebSocket: the test opens, feeds
// and closes each socket the connection creates.
function harness({ random = () => 0 } = {}) {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(data));
    }
    close(code = 1005) {
      this.readyState = 3;
      this.closedByClient = code;
    }
    // Test controls.
    open() {
      this.readyState = 1;
      this.onopen?.();
    }
    receive(frame) {
      this.onmessage?.({ data: JSON.stringify(frame) });
    }
    drop(code) {
      this.readyState = 3;
      this.onclose?.({ code });
    }
  }
  // Timers run only when the test says so.
  let nextId = 1;
  const timers = new Map();
  const fake = {
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { fn, ms });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
  };
  const fire = (ms) => {
    const due = [...timers].filter(([, t]) => t.ms === ms);
    assert.equal(due.length, 1, `one timer of ${ms} ms pending, have ${JSON.stringify([...timers.values()].map((t) => t.ms))}`);
    timers.delete(due[0][0]);
    due[0][1].fn();
  };
  const states = [];
  const messages = [];
  let resume = '';
  const conn = new Connection({
    url: 'ws://127.0.0.1:1/ws',
    hello: () => ({ type: 'hello', game: 'demo', resume }),
    onMessage: (d) => messages.push(JSON.parse(d)),
    onState: (s) => states.push(s),
    WebSocketImpl: FakeSocket,
    timers: fake,
    random,
  });
  return { conn, sockets, timers, fire, states, messages, setResume: (r) => (resume = r) };
}

const retryDelays = (states) => states.filter((s) => s.state === 'waiting').map((s) => s.delay);

test('sends hello on open, carrying the current resume id', () => {
  const h = harness();
  h.conn.start();
  assert.equal(h.sockets.length, 1);
  assert.equal(h.sockets[0].url, 'ws://127.0.0.1:1/ws');
  assert.equal(h.conn.send({ type: 'input', text: 'early' }), false, 'nothing is sent before open');
  h.sockets[0].open();
  assert.deepEqual(h.sockets[0].sent, [{ type: 'hello', game: 'demo', resume: '' }]);
  h.sockets[0].receive({ type: 'welcome' });
  assert.deepEqual(h.messages, [{ type: 'welcome' }]);
  assert.equal(h.conn.send({ type: 'input', text: 'look' }), true);

  h.setResume('1700000000000-3');
  h.sockets[0].drop(1006);
  h.fire(500);
  h.sockets[1].open();
  assert.deepEqual(h.sockets[1].sent, [{ type: 'hello', game: 'demo', resume: '1700000000000-3' }]);
  assert.deepEqual(
    h.states.map((s) => s.state),
    ['connecting', 'open', 'waiting', 'connecting', 'open'],
  );
});

test('retries back off exponentially until a welcome resets them', () => {
  const h = harness({ random: () => 0.999999 });
  h.conn.start();
  for (const delay of [500, 1000, 2000, 4000, 8000, 15000, 15000]) {
    h.sockets[h.sockets.length - 1].drop(1006);
    h.fire(delay);
  }
  // An edge that accepts the socket and closes it before welcome does not reset the backoff.
  const s = h.sockets[h.sockets.length - 1];
  s.open();
  s.drop(1001);
  h.fire(15000);
  const t = h.sockets[h.sockets.length - 1];
  t.open();
  t.receive({ type: 'welcome' });
  h.conn.welcomed();
  t.drop(4008);
  h.fire(500);
  assert.deepEqual(retryDelays(h.states), [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 500]);
});

test('fatal close codes stop for good with a message', () => {
  for (const code of [4000, 4001, 4004, 4029]) {
    const h = harness();
    h.conn.start();
    h.sockets[0].open();
    h.sockets[0].drop(code);
    assert.equal(h.timers.size, 0, `no retry pending after ${code}`);
    const last = h.states[h.states.length - 1];
    assert.equal(last.state, 'closed');
    assert.ok(last.message.length > 0);
    h.conn.retryNow();
    assert.equal(h.sockets.length, 1, 'retryNow does not revive a halted connection');
  }
});

test('other close codes reconnect', () => {
  for (const code of [1000, 1001, 1006, 1011, 4008]) {
    const h = harness();
    h.conn.start();
    h.sockets[0].open();
    h.sockets[0].drop(code);
    assert.equal(h.states[h.states.length - 1].state, 'waiting', String(code));
    h.fire(500);
    assert.equal(h.sockets.length, 2, String(code));
  }
});

test('retryNow skips the wait, and does nothing while connected', () => {
  const h = harness();
  h.conn.start();
  h.sockets[0].open();
  h.conn.retryNow();
  assert.equal(h.sockets.length, 1, 'no second socket while one is open');
  h.sockets[0].drop(1006);
  assert.equal(h.timers.size, 1);
  h.conn.retryNow();
  assert.equal(h.sockets.length, 2);
  assert.equal(h.timers.size, 1, 'the backoff timer was replaced by a connect timeout');
  h.conn.retryNow();
  assert.equal(h.sockets.length, 2, 'no pile-up while connecting');
});

test('a socket stuck connecting is abandoned and retried', () => {
  const h = harness();
  h.conn.start();
  h.fire(10000);
  assert.equal(h.sockets[0].closedByClient, 1005);
  h.sockets[0].drop(1006);
  h.fire(500);
  assert.equal(h.sockets.length, 2);
});

test('events from a replaced socket are ignored', () => {
  const h = harness();
  h.conn.start();
  const old = h.sockets[0];
  old.drop(1006);
  h.conn.retryNow();
  old.receive({ type: 'output', text: 'stale' });
  old.onclose?.({ code: 1006 });
  assert.equal(h.messages.length, 0);
  assert.equal(h.sockets.length, 2);
  assert.equal(h.states.filter((s) => s.state === 'waiting').length, 1);
});

test('halt closes the socket and cancels retries', () => {
  const h = harness();
  h.conn.start();
  h.sockets[0].open();
  h.conn.halt('unauthorized');
  assert.equal(h.sockets[0].closedByClient, 1000);
  assert.deepEqual(h.states[h.states.length - 1], { state: 'closed', message: 'unauthorized' });
  assert.equal(h.conn.send({ type: 'input', text: 'x' }), false);
  h.sockets[0].drop(1000);
  assert.equal(h.timers.size, 0);
});

test('a probe that gets any frame back keeps the socket', () => {
  const h = harness();
  h.conn.start();
  h.sockets[0].open();
  h.sockets[0].receive({ type: 'welcome' });
  h.conn.probe();
  h.conn.probe(); // one probe at a time
  assert.deepEqual(h.sockets[0].sent.filter((f) => f.type === 'ping'), [{ type: 'ping' }]);
  h.sockets[0].receive({ type: 'pong' });
  assert.equal([...h.timers.values()].some((t) => t.ms === 5000), false, 'the probe timer is cleared');
  assert.equal(h.sockets.length, 1);
  assert.equal(h.sockets[0].closedByClient, undefined);
});

test('a probe with no answer drops the socket and resumes on a new one', () => {
  const h = harness();
  h.conn.start();
  h.sockets[0].open();
  h.sockets[0].receive({ type: 'welcome' });
  h.setResume('1700000000000-9');
  h.conn.probe();
  h.fire(5000); // the edge never answered: the phone slept through a dead socket
  assert.notEqual(h.sockets[0].closedByClient, undefined, 'the dead socket is closed');
  assert.equal(h.states.at(-1).state, 'waiting');
  h.fire(500);
  assert.equal(h.sockets.length, 2);
  h.sockets[1].open();
  assert.deepEqual(h.sockets[1].sent, [{ type: 'hello', game: 'demo', resume: '1700000000000-9' }]);
  // A late close event of the abandoned socket changes nothing.
  h.sockets[0].drop(1006);
  assert.equal(h.sockets.length, 2);
  assert.equal(h.states.at(-1).state, 'open');
});

test('probing while not connected does nothing', () => {
  const h = harness();
  h.conn.start();
  h.conn.probe(); // still connecting
  assert.deepEqual(h.sockets[0].sent, []);
  h.conn.halt('bye');
  h.conn.probe();
  assert.equal(h.sockets.length, 1);
});
