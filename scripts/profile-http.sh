#!/usr/bin/env bash
# Where Tessera's CPU per validated request goes beyond the bare route's: runs `tessera serve`
# (temporary SQLite data directory) and BareRoute from one release build, drives each with the
# same wrk load (GET /v1/session over SESSIONS rotated bearer tokens), records each with
# `perf record`, and prints, per symbol, the samples per million requests that Tessera spends
# more (or less) than the bare route. At perf's default -F 999, 1,000 samples per million
# requests is about 1 µs per request.
#
#   scripts/profile-http.sh                # 1,000 sessions, 8 s per server, top 40 symbols
#   DURATION=15s TOP=80 scripts/profile-http.sh
#   MODE=token scripts/profile-http.sh     # access tokens (token mode); MODE=cookie: the session cookie
#
# Needs wrk, perf (linux-perf) and python3. Exits non-zero only when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=${SESSIONS:-1000}
mode=${MODE:-session}
duration=${DURATION:-8s}
top=${TOP:-40}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing: apt-get install -y linux-perf" >&2; exit 1; }

source scripts/bench-common.sh

mkdir -p "$work/data"
key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning
"$tessera_bin" serve --data-dir "$work/data" --port 0 >"$work/tessera" 2>"$work/tessera.err" &
tessera_pid=$!
pids+=("$tessera_pid")
PORT=0 "$bin/BareRoute" >"$work/bare" 2>"$work/bare.err" &
bare_pid=$!
pids+=("$bare_pid")
tessera_port=$(wait_for_port "$work/tessera" Tessera)
bare_port=$(wait_for_port "$work/bare" BareRoute)

create_sessions "$tessera_port" "$key" "$sessions" "${mode/cookie/session}" >"$work/tokens"
validate_lua "$work/tokens" 2 "$([[ $mode == cookie ]] && echo cookie)" >"$work/validate.lua"

# Warm-up, not recorded: every token validated, so that the cache is as warm as in service.
wrk -t2 -c64 -d5s -s "$work/validate.lua" "http://127.0.0.1:$tessera_port/v1/session" >/dev/null

profile() { # name pid port
    perf record -F 999 -o "$work/$1.data" -p "$2" -- sleep "${duration%s}" >/dev/null 2>&1 &
    local recorder=$!
    wrk -t2 -c64 -d"$duration" -s "$work/validate.lua" "http://127.0.0.1:$3/v1/session" >"$work/$1.wrk"
    wait "$recorder" || true
    awk '/requests in/ {print $1}' "$work/$1.wrk" >"$work/$1.requests"
    perf report -i "$work/$1.data" --no-children --sort sym -F sample,sym 2>/dev/null | grep -v '^#' >"$work/$1.symbols"
    echo "$1: $(awk '/Requests\/sec/ {print $2}' "$work/$1.wrk") requests/s"
}
profile bare "$bare_pid" "$bare_port"
profile tessera "$tessera_pid" "$tessera_port"

python3 - "$work" "$top" <<'PY'
import re, sys
work, top = sys.argv[1], int(sys.argv[2])
def load(name):
    samples = {}
    for line in open(f"{work}/{name}.symbols"):
        match = re.match(r"\s*(\d+)\s+\[.\]\s+(.*)", line)
        if match:
            symbol = match.group(2).strip()
            samples[symbol] = samples.get(symbol, 0) + int(match.group(1))
    requests = int(open(f"{work}/{name}.requests").read().strip())
    return samples, requests
bare, bare_requests = load("bare")
tessera, tessera_requests = load("tessera")
per_million = lambda samples, requests: samples / requests * 1e6
print(f"samples per request (≈ µs at -F 999): bare {sum(bare.values()) / bare_requests * 1e3:.1f}, "
      f"tessera {sum(tessera.values()) / tessera_requests * 1e3:.1f}")
rows = sorted(((per_million(tessera.get(s, 0), tessera_requests) - per_million(bare.get(s, 0), bare_requests), s)
               for s in set(bare) | set(tessera)), reverse=True)
print(f"\nsamples per million requests, Tessera minus bare route (top {top}):")
for difference, symbol in rows[:top]:
    print(f"{difference:8.0f}  {symbol[:140]}")
PY
