// The Buckets view: create a bucket (name, root key picked by alias among the usable keys, shards k+m), the list of
// buckets with their key, and — with ?key=ID — the buckets a chosen root key protects.
import { api, query } from './api.js';
import { field, formatDate, h, messageArea, table } from './dom.js';

export async function renderBuckets(main, params) {
  const keyId = params.get('key') ?? '';
  const [{ keys }, listed] = await Promise.all([
    api('GET', '/api/keys'),
    api('GET', `/api/buckets${query({ keyId })}`).catch((err) => ({ error: err })),
  ]);
  const chosen = keys.find((k) => k.id === keyId);
  const listMessage = messageArea();
  if (listed.error) listMessage.show(listed.error.message, true);
  const buckets = listed.buckets ?? [];

  const filter = h('select', { onchange: (event) => { location.hash = `#/buckets${query({ key: event.target.value })}`; } },
    h('option', { value: '' }, 'All keys'),
    keys.map((k) => h('option', { value: k.id, selected: k.id === keyId }, `${k.alias}${k.state === 'active' ? '' : ` (${k.state})`}`)));

  const rows = buckets.map((b) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/bucket/${encodeURIComponent(b.name)}` }, b.name)),
    h('td', {}, b.keyAlias),
    h('td', {}, h('code', {}, b.keyId)),
    h('td', {}, `${b.dataShards}+${b.parityShards}`),
    h('td', {}, formatDate(b.createdAt)),
    h('td', { class: 'actions' }, h('button', { type: 'button', onclick: async () => {
      try {
        await api('DELETE', `/api/buckets/${encodeURIComponent(b.name)}`);
        await renderBuckets(main, params);
      } catch (err) {
        listMessage.show(err.message, true);
      }
    } }, 'Delete bucket')),
  ));
  const title = chosen ? `Buckets protected by "${chosen.alias}"` : 'All buckets';
  main.replaceChildren(
    h('h2', {}, 'Buckets'),
    createForm(keys, () => renderBuckets(main, params)),
    h('section', { 'aria-labelledby': 'bucket-list-title' },
      h('h3', { id: 'bucket-list-title' }, title),
      field('Filter by root key', filter),
      table(title, ['Bucket', 'Root key', 'Key ID', 'Shards (k+m)', 'Created', 'Actions'], rows, chosen ? 'This key protects no bucket.' : 'No buckets yet.'),
      listMessage),
  );
}

function createForm(keys, rerender) {
  const name = h('input', { autocomplete: 'off', required: true, maxlength: 63, pattern: '[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]', title: '3–63 characters: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit' });
  const usable = keys.filter((k) => k.state === 'active');
  const key = h('select', { required: true },
    usable.length === 0 ? h('option', { value: '' }, 'No usable key: create or enable one') : null,
    usable.map((k) => h('option', { value: k.id }, k.alias)));
  const k = h('input', { type: 'number', min: 1, max: 256, value: '2', required: true });
  const m = h('input', { type: 'number', min: 0, max: 255, value: '1', required: true });
  const message = messageArea();
  return h('section', { 'aria-labelledby': 'create-bucket-title' },
    h('h3', { id: 'create-bucket-title' }, 'New bucket'),
    h('form', { onsubmit: async (event) => {
      event.preventDefault();
      try {
        const { bucket } = await api('POST', '/api/buckets', { name: name.value, keyId: key.value, dataShards: Number(k.value), parityShards: Number(m.value) });
        await rerender();
        document.getElementById('bucket-list-title')?.after(h('p', { role: 'status', class: 'message' }, `Created bucket "${bucket?.name ?? name.value}".`));
      } catch (err) {
        message.show(err.message, true);
      }
    } },
    field('Bucket name', name),
    field('Root key', key),
    h('fieldset', {}, h('legend', {}, 'Shards'), field('Data shards (k)', k), field('Parity shards (m)', m)),
    h('button', { type: 'submit' }, 'Create bucket'),
    message));
}
