// tessera.js: the browser SDK of Tessera. One ES module, no dependencies, no build step; its
// types are in tessera.d.ts beside it, and docs/browser.md says what it guarantees.
//
//   import { createTessera } from '/sdk/tessera.js';
//   const tessera = createTessera();
//   tessera.on('signedOut', ({ reason }) => tessera.redirect('/login?why=' + reason));
//   const me = await tessera.session();

/** The module's version; `/sdk/tessera.js` always serves the current one. */
export const VERSION = '1.0.0';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** The codes of a 401 that say the session is over (or was never there). */
const ENDED_CODES = new Set(['AUTH_1002', 'AUTH_1003', 'AUTH_1004']);

/** An error of the SDK: `code` is stable (`signed_out`, `unavailable`, `network`, `refresh_limit`, or the service's code). */
export class TesseraError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, reason?: string, retryAfter?: number, response?: Response}} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'TesseraError';
    this.code = code;
    this.status = details.status;
    this.reason = details.reason;
    this.retryAfter = details.retryAfter;
    this.response = details.response;
  }
}

/**
 * The milliseconds to wait before attempt `attempt` (1 for the first retry): exponential from
 * `baseDelay`, capped at `maxDelay`, with full jitter, and never less than `Retry-After`.
 * @param {number} attempt @param {{baseDelay: number, maxDelay: number}} policy
 * @param {number | undefined} retryAfterMs @param {() => number} [random]
 */
export function retryDelay(attempt, policy, retryAfterMs, random = Math.random) {
  const ceiling = Math.min(policy.maxDelay, policy.baseDelay * 2 ** (attempt - 1));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  return Math.max(jittered, retryAfterMs ?? 0);
}

/**
 * When a deadline the service announced passes on the local clock: what remained of it at the
 * service's time of answer (its `Date` header, whole seconds, so one more second is taken off),
 * counted from the local time the answer arrived. A wrong local clock does not matter.
 * @param {string} deadline ISO 8601 @param {string | null} dateHeader @param {number} receivedAt local ms
 */
export function localDeadline(deadline, dateHeader, receivedAt) {
  const at = Date.parse(deadline);
  const serverNow = dateHeader ? Date.parse(dateHeader) : NaN;
  if (Number.isNaN(at)) return receivedAt;
  if (Number.isNaN(serverNow)) return at; // no Date header: the local clock is all there is
  return receivedAt + (at - serverNow) - 1000;
}

/** At most `count` events in any `window` ms. */
export class Budget {
  /** @param {number} count @param {number} window @param {number[]} [times] */
  constructor(count, window, times = []) {
    this.count = count;
    this.window = window;
    this.times = times;
  }
  /** Records one at `now` and says whether it fits. @param {number} now */
  take(now) {
    this.times = this.times.filter((t) => now - t < this.window);
    if (this.times.length >= this.count) return false;
    this.times.push(now);
    return true;
  }
  /** @param {number} now */
  wouldFit(now) {
    return this.times.filter((t) => now - t < this.window).length < this.count;
  }
}

/** @param {Partial<import('./tessera.js').TesseraOptions>} [options] */
export function createTessera(options = {}) {
  return new Tessera(options);
}

