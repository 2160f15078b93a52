// Test helpers (not a test file): a Storage stand-in, and a small stand-in
// for the DOM, just enough for the client's rendering modules under Node. The
// fake DOM implements the subset the modules use and refuses innerHTML and
// insertAdjacentHTML outright, so a test fails if game text could ever be
// parsed as markup.

class Node {
  constructor(doc) {
    this.ownerDocument = doc;
    this.parentNode = null;
    this.childNodes = [];
  }

  get firstChild() {
    return this.childNodes[0] ?? null;
  }

  get lastChild() {
    return this.childNodes[this.childNodes.length - 1] ?? null;
  }

  get nextSibling() {
    if (!this.parentNode) return null;
    const siblings = this.parentNode.childNodes;
    return siblings[siblings.indexOf(this) + 1] ?? null;
  }

  remove() {
    if (!this.parentNode) return;
    const siblings = this.parentNode.childNodes;
    siblings.splice(siblings.indexOf(this), 1);
    this.parentNode = null;
  }
}

export class Text extends Node {
  constructor(doc, data) {
    super(doc);
    this.nodeType = 3;
    this.data = String(data);
  }

  get textContent() {
    return this.data;
  }

  set textContent(v) {
    this.data = String(v);
  }
}

export class Element extends Node {
  constructor(doc, tagName) {
    super(doc);
    this.nodeType = 1;
    this.tagName = tagName.toUpperCase();
    this.attributes = new Map();
    this.style = {};
    this.dataset = {};
    this.hidden = false;
    this.listeners = new Map();
    this.classes = new Set();
    const self = this;
    this.classList = {
      add: (...names) => names.forEach((n) => self.classes.add(n)),
      remove: (...names) => names.forEach((n) => self.classes.delete(n)),
      contains: (n) => self.classes.has(n),
      toggle: (n, force) => {
        const on = force ?? !self.classes.has(n);
        if (on) self.classes.add(n);
        else self.classes.delete(n);
        return on;
      },
    };
    // Layout, for the scrolling code: tests set these as needed.
    this.scrollTop = 0;
    this.scrollHeight = 0;
    this.clientHeight = 0;
  }

  get className() {
    return Array.from(this.classes).join(' ');
  }

  set className(v) {
    this.classes = new Set(String(v).split(/\s+/).filter(Boolean));
  }

  get children() {
    return this.childNodes.filter((n) => n.nodeType === 1);
  }

  get firstElementChild() {
    return this.children[0] ?? null;
  }

  get nextElementSibling() {
    if (!this.parentNode) return null;
    const siblings = this.parentNode.children;
    return siblings[siblings.indexOf(this) + 1] ?? null;
  }

  // One 16px line per element child of the parent: enough for trim's shift.
  get offsetTop() {
    return this.parentNode ? this.parentNode.children.indexOf(this) * 16 : 0;
  }

  getBoundingClientRect() {
    return { width: 0, height: 16 };
  }

  get textContent() {
    return this.childNodes.map((n) => n.textContent).join('');
  }

  set textContent(v) {
    for (const c of this.childNodes) c.parentNode = null;
    this.childNodes = [];
    if (v !== '') this.appendChild(new Text(this.ownerDocument, v));
  }

  set innerHTML(_) {
    throw new Error('innerHTML used: game text must never be parsed as HTML');
  }

  insertAdjacentHTML() {
    throw new Error('insertAdjacentHTML used: game text must never be parsed as HTML');
  }

  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }

  getAttribute(name) {
    return this.attributes.get(name) ?? null;
  }

  appendChild(node) {
    return this.insertBefore(node, null);
  }

  append(...nodes) {
    for (const n of nodes) this.appendChild(typeof n === 'string' ? new Text(this.ownerDocument, n) : n);
  }

  insertBefore(node, ref) {
    node.remove();
    node.parentNode = this;
    const at = ref === null ? this.childNodes.length : this.childNodes.indexOf(ref);
    if (at < 0) throw new Error('insertBefore: reference is not a child');
    this.childNodes.splice(at, 0, node);
    return node;
  }

  replaceChildren(...nodes) {
    for (const c of this.childNodes) c.parentNode = null;
    this.childNodes = [];
    this.append(...nodes);
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }

  dispatch(type, event = {}) {
    for (const fn of this.listeners.get(type) ?? []) fn(event);
  }
}

export class Document {
  createElement(tag) {
    return new Element(this, tag);
  }

  createTextNode(text) {
    return new Text(this, text);
  }
}

/** The lines of an output element as plain text. */
export function lineTexts(output) {
  return output.children.map((l) => l.textContent);
}

// A Storage stand-in backed by a Map, like localStorage.
export function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
    map: m,
  };
}

