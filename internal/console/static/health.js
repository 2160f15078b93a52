// The control stream (lag, pending, dead letters: `trellis ops lag`) and
// the edges and workers with their health.

import { api, el, fillRows, duration, clock, every } from './api.js';

const $ = (id) => document.getElementById(id);

function health(ok, okText = 'healthy', badText = 'stale') {
  return el('span', { className: 'health ' + (ok ? 'ok' : 'bad'), text: ok ? okText : badText });
}

function stat(label, value, warn = false) {
  return el('div', { className: 'stat' + (warn ? ' warn' : '') }, el('div', { className: 'stat-value', text: value }), el('div', { className: 'stat-label', text: label }));
}

class Refreshing {
  constructor(failed, section, button) {
    this.failed = failed;
    this.section = section;
    this.stop = null;
    $(button).addEventListener('click', () => this.load());
  }

  show() {
    $(this.section).hidden = false;
    this.stop = every(3000, async () => {
      try {
        await this.load();
      } catch (err) {
        this.failed(err);
      }
    });
  }

  hide() {
    this.stop?.();
    this.stop = null;
  }
}

export class ControlView extends Refreshing {
  constructor(failed) {
    super(failed, 'view-control', 'control-refresh');
  }

  async load() {
    const c = await api('/api/control');
    $('control-stats').replaceChildren(
      stat('entries', String(c.length)),
      stat('lag (not yet delivered)', c.lag === null ? 'unknown' : String(c.lag), c.lag > 0),
      stat('pending (not acknowledged)', String(c.pending), c.pending > 0),
      stat('dead letters', String(c.dead_letters), c.dead_letters > 0),
    );
    fillRows(
      $('consumers-table').tBodies[0],
      c.consumers.map((k) => el('tr', {}, el('td', { text: k.name }), el('td', { className: 'num', text: String(k.pending) }), el('td', { text: duration(k.idle_seconds) }))),
    );
    fillRows(
      $('dead-table').tBodies[0],
      c.dead_letter_entries.map((d) =>
        el(
          'tr',
          {},
          el('td', { className: 'mono', text: d.id }),
          el('td', { className: 'mono', text: d.control_id }),
          el('td', { text: d.command ? d.command.type : '(undecodable)' }),
          el('td', { text: d.command ? `${d.command.user}/${d.command.game}` : d.raw.slice(0, 60) }),
          el('td', { className: 'num', text: String(d.deliveries) }),
          el('td', { text: d.reason }),
        ),
      ),
    );
  }
}

export class ClusterView extends Refreshing {
  constructor(failed) {
    super(failed, 'view-cluster', 'cluster-refresh');
  }

  async load() {
    const c = await api('/api/cluster');
    fillRows(
      $('edges-table').tBodies[0],
      c.edges.map((e) =>
        el('tr', { dataset: { edge: e.id } }, el('td', { text: e.id }), el('td', {}, health(e.healthy, 'healthy', 'late')), el('td', { text: `${clock(e.last_beat)} (${duration(e.age_seconds)} ago)` })),
      ),
    );
    fillRows(
      $('workers-table').tBodies[0],
      c.workers.map((w) =>
        el(
          'tr',
          { dataset: { worker: w.name ?? '', run: w.id ?? '' } },
          el('td', { text: w.name ?? '' }),
          el('td', { className: 'mono', text: w.id ?? '' }),
          el('td', {}, health(w.healthy, 'healthy', w.consumer ? 'not reading' : 'not consuming')),
          el('td', { text: w.state ? `${w.state} ${duration((Date.now() - Date.parse(w.state_since)) / 1000)} ago` : '' }),
          el('td', { className: 'num', text: String(w.sessions) }),
          el('td', { className: 'num', text: w.consumer ? String(w.pending) : '' }),
          el('td', { text: w.consumer ? duration(w.idle_seconds) : '' }),
        ),
      ),
    );
  }
}
