// Live sessions: who plays what, on which worker, under which fence, with
// how many viewers; kill stops one (the player is told, as with
// `trellis sessions kill`).

import { api, el, fillRows, since, confirmButton, every } from './api.js';

const $ = (id) => document.getElementById(id);

export class SessionsView {
  constructor(failed) {
    this.failed = failed;
    this.stop = null;
    $('sessions-refresh').addEventListener('click', () => this.load());
  }

  show() {
    $('view-sessions').hidden = false;
    this.stop = every(3000, () => this.load());
  }

  hide() {
    this.stop?.();
    this.stop = null;
  }

  async load() {
    let list;
    try {
      list = await api('/api/sessions');
    } catch (err) {
      if (!this.failed(err)) $('sessions-count').textContent = err.message;
      return;
    }
    $('sessions-count').textContent = list.length === 1 ? '1 session' : `${list.length} sessions`;
    $('sessions-empty').hidden = list.length > 0;
    fillRows(
      $('sessions-table').tBodies[0],
      list.map((s) => {
        const q = new URLSearchParams({ user: s.user, game: s.game });
        const kill = confirmButton('Kill', 'Really kill?', async () => {
          try {
            await api('/api/sessions/kill', { method: 'POST', body: { user: s.user, game: s.game, reason: $('kill-reason').value.trim() } });
          } catch (err) {
            if (!this.failed(err)) $('sessions-count').textContent = err.message;
          }
          this.load();
        });
        return el(
          'tr',
          { dataset: { user: s.user, game: s.game } },
          el('td', { text: s.user }),
          el('td', { text: s.game }),
          el('td', {}, el('span', { className: 'state state-' + s.state, text: s.state })),
          el('td', { className: 'num', text: String(s.viewers) }),
          el('td', { text: s.worker }),
          el('td', { className: 'num', text: String(s.fence) }),
          el('td', { text: since(s.started) }),
          el('td', { className: 'actions' }, el('a', { href: '#transcript?' + q, className: 'button', text: 'Transcript' }), kill),
        );
      }),
    );
  }
}
