#!/usr/bin/env bash
# The upstream proxy against nginx's proxy_pass, to the same fast site, in one run:
#
# - the site: nginx on loopback answering a small JSON body (`/small`), a 50 MB file
#   (`/big.bin`), a login that sets a cookie and a keep-alive page;
# - nginx: `proxy_pass` to the site with upstream keep-alive (64 idle connections);
# - Tessera: `tessera serve --upstreams` with an HTTP pool of that site (32 to 64 sessions), the
#   same requests through `GET /v1/upstreams/site/proxy/small`.
#
# Throughput: rounds of wrk on nginx and on Tessera in alternating order, small answers; prints
# each median and the median of the rounds' ratios (Tessera / nginx), throughput and p99. A bare
# Hummingbird route (BareRoute, proxying nothing) runs in the same rounds, for scale: what a
# Swift server answers on this machine with no work at all.
# Memory: Tessera's peak resident memory (VmHWM, reset before each download) while one client
# downloads the 50 MB file through the proxy at full speed, then one reading at 20 MB/s.
#
#   scripts/bench-proxy.sh                  # 5 rounds, 10 s each, wrk -t1 -c32
#   ROUNDS=3 DURATION=5s CONNECTIONS=64 scripts/bench-proxy.sh
#   TESSERA_BIN=/tmp/tessera-old scripts/bench-proxy.sh
#   BIG_MB=500 MEMORY_ONLY=1 scripts/bench-proxy.sh   # the memory part only, with a 500 MB answer
#   PERF_OUT=/tmp/proxy.perf scripts/bench-proxy.sh   # also profile the service (perf record) in round 1
#
# Needs nginx and wrk (apt-get install -y nginx wrk), curl and python3. Exits non-zero only when
# it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
threads=${THREADS:-1}
rounds=${ROUNDS:-5}

for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done
source scripts/bench-common.sh

site_port=$(free_port)
nginx_port=$(free_port)
mkdir -p "$work/nginx/files" "$work/nginx/logs" "$work/data"
head -c $((${BIG_MB:-50} * 1000000)) /dev/urandom >"$work/nginx/files/big.bin"
chmod 755 "$work" "$work/nginx" "$work/nginx/files" # nginx's workers drop root
chmod 644 "$work/nginx/files/big.bin"
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
    # The site.
    server {
        listen 127.0.0.1:$site_port;
        root $work/nginx/files;
        location = /login { add_header Set-Cookie "SESSID=bench; Path=/; HttpOnly"; default_type text/plain; return 200 "welcome"; }
        location = /ping { default_type text/plain; return 200 "pong"; }
        location = /small { default_type application/json; return 200 '{"user":"bench","item":1,"name":"a small answer"}'; }
    }
    # nginx's own proxy to it.
    upstream site { server 127.0.0.1:$site_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://site;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
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
"$tessera_bin" serve --data-dir "$work/data" --port 0 --upstreams "$work/upstreams.yaml" >"$work/tessera" 2>"$work/tessera.err" &
tessera_pid=$!
pids+=("$tessera_pid")
PORT=0 "$bin/BareRoute" >"$work/bare" 2>"$work/bare.err" &
pids+=($!)
tessera_port=$(wait_for_port "$work/tessera" Tessera)
bare_port=$(wait_for_port "$work/bare" BareRoute)
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$nginx_port/small" && break
    sleep 0.1
done
proxy="http://127.0.0.1:$tessera_port/v1/upstreams/site/proxy"
curl -sf -o /dev/null -H "Authorization: Bearer $key" "$proxy/small" || { echo "the proxy does not answer: $(tail -5 "$work/tessera.err")" >&2; exit 1; }

echo "Upstream proxy benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$threads -c$connections -d$duration, $rounds rounds"

# Memory first, on a service that has served little.
kib() { awk -v field="$2:" '$1 == field {print $2}' "/proc/$1/status"; }
download() { # label curl-options...
    local label=$1
    shift
    local before
    before=$(kib "$tessera_pid" VmRSS)
    echo 5 >"/proc/$tessera_pid/clear_refs" # resets VmHWM (the peak) to the resident memory now
    local result
    result=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' -H "Authorization: Bearer $key" "$@" "$proxy/big.bin")
    local peak
    peak=$(kib "$tessera_pid" VmHWM)
    read -r status size seconds <<<"$result"
    printf '%s MB answer, %-22s status %s, %s bytes in %.2f s; resident before %d KiB, peak %d KiB: grew %d KiB\n' \
        "${BIG_MB:-50}" "$label:" "$status" "$size" "$seconds" "$before" "$peak" $((peak - before))
}
idle() { # seconds: the same reading over a pause with no download, for comparison
    local before peak
    before=$(kib "$tessera_pid" VmRSS)
    echo 5 >"/proc/$tessera_pid/clear_refs"
    sleep "$1"
    peak=$(kib "$tessera_pid" VmHWM)
    printf 'no download, %s s:                resident before %d KiB, peak %d KiB: grew %d KiB\n' "$1" "$before" "$peak" $((peak - before))
}
download "client at full speed"
download "client at 20 MB/s" --limit-rate 20M
download "client at full speed"
idle 2.5
if [[ ${MEMORY_ONLY:-0} == 1 ]]; then exit 0; fi

cat >"$work/small.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $key"
LUA
# Warm-up, not reported.
wrk -t"$threads" -c"$connections" -d3s -s "$work/small.lua" "http://127.0.0.1:$nginx_port/small" >/dev/null
wrk -t"$threads" -c"$connections" -d3s -s "$work/small.lua" "$proxy/small" >/dev/null

run() { # name url
    local out="$work/$1.wrk"
    if [[ -n ${PERF_OUT:-} && $round == 1 && $1 == tessera ]]; then
        perf record -F 499 -g -o "$PERF_OUT" -p "$tessera_pid" -- sleep 5 >/dev/null 2>&1 &
    fi
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$work/small.lua" "$2" >"$out"
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    printf 'round %s: %-8s %10s req/s   p99 %9s   non-2xx %s\n' "$round" "$1" "$rps" "$p99" "$(awk '/Non-2xx/ {print $5}' "$out")"
    echo "$rps $p99" >>"$work/$1.results"
}
for round in $(seq 1 "$rounds"); do
    if ((round % 2 == 1)); then
        run nginx "http://127.0.0.1:$nginx_port/small"
        run tessera "$proxy/small"
        run bare "http://127.0.0.1:$bare_port/v1/session"
    else
        run bare "http://127.0.0.1:$bare_port/v1/session"
        run tessera "$proxy/small"
        run nginx "http://127.0.0.1:$nginx_port/small"
    fi
done
python3 scripts/bench-ratios.py nginx nginx="$work/nginx.results" tessera="$work/tessera.results" bare="$work/bare.results"
