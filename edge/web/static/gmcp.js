// The GMCP inspector: the last message of every GMCP package the game sent,
// for players writing scripts and for game admins checking their output.
// It renders into a collapsible panel; bodies are shown as indented JSON
// through textContent.

export class GmcpInspector {
  /**
   * @param {HTMLElement} list the element that holds one entry per package.
   */
  constructor(list) {
    this.list = list;
    this.doc = list.ownerDocument;
    this.entries = new Map(); // package name -> {item, body, count, when}
  }

  /** Shows data as the latest message of package pkg. */
  update(pkg, data) {
    let entry = this.entries.get(pkg);
    if (!entry) {
      entry = this.createEntry(pkg);
      this.entries.set(pkg, entry);
      this.place(pkg, entry.item);
    }
    entry.count++;
    entry.meta.textContent = `×${entry.count}`;
    entry.body.textContent = data === undefined ? '(no body)' : JSON.stringify(data, null, 2);
  }

  /** The number of packages shown. */
  get size() {
    return this.entries.size;
  }

  createEntry(pkg) {
    const item = this.doc.createElement('li');
    const details = this.doc.createElement('details');
    const summary = this.doc.createElement('summary');
    const name = this.doc.createElement('span');
    name.className = 'gmcp-package';
    name.textContent = pkg;
    const meta = this.doc.createElement('span');
    meta.className = 'gmcp-count';
    summary.append(name, ' ', meta);
    const body = this.doc.createElement('pre');
    body.className = 'gmcp-body';
    details.append(summary, body);
    item.appendChild(details);
    return { item, body, meta, count: 0 };
  }

  // Keeps the list sorted by package name.
  place(pkg, item) {
    const names = Array.from(this.entries.keys()).sort();
    const next = names[names.indexOf(pkg) + 1];
    this.list.insertBefore(item, next === undefined ? null : this.entries.get(next).item);
  }
}

/**
 * Parses what a player typed into the inspector's send form. The body is
 * JSON, or empty for none.
 * @returns {{package: string, data: any}|{error: string}}
 */
export function parseGmcpForm(pkg, body) {
  const name = pkg.trim();
  if (!/^[A-Za-z][\w-]*(\.[\w-]+)+$/.test(name)) {
    return { error: 'A package name looks like Core.Ping or Char.Items.Inv.' };
  }
  const text = body.trim();
  if (text === '') return { package: name, data: {} };
  try {
    return { package: name, data: JSON.parse(text) };
  } catch (err) {
    return { error: `The body is not JSON: ${err.message}` };
  }
}
