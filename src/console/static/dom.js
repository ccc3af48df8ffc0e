// A small DOM builder: h('button', { type: 'button', onclick }, 'Rotate'). Text is always set as text, never as
// HTML, so names coming from the engine (aliases, object names) cannot inject markup.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name in el && typeof value !== 'string') el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A message area next to where an action was taken: role=alert for errors, role=status otherwise. */
export function messageArea() {
  const el = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
  el.show = (text, isError = false) => {
    el.setAttribute('role', isError ? 'alert' : 'status');
    el.classList.toggle('error', isError);
    el.textContent = text;
  };
  el.clear = () => el.show('');
  return el;
}

let ids = 0;
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field: <label for> + control, so every control has an accessible name. */
export function field(labelText, control) {
  control.id ||= uid('f');
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control);
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** A table with a caption and header cells (<th scope=col>), rows given as arrays of cells. */
export function table(caption, headers, rows, empty) {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((title) => h('th', { scope: 'col' }, title)))),
    h('tbody', {}, rows.length > 0 ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, empty))),
  );
}
