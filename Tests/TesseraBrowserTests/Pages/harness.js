// The test pages' shared part: one tessera.js instance set up from the page's query, and what
// the tests read back through WebDriver. Events are kept in sessionStorage, so that they
// survive the navigations an app makes on signedOut.
import { createTessera } from '/sdk/tessera.js';

const query = new URLSearchParams(location.search);
window.clockOffset = 0;
window.delayRefreshes = 0;
const fetchWithDelay = async (input, init) => {
  const url = typeof input === 'string' ? input : input.url;
  if (url.includes('/v1/token/refresh') && window.delayRefreshes > 0) {
    const response = await fetch(input, init);
    await new Promise((resolve) => setTimeout(resolve, window.delayRefreshes));
    return response;
  }
  return fetch(input, init);
};

// `?nochannel`: a browser without BroadcastChannel, where tabs talk through storage events.
if (query.has('nochannel')) delete globalThis.BroadcastChannel;

export const tessera = createTessera({
  mode: query.get('mode') ?? 'cookie',
  expiringMargin: Number(query.get('margin') ?? 60000),
  clock: () => Date.now() + window.clockOffset,
  fetch: fetchWithDelay,
});
window.tessera = tessera;

export function record(kind, detail = {}) {
  const log = JSON.parse(sessionStorage.getItem('test:events') ?? '[]');
  log.push({ kind, at: Date.now(), page: location.pathname, ...detail });
  sessionStorage.setItem('test:events', JSON.stringify(log));
}
window.events = () => JSON.parse(sessionStorage.getItem('test:events') ?? '[]');

tessera.on('signedIn', () => record('signedIn'));
tessera.on('signedOut', ({ reason }) => record('signedOut', { reason }));
tessera.on('expiring', ({ expiresAt }) => record('expiring', { expiresAt }));
tessera.on('redirectBlocked', ({ url }) => record('redirectBlocked', { url }));

/** Runs `count` tessera.fetch calls at once; resolves to their statuses (or error codes). */
window.burst = async (count, path = '/v1/session', init = {}) => {
  const calls = Array.from({ length: count }, () => tessera.fetch(path, init).then((r) => r.status, (e) => e.code ?? String(e)));
  return Promise.all(calls);
};
