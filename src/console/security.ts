// The console's access rules: the start token, sessions held in HttpOnly SameSite=Strict cookies, CSRF tokens, the
// sign-in failure limit, the Host/Origin checks and the response headers (strict CSP). No engine code here.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'hce_console';
const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 64;
export const MIN_TOKEN_CHARS = 16;
const MAX_TRACKED_CLIENTS = 10_000;

/** A fresh random access token: 32 bytes, base64url (fits in a URL fragment unescaped). */
export function newAccessToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Compares through SHA-256 so neither length nor content leaks through timing. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

interface Session {
  csrf: string;
  lastSeen: number;
}

/** Sessions by cookie value. In memory only: a restart (new token) signs everyone out. */
export class Sessions {
  readonly #sessions = new Map<string, Session>();

  create(): { id: string; csrf: string } {
    this.#sweep();
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    this.#sessions.set(id, { csrf, lastSeen: Date.now() });
    return { id, csrf };
  }

  /** The session named by the request's cookie header, or undefined. */
  find(cookieHeader: string | undefined): (Session & { id: string }) | undefined {
    const id = readCookie(cookieHeader, SESSION_COOKIE);
    if (!id) return undefined;
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    if (Date.now() - session.lastSeen > SESSION_IDLE_MS) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.lastSeen = Date.now();
    return { id, ...session };
  }

  end(id: string): void {
    this.#sessions.delete(id);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, session] of this.#sessions) if (now - session.lastSeen > SESSION_IDLE_MS) this.#sessions.delete(id);
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

export interface SignInLimitOptions {
  /** Failed sign-ins allowed per client address within `windowMs`; the next attempt is refused (429). */
  maxFailures: number;
  windowMs: number;
}

/** Counts failed sign-ins per client address; while a client is over the limit even a right token is refused. */
export class SignInLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #options: SignInLimitOptions;

  constructor(options: SignInLimitOptions) {
    this.#options = options;
  }

  /** Milliseconds until `client` may try again, or 0. */
  retryAfterMs(client: string): number {
    const recent = this.#recent(client);
    if (recent.length < this.#options.maxFailures) return 0;
    return Math.max(1, recent[0]! + this.#options.windowMs - Date.now());
  }

  fail(client: string): void {
    const recent = this.#recent(client);
    recent.push(Date.now());
    this.#failures.delete(client);
    // Bounded: the oldest clients are forgotten first (a Map iterates in insertion order).
    if (this.#failures.size >= MAX_TRACKED_CLIENTS) this.#failures.delete(this.#failures.keys().next().value!);
    this.#failures.set(client, recent);
  }

  #recent(client: string): number[] {
    const since = Date.now() - this.#options.windowMs;
    return (this.#failures.get(client) ?? []).filter((at) => at > since);
  }
}

/** Loopback names and addresses: the only ones the console serves on without TLS. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * Response headers for every reply: a CSP that allows only the console's own scripts, styles and connections (no
 * inline script, no other origin), no framing, no referrer, no caching of API answers.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};
