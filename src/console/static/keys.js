// The Keys view: root keys in a table (alias, id, version, state, created, buckets protected) with Rotate,
// Disable/Enable and Destroy per row; a Create key form; BYOK import (import token + encrypted key file).
import { api } from './api.js';
import { field, formatDate, h, messageArea, table } from './dom.js';

export async function renderKeys(main) {
  const { keys } = await api('GET', '/api/keys');
  const tableMessage = messageArea();
  const rerender = () => renderKeys(main);

  const action = (label, key, run) => h('button', { type: 'button', onclick: async (event) => {
    event.currentTarget.disabled = true;
    try {
      await run();
      await rerender();
      document.getElementById('keys-message')?.show?.(`${label}: done for "${key.alias}".`);
    } catch (err) {
      event.target.disabled = false;
      tableMessage.show(err.message, true);
    }
  } }, label);

  const rows = keys.map((key) => h('tr', {},
    h('th', { scope: 'row' }, key.alias),
    h('td', {}, h('code', {}, key.id)),
    h('td', {}, String(key.version)),
    h('td', { class: `state ${key.state}` }, key.state),
    h('td', {}, formatDate(key.createdAt)),
    h('td', {}, key.buckets === null ? '—' : h('a', { href: `#/buckets?key=${encodeURIComponent(key.id)}` }, `${key.buckets.length}`)),
    h('td', { class: 'actions' },
      action('Rotate', key, () => api('POST', `/api/keys/${encodeURIComponent(key.id)}/rotate`)),
      key.state === 'active'
        ? action('Disable', key, () => api('POST', `/api/keys/${encodeURIComponent(key.id)}/disable`))
        : action('Enable', key, () => api('POST', `/api/keys/${encodeURIComponent(key.id)}/enable`)),
      h('button', { type: 'button', onclick: () => openDestroy(main, key) }, 'Destroy')),
  ));
  tableMessage.id = 'keys-message';

  main.replaceChildren(
    h('h2', {}, 'Root keys'),
    createForm(rerender),
    h('section', { 'aria-labelledby': 'keys-title' },
      h('h3', { id: 'keys-title' }, 'Keys in the HSM'),
      table('Root keys', ['Alias', 'ID', 'Version', 'State', 'Created', 'Buckets protected', 'Actions'], rows, 'No root keys yet.'),
      tableMessage),
    importSection(rerender),
  );
}

function createForm(rerender) {
  const alias = h('input', { name: 'alias', autocomplete: 'off', required: true, maxlength: 256 });
  const message = messageArea();
  return h('section', { 'aria-labelledby': 'create-key-title' },
    h('h3', { id: 'create-key-title' }, 'New root key'),
    h('form', { onsubmit: async (event) => {
      event.preventDefault();
      try {
        const { key } = await api('POST', '/api/keys', { alias: alias.value });
        await rerender();
        document.getElementById('keys-message')?.show(`Created "${key.alias}" inside the HSM.`);
      } catch (err) {
        message.show(err.message, true);
      }
    } }, field('Alias', alias), h('button', { type: 'submit' }, 'Create key'), message));
}

