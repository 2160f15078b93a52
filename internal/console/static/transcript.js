// One session's transcript, drawn by the player client's own renderer
// (terminal.js and ansi.js, served from the edge's files): colours as the
// player saw them, typed lines shown, redacted lines (passwords) shown as
// hidden, since the worker never recorded their text.

import { api } from './api.js';
import { Terminal } from '/assets/player/terminal.js';

const $ = (id) => document.getElementById(id);

export class TranscriptView {
  constructor(failed) {
    this.failed = failed;
    this.timer = null;
    this.gen = 0;
  }

  show(params) {
    $('view-transcript').hidden = false;
    this.key = { user: params.get('user') ?? '', game: params.get('game') ?? '' };
    $('transcript-title').textContent = `${this.key.user}/${this.key.game}`;
    const out = $('transcript-output');
    out.replaceChildren();
    this.term = new Terminal(out, { scrollback: 20000 });
    this.next = '';
    this.entries = 0;
    this.empty = false;
    this.gen++;
    this.poll(this.gen);
  }

  hide() {
    this.gen++;
    clearTimeout(this.timer);
  }

  // poll reads every page there is, then tails the stream while the view
  // is shown and "follow" is ticked.
  async poll(gen) {
    for (let pages = 0; pages < 1000 && gen === this.gen; pages++) {
      let page;
      try {
        const q = new URLSearchParams({ user: this.key.user, game: this.key.game });
        if (this.next) q.set('after', this.next);
        page = await api('/api/transcript?' + q);
      } catch (err) {
        if (gen === this.gen && !this.failed(err)) this.term.writeNotice(err.message, 'failed');
        return;
      }
      if (gen !== this.gen) return;
      for (const e of page.entries) this.render(e);
      this.entries += page.entries.length;
      this.next = page.next;
      $('transcript-count').textContent = `${this.entries} entries`;
      if (!page.more) break;
    }
    if (gen === this.gen && this.entries === 0 && !this.empty) {
      this.empty = true;
      this.term.writeNotice('No transcript (none was recorded, or it expired).');
    }
    if (gen === this.gen) this.timer = setTimeout(() => this.tick(gen), 1000);
  }

  tick(gen) {
    if (gen !== this.gen) return;
    if ($('transcript-follow').checked) this.poll(gen);
    else this.timer = setTimeout(() => this.tick(gen), 1000);
  }

  render(e) {
    switch (e.kind) {
      case 'text':
        this.term.write(e.text ?? '', { prompt: !!e.prompt });
        break;
      case 'input':
        this.term.writeInput(e.redacted ? '•••••••• (hidden: typed at a password prompt)' : e.text ?? '');
        break;
      case 'status':
        this.term.writeNotice(`— ${e.state}${e.text ? ': ' + e.text : ''}${e.worker ? ' (worker ' + e.worker + ')' : ''} —`, e.state);
        break;
      case 'gap':
        this.term.writeNotice(e.text || 'output was lost here', 'gap');
        break;
      default:
        break; // echo changes: the redaction already happened at the worker
    }
  }
}
