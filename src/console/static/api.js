// Talking to the console's own API: JSON with the session's CSRF token on every state-changing request, NDJSON
// progress for long jobs, XHR for uploads (the only browser API with upload progress). Errors carry the server's words.
let csrf = null;

export function setCsrf(token) {
  csrf = token;
}

export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const UNREACHABLE = 'The console cannot be reached: is it still running?';

async function send(method, path, body) {
  const headers = {};
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') {
    headers['x-csrf-token'] = csrf ?? '';
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(UNREACHABLE, 'ERR_UNREACHABLE', 0);
  }
}

async function failure(response) {
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && data.error?.code === 'ERR_SIGNED_OUT') window.dispatchEvent(new Event('console:signed-out'));
  return new ApiError(data.error?.message ?? `The console answered ${response.status}.`, data.error?.code, response.status);
}

export async function api(method, path, body) {
  const response = await send(method, path, body);
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** A POST answered with NDJSON lines {done,total} … then {result} or {error}. */
export async function apiProgress(path, onProgress) {
  const response = await send('POST', path, {});
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffered += value;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
      if (line.error) throw new ApiError(line.error.message, line.error.code, 200);
      if ('result' in line) return line.result;
      onProgress(line.done, line.total);
    }
    if (done) throw new ApiError('The job ended without a result: see the console log.', 'ERR_INCOMPLETE', 200);
  }
}

/** Streams a File as the request body (the browser reads it from disk), reporting upload progress. */
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', path);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('x-csrf-token', csrf ?? '');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onerror = () => reject(new ApiError(UNREACHABLE, 'ERR_UNREACHABLE', 0));
    xhr.onload = () => {
      const data = xhr.response ?? {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(data.error?.message ?? `The console answered ${xhr.status}.`, data.error?.code, xhr.status));
    };
    xhr.send(file);
  });
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : '';
}
