// One bucket: its objects a page at a time (prefix filter), streamed upload with a progress bar, download (probed
// first so a key or read error is shown here, then streamed by the browser), delete, and repair/rewrap with progress.
import { api, apiProgress, query, upload } from './api.js';
import { field, formatBytes, formatDate, h, messageArea, table } from './dom.js';

const PAGE = 20;

export async function renderBucket(main, name, params) {
  const prefix = params.get('prefix') ?? '';
  const after = params.get('after') ?? '';
  const base = `/api/buckets/${encodeURIComponent(name)}`;
  const { bucket } = await api('GET', base);
  const objectsMessage = messageArea();
  const listingBox = h('div', {});
  const go = (next) => { location.hash = `#/bucket/${encodeURIComponent(name)}${query(next)}`; };
  const objectUrl = (objectName, extra = {}) => `${base}/object${query({ name: objectName, ...extra })}`;

  const jobProgress = h('progress', { max: 100, value: 0 });
  const jobMessage = messageArea();
  async function runJob(path, label) {
    jobMessage.show(`${label}: running…`);
    jobProgress.value = 0;
    try {
      const result = await apiProgress(path, (done, total) => { jobProgress.value = total > 0 ? (100 * done) / total : 100; });
      jobProgress.value = 100;
      jobMessage.show(`${label}: done. ${summary(result)}`);
    } catch (err) {
      jobMessage.show(`${label} failed: ${err.message}`, true);
    }
  }

  const objectRow = (o) => h('tr', {},
    h('th', { scope: 'row' }, o.name),
    h('td', {}, formatBytes(o.size)),
    h('td', {}, formatDate(o.createdAt)),
    h('td', {}, String(o.keyVersion)),
    h('td', { class: 'actions' },
      h('button', { type: 'button', onclick: async () => {
        objectsMessage.clear();
        try {
          await api('GET', objectUrl(o.name, { probe: 1 }));
          const link = h('a', { href: objectUrl(o.name), download: o.name.split('/').pop(), hidden: true });
          document.body.append(link);
          link.click();
          link.remove();
          objectsMessage.show(`Downloading "${o.name}".`);
        } catch (err) {
          objectsMessage.show(`Download of "${o.name}" failed: ${err.message}`, true);
        }
      } }, 'Download'),
      h('button', { type: 'button', onclick: async () => {
        try {
          await api('DELETE', objectUrl(o.name));
          await refreshObjects();
          objectsMessage.show(`Deleted "${o.name}".`);
        } catch (err) {
          objectsMessage.show(`Delete of "${o.name}" failed: ${err.message}`, true);
        }
      } }, 'Delete'),
      h('button', { type: 'button', onclick: () => runJob(`${base}/repair${query({ name: o.name })}`, `Repair of "${o.name}"`) }, 'Repair')),
  );

  /** Only the listing is redrawn (after an upload or delete), so the forms keep their state and progress. */
  async function refreshObjects() {
    let listing;
    try {
      listing = await api('GET', `${base}/objects${query({ prefix, startAfter: after, limit: PAGE })}`);
    } catch (err) {
      objectsMessage.show(err.message, true);
      listing = { objects: [], next: null };
    }
    listingBox.replaceChildren(
      table(`Objects in "${bucket.name}"${prefix ? ` starting with "${prefix}"` : ''}`, ['Name', 'Size', 'Created', 'Key version', 'Actions'], listing.objects.map(objectRow), 'No objects.'),
      h('nav', { 'aria-label': 'Pages', class: 'pages' },
        after ? h('button', { type: 'button', onclick: () => go({ prefix }) }, 'First page') : null,
        listing.next ? h('button', { type: 'button', onclick: () => go({ prefix, after: listing.next }) }, 'Next page') : null));
  }

  const prefixInput = h('input', { value: prefix, autocomplete: 'off' });
  await refreshObjects();
  main.replaceChildren(
    h('h2', {}, `Bucket "${bucket.name}"`),
    h('p', {}, `Root key "${bucket.keyAlias}" (${bucket.keyId}), ${bucket.dataShards}+${bucket.parityShards} shards, created ${formatDate(bucket.createdAt)}. `,
      h('a', { href: `#/buckets${query({ key: bucket.keyId })}` }, 'Other buckets under this key')),
    uploadForm(base, refreshObjects),
    h('section', { 'aria-labelledby': 'objects-title' },
      h('h3', { id: 'objects-title' }, 'Objects'),
      h('form', { class: 'inline', onsubmit: (event) => { event.preventDefault(); go({ prefix: prefixInput.value }); } },
        field('Prefix', prefixInput), h('button', { type: 'submit' }, 'Filter')),
      listingBox,
      objectsMessage),
    h('section', { 'aria-labelledby': 'maintenance-title' },
      h('h3', { id: 'maintenance-title' }, 'Maintenance'),
      h('p', {}, 'Repair rewrites missing or damaged shards of every object. Rewrap re-protects the bucket under the newest version of its root key (after a rotation).'),
      h('button', { type: 'button', onclick: () => runJob(`${base}/repair`, 'Repair') }, 'Repair all'),
      h('button', { type: 'button', onclick: () => runJob(`${base}/rewrap`, 'Rewrap') }, 'Rewrap'),
      field('Maintenance progress', jobProgress),
      jobMessage),
  );
}

function uploadForm(base, rerender) {
  const file = h('input', { type: 'file', required: true });
  const objectName = h('input', { autocomplete: 'off', placeholder: 'the file name' });
  const progress = h('progress', { max: 100, value: 0 });
  const message = messageArea();
  file.addEventListener('change', () => { if (!objectName.value && file.files[0]) objectName.value = file.files[0].name; });
  return h('section', { 'aria-labelledby': 'upload-title' },
    h('h3', { id: 'upload-title' }, 'Upload'),
    h('form', { onsubmit: async (event) => {
      event.preventDefault();
      const chosen = file.files[0];
      const name = objectName.value || chosen?.name;
      if (!chosen || !name) return message.show('Choose a file first.', true);
      message.show(`Uploading "${name}"…`);
      progress.value = 0;
      try {
        const { object } = await upload(`${base}/object${query({ name })}`, chosen, (done, total) => { progress.value = total > 0 ? (100 * done) / total : 100; });
        progress.value = 100;
        message.show(`Uploaded "${object.name}" (${formatBytes(object.size)}).`);
        objectName.value = '';
        await rerender();
      } catch (err) {
        message.show(`Upload of "${name}" failed: ${err.message}`, true);
      }
    } },
    field('File', file),
    field('Object name', objectName),
    h('button', { type: 'submit' }, 'Upload'),
    field('Upload progress', progress),
    message));
}

function summary(result) {
  if (!result || typeof result !== 'object') return '';
  if (Array.isArray(result.reports)) {
    const repaired = result.reports.reduce((n, r) => n + (r.report?.repaired?.length ?? 0), 0);
    return `${result.objects} object(s) checked, ${repaired} shard(s) rewritten.`;
  }
  if (typeof result.bucketKeys === 'number') return `${result.rewrapped} of ${result.bucketKeys} bucket key(s) re-protected under the newest root key version; no object rewritten.`;
  return '';
}