export class Tessera {
  /** @param {Partial<import('./tessera.js').TesseraOptions>} [options] */
  constructor(options = {}) {
    this.baseURL = (options.baseURL ?? '').replace(/\/$/, '');
    this.mode = options.mode ?? 'cookie';
    this.expiringMargin = options.expiringMargin ?? 60_000;
    this.refreshMargin = options.refreshMargin ?? 30_000;
    this.sessionMaxAge = options.sessionMaxAge ?? 5_000;
    this.retryPolicy = { attempts: 8, baseDelay: 250, maxDelay: 4_000, maxTotal: 30_000, ...options.retry };
    this.refreshBudget = new Budget(options.refreshBudget?.count ?? 3, options.refreshBudget?.window ?? 30_000);
    this.redirectBudget = { count: 3, window: 30_000, ...options.redirectBudget };
    this.now = options.clock ?? (() => Date.now());
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.name = options.name ?? 'tessera';
    this.refreshStorage = options.refreshTokenStorage ?? 'memory';
    this.liveSignOut = options.liveSignOut ?? true;
    /** Cookie mode: the stream of the session's own events, `{source, sessionId}`. */
    this.events = null;
    this.tabId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** Bumped by every sign-in and sign-out: work started in an older one is discarded. */
    this.generation = 0;
    /** @type {'unknown' | 'signedIn' | 'signedOut'} */
    this.state = 'unknown';
    /** The session as last read: `{session, user, csrfToken, idleDeadline, absoluteDeadline, readAt}`. */
    this.current = null;
    /** Token mode: `{accessToken, refreshToken, expiresAt, lifetime}`, deadlines on the local clock. */
    this.tokens = null;
    this.lastReason = null;
    this.inflightSession = null;
    this.inflightRefresh = null;
    this.timers = new Set();
    this.expiringTimer = null;
    this.deadlineTimer = null;
    this.refreshTimer = null;
    /** Refreshes another tab announced: refresh token → the time its answer is awaited until. */
    this.claims = new Map();
    this.waitingForTokens = [];
    this.restoreState();
    this.openChannel();
    if (typeof document !== 'undefined') {
      this.onVisible = () => { if (document.visibilityState === 'visible') this.recheck(); };
      document.addEventListener('visibilitychange', this.onVisible);
      globalThis.addEventListener?.('focus', this.onVisible);
    }
    // A new tab of token mode asks the others for the tokens (they are in memory only, by
    // default); requests wait a moment for the answer.
    this.ready = Promise.resolve();
    if (this.mode === 'token' && !this.tokens) {
      this.ready = new Promise((resolve) => { this.readyResolve = resolve; setTimeout(resolve, 300); });
    }
    if (this.mode === 'token') this.post({ t: 'hello', from: this.tabId });
  }

  // MARK: Events

