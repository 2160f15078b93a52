// The game registry: list, add, edit, remove, import. The form sends every
// field under the names a games file uses (the API's and `games ls -o
// json`'s), so what the console writes is what the CLI would.

import { api, el, fillRows, confirmButton } from './api.js';

const $ = (id) => document.getElementById(id);

const TEXT_FIELDS = ['id', 'name', 'host', 'charset', 'password_prompt', 'description',
  'tls_ca_file', 'tls_pin_sha256', 'proxy_protocol', 'echo'];
const FLAGS = ['tls', 'tls_insecure', 'mnes', 'keep_controls', 'mxp'];

export class GamesView {
  constructor(failed) {
    this.failed = failed;
    this.editing = null; // the id being edited, or null when adding
    $('game-new').addEventListener('click', () => this.openForm(null));
    $('game-cancel').addEventListener('click', () => ($('game-form').hidden = true));
    $('game-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    $('games-import-open').addEventListener('click', () => {
      $('games-import').hidden = false;
      $('game-form').hidden = true;
    });
    $('games-import-cancel').addEventListener('click', () => ($('games-import').hidden = true));
    $('games-import').addEventListener('submit', (e) => {
      e.preventDefault();
      this.importFile();
    });
  }

  show() {
    $('view-games').hidden = false;
    this.load();
  }

  hide() {}

  notice(text, warnings = []) {
    $('games-notice').textContent = [text, ...warnings.map((w) => 'Warning: ' + w)].join('\n');
  }

  async load() {
    let games;
    try {
      games = await api('/api/games');
    } catch (err) {
      if (!this.failed(err)) this.notice(err.message);
      return;
    }
    fillRows(
      $('games-table').tBodies[0],
      games.map((g) =>
        el(
          'tr',
          { dataset: { game: g.id } },
          el('td', { text: g.id }),
          el('td', { text: g.name }),
          el('td', { text: `${g.host}:${g.port}` }),
          el('td', { text: g.tls ? (g.tls_insecure ? 'yes (unverified)' : 'yes') : 'no' }),
          el('td', { text: g.charset || 'UTF-8' }),
          el(
            'td',
            { className: 'actions' },
            el('button', { type: 'button', text: 'Edit', onclick: () => this.openForm(g) }),
            confirmButton('Remove', 'Really remove?', () => this.remove(g.id)),
          ),
        ),
      ),
    );
  }

  openForm(g) {
    const f = $('game-form');
    this.editing = g ? g.id : null;
    this.original = g; // fields the form does not show (vitals) are sent back as they came
    $('game-form-title').textContent = g ? `Edit ${g.id}` : 'Add a game';
    $('game-error').textContent = '';
    $('games-import').hidden = true;
    for (const k of TEXT_FIELDS) f.elements[k].value = g?.[k] ?? '';
    f.elements.port.value = g?.port ?? '';
    for (const k of FLAGS) f.elements[k].checked = !!g?.[k];
    f.elements.id.readOnly = !!g; // an id cannot change
    f.hidden = false;
    f.elements[g ? 'name' : 'id'].focus();
  }

  async save() {
    const f = $('game-form');
    const game = this.editing && this.original ? { ...this.original } : {};
    for (const k of TEXT_FIELDS) game[k] = f.elements[k].value.trim();
    game.port = Number(f.elements.port.value);
    for (const k of FLAGS) game[k] = f.elements[k].checked;
    try {
      if (this.editing) {
        const r = await api('/api/games/' + encodeURIComponent(this.editing), { method: 'PUT', body: game });
        this.notice(`Saved ${game.id}.` + (r.stopped ? ` Its address changed: stopped ${r.stopped} running session(s).` : ''), r.warnings);
      } else {
        const r = await api('/api/games', { method: 'POST', body: game });
        this.notice(`Added ${game.id}.`, r.warnings);
      }
      f.hidden = true;
      this.load();
    } catch (err) {
      if (!this.failed(err)) $('game-error').textContent = err.message;
    }
  }

  async remove(id) {
    try {
      const r = await api('/api/games/' + encodeURIComponent(id), { method: 'DELETE', body: {} });
      this.notice(`Removed ${id}; stopped ${r.stopped} running session(s).`);
    } catch (err) {
      if (!this.failed(err)) this.notice(err.message);
    }
    this.load();
  }

  async importFile() {
    $('import-error').textContent = '';
    try {
      const r = await api('/api/games/import', { method: 'POST', body: { file: $('games-file').value } });
      this.notice(`Imported ${r.games.length} game(s)` + (r.stopped ? `; stopped ${r.stopped} session(s) at old addresses.` : '.'), r.warnings);
      $('games-import').hidden = true;
      $('games-file').value = '';
      this.load();
    } catch (err) {
      if (!this.failed(err)) $('import-error').textContent = err.message;
    }
  }
}
