// A console on a fresh SoftHSM token (test/helpers/token.ts) and a temp shard store, plus an HTTP client that keeps
// the session cookie and CSRF token the way a browser would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineOptions, testToken } from './token.js';
import { CryptoEngine, FsShardStore } from '../../dist/index.js';
import { startConsole, type ConsoleOptions } from '../../dist/console/server.js';

export const STORE_NODES = 4;

export async function consoleFixture(extra: Partial<ConsoleOptions> = {}) {
  const engine = await CryptoEngine.open(engineOptions());
  const root = mkdtempSync(join(tmpdir(), 'hce-console-store-'));
  const store = new FsShardStore(Array.from({ length: STORE_NODES }, (_, i) => join(root, `node${i}`)), { createFolders: true });
  const logged: string[] = [];
  const running = await startConsole({ engine, store, log: (line) => logged.push(line), ...extra });
  return {
    engine, store, root, logged, ...running, pin: testToken().pin,
    async close() {
      await running.close();
      await engine.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** fetch against the console with a cookie jar of one cookie and the CSRF token from sign-in. */
export class ConsoleClient {
  cookie = '';
  csrf = '';
  readonly seen: string[] = [];
  constructor(readonly origin: string) {}

  async request(method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; raw?: BodyInit } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...(this.cookie ? { cookie: this.cookie } : {}), ...options.headers };
    let body: BodyInit | undefined = options.raw;
    if (options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(options.body);
    }
    if (method !== 'GET' && this.csrf && !('x-csrf-token' in headers)) headers['x-csrf-token'] = this.csrf;
    const response = await fetch(this.origin + path, { method, headers, body, duplex: 'half' } as RequestInit);
    const text = await response.text();
    this.seen.push([...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n') + '\n' + text);
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: response.status, headers: response.headers, text, json };
  }

  async signIn(token: string): Promise<Answer> {
    const answer = await this.request('POST', '/api/session', { body: { token } });
    const setCookie = answer.headers.get('set-cookie');
    if (setCookie) this.cookie = setCookie.split(';')[0]!;
    if (answer.json?.csrf) this.csrf = answer.json.csrf;
    return answer;
  }
}
