#!/usr/bin/env bash
# HTTP load on loopback with wrk: session validation (GET /v1/session with a rotating set of
# bearer tokens) and durable session creation (POST /v1/sessions) against `tessera serve` on a
# temporary SQLite data directory, and the same load on a bare Hummingbird route (BareRoute) in
# the same run, as the baseline. Prints requests/s, p50 and p99 of each and their ratios.
#
#   scripts/bench-http.sh                     # 1,000 sessions, 10 s per run, 64 connections
#   SESSIONS=5000 DURATION=20s CONNECTIONS=128 scripts/bench-http.sh
#   STORED=1000000 scripts/bench-http.sh      # also preload this many other sessions
#   PERF_OUT=/tmp/perf.data scripts/bench-http.sh  # also profile the service (perf record)
#
# Needs wrk (apt-get install wrk) and python3. Exits non-zero only when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=${SESSIONS:-1000}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
stored=${STORED:-0}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }

swift build -c release --product tessera >/dev/null 2>&1 || swift build -c release --product tessera
swift build -c release --product BareRoute >/dev/null 2>&1 || swift build -c release --product BareRoute
bin=$(swift build -c release --show-bin-path 2>/dev/null)

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_for_port() { # file prefix
    for _ in $(seq 1 300); do
        if port=$(grep -oE "$2 listening on http://127\.0\.0\.1:[0-9]+" "$1" 2>/dev/null | grep -oE '[0-9]+$'); then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "server did not start: $(cat "$1" "$1.err" 2>/dev/null | tail -5)" >&2
    exit 1
}

mkdir -p "$work/data"
key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning

if [[ $stored -gt 0 ]]; then
    # Create the schema, then preload sessions straight into SQLite (random token hashes).
    "$bin/tessera" users list --data-dir "$work/data" >/dev/null
    now_ms=$(python3 -c 'import time; print(int(time.time()*1000))')
    sqlite3 "$work/data/tessera.sqlite" <<SQL
PRAGMA journal_mode=WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $stored)
INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
    data, data_version, csrf_token)
SELECT 'ses_pre' || i, randomblob(32), 'user-' || (i % 10000), $now_ms, $now_ms, $now_ms + 900000, $now_ms + 9600000,
    '{}', 1, 'c' FROM n;
SQL
fi

"$bin/tessera" serve --data-dir "$work/data" --port 0 >"$work/tessera" 2>"$work/tessera.err" &
pids+=($!)
PORT=0 "$bin/BareRoute" >"$work/bare" 2>"$work/bare.err" &
pids+=($!)
tessera_port=$(wait_for_port "$work/tessera" Tessera)
bare_port=$(wait_for_port "$work/bare" BareRoute)

# N sessions to validate, created through the API.
python3 - "$tessera_port" "$key" "$sessions" >"$work/tokens" <<'PY'
import http.client, json, sys
port, key, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(count):
    conn.request("POST", "/v1/sessions", json.dumps({"subject": f"bench-{i % 100}"}),
                 {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    response = conn.getresponse()
    body = json.loads(response.read())
    if response.status != 201:
        sys.exit(f"session creation failed: {response.status} {body}")
    print(body["token"])
PY

cat >"$work/validate.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens") do tokens[#tokens + 1] = line end
local i = 0
request = function()
    i = i % #tokens + 1
    return wrk.format("GET", "/v1/session", { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA
cat >"$work/create.lua" <<LUA
local i = 0
request = function()
    i = i + 1
    return wrk.format("POST", "/v1/sessions",
        { ["Authorization"] = "Bearer $key", ["Content-Type"] = "application/json" },
        '{"subject":"load-' .. (i % 1000) .. '"}')
end
LUA

run() { # key label url script
    local out="$work/$1.wrk"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency ${4:+-s "$4"} "$3" >"$out"
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out")
    printf '%-36s %12s req/s   p50 %9s   p99 %9s   non-2xx %s\n' "$2" "$rps" "$p50" "$p99" "${non2xx:-0}"
    echo "$rps $p50 $p99" >"$work/$1.result"
}

to_ms() { # 1.23ms / 456.00us / 1.2s
    python3 -c "
import re,sys
v=sys.argv[1]; n=float(re.match(r'[0-9.]+', v).group()); u=v[len(re.match(r'[0-9.]+', v).group()):]
print(n*{'us':0.001,'ms':1,'s':1000}[u])" "$1"
}

echo "Tessera HTTP benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$threads -c$connections -d$duration, $sessions sessions rotated, $stored preloaded"
# The bare route gets the same requests from the same Lua script (it ignores the token), so
# that wrk does the same work for both.
run bare "bare route GET /v1/session" "http://127.0.0.1:$bare_port/v1/session" "$work/validate.lua"
if [[ -n ${PERF_OUT:-} ]]; then # profile the service while it validates
    perf record -F 499 -g -o "$PERF_OUT" -p "${pids[0]}" -- sleep 5 >/dev/null 2>&1 &
fi
run validate "tessera GET /v1/session" "http://127.0.0.1:$tessera_port/v1/session" "$work/validate.lua"
run create "tessera POST /v1/sessions (durable)" "http://127.0.0.1:$tessera_port/v1/sessions" "$work/create.lua"

read -r bare_rps bare_p50 bare_p99 <"$work/bare.result"
read -r val_rps val_p50 val_p99 <"$work/validate.result"
python3 - "$bare_rps" "$val_rps" "$(to_ms "$bare_p99")" "$(to_ms "$val_p99")" <<'PY'
import sys
bare, val, bare_p99, val_p99 = map(float, sys.argv[1:])
print(f"validation / bare route: throughput {val / bare:.2f}x, p99 {val_p99 / bare_p99:.2f}x")
PY
