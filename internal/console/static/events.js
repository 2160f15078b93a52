// The event log: its tail, then every new event as it is appended (a
// Server-Sent Events stream the console serves from the log), filtered by
// type or family, user, game and correlation id. Clicking a subject or a
// correlation id filters on it.

import { api, el, clock } from './api.js';

const $ = (id) => document.getElementById(id);

// Rows kept on the page: live events push the oldest out.
const MAX_ROWS = 2000;

export class EventsView {
  constructor(failed) {
    this.failed = failed;
    this.source = null;
    this.before = '';
    $('events-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      this.start();
    });
    $('events-older').addEventListener('click', () => this.loadHistory({ before: this.before }));
  }

  show() {
    $('view-events').hidden = false;
    this.start();
  }

  hide() {
    this.source?.close();
    this.source = null;
    this.setLive(false);
  }

  filterQuery() {
    const f = $('events-filter').elements;
    const q = new URLSearchParams();
    for (const k of ['type', 'user', 'game', 'correlation']) {
      const v = f[k].value.trim();
      if (v) q.set(k, v);
    }
    return q;
  }

  setFilter(values) {
    const f = $('events-filter').elements;
    for (const [k, v] of Object.entries(values)) f[k].value = v;
    this.start();
  }

  setLive(on, text) {
    const live = $('events-live');
    live.classList.toggle('on', on);
    live.textContent = text ?? (on ? '● live' : '○ not live');
  }

  start() {
    this.hide();
    $('events-table').tBodies[0].replaceChildren();
    $('events-older').hidden = true;
    const q = this.filterQuery();
    const source = new EventSource('/api/events/live?' + q);
    this.source = source;
    let started = false;
    source.addEventListener('start', (e) => {
      this.setLive(true);
      if (started) return; // a reconnect resumes after the last event seen
      started = true;
      const from = JSON.parse(e.data);
      if (from !== '0-0') this.loadHistory({ until: from });
    });
    source.addEventListener('trouble', (e) => this.setLive(false, '○ ' + JSON.parse(e.data)));
    source.addEventListener('message', (e) => this.addRow(JSON.parse(e.data), true));
    source.addEventListener('error', async () => {
      this.setLive(false, '○ reconnecting…');
      if (source.readyState === EventSource.CLOSED && this.source === source) {
        // The browser gave up (a 401, a 503): find out which.
        try {
          await api('/api/me');
          this.setLive(false, '○ not live (too many open streams?)');
        } catch (err) {
          this.failed(err);
        }
      }
    });
  }

  async loadHistory(cursor) {
    const q = this.filterQuery();
    for (const [k, v] of Object.entries(cursor)) q.set(k, v);
    let page;
    try {
      page = await api('/api/events?' + q);
    } catch (err) {
      this.failed(err);
      return;
    }
    for (const e of page.events) this.addRow(e, false);
    this.before = page.before;
    $('events-older').hidden = !page.before;
  }

  addRow(e, live) {
    const body = $('events-table').tBodies[0];
    const subject = e.subject
      ? el('a', {
          href: '#events',
          text: e.subject,
          title: 'show only this session',
          onclick: (ev) => {
            ev.preventDefault();
            const i = e.subject.lastIndexOf('/');
            this.setFilter({ user: e.subject.slice(0, i), game: e.subject.slice(i + 1) });
          },
        })
      : '';
    const corr = e.correlation
      ? el('a', {
          href: '#events',
          className: 'mono',
          text: e.correlation,
          title: 'show only this correlation id',
          onclick: (ev) => {
            ev.preventDefault();
            this.setFilter({ correlation: e.correlation });
          },
        })
      : '';
    const type = e.type.replace(/^trellis\./, '');
    const row = el(
      'tr',
      { dataset: { id: e.id, type: e.type }, className: live ? 'fresh' : '' },
      el('td', { className: 'nowrap', text: clock(e.time), title: e.id }),
      el('td', {}, el('span', { className: 'etype etype-' + type.split('.')[0], text: type })),
      el('td', { text: e.source }),
      el('td', {}, subject),
      el('td', {}, corr),
      el('td', { className: 'mono data', text: e.data ? JSON.stringify(e.data) : '' }),
    );
    if (live) body.prepend(row);
    else body.append(row);
    while (body.rows.length > MAX_ROWS) {
      body.lastElementChild.remove();
      this.before = body.lastElementChild.dataset.id;
      $('events-older').hidden = false;
    }
  }
}
