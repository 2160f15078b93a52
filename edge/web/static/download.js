// Downloading the session's transcript as text or HTML, from what the page
// shows: the output holds the player's own session as the edge streamed it
// (the scrollback's worth: Settings › Scrollback bounds it).

/** The file name of a download: game, date and time, extension. */
export function downloadName(game, when, ext) {
  const pad = (n) => String(n).padStart(2, '0');
  const stamp = `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}-${pad(when.getHours())}${pad(when.getMinutes())}`;
  const safe = String(game || 'trellis').replace(/[^a-z0-9_-]/gi, '') || 'trellis';
  return `${safe}-${stamp}.${ext}`;
}

/** The output's lines as plain text. */
export function transcriptText(output) {
  const lines = [];
  for (const line of Array.from(output.children)) lines.push(line.textContent);
  return lines.join('\n') + '\n';
}

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * A standalone HTML page of the output, colours kept. It is rebuilt from
 * the text and the inline styles of each span (never from markup), so
 * game text cannot become markup in the file.
 */
export function transcriptHTML(output, title) {
  const body = [];
  for (const line of Array.from(output.children)) {
    let html = '';
    for (const node of Array.from(line.childNodes)) {
      const text = escapeHTML(node.textContent);
      const style = node.nodeType === 1 ? node.getAttribute('style') : null;
      const cls = node.nodeType === 1 ? node.getAttribute('class') : null;
      if (!style && !cls) {
        html += text;
        continue;
      }
      html += `<span${cls ? ` class="${escapeHTML(cls)}"` : ''}${style ? ` style="${escapeHTML(style)}"` : ''}>${text}</span>`;
    }
    body.push(`<div class="${escapeHTML(line.getAttribute('class') || 'line')}">${html}</div>`);
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHTML(title)}</title>
<style>body{background:#0f1115;color:#d4d7dd;font:14px/1.3 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;margin:1rem}
.notice,.gap,.lost{color:#6b7382}.input{color:#6cb6ff}</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}
