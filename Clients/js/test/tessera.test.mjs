// The module's pure logic, in Node (node --test Clients/js/test); the browser tests
// (Tests/TesseraBrowserTests) are the ones that try it as a browser runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Budget, localDeadline, retryDelay, createTessera, TesseraError } from '../tessera.js';

test('a deadline is counted from the service time of the answer, whatever the local clock says', () => {
  // The local clock is an hour behind: what matters is the 60 s left at the service's time.
  const received = Date.parse('2026-01-01T11:00:00Z');
  const deadline = localDeadline('2026-01-01T12:01:00Z', 'Thu, 01 Jan 2026 12:00:00 GMT', received);
  assert.equal(deadline - received, 59_000); // one second off for the Date header's whole seconds
  assert.equal(localDeadline('2026-01-01T12:01:00Z', null, received), Date.parse('2026-01-01T12:01:00Z'));
});

test('retries back off exponentially with jitter, capped, and never sooner than Retry-After', () => {
  const policy = { baseDelay: 250, maxDelay: 4000 };
  assert.equal(retryDelay(1, policy, undefined, () => 1), 250);
  assert.equal(retryDelay(1, policy, undefined, () => 0), 125);
  assert.equal(retryDelay(3, policy, undefined, () => 1), 1000);
  assert.equal(retryDelay(10, policy, undefined, () => 1), 4000);
  assert.equal(retryDelay(1, policy, 3000, () => 0), 3000);
});

test('a budget admits so many in a sliding window', () => {
  const budget = new Budget(3, 30_000);
  assert.deepEqual([0, 10, 20, 29].map((s) => budget.take(s * 1000)), [true, true, true, false]);
  assert.equal(budget.take(30_000), true);
  assert.equal(budget.wouldFit(30_500), false);
});

test('a 401 without a Tessera code is never read as signed out, and 503s are retried', async () => {
  const answers = [
    new Response('{"error":{"code":"STORE_UNAVAILABLE","message":"x"}}', { status: 503, headers: { 'Retry-After': '0' } }),
    new Response('<html>proxy</html>', { status: 401 }),
    new Response('{"error":{"code":"AUTH_1002","reason":"revoked","message":"x"}}', { status: 401 }),
  ];
  const sent = [];
  const tessera = createTessera({ fetch: async (url) => { sent.push(url); return answers.shift(); }, retry: { baseDelay: 1, maxDelay: 1 } });
  tessera.state = 'signedIn';
  tessera.current = { session: { id: 's' }, csrfToken: 'c', idleDeadline: Infinity, absoluteDeadline: Infinity, readAt: 0 };
  const seen = [];
  tessera.on('signedOut', ({ reason }) => seen.push(reason));
  assert.equal((await tessera.fetch('/v1/session')).status, 401); // after one retry of the 503
  assert.equal(sent.length, 2);
  assert.equal(tessera.state, 'signedIn');
  assert.equal((await tessera.fetch('/v1/session')).status, 401);
  assert.deepEqual(seen, ['revoked']);
  await assert.rejects(tessera.fetch('/v1/session'), (error) => error instanceof TesseraError && error.code === 'signed_out');
  assert.equal(sent.length, 3);
  tessera.close();
});
