// DOM helpers. Nothing here ever parses a string as HTML: text becomes text
// nodes (textContent), so user content cannot turn into markup. The server's
// Content-Security-Policy also requires Trusted Types with no policy, so the
// browser refuses any string assigned to innerHTML and the like.

// h builds an element. props: class, text, attrs (set with setAttribute),
// dataset, on (event listeners), and any other key set as a property
// (value, type, disabled, hidden, id, tabIndex…). Children may be nodes,
// strings (text), arrays, null or false.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null) continue;
      if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'attrs') for (const [a, av] of Object.entries(v)) { if (av !== undefined && av !== null && av !== false) el.setAttribute(a, av === true ? '' : String(av)); }
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else el[k] = v;
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// clear removes every child of el.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// replace puts children in place of el's children.
export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// $ finds one element by selector under root (document by default).
export function $(sel, root = document) {
  return root.querySelector(sel);
}

// uid returns a random id, for client_id and element ids.
export function uid() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// announce reads text out through the polite live region.
export function announce(text) {
  const r = document.getElementById('announcer');
  if (!r) return;
  r.textContent = '';
  // A new text node after a tick so that screen readers notice a repeat.
  setTimeout(() => { r.textContent = text; }, 30);
}
