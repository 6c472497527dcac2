#!/usr/bin/env bash
# Two builds of `tessera` under the same validation load, side by side: A (an earlier build, say)
# and B (this one), each on its own temporary SQLite data directory, measured in many short
# alternating runs. Prints each run, then the median of the rounds' B/A ratios of throughput and
# of server CPU per request: a change's effect, with the machine's drift landing on both sides.
#
#   A=/tmp/tessera-before scripts/bench-ab.sh            # B: this checkout's release build
#   A=/tmp/tessera-before B=/tmp/tessera-after MODE=token ROUNDS=12 scripts/bench-ab.sh
#   MODE=cookie SESSIONS=1 THREADS=1 CONNECTIONS=32 A=… scripts/bench-ab.sh
#   CLOSE=1 A=… scripts/bench-ab.sh                     # a new connection per request
#
# Needs wrk and python3. Exits non-zero only when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=${SESSIONS:-1000}
mode=${MODE:-session}
duration=${DURATION:-4s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
rounds=${ROUNDS:-10}
[[ -n ${A:-} ]] || { echo "A=<path of the build to compare against> is missing" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }

source scripts/bench-common.sh
b_bin=${B:-$bin/tessera}
key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning

declare -A port pid
for side in a b; do
    binary=$A
    [[ $side == b ]] && binary=$b_bin
    mkdir -p "$work/$side"
    "$binary" serve --data-dir "$work/$side" --port 0 >"$work/$side.log" 2>"$work/$side.log.err" &
    pid[$side]=$!
    pids+=("${pid[$side]}")
    port[$side]=$(wait_for_port "$work/$side.log" Tessera)
    create_sessions "${port[$side]}" "$key" "$sessions" "${mode/cookie/session}" >"$work/$side.tokens"
    validate_lua "$work/$side.tokens" "$threads" "$([[ $mode == cookie ]] && echo cookie)" >"$work/$side.lua"
    # Warm-up: every token validated once, as in service.
    wrk -t"$threads" -c"$connections" -d3s -s "$work/$side.lua" "http://127.0.0.1:${port[$side]}/v1/session" >/dev/null
done

run() { # side
    local before after out="$work/$1.wrk"
    before=$(cpu_ticks "${pid[$1]}")
    wrk -t"$threads" -c"$connections" -d"$duration" -s "$work/$1.lua" "http://127.0.0.1:${port[$1]}/v1/session" >"$out"
    after=$(cpu_ticks "${pid[$1]}")
    python3 - "$out" "$before" "$after" "$(getconf CLK_TCK)" "$1" >>"$work/results" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
requests = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / requests
print(sys.argv[5], rps, cpu)
PY
    tail -1 "$work/results"
}

echo "A: $A"
echo "B: $b_bin"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $mode, $sessions sessions, wrk -t$threads -c$connections -d$duration, $rounds rounds"
for round in $(seq 1 "$rounds"); do
    # Alternate which goes first, so that neither always runs on a cooler machine.
    if ((round % 2)); then run a; run b; else run b; run a; fi
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
a = [(float(r[1]), float(r[2])) for r in rows if r[0] == "a"]
b = [(float(r[1]), float(r[2])) for r in rows if r[0] == "b"]
throughput = [y[0] / x[0] for x, y in zip(a, b)]
cpu = [y[1] / x[1] for x, y in zip(a, b)]
print("B/A per round: throughput " + " ".join(f"{r:.2f}" for r in throughput))
print(f"B/A (median of rounds): throughput {statistics.median(throughput):.3f}x, "
      f"server CPU per request {statistics.median(cpu):.3f}x "
      f"(A {statistics.median(x[1] for x in a):.1f} µs, B {statistics.median(y[1] for y in b):.1f} µs)")
PY
