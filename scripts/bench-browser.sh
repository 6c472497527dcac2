#!/usr/bin/env bash
# What a browser upstream session costs, in one run: the memory of each browser, the time a
# login takes, and the latency of browser actions, against plain requests proxied with the same
# sessions' cookies (the baseline).
#
# The site is a second Tessera serving Benchmarks/BrowserSite: a login page whose form only its
# script draws, and a page that checks the session with a script. Needs Chromium and
# chromedriver (Debian's chromium and chromium-driver).
#
#   scripts/bench-browser.sh                  # 4 browsers, 200 requests of each kind
#   SESSIONS=2 REQUESTS=100 scripts/bench-browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

sessions=${SESSIONS:-4}
requests=${REQUESTS:-200}
key="tsk_$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)"

# The site.
printf 'wonderland\n' | TESSERA_BCRYPT_COST=4 "$tessera_bin" users add alice --data-dir "$work/site" >/dev/null
TESSERA_BCRYPT_COST=4 "$tessera_bin" serve --data-dir "$work/site" --port 0 --static-dir Benchmarks/BrowserSite \
    --idle-timeout 10m >"$work/site.log" 2>"$work/site.log.err" &
pids+=($!)
site_port=$(wait_for_port "$work/site.log" Tessera)

# The pool, holding `sessions` browsers logged in to the site.
cat >"$work/upstreams.yaml" <<EOF
upstreams:
  - name: site
    kind: browser
    baseURL: http://127.0.0.1:$site_port
    login:
      path: /login.html
      fields: { username: { value: alice }, password: { env: SITE_PASSWORD } }
      steps:
        - goto: /login.html
        - fill: { selector: "#username", field: username }
        - fill: { selector: "#password", field: password }
        - click: "#sign-in"
      success: { selector: "#user" }
    keepAlive: { path: /home.html, waitFor: { selector: "#user" } }
    pool: { min: $sessions, max: $sessions }
    backoff: { maxConcurrentLogins: 1 }
EOF
SITE_PASSWORD=wonderland TESSERA_SERVICE_API_KEY=$key "$tessera_bin" serve --data-dir "$work/pool" --port 0 \
    --upstreams "$work/upstreams.yaml" >"$work/pool.log" 2>"$work/pool.log.err" &
pids+=($!)
pool_port=$(wait_for_port "$work/pool.log" Tessera)

python3 - "$pool_port" "$key" "$sessions" "$requests" <<'PY'
import http.client, json, statistics, sys, threading, time
port, key, sessions, requests = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

def call(method, path, body=None, connection=None):
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    return answer.status, data, time.perf_counter() - started

def snapshot():
    return json.loads(call("GET", "/v1/upstreams")[1])["upstreams"][0]

deadline = time.time() + 120
while time.time() < deadline:
    pool = snapshot()
    if sum(1 for s in pool["sessions"] if s["state"] == "idle") == sessions:
        break
    if any(a["circuit"] == "open" for a in pool["accounts"]):
        sys.exit("the pool's logins fail: %s" % pool["recentErrors"][-1:])
    time.sleep(0.2)
else:
    sys.exit("the pool did not log %d browsers in: %s" % (sessions, pool))

def action(n):
    return {"idempotent": True, "steps": [{"goto": "/home.html?item=%d" % n}, {"waitFor": {"selector": "#item"}}, {"read": {"text": "#item"}}]}

def measure(name, make, concurrency):
    latencies, failures = [], []
    lock = threading.Lock()
    def worker(indices):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for n in indices:
            method, path, body, expected = make(n)
            status, data, seconds = call(method, path, body, conn)
            with lock:
                latencies.append(seconds)
                if status != 200 or expected not in data.decode():
                    failures.append((status, data[:200]))
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(range(i, requests, concurrency),)) for i in range(concurrency)]
    for t in threads: t.start()
    for t in threads: t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {"name": name, "concurrency": concurrency, "p50": p(0.5), "p95": p(0.95), "rate": requests / elapsed, "failures": len(failures), "first": failures[:1]}

rows = []
for concurrency in (1, sessions):
    rows.append(measure("proxied GET /v1/session (cookies out)", lambda n: ("GET", "/v1/upstreams/site/proxy/v1/session", None, '"userId"'), concurrency))
    rows.append(measure("action: goto, waitFor, read", lambda n: ("POST", "/v1/upstreams/site/actions", action(n), '"item %d"' % n), concurrency))

pool = snapshot()
memory = sorted(s["browserMemoryBytes"] for s in pool["sessions"] if s.get("browserMemoryBytes"))
login = pool.get("loginTime") or {}
print("browser upstream, %d browsers, %d requests per row (%s)" % (sessions, requests, time.strftime("%Y-%m-%d")))
print("  memory per browser (PSS of chromedriver, Chromium and its helpers): median %.0f MiB, max %.0f MiB" % (
    statistics.median(memory) / 2**20, memory[-1] / 2**20))
print("  login (browser start, steps, success on the page): mean %.2f s, max %.2f s over %d logins" % (
    login.get("meanSeconds", 0), login.get("maxSeconds", 0), login.get("count", 0)))
baseline = {}
for row in rows:
    if row["name"].startswith("proxied"):
        baseline[row["concurrency"]] = row
    base = baseline[row["concurrency"]]
    print("  %-40s c=%d  p50 %7.1f ms  p95 %7.1f ms  %7.1f/s  p50 %5.1fx the proxied request%s" % (
        row["name"], row["concurrency"], row["p50"], row["p95"], row["rate"], row["p50"] / base["p50"],
        "  FAILURES %d %s" % (row["failures"], row["first"]) if row["failures"] else ""))
print("  browsers: %s" % pool.get("browsers"))
PY
