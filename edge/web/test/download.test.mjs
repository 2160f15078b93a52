import { test } from 'node:test';
import assert from 'node:assert/strict';

import { downloadName, escapeHTML, transcriptHTML, transcriptText } from '../static/download.js';
import { Document } from './helpers.mjs';

function outputWith(lines) {
  const doc = new Document();
  const out = doc.createElement('div');
  for (const parts of lines) {
    const line = doc.createElement('div');
    line.className = 'line';
    for (const [text, style] of parts) {
      if (!style) {
        line.appendChild(doc.createTextNode(text));
        continue;
      }
      const span = doc.createElement('span');
      span.setAttribute('style', style);
      span.textContent = text;
      line.appendChild(span);
    }
    out.appendChild(line);
  }
  return out;
}

test('transcript as text and as HTML, game text never markup', () => {
  const out = outputWith([[['<b>hi</b> ', null], ['red', 'color: red']], [['> look', null]]]);
  assert.equal(transcriptText(out), '<b>hi</b> red\n> look\n');
  const html = transcriptHTML(out, 'Demo <x>');
  assert.ok(html.includes('&lt;b&gt;hi&lt;/b&gt; <span style="color: red">red</span>'), html);
  assert.ok(html.includes('<title>Demo &lt;x&gt;</title>'));
  assert.ok(!html.includes('<b>'));
  assert.equal(escapeHTML(`"'&`), '&quot;&#39;&amp;');
});

test('download names', () => {
  assert.equal(downloadName('demo', new Date(2026, 0, 2, 3, 4), 'txt'), 'demo-2026-01-02-0304.txt');
  assert.equal(downloadName('../x', new Date(2026, 0, 2, 3, 4), 'html'), 'x-2026-01-02-0304.html');
});
