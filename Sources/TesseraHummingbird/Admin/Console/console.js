// The admin console of Tessera (docs/admin.md): signs an administrator in with tessera.js (cookie
// mode: the session cookie and its CSRF token), then shows the service's own figures, from
// GET /v1/admin/overview and the Prometheus text of GET /v1/admin/metrics, and acts through the
// admin API. No external assets; the page's Content-Security-Policy allows this origin only.
import { createTessera } from '/sdk/tessera.js';

// A store outage must show at once: no retries behind the console's back.
const tessera = createTessera({ retry: { attempts: 1 } });
const $ = (id) => document.getElementById(id);
const REFRESH_MS = 5000;
let timer = null;
let selectedUser = null;
let lastRead = null;

// MARK: Helpers

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function row(cells) {
  const tr = element('tr');
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = element('td');
      td.append(cell);
      tr.append(td);
    } else {
      tr.append(element('td', cell, typeof cell === 'number' ? { class: 'number' } : {}));
    }
  }
  return tr;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

/** The error body's code, or HTTP_status. */
async function errorCode(response) {
  try {
    const body = await response.clone().json();
    return body?.error?.code ?? `HTTP_${response.status}`;
  } catch {
    return `HTTP_${response.status}`;
  }
}

/** The admin API through tessera.js; throws an Error whose `code` is the service's. */
async function api(path, init = {}) {
  const response = await tessera.fetch(path, init);
  if (!response.ok) {
    const error = new Error(`${init.method ?? 'GET'} ${path}: ${response.status}`);
    error.code = await errorCode(response);
    error.status = response.status;
    error.correlationId = response.headers.get('X-Correlation-ID');
    throw error;
  }
  return response;
}

