// Entry point: signs the browser in (the #token=… fragment from the start line, or the sign-in form), then routes
// #/keys, #/buckets[?key=ID] and #/bucket/NAME to their views.
import { api, ApiError, setCsrf } from './api.js';
import { field, h, messageArea } from './dom.js';
import { renderKeys } from './keys.js';
import { renderBuckets } from './buckets.js';
import { renderBucket } from './bucket.js';

const main = document.getElementById('main');
const signOut = document.getElementById('sign-out');

async function signIn(token) {
  const { csrf } = await api('POST', '/api/session', { token });
  setCsrf(csrf);
}

function showSignIn(problem) {
  const input = h('input', { type: 'password', autocomplete: 'off', required: true });
  const message = messageArea();
  if (problem) message.show(problem, true);
  const form = h('form', { 'aria-labelledby': 'sign-in-title', onsubmit: async (event) => {
    event.preventDefault();
    try {
      await signIn(input.value);
      start();
    } catch (err) {
      message.show(err.message, true);
    }
  } },
  h('h2', { id: 'sign-in-title' }, 'Sign in'),
  h('p', {}, 'Paste the access token from the line the console printed at start (the part after #token=).'),
  field('Access token', input),
  h('button', { type: 'submit' }, 'Sign in'),
  message);
  signOut.hidden = true;
  main.replaceChildren(form);
  input.focus();
}

async function route() {
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(search);
  for (const link of document.querySelectorAll('nav a')) link.removeAttribute('aria-current');
  try {
    if (path.startsWith('/bucket/')) {
      document.getElementById('nav-buckets').setAttribute('aria-current', 'page');
      await renderBucket(main, decodeURIComponent(path.slice('/bucket/'.length)), params);
    } else if (path === '/buckets') {
      document.getElementById('nav-buckets').setAttribute('aria-current', 'page');
      await renderBuckets(main, params);
    } else {
      document.getElementById('nav-keys').setAttribute('aria-current', 'page');
      await renderKeys(main);
    }
  } catch (err) {
    if (err instanceof ApiError && err.code === 'ERR_SIGNED_OUT') return;
    const message = messageArea();
    message.show(err.message, true);
    main.replaceChildren(message);
  }
}

function start() {
  signOut.hidden = false;
  window.addEventListener('hashchange', route);
  route();
}

signOut.addEventListener('click', async () => {
  await api('DELETE', '/api/session').catch(() => {});
  setCsrf(null);
  showSignIn('Signed out.');
});
window.addEventListener('console:signed-out', () => showSignIn('Your session has ended: sign in again.'));

async function boot() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = fragment.get('token');
  if (token) {
    // The token leaves the address bar (and the history) at once; only the HttpOnly session cookie remains.
    history.replaceState(null, '', `${location.pathname}#/keys`);
    try {
      await signIn(token);
      return start();
    } catch (err) {
      return showSignIn(err.message);
    }
  }
  try {
    const { csrf } = await api('GET', '/api/session');
    setCsrf(csrf);
    start();
  } catch (err) {
    showSignIn(err instanceof ApiError && err.code === 'ERR_SIGNED_OUT' ? undefined : err.message);
  }
}

boot();