  /** Calls `handler` on `event` (`signedIn`, `signedOut`, `expiring`, `refreshed`, `redirectBlocked`); returns a function that stops it. */
  on(event, handler) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(handler);
    return () => this.listeners.get(event)?.delete(handler);
  }

  emit(event, detail) {
    for (const handler of [...(this.listeners.get(event) ?? [])]) {
      try { handler(detail); } catch (error) { setTimeout(() => { throw error; }); }
    }
  }

  // MARK: Signing in and out

  /** Signs in (`POST /v1/login`); resolves to `{session, user}`, or rejects with a TesseraError. */
  async login({ username, password, label } = {}) {
    const body = { username, password };
    if (label) body.label = label;
    if (this.mode === 'token') body.mode = 'token';
    const sentAt = this.now();
    const response = await this.raw('/v1/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!response.ok) throw await this.errorOf(response);
    const answer = await response.json();
    this.generation += 1;
    if (this.mode === 'token') this.takeTokens(answer, sentAt);
    this.signedIn(answer, response, true);
    return { session: answer.session, user: answer.user };
  }

  /** Signs out in every tab: `POST /v1/logout`, then `signedOut` with reason `logout` everywhere. */
  async logout() {
    const headers = {};
    if (this.mode === 'token' && this.tokens) headers.Authorization = `Bearer ${this.tokens.accessToken}`;
    if (this.mode === 'cookie' && this.current?.csrfToken) headers['X-CSRF-Token'] = this.current.csrfToken;
    const sessionId = this.current?.session?.id ?? null;
    this.signedOut('logout', { broadcast: true, sessionId, force: true });
    try {
      await this.raw('/v1/logout', { method: 'POST', headers });
    } catch {
      // Best effort: the session ends at its timeout if the service cannot be told.
    }
  }

  /** Slides the session (a read of it, which counts as activity); resolves to it, or `null`. */
  extend() {
    return this.session({ force: true });
  }

  /**
   * The signed-in session (`GET /v1/session`) or `null`: cached for `sessionMaxAge` ms, and
   * concurrent callers share one request.
   */
  async session({ force = false } = {}) {
    if (!force && this.current && this.now() - this.current.readAt < this.sessionMaxAge) return this.current;
    if (this.inflightSession) return this.inflightSession;
    // Signed out: the service is asked again (someone may have signed in without this SDK) at
    // most every `sessionMaxAge` ms, however often the page asks.
    if (this.state === 'signedOut' && this.lastCheckedOut && this.now() - this.lastCheckedOut < this.sessionMaxAge) return null;
    if (this.state === 'signedOut') this.lastCheckedOut = this.now();
    const generation = this.generation;
    this.inflightSession = (async () => {
      try {
        const response = await this.authorized('/v1/session', { method: 'GET' }, { retryTransient: true, check: true });
        if (generation !== this.generation && this.state === 'signedOut') return null;
        if (response.ok) {
          const answer = await response.json();
          this.signedIn(answer, response, false);
          return this.current;
        }
        return null;
      } catch (error) {
        if (error instanceof TesseraError && error.code === 'signed_out') return null;
        throw error;
      } finally {
        this.inflightSession = null;
      }
    })();
    return this.inflightSession;
  }

  /**
   * Navigates to `url` unless this tab has made `redirectBudget.count` such navigations in
   * `redirectBudget.window` ms (a redirect loop); then it stays and emits `redirectBlocked`.
   * Returns whether it navigated.
   */
  redirect(url) {
    const key = `${this.name}:redirects`;
    let times = [];
    try { times = JSON.parse(sessionStorage.getItem(key) ?? '[]'); } catch { times = []; }
    const budget = new Budget(this.redirectBudget.count, this.redirectBudget.window, times);
    if (!budget.take(Date.now())) {
      this.emit('redirectBlocked', { url });
      return false;
    }
    try { sessionStorage.setItem(key, JSON.stringify(budget.times)); } catch { /* private mode */ }
    globalThis.location.assign(url);
    return true;
  }

  /** Stops timers and the channel (for tests and single-page apps that drop the instance). */
  close() {
    this.stopListening();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.channel?.close?.();
    if (this.onStorage) globalThis.removeEventListener?.('storage', this.onStorage);
    if (this.onVisible) {
      document.removeEventListener('visibilitychange', this.onVisible);
      globalThis.removeEventListener?.('focus', this.onVisible);
    }
  }

  // MARK: Requests

  /**
   * `fetch` with the session: sends the cookie (or the access token), adds `X-CSRF-Token` to
   * unsafe methods, retries idempotent requests through `503` and network errors, and notices
   * the end of the session. After `signedOut` it rejects at once (`signed_out`) until the next
   * sign-in.
   * @param {RequestInfo | URL} input @param {RequestInit} [init]
   */
  fetch(input, init = {}) {
    return this.authorized(input, init, { retryTransient: IDEMPOTENT_METHODS.has((init.method ?? 'GET').toUpperCase()) });
  }

  async authorized(input, init, { retryTransient, check = false }) {
    if (this.state === 'signedOut' && !check && (this.mode === 'token' || this.lastReason)) {
      throw new TesseraError('signed_out', `signed out (${this.lastReason})`, { reason: this.lastReason });
    }
    const method = (init.method ?? 'GET').toUpperCase();
    let csrfRetried = false;
    let authRetried = false;
    const generation = this.generation;
    for (;;) {
      const headers = new Headers(init.headers ?? {});
      if (this.mode === 'token') {
        const token = await this.accessToken();
        headers.set('Authorization', `Bearer ${token}`);
      } else if (!SAFE_METHODS.has(method) && this.current?.csrfToken) {
        headers.set('X-CSRF-Token', this.current.csrfToken);
      }
      const sentWith = this.tokens?.accessToken;
      const response = await this.send(input, { ...init, method, headers }, retryTransient);
      const error = response.status === 401 || response.status === 403 ? await this.tesseraError(response) : null;
      if (!error) return response;
      if (response.status === 403 && error.code === 'AUTH_1008' && !csrfRetried && this.mode === 'cookie') {
        // The CSRF token changed (another tab signed in anew): learn it once and try again.
        csrfRetried = true;
        await this.session({ force: true });
        if (this.state !== 'signedIn') return response;
        continue;
      }
      if (response.status === 401 && this.mode === 'token' && !authRetried && ['AUTH_1010', 'AUTH_1003'].includes(error.code)) {
        // One retry after a refresh, or with the token another refresh got meanwhile.
        authRetried = true;
        if (this.tokens && this.tokens.accessToken === sentWith) await this.refresh({ due: error.code === 'AUTH_1010' });
        continue;
      }
      if (response.status === 401 && ENDED_CODES.has(error.code) && generation === this.generation) {
        this.signedOut(error.reason ?? 'revoked', { broadcast: true, sessionId: this.current?.session?.id ?? null });
      }
      return response;
    }
  }

  /** Sends, retrying (when `retryTransient`) through `503` and network errors within the policy. */
  async send(input, init, retryTransient) {
    const started = this.now();
    for (let attempt = 1; ; attempt += 1) {
      let response;
      try {
        response = await this.raw(input, init);
      } catch (error) {
        if (!retryTransient || !this.mayRetry(attempt, started, 0)) {
          throw new TesseraError('network', `no answer: ${error?.message ?? error}`);
        }
        await this.sleep(retryDelay(attempt, this.retryPolicy, undefined));
        continue;
      }
      if (response.status !== 503 || !retryTransient) return response;
      const retryAfter = Number(response.headers.get('Retry-After'));
      const wait = retryDelay(attempt, this.retryPolicy, Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined);
      if (!this.mayRetry(attempt, started, wait)) return response;
      await this.sleep(wait);
    }
  }

  mayRetry(attempt, started, wait) {
    return attempt < this.retryPolicy.attempts && this.now() - started + wait <= this.retryPolicy.maxTotal;
  }

  raw(input, init = {}) {
    const url = typeof input === 'string' && input.startsWith('/') ? this.baseURL + input : input;
    return this.fetchImpl(url, { credentials: this.mode === 'cookie' ? 'include' : 'same-origin', ...init });
  }

  /** The error a Tessera answer describes, or `null` when it is not one (a proxy's 401). */
  async tesseraError(response) {
    try {
      const body = await response.clone().json();
      const error = body?.error;
      if (error && typeof error.code === 'string' && /^[A-Z]+_\d{4}$|^[A-Z_]+$/.test(error.code)) return error;
    } catch { /* not JSON: not Tessera's */ }
    return null;
  }

  async errorOf(response) {
    const error = await this.tesseraError(response);
    const retryAfter = Number(response.headers.get('Retry-After'));
    return new TesseraError(error?.code ?? `HTTP_${response.status}`, error?.message ?? `answered ${response.status}`, {
      status: response.status, reason: error?.reason, retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined, response,
    });
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.timers.delete(timer); resolve(); }, ms);
      this.timers.add(timer);
    });
  }

  // MARK: State

  /** Takes on a session answer (login, `GET /v1/session`, or one another tab sent). */
  signedIn(answer, response, fresh) {
    const receivedAt = this.now();
    const date = response?.headers?.get?.('Date') ?? null;
    const session = answer.session;
    const wasIn = this.state === 'signedIn' && this.current?.session?.id === session.id;
    this.current = {
      session,
      user: answer.user ?? this.current?.user ?? null,
      csrfToken: answer.csrfToken ?? this.current?.csrfToken ?? null,
      idleDeadline: answer.idleDeadline ?? localDeadline(session.idleExpiresAt, date, receivedAt),
      absoluteDeadline: answer.absoluteDeadline ?? localDeadline(session.absoluteExpiresAt, date, receivedAt),
      readAt: receivedAt,
    };
    this.state = 'signedIn';
    this.lastReason = null;
    this.saveState();
    this.armDeadlines();
    if (response) {
      this.post({
        t: fresh ? 'signedIn' : 'session', from: this.tabId,
        answer: { ...answer, idleDeadline: this.current.idleDeadline, absoluteDeadline: this.current.absoluteDeadline },
        tokens: this.tokens,
      });
    }
    this.listen();
    if (!wasIn) this.emit('signedIn', { session, user: this.current.user });
  }

  /**
   * Cookie mode: listens to `GET /v1/session/events`, so that a revocation made elsewhere (an
   * administrator, "sign out everywhere" on another device) or the sweeper's expiry signs this
   * tab out at once, not at its next request. One stream per session; a service that serves no
   * streams (404) is not asked again for this session.
   */
  listen() {
    if (this.mode !== 'cookie' || !this.liveSignOut || typeof globalThis.EventSource !== 'function') return;
    const sessionId = this.current?.session?.id;
    if (!sessionId || this.events?.sessionId === sessionId) return;
    this.stopListening();
    const source = new globalThis.EventSource(`${this.baseURL}/v1/session/events`, { withCredentials: true });
    const ended = (event) => {
      let reason = 'revoked';
      try {
        const body = JSON.parse(event.data);
        if (body?.data?.sessionId !== sessionId) return;
        if (body.type === 'session.expired') reason = body.data.reason ?? 'idle';
      } catch {
        return;
      }
      this.stopListening();
      this.signedOut(reason, { broadcast: true, sessionId });
    };
    source.addEventListener('session.revoked', ended);
    source.addEventListener('session.expired', ended);
    // The browser reconnects by itself after a dropped connection. An answer that is no stream
    // closes it for good: the session ended (the check below then signs out), or the service
    // serves no streams, or not now (this session goes on without one).
    source.onerror = () => {
      if (source.readyState !== 2 || this.events?.source !== source) return;
      this.events = { source: null, sessionId };
      this.session({ force: true }).catch(() => {});
    };
    this.events = { source, sessionId };
  }

  stopListening() {
    this.events?.source?.close();
    this.events = null;
  }

  /**
   * Ends the signed-in state: `signedOut` fires once per signed-in state of this tab (and not
   * at all in a page that never was signed in), and the other tabs are told.
   */
  signedOut(reason, { broadcast, sessionId, force = false }) {
    const wasIn = this.state === 'signedIn' || (this.state === 'unknown' && this.known?.state === 'in');
    if (sessionId && this.current?.session?.id && sessionId !== this.current.session.id && !force) return;
    this.generation += 1;
    this.state = 'signedOut';
    this.lastReason = reason;
    this.stopListening();
    this.current = null;
    this.tokens = null;
    this.storeRefreshToken(null);
    for (const timer of [this.expiringTimer, this.deadlineTimer, this.refreshTimer]) if (timer) clearTimeout(timer);
    this.saveState();
    for (const waiter of this.waitingForTokens.splice(0)) waiter(null);
    if (broadcast) this.post({ t: 'signedOut', from: this.tabId, reason, sessionId });
    if (wasIn) this.emit('signedOut', { reason });
  }

  /** Arms `expiring` a margin before the nearer deadline, and a check just after it. */
  armDeadlines() {
    for (const timer of [this.expiringTimer, this.deadlineTimer]) if (timer) clearTimeout(timer);
    if (!this.current) return;
    const deadline = Math.min(this.current.idleDeadline, this.current.absoluteDeadline);
    const now = this.now();
    this.expiringAnnounced = false;
    const expiringIn = deadline - this.expiringMargin - now;
    this.expiringTimer = setTimeout(() => this.announceExpiring(), Math.max(0, expiringIn));
    // Just after the deadline the service is asked, unless another tab has slid the session.
    this.deadlineTimer = setTimeout(() => this.recheck(), Math.max(0, deadline - now + 1_500));
  }

  announceExpiring() {
    if (!this.current || this.expiringAnnounced) return;
    const deadline = Math.min(this.current.idleDeadline, this.current.absoluteDeadline);
    if (deadline - this.now() > this.expiringMargin) return this.armDeadlines();
    this.expiringAnnounced = true;
    const which = this.current.idleDeadline <= this.current.absoluteDeadline ? 'idle' : 'absolute';
    this.emit('expiring', { expiresAt: deadline, deadline: which });
  }

  /** On becoming visible, on focus, and after a deadline: the timers of a background tab may have been held back. */
  recheck() {
    if (this.state !== 'signedIn' || !this.current) return;
    const now = this.now();
    const deadline = Math.min(this.current.idleDeadline, this.current.absoluteDeadline);
    if (now >= deadline || now - this.current.readAt >= this.sessionMaxAge * 6) {
      this.session({ force: true }).catch(() => {});
    } else {
      this.announceExpiring();
      if (this.mode === 'token' && this.tokens && now >= this.refreshAt()) this.refresh({ due: true }).catch(() => {});
    }
  }

  /** What this origin last knew, shared by its tabs: `{state: 'in' | 'out', sessionId}`. */
  restoreState() {
    try { this.known = JSON.parse(localStorage.getItem(`${this.name}:state`) ?? 'null'); } catch { this.known = null; }
    if (this.known?.state === 'out') {
      this.state = 'signedOut';
      this.lastReason = this.known.reason ?? null;
    }
    if (this.mode === 'token') {
      const stored = this.loadRefreshToken();
      if (stored) this.tokens = { accessToken: null, refreshToken: stored, expiresAt: 0, lifetime: 0 };
    }
  }

  saveState() {
    const state = this.state === 'signedIn'
      ? { state: 'in', sessionId: this.current?.session?.id ?? null }
      : { state: 'out', reason: this.lastReason };
    this.known = state;
    try { localStorage.setItem(`${this.name}:state`, JSON.stringify(state)); } catch { /* private mode */ }
  }

  // MARK: Token mode

  takeTokens(answer, sentAt) {
    const lifetime = Math.max(0, Number(answer.expiresIn) || 0) * 1000;
    this.tokens = { accessToken: answer.accessToken, refreshToken: answer.refreshToken, expiresAt: sentAt + lifetime, lifetime };
    this.storeRefreshToken(answer.refreshToken);
    this.armRefresh();
  }

  refreshAt() {
    const margin = Math.min(this.refreshMargin, this.tokens.lifetime / 2);
    return this.tokens.expiresAt - margin;
  }

  armRefresh() {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    if (!this.tokens) return;
    this.refreshTimer = setTimeout(() => this.refresh({ due: true }).catch(() => {}), Math.max(0, this.refreshAt() - this.now()));
  }

  /** A valid access token: the one held, or one from a refresh (this tab's or another's). */
  async accessToken() {
    if (!this.tokens) await this.ready;
    if (!this.tokens) throw new TesseraError('signed_out', 'not signed in', { reason: this.lastReason ?? undefined });
    if (this.tokens.accessToken && this.now() < this.tokens.expiresAt) {
      if (this.now() >= this.refreshAt()) this.refresh({ due: true }).catch(() => {});
      return this.tokens.accessToken;
    }
    await this.refresh({ due: true });
    if (!this.tokens?.accessToken) throw new TesseraError('signed_out', 'signed out', { reason: this.lastReason ?? undefined });
    return this.tokens.accessToken;
  }

  /**
   * One refresh for every tab of the origin: a tab that needs one announces it and waits a
   * moment; if another tab announced it first (or has the lower id), it waits for that tab's
   * tokens instead. A lost race costs nothing: the service answers a second use of the same
   * refresh token within its grace window with the same successor.
   */
  refresh({ due }) {
    if (this.inflightRefresh) return this.inflightRefresh;
    if (!this.tokens) return Promise.resolve();
    const generation = this.generation;
    const presented = this.tokens.refreshToken;
    this.inflightRefresh = (async () => {
      try {
        const claimed = this.claims.get(presented);
        if (claimed && claimed.until > this.now()) {
          if (await this.tokensFromAnotherTab(presented, claimed.until - this.now())) return;
        } else {
          this.post({ t: 'claim', from: this.tabId, refreshToken: presented });
          this.claims.set(presented, { from: this.tabId, until: this.now() + 5_000 });
          await this.sleep(60);
          const winner = this.claims.get(presented);
          if (winner && winner.from !== this.tabId) {
            if (await this.tokensFromAnotherTab(presented, 5_000)) return;
          }
        }
        if (generation !== this.generation || this.tokens?.refreshToken !== presented) return;
        if (!due && !this.refreshBudget.take(this.now())) {
          throw new TesseraError('refresh_limit', 'too many refreshes that were not due');
        }
        await this.performRefresh(presented, generation);
      } finally {
        this.inflightRefresh = null;
      }
    })();
    return this.inflightRefresh;
  }

  /** Waits up to `ms` for the tokens another tab got with `presented`; says whether they came. */
  tokensFromAnotherTab(presented, ms) {
    if (this.tokens?.refreshToken !== presented) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { done(false); }, ms);
      const done = (value) => {
        clearTimeout(timer);
        this.waitingForTokens = this.waitingForTokens.filter((w) => w !== waiter);
        resolve(value);
      };
      const waiter = (tokens) => done(tokens ? tokens.refreshToken !== presented : true);
      this.waitingForTokens.push(waiter);
    });
  }

  async performRefresh(presented, generation) {
    const sentAt = this.now();
    const response = await this.send('/v1/token/refresh', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ refreshToken: presented }),
    }, true);
    // Signed out (or in anew) meanwhile: this answer belongs to a session this tab no longer holds.
    if (generation !== this.generation) return;
    if (response.ok) {
      const answer = await response.json();
      this.takeTokens(answer, sentAt);
      this.claims.delete(presented);
      if (answer.session) this.signedIn(answer, null, false);
      this.post({ t: 'tokens', from: this.tabId, presented, tokens: this.tokens, answer: this.current ? this.sharedAnswer() : null });
      for (const waiter of this.waitingForTokens.splice(0)) waiter(this.tokens);
      this.emit('refreshed', { expiresAt: this.tokens.expiresAt });
      return;
    }
    const error = await this.tesseraError(response);
    if (response.status === 401 && error) {
      const reason = error.code === 'AUTH_1007' ? 'reuse' : (error.reason ?? 'revoked');
      this.signedOut(reason, { broadcast: true, sessionId: this.current?.session?.id ?? null, force: true });
      throw new TesseraError('signed_out', `signed out (${reason})`, { reason, status: 401 });
    }
    throw await this.errorOf(response);
  }

  /** Where the refresh token is kept besides memory, or `null`. */
  refreshArea() {
    if (this.refreshStorage === 'local') return globalThis.localStorage ?? null;
    if (this.refreshStorage === 'session') return globalThis.sessionStorage ?? null;
    return null;
  }

  storeRefreshToken(token) {
    const area = this.refreshArea();
    if (!area) return;
    try {
      if (token) area.setItem(`${this.name}:refresh`, token); else area.removeItem(`${this.name}:refresh`);
    } catch { /* private mode */ }
  }

  loadRefreshToken() {
    try { return this.refreshArea()?.getItem(`${this.name}:refresh`) ?? null; } catch { return null; }
  }

  // MARK: Tabs

  /** The origin's tabs talk over a BroadcastChannel, or through `storage` events where there is none. */
  openChannel() {
    if (typeof BroadcastChannel !== 'undefined') {
      this.channel = new BroadcastChannel(`${this.name}:${this.baseURL}`);
      this.channel.onmessage = (event) => this.receive(event.data);
    } else if (typeof localStorage !== 'undefined') {
      this.onStorage = (event) => {
        if (event.key !== `${this.name}:message` || !event.newValue) return;
        try { this.receive(JSON.parse(event.newValue)); } catch { /* another writer's */ }
      };
      globalThis.addEventListener?.('storage', this.onStorage);
    }
  }

  post(message) {
    if (this.channel) {
      this.channel.postMessage(message);
    } else {
      try { localStorage.setItem(`${this.name}:message`, JSON.stringify({ ...message, nonce: Math.random() })); } catch { /* none */ }
    }
  }

  receive(message) {
    if (!message || message.from === this.tabId) return;
    switch (message.t) {
      case 'hello':
        if (this.state === 'signedIn' && this.current) {
          this.post({ t: 'session', from: this.tabId, answer: this.sharedAnswer(), tokens: this.tokens });
        }
        break;
      case 'signedIn':
      case 'session':
        // A signed-out tab takes on only a new sign-in, never a read sent before the sign-out.
        if (message.t === 'session' && this.state === 'signedOut') break;
        if (message.answer?.session) {
          if (message.tokens && this.mode === 'token') {
            this.tokens = { ...message.tokens };
            this.storeRefreshToken(this.tokens.refreshToken);
            this.armRefresh();
            this.readyResolve?.();
          }
          if (message.t === 'signedIn') this.generation += 1;
          this.signedIn(message.answer, null, message.t === 'signedIn');
        }
        break;
      case 'signedOut':
        if (this.state !== 'signedOut' || this.known?.state === 'in') {
          this.signedOut(message.reason, { broadcast: false, sessionId: message.sessionId });
        }
        break;
      case 'claim': {
        const held = this.claims.get(message.refreshToken);
        // Two tabs at once: the lower id refreshes.
        if (!held || held.until <= this.now() || message.from < held.from) {
          this.claims.set(message.refreshToken, { from: message.from, until: this.now() + 5_000 });
        }
        break;
      }
      case 'tokens':
        if (this.mode === 'token' && this.state !== 'signedOut' && message.tokens) {
          this.tokens = { ...message.tokens };
          this.storeRefreshToken(this.tokens.refreshToken);
          this.claims.delete(message.presented);
          this.armRefresh();
          this.readyResolve?.();
          if (message.answer?.session) this.signedIn(message.answer, null, false);
          for (const waiter of this.waitingForTokens.splice(0)) waiter(this.tokens);
        }
        break;
      default:
        break;
    }
  }

  sharedAnswer() {
    const { session, user, csrfToken, idleDeadline, absoluteDeadline } = this.current;
    return { session, user, csrfToken, idleDeadline, absoluteDeadline };
  }
}