/** Samples of a Prometheus text scrape: [{name, labels, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function byLabel(samples, name, label) {
  const totals = new Map();
  for (const sample of samples) {
    if (sample.name !== name) continue;
    const key = sample.labels[label] ?? '';
    totals.set(key, (totals.get(key) ?? 0) + sample.value);
  }
  return totals;
}

// MARK: Figures

function drawChart(history, now) {
  const svg = $('active-chart');
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const width = 300, height = 120, pad = 16;
  // The counts kept, and the one just made.
  const points = [...history];
  if (now && (points.length === 0 || Date.parse(points[points.length - 1].at) < Date.parse(now.at))) points.push(now);
  const axis = document.createElementNS(ns, 'line');
  for (const [name, value] of Object.entries({ x1: 0, y1: height - pad, x2: width, y2: height - pad, class: 'axis' })) axis.setAttribute(name, value);
  svg.append(axis);
  if (points.length === 0) {
    $('active-range').textContent = 'No counts yet.';
    return;
  }
  const times = points.map((point) => Date.parse(point.at));
  const first = Math.min(...times), last = Math.max(...times);
  const top = Math.max(1, ...points.map((point) => point.count));
  const x = (time) => (last === first ? width : ((time - first) / (last - first)) * width);
  const y = (count) => height - pad - (count / top) * (height - 2 * pad);
  const coordinates = points.map((point, index) => `${x(times[index]).toFixed(1)},${y(point.count).toFixed(1)}`);
  if (points.length === 1) coordinates.unshift(`0,${y(points[0].count).toFixed(1)}`);
  const area = document.createElementNS(ns, 'polygon');
  area.setAttribute('class', 'area');
  area.setAttribute('points', `0,${height - pad} ${coordinates.join(' ')} ${width},${height - pad}`);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('class', 'line');
  line.setAttribute('points', coordinates.join(' '));
  const label = document.createElementNS(ns, 'text');
  label.setAttribute('x', '2');
  label.setAttribute('y', '11');
  label.textContent = `max ${top}`;
  svg.append(area, line, label);
  const span = points.length === 1 ? 'now' : `${new Date(first).toLocaleTimeString()} – ${new Date(last).toLocaleTimeString()}`;
  $('active-range').textContent = `${span}; counted every 15 s, the last day kept`;
}

function showStore(reachable, breaker, code) {
  const badge = $('store-status');
  badge.className = `badge ${reachable ? 'up' : 'down'}`;
  badge.textContent = reachable ? `Store: up, breaker ${breaker}` : `Store unavailable${code ? ` (${code})` : ''}`;
}

function showOverview(overview) {
  $('node').textContent = overview.node ? `node ${overview.node}` : '';
  $('active-sessions').textContent = overview.activeSessions ? String(overview.activeSessions.count) : '–';
  drawChart(overview.activeSessionsHistory ?? [], overview.activeSessions);
  showStore(overview.store.reachable, overview.store.breaker);
  const health = [row(['Store', overview.store.reachable ? 'reachable' : 'unreachable']), row(['Breaker', overview.store.breaker])];
  if (overview.cache) {
    const cache = overview.cache;
    health.push(
      row(['Cache', cache.current ? 'current' : 'bypassed (change feed behind)']),
      row(['Cache entries', `${cache.entries} of ${cache.capacity}`]),
      row(['Change feed lag', cache.feedLagSeconds == null ? '–' : `${cache.feedLagSeconds.toFixed(2)} s (bound ${cache.stalenessBoundSeconds} s)`]),
      row(['Cache hits / misses', `${cache.hits} / ${cache.misses}`]),
    );
  } else {
    health.push(row(['Cache', 'off']));
  }
  if (overview.eventStreams != null) health.push(row(['Event streams open', overview.eventStreams]));
  fill($('health').tBodies[0], health);

  const rows = [];
  for (const pool of overview.upstreams ?? []) {
    const states = { idle: 0, lent: 0, logging_in: 0 };
    for (const session of pool.sessions) states[session.state] = (states[session.state] ?? 0) + 1;
    for (const account of pool.accounts) {
      rows.push(row([
        pool.name, `${states.idle} / ${states.lent} / ${states.logging_in}`, account.name,
        element('span', account.circuit, { class: account.circuit === 'open' ? 'circuit-open' : '' }),
        account.consecutiveFailures, account.lastError ?? '',
      ]));
    }
  }
  fill($('upstreams').tBodies[0], rows);
  $('upstreams-empty').hidden = rows.length > 0;
}

const ENDINGS = [
  ['expiries', 'idle', 'Expired: inactivity'], ['expiries', 'absolute', 'Expired: absolute lifetime'],
  ['revocations', 'logout', 'Logged out'], ['revocations', 'user', 'Revoked by the user'],
  ['revocations', 'others', 'Revoked: the user signed out other devices'], ['revocations', 'admin', 'Revoked by an administrator'],
  ['revocations', 'refresh_reuse', 'Revoked: refresh token reused'], ['revocations', 'other', 'Revoked: other'],
];
const LOGINS = [['ok', 'Signed in'], ['bad_credentials', 'Wrong credentials'], ['throttled', 'Throttled'], ['disabled', 'Account disabled'], ['error', 'Store error']];

function showMetrics(text) {
  const samples = parseMetrics(text);
  const totals = {
    revocations: byLabel(samples, 'tessera_session_revocations_total', 'reason'),
    expiries: byLabel(samples, 'tessera_session_expiries_total', 'reason'),
  };
  fill($('ending').tBodies[0], ENDINGS.map(([family, reason, label]) => row([label, totals[family].get(reason) ?? 0])));
  const logins = byLabel(samples, 'tessera_logins_total', 'result');
  fill($('logins').tBodies[0], LOGINS.map(([result, label]) => row([label, logins.get(result) ?? 0])));
}

async function refresh() {
  try {
    const [overview, metrics] = await Promise.all([
      api('/v1/admin/overview').then((response) => response.json()),
      api('/v1/admin/metrics').then((response) => response.text()),
    ]);
    showOverview(overview);
    showMetrics(metrics);
    lastRead = new Date();
  } catch (error) {
    if (error.status === 503 || error.code === 'network') {
      showStore(false, null, error.code);
      // The figures below are the last ones read: say so rather than show them as current.
      fill($('health').tBodies[0], [
        row(['Store', `unavailable (${error.code})`]),
        row(['Figures', `as of ${lastRead ? lastRead.toLocaleTimeString() : 'never'}`]),
      ]);
    }
    else if (error.status === 403) await notAnAdministrator();
    else if (error.code === 'signed_out') showLogin();
  }
}

// MARK: Users and sessions

async function findUsers(prefix) {
  const users = await (await api(`/v1/admin/users?limit=50&prefix=${encodeURIComponent(prefix)}`)).json();
  const list = $('users');
  list.replaceChildren();
  for (const user of users.users) {
    const button = element('button', user.username + (user.disabled ? ' (disabled)' : ''), { 'data-user-id': user.id, type: 'button' });
    button.addEventListener('click', () => selectUser(user));
    const item = element('li');
    item.append(button);
    list.append(item);
  }
  if (users.users.length === 0) list.append(element('li', 'No user starts with that.'));
}

async function selectUser(user) {
  selectedUser = user;
  $('user-detail').hidden = false;
  $('user-name').textContent = `${user.username} (${user.id}, ${user.role})`;
  await showSessions();
}

async function showSessions() {
  if (!selectedUser) return;
  const rows = [];
  let cursor = '';
  do {
    const page = await (await api(`/v1/admin/sessions?limit=500&userId=${encodeURIComponent(selectedUser.id)}${cursor ? `&cursor=${cursor}` : ''}`)).json();
    for (const session of page.sessions) {
      const revoke = element('button', 'Revoke', { class: 'revoke danger', 'data-session-id': session.id, type: 'button' });
      revoke.addEventListener('click', () => act(`Revoked session ${session.id}`, `/v1/admin/sessions/${encodeURIComponent(session.id)}`));
      const tr = row([
        session.id, new Date(session.createdAt).toLocaleString(), new Date(session.lastSeenAt).toLocaleString(),
        session.metadata?.label ?? '', session.metadata?.ipAddress ?? '', revoke,
      ]);
      tr.setAttribute('data-session-id', session.id);
      rows.push(tr);
    }
    cursor = page.nextCursor ?? '';
  } while (cursor);
  fill($('user-sessions').tBodies[0], rows);
}

/** A DELETE through the admin API; reports the outcome with the request's correlation id. */
async function act(done, path) {
  const status = $('action-status');
  try {
    const response = await api(path, { method: 'DELETE' });
    const body = response.status === 204 ? null : await response.json();
    status.className = 'ok';
    status.textContent = `${done}${body?.revoked != null ? `: ${body.revoked}` : ''} (correlation id ${response.headers.get('X-Correlation-ID')})`;
  } catch (error) {
    status.className = 'error';
    status.textContent = `Failed: ${error.code}${error.correlationId ? ` (correlation id ${error.correlationId})` : ''}`;
  }
  await showSessions().catch(() => {});
  await refresh();
}

// MARK: Signing in and out

function showLogin(message = '') {
  clearInterval(timer);
  timer = null;
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
}

async function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  await refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

async function notAnAdministrator() {
  await tessera.logout().catch(() => {});
  showLogin('That account is not an administrator.');
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  try {
    await tessera.login({ username: $('username').value, password: $('password').value, label: 'admin console' });
    $('password').value = '';
    await showApp();
  } catch (error) {
    showLogin(error.code === 'AUTH_1001' ? 'Wrong username or password.' : `Cannot sign in: ${error.code ?? error.message}`);
  }
});

$('sign-out').addEventListener('click', async () => {
  await tessera.logout().catch(() => {});
  showLogin();
});

$('find-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  await findUsers($('user-prefix').value).catch((error) => { $('action-status').textContent = `Failed: ${error.code}`; });
});

$('revoke-all').addEventListener('click', () => {
  if (selectedUser) act(`Revoked all sessions of ${selectedUser.username}`, `/v1/admin/users/${encodeURIComponent(selectedUser.id)}/sessions`);
});

tessera.on('signedOut', () => showLogin('Signed out.'));

const current = await tessera.session().catch(() => null);
if (current) await showApp(); else showLogin();
