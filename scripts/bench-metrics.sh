#!/usr/bin/env bash
# What metrics cost on the hot path: session validation (GET /v1/session, 1,000 bearer tokens
# rotated), and durable creation (POST /v1/sessions, which migration v6's index by creation time
# also writes), on this build of `tessera serve` (metrics recorded, requests counted by route) and
# on BEFORE_BIN, a build of an earlier commit without them, with a bare Hummingbird route
# (BareRoute) as the common baseline, all in the same run. Rounds alternate the order; each
# ratio is the median of the rounds' ratios.
#
#   BEFORE_BIN=/tmp/tessera-before scripts/bench-metrics.sh      # 3 rounds, 10 s each, 64 connections
#   BEFORE_BIN=… ROUNDS=5 DURATION=20s scripts/bench-metrics.sh
#
# Make BEFORE_BIN with: git worktree add /tmp/before COMMIT && (cd /tmp/before && swift build -c
# release --product tessera). Needs wrk and python3. Exits non-zero only when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
before_bin=${BEFORE_BIN:?set BEFORE_BIN to a release build of an earlier commit}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
source scripts/bench-common.sh

key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning TESSERA_METRICS_ADDRESS=127.0.0.1:0

start() { # name binary: starts a service; sets started_port (no subshell: the pid reaches the cleanup)
    mkdir -p "$work/$1"
    "$2" serve --data-dir "$work/$1" --port 0 >"$work/$1.out" 2>"$work/$1.err" &
    pids+=($!)
    started_port=$(wait_for_port "$work/$1.out" Tessera)
}
start after "$tessera_bin"
after_port=$started_port
start before "$before_bin"
before_port=$started_port
PORT=0 "$bin/BareRoute" >"$work/bare" 2>"$work/bare.err" &
pids+=($!)
bare_port=$(wait_for_port "$work/bare" "BareRoute")

for name in after before; do
    port_var="${name}_port"
    create_sessions "${!port_var}" "$key" 1000 session >"$work/tokens-$name"
    validate_lua "$work/tokens-$name" "$threads" >"$work/validate-$name.lua"
done
validate_lua "$work/tokens-after" "$threads" >"$work/validate-bare.lua"

run() { # name port: one wrk run; prints a line and appends "rps p99"
    local out="$work/$1.wrk"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$work/validate-$1.lua" "http://127.0.0.1:$2/v1/session" >"$out"
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    printf '%-8s %10s req/s   p99 %9s   non-2xx %s\n' "$1" "$rps" "$p99" "$(awk '/Non-2xx/ {print $5}' "$out")"
    echo "$rps $p99" >>"$work/$1.results"
}

echo "Tessera metrics benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$threads -c$connections -d$duration, $rounds rounds"
for round in $(seq 1 "$rounds"); do
    echo "round $round"
    if (( round % 2 == 1 )); then order="bare before after"; else order="after before bare"; fi
    for name in $order; do
        port_var="${name}_port"
        run "$name" "${!port_var}"
    done
done
# Durable creation, on the two services only (the bare route creates nothing).
cat >"$work/create.lua" <<LUA
request = function()
    return wrk.format("POST", "/v1/sessions", { ["Authorization"] = "Bearer $key", ["Content-Type"] = "application/json" }, '{"subject":"bench-user"}')
end
LUA
for round in $(seq 1 "$rounds"); do
    if (( round % 2 == 1 )); then order="before after"; else order="after before"; fi
    for name in $order; do
        port_var="${name}_port"
        out="$work/create-$name.wrk"
        wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$work/create.lua" "http://127.0.0.1:${!port_var}/v1/sessions" >"$out"
        printf 'create %-8s %10s req/s   p99 %9s\n' "$name" "$(awk '/Requests\/sec/ {print $2}' "$out")" "$(awk '$1 == "99%" {print $2}' "$out")"
        echo "$(awk '/Requests\/sec/ {print $2}' "$out") $(awk '$1 == "99%" {print $2}' "$out")" >>"$work/create-$name.results"
    done
done

curl -s "http://127.0.0.1:$(grep -oE 'Metrics listening on http://127\.0\.0\.1:[0-9]+' "$work/after.out" | grep -oE '[0-9]+$')/metrics" \
    | grep -E '^tessera_session_validations_total\{result="ok"\}|^tessera_http_requests_total\{.*route="/v1/session".*2xx' || true

python3 - "$work" <<'PY'
import re, statistics, sys
work = sys.argv[1]
def ms(text):
    number = re.match(r'[0-9.]+', text).group()
    return float(number) * {'us': 0.001, 'ms': 1, 's': 1000}[text[len(number):]]
rows = {name: [line.split() for line in open(f"{work}/{name}.results")] for name in ("bare", "before", "after")}
def ratio(a, b):
    throughput = [float(x[0]) / float(y[0]) for x, y in zip(rows[a], rows[b])]
    p99 = [ms(x[1]) / ms(y[1]) for x, y in zip(rows[a], rows[b])]
    return (f"throughput {statistics.median(throughput):.2f}x (rounds " + " ".join(f"{r:.2f}" for r in throughput)
            + f"), p99 {statistics.median(p99):.2f}x")
print("after / before:", ratio("after", "before"))
rows["create-after"] = [line.split() for line in open(f"{work}/create-after.results")]
rows["create-before"] = [line.split() for line in open(f"{work}/create-before.results")]
print("creation after / before:", ratio("create-after", "create-before"))
print("after / bare:  ", ratio("after", "bare"))
print("before / bare: ", ratio("before", "bare"))
for name in rows:
    print(f"median {name}: {statistics.median(float(r[0]) for r in rows[name]):.0f} req/s")
PY