async function openDestroy(main, key) {
  const message = messageArea();
  const { registrations } = await api('GET', `/api/keys/${encodeURIComponent(key.id)}/registrations`).catch((err) => {
    message.show(err.message, true);
    return { registrations: null };
  });
  const confirm = h('input', { autocomplete: 'off', spellcheck: 'false' });
  const dialog = h('dialog', { 'aria-labelledby': 'destroy-title' });
  const close = () => dialog.close();
  const destroy = async (force) => {
    try {
      await api('POST', `/api/keys/${encodeURIComponent(key.id)}/destroy`, force ? { force: true, confirmAlias: confirm.value } : {});
      close();
      await renderKeys(main);
      document.getElementById('keys-message')?.show(`Destroyed "${key.alias}": everything under it is now unreadable.`);
    } catch (err) {
      message.show(err.message, true);
    }
  };
  const buckets = registrations ?? [];
  dialog.append(
    h('h3', { id: 'destroy-title' }, `Destroy root key "${key.alias}"`),
    h('p', {}, 'Every version of the key is destroyed inside the HSM. Every object under it becomes permanently unreadable.'),
    buckets.length > 0
      ? h('section', { 'aria-labelledby': 'destroy-buckets-title' },
        h('h4', { id: 'destroy-buckets-title' }, `Buckets protected by "${key.alias}"`),
        h('ul', { 'aria-labelledby': 'destroy-buckets-title' }, buckets.map((r) => h('li', {}, r.bucket))))
      : h('p', {}, 'No bucket is protected by this key.'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', onclick: () => destroy(false) }, 'Destroy key'),
      h('button', { type: 'button', onclick: close }, 'Cancel')),
    buckets.length > 0
      ? h('form', { onsubmit: (event) => { event.preventDefault(); destroy(true); } },
        h('p', {}, 'A destroy is refused while the key protects buckets. To destroy it anyway (crypto-shredding those buckets), type its alias:'),
        field('Type the alias to confirm a forced destroy', confirm),
        h('button', { type: 'submit', class: 'danger' }, 'Force destroy'))
      : null,
    message,
  );
  dialog.addEventListener('close', () => dialog.remove()); // Escape closes it too
  document.body.append(dialog);
  dialog.showModal();
}

function importSection(rerender) {
  const tokenId = h('input', { autocomplete: 'off', required: true });
  const pem = h('textarea', { readonly: true, rows: 6, cols: 70 });
  const tokenInfo = h('p', {});
  const tokenMessage = messageArea();
  const file = h('input', { type: 'file', required: true });
  const alias = h('input', { autocomplete: 'off', required: true, maxlength: 256 });
  const message = messageArea();
  const tokenBox = h('div', { hidden: true }, tokenInfo, field('Import token public key (PEM)', pem));
  return h('section', { 'aria-labelledby': 'import-title' },
    h('h3', { id: 'import-title' }, 'Bring your own key'),
    h('p', {}, 'Create an import token, encrypt 16, 24 or 32 bytes of key material to its public key with RSA-OAEP (the hash shown) offline, then upload the ciphertext. The material is unwrapped inside the HSM only.'),
    h('button', { type: 'button', onclick: async () => {
      try {
        const { importToken } = await api('POST', '/api/import-tokens');
        tokenId.value = importToken.id;
        pem.value = importToken.publicKeyPem;
        tokenInfo.textContent = `Token ${importToken.id}: RSA-OAEP with ${importToken.oaepHash.toUpperCase()}, ${importToken.remainingUses} use(s), expires ${new Date(importToken.expiresAt).toLocaleString()}.`;
        tokenBox.hidden = false;
        tokenMessage.show('Import token created.');
      } catch (err) {
        tokenMessage.show(err.message, true);
      }
    } }, 'Create import token'),
    tokenMessage,
    tokenBox,
    h('form', { onsubmit: async (event) => {
      event.preventDefault();
      try {
        const bytes = new Uint8Array(await file.files[0].arrayBuffer());
        const text = new TextDecoder().decode(bytes).trim();
        const encryptedKey = /^[A-Za-z0-9+/=\s]+$/.test(text) && bytes.length > 0 ? text : base64(bytes);
        const { key } = await api('POST', '/api/keys/import', { alias: alias.value, importTokenId: tokenId.value, encryptedKey });
        await rerender();
        document.getElementById('keys-message')?.show(`Imported "${key.alias}" into the HSM.`);
      } catch (err) {
        message.show(err.message, true);
      }
    } },
    field('Import token ID', tokenId),
    field('Encrypted key file', file),
    field('Imported key alias', alias),
    h('button', { type: 'submit' }, 'Import key'),
    message));
}

function base64(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
