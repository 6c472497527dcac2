#!/usr/bin/env bash
# Two builds of the upstream proxy side by side, against the same nginx site: build A
# (`A=PATH`, required) and this checkout's build (or `B=PATH`), each `tessera serve --upstreams`
# with a pool of that site, in alternating wrk runs of small answers; prints per round and as
# medians each build's requests/s, CPU time per request (from /proc) and p99, and the medians of
# the rounds' B/A ratios. It answers "did this change make the proxy faster" without nginx's
# proxy in between.
#
#   A=/tmp/tessera-before scripts/bench-ab-proxy.sh
#   A=/tmp/tessera-before ROUNDS=8 CONNECTIONS=4 METHOD=POST scripts/bench-ab-proxy.sh
#
# ROUNDS (default 8), DURATION (5s), CONNECTIONS (32), METHOD (GET, or POST with a small JSON
# body), TRACED=1 (every request carries a W3C `traceparent`), WARM (seconds to let the pools
# log in their 32 sessions first, default 20).
# Needs nginx and wrk. Exits non-zero only when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${A:?A=PATH of the tessera build to compare against}"
rounds=${ROUNDS:-8}
duration=${DURATION:-5s}
connections=${CONNECTIONS:-32}
method=${METHOD:-GET}
for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done
source scripts/bench-common.sh
b_bin=${B:-$bin/tessera}

site_port=$(free_port)
mkdir -p "$work/nginx/logs" "$work/a" "$work/b"
chmod 755 "$work" "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$site_port;
        location = /login { add_header Set-Cookie "SESSID=bench; Path=/; HttpOnly"; default_type text/plain; return 200 "welcome"; }
        location = /ping { default_type text/plain; return 200 "pong"; }
        location = /small { default_type application/json; return 200 '{"user":"bench","item":1,"name":"a small answer"}'; }
    }
}
NGINX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
cat >"$work/upstreams.yaml" <<YAML
upstreams:
  - name: site
    baseURL: http://127.0.0.1:$site_port
    login: { path: /login, success: { cookie: SESSID } }
    keepAlive: { path: /ping }
    pool: { min: 32, max: 64 }
    maxAge: 3600
YAML
key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning
"$A" serve --data-dir "$work/a" --port 0 --upstreams "$work/upstreams.yaml" >"$work/a.out" 2>"$work/a.out.err" &
a_pid=$!
pids+=("$a_pid")
"$b_bin" serve --data-dir "$work/b" --port 0 --upstreams "$work/upstreams.yaml" >"$work/b.out" 2>"$work/b.out.err" &
b_pid=$!
pids+=("$b_pid")
a_port=$(wait_for_port "$work/a.out" Tessera)
b_port=$(wait_for_port "$work/b.out" Tessera)
sleep "${WARM:-20}"

{
    echo "wrk.headers[\"Authorization\"] = \"Bearer $key\""
    if [[ $method == POST ]]; then
        echo 'wrk.method = "POST"'
        echo "wrk.body = '{\"a\":1}'"
        echo 'wrk.headers["Content-Type"] = "application/json"'
    fi
    if [[ -n ${TRACED:-} ]]; then
        echo 'wrk.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"'
    fi
} >"$work/request.lua"

echo "Proxy A/B: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $method, wrk -t1 -c$connections -d$duration, $rounds rounds"
echo "A: $A"
echo "B: $b_bin"
one() { # pid port: "requests/s cpu-µs-per-request p99"
    local before after out requests rps p99
    before=$(cpu_ticks "$1")
    out=$(wrk -t1 -c"$connections" -d"$duration" --latency -s "$work/request.lua" "http://127.0.0.1:$2/v1/upstreams/site/proxy/small")
    after=$(cpu_ticks "$1")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$rps $(python3 -c "print(round(($after - $before) * 1e6 / $(getconf CLK_TCK) / $requests, 1))") $p99"
}
one "$a_pid" "$a_port" >/dev/null
one "$b_pid" "$b_port" >/dev/null
for round in $(seq 1 "$rounds"); do
    if ((round % 2 == 1)); then
        a=$(one "$a_pid" "$a_port")
        b=$(one "$b_pid" "$b_port")
    else
        b=$(one "$b_pid" "$b_port")
        a=$(one "$a_pid" "$a_port")
    fi
    echo "round $round: A $a | B $b"
    echo "$a $b" >>"$work/rounds"
done
python3 - "$work/rounds" <<'PY'
import statistics, sys
def ms(text):
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
rows = [line.split() for line in open(sys.argv[1])]
a = [(float(r[0]), float(r[1]), ms(r[2])) for r in rows]
b = [(float(r[3]), float(r[4]), ms(r[5])) for r in rows]
median = statistics.median
for name, runs in (("A", a), ("B", b)):
    print(f"{name}: {median(x[0] for x in runs):9.0f} req/s  {median(x[1] for x in runs):6.1f} µs CPU per request  p99 {median(x[2] for x in runs):6.2f} ms")
print("B/A: throughput %.2fx, CPU per request %.2fx, p99 %.2fx (medians of the rounds' ratios)" % (
    median(y[0] / x[0] for x, y in zip(a, b)), median(y[1] / x[1] for x, y in zip(a, b)), median(y[2] / x[2] for x, y in zip(a, b))))
PY
