// Types of tessera.js, the browser SDK of Tessera (docs/browser.md).

export declare const VERSION: string;

/** Why a signed-in state ended. */
export type SignOutReason = 'idle' | 'absolute' | 'revoked' | 'logout' | 'reuse';

export interface TesseraOptions {
  /** Where the service is; `''` (the default) is this page's origin. */
  baseURL: string;
  /** `cookie` (the default: the session cookie and CSRF) or `token` (access and refresh tokens). */
  mode: 'cookie' | 'token';
  /** How long before the idle or absolute deadline `expiring` fires, in ms (default 60,000). */
  expiringMargin: number;
  /** Token mode: how long before the access token expires it is refreshed, in ms (default 30,000, at most half its lifetime). */
  refreshMargin: number;
  /** How long `session()` answers from its cache, and how often a signed-out tab asks again, in ms (default 5,000). */
  sessionMaxAge: number;
  /** Retries of idempotent requests through `503` and network errors (defaults: 8 attempts, 250 ms doubling to 4 s, jittered, 30 s in all; never less than `Retry-After`). */
  retry: Partial<{ attempts: number; baseDelay: number; maxDelay: number; maxTotal: number }>;
  /** Token mode: refreshes that were not due (a 401 to a token thought valid), at most `count` per `window` ms (default 3 per 30,000). */
  refreshBudget: Partial<{ count: number; window: number }>;
  /** `redirect()`: at most `count` navigations per tab in `window` ms (default 3 per 30,000). */
  redirectBudget: Partial<{ count: number; window: number }>;
  /** Token mode: where the refresh token is kept. `memory` (the default) is safest; `session` and `local` survive a reload but are readable by any script of the origin (an XSS can take them). */
  refreshTokenStorage: 'memory' | 'session' | 'local';
  /** Cookie mode: listen to `GET /v1/session/events` so that a revocation made elsewhere, or an expiry the service records, fires `signedOut` at once (default true; needs `EventSource`). */
  liveSignOut: boolean;
  /** The name of the channel and storage keys (default `tessera`). */
  name: string;
  /** The clock, in ms (default `Date.now`); deadlines are counted from the service's answers, so its offset does not matter. */
  clock: () => number;
  /** The `fetch` to send with (default the global one). */
  fetch: typeof globalThis.fetch;
}

export interface SessionInfo {
  id: string;
  userId: string;
  idleExpiresAt: string;
  absoluteExpiresAt: string;
  [field: string]: unknown;
}

export interface UserInfo {
  id: string;
  username?: string;
}

export interface CurrentSession {
  session: SessionInfo;
  user: UserInfo | null;
  csrfToken: string | null;
  /** The idle deadline on the local clock (ms). */
  idleDeadline: number;
  /** The absolute deadline on the local clock (ms). */
  absoluteDeadline: number;
  /** When it was read, on the local clock (ms). */
  readAt: number;
}

export interface TesseraEvents {
  signedIn: { session: SessionInfo; user: UserInfo | null };
  /** Once per signed-in state, in every tab. */
  signedOut: { reason: SignOutReason };
  /** `expiringMargin` before the nearer deadline. */
  expiring: { expiresAt: number; deadline: 'idle' | 'absolute' };
  /** Token mode: this tab refreshed the tokens. */
  refreshed: { expiresAt: number };
  /** `redirect()` refused a navigation: a loop. */
  redirectBlocked: { url: string };
}

export declare class TesseraError extends Error {
  /** `signed_out`, `network`, `refresh_limit`, or the service's code (`AUTH_1001`, `STORE_UNAVAILABLE`, …). */
  code: string;
  status?: number;
  reason?: SignOutReason;
  /** Seconds, from `Retry-After`. */
  retryAfter?: number;
  response?: Response;
}

export declare class Tessera {
  constructor(options?: Partial<TesseraOptions>);
  readonly state: 'unknown' | 'signedIn' | 'signedOut';
  readonly lastReason: SignOutReason | null;
  readonly current: CurrentSession | null;
  on<E extends keyof TesseraEvents>(event: E, handler: (detail: TesseraEvents[E]) => void): () => void;
  login(credentials: { username: string; password: string; label?: string }): Promise<{ session: SessionInfo; user: UserInfo }>;
  logout(): Promise<void>;
  session(options?: { force?: boolean }): Promise<CurrentSession | null>;
  extend(): Promise<CurrentSession | null>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Token mode: a valid access token, refreshed if needed (once for all tabs). */
  accessToken(): Promise<string>;
  redirect(url: string): boolean;
  close(): void;
}

export declare function createTessera(options?: Partial<TesseraOptions>): Tessera;

export declare function retryDelay(
  attempt: number,
  policy: { baseDelay: number; maxDelay: number },
  retryAfterMs: number | undefined,
  random?: () => number
): number;

export declare function localDeadline(deadline: string, dateHeader: string | null, receivedAt: number): number;

export declare class Budget {
  constructor(count: number, window: number, times?: number[]);
  take(now: number): boolean;
  wouldFit(now: number): boolean;
}
