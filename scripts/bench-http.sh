#!/usr/bin/env bash
# HTTP load on loopback with wrk: session validation (GET /v1/session with a rotating set of
# bearer tokens) and durable session creation (POST /v1/sessions) against `tessera serve` on a
# temporary SQLite data directory, and the same load on a bare Hummingbird route (BareRoute) in
# the same run, as the baseline. Prints requests/s, p50 and p99 of each, their ratios, and the
# service's resident memory.
#
# The bare route and the service are measured in rounds (ROUNDS, default 5), in alternating
# order; each round's ratio compares two runs seconds apart, and the median of those ratios is
# the headline, so that the machine's drifting speed does not land on one side only.
#
#   scripts/bench-http.sh                      # 1,000 sessions, 10 s per run, 64 connections
#   SESSIONS=5000 DURATION=20s CONNECTIONS=128 scripts/bench-http.sh
#   STORED=1000000 scripts/bench-http.sh       # also preload this many other (valid) sessions
#   MODE=token scripts/bench-http.sh           # validate signed access tokens (token mode) instead
#   MODE=cookie SESSIONS=1 THREADS=1 CONNECTIONS=32 scripts/bench-http.sh  # by session cookie
#   COLD=1 SESSIONS=100000 DURATION=5s scripts/bench-http.sh  # every validation a cache miss:
#                                              # the service restarts before each of its rounds
#   STORE=postgres://… scripts/bench-http.sh   # on PostgreSQL instead of SQLite
#   STORED=1000000 SWEEP=1 scripts/bench-http.sh  # …ended long ago, so that the sweeper
#                                              # deletes them while validation is measured
#   PERF_OUT=/tmp/perf.data scripts/bench-http.sh  # also profile the service (perf record)
#   BARE_BODY_BYTES=336 scripts/bench-http.sh  # the bare route answers as many bytes as who-am-I
#   TESSERA_BIN=/tmp/tessera-old scripts/bench-http.sh  # another build of tessera, same baseline
#
# Needs wrk (apt-get install wrk), sqlite3 for STORED, and python3. Exits non-zero only when it
# cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=${SESSIONS:-1000}
mode=${MODE:-session}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
stored=${STORED:-0}
sweep=${SWEEP:-0}
rounds=${ROUNDS:-5}
cold=${COLD:-0}
store=${STORE:-}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
if [[ -n $store ]]; then
    export TESSERA_STORE=$store
    [[ $stored == 0 ]] || { echo "STORED preloads SQLite only" >&2; exit 1; }
fi
if [[ $stored -gt 0 ]]; then
    command -v sqlite3 >/dev/null || { echo "sqlite3 is missing: apt-get install -y sqlite3" >&2; exit 1; }
fi

source scripts/bench-common.sh

rss_mib() { # pid
    awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$1/status"
}

mkdir -p "$work/data"
key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning
db="$work/data/tessera.sqlite"

# With SWEEP=1 the sweeper passes every 20 s, so that one pass meets the preloaded expired
# sessions while validation is measured.
if [[ $sweep == 1 ]]; then export TESSERA_SWEEP_INTERVAL=20s; fi
start_tessera() { # (no subshell: the pid reaches the cleanup) sets tessera_pid and tessera_port
    : >"$work/tessera"
    "$tessera_bin" serve --data-dir "$work/data" --port 0 >"$work/tessera" 2>>"$work/tessera.err" &
    tessera_pid=$!
    pids+=("$tessera_pid")
    if [[ -n ${bare_port:-} ]]; then tessera_port=$(wait_for_port "$work/tessera" Tessera); fi
}
restart_tessera() { # a graceful stop (buffered activity written), then a start on the same data
    kill -TERM "$tessera_pid"
    wait "$tessera_pid" 2>/dev/null || true
    start_tessera
}
start_tessera
PORT=0 BODY_BYTES=${BARE_BODY_BYTES:-} "$bin/BareRoute" >"$work/bare" 2>"$work/bare.err" &
pids+=($!)
bare_pid=$!
tessera_port=$(wait_for_port "$work/tessera" Tessera)
bare_port=$(wait_for_port "$work/bare" BareRoute)
rss_started=$(rss_mib "$tessera_pid")

# N sessions to validate, created through the API on 8 connections.
create_sessions "$tessera_port" "$key" "$sessions" "${mode/cookie/session}" >"$work/tokens"

if [[ $stored -gt 0 ]]; then
    # Preload sessions straight into SQLite (random token hashes), next to the running service.
    # With SWEEP=1 they ended two days ago, past the retention, so the sweeper deletes them all.
    now_ms=$(python3 -c 'import time; print(int(time.time()*1000))')
    if [[ $sweep == 1 ]]; then base=$((now_ms - 2 * 86400000)); else base=$now_ms; fi
    sqlite3 "$db" <<SQL
.timeout 30000
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $stored)
INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
    data, data_version, csrf_token)
SELECT 'ses_pre' || i, randomblob(32), 'user-' || (i % 10000), $base, $base, $base + 900000, $base + 9600000,
    '{}', 1, 'c' FROM n;
SQL
fi

validate_lua "$work/tokens" "$threads" "$([[ $mode == cookie ]] && echo cookie)" >"$work/validate.lua"
cat >"$work/create.lua" <<LUA
local i = 0
request = function()
    i = i + 1
    return wrk.format("POST", "/v1/sessions",
        { ["Authorization"] = "Bearer $key", ["Content-Type"] = "application/json" },
        '{"subject":"load-' .. (i % 1000) .. '"}')
end
LUA

run() { # key label url script pid
    local out="$work/$1.wrk"
    local before after
    before=$(cpu_ticks "$5")
    wrk -t"$threads" -c"$connections" -d"$duration" --latency ${4:+-s "$4"} "$3" >"$out"
    after=$(cpu_ticks "$5")
    local requests cpu_us
    requests=$(awk '/requests in/ {print $1}' "$out")
    # The server's CPU time per request: unlike requests/s, hardly moved by the machine's drift.
    cpu_us=$(python3 -c "print(f'{($after - $before) / $(getconf CLK_TCK) * 1e6 / $requests:.1f}')")
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out")
    printf '%-40s %12s req/s   p50 %9s   p99 %9s   server CPU %6s µs/request   non-2xx %s\n' "$2" "$rps" "$p50" "$p99" "$cpu_us" "${non2xx:-0}"
    echo "$rps $p50 $p99 $cpu_us" >>"$work/$1.results"
}

expired() {
    if [[ $sweep == 1 ]]; then sqlite3 "$db" "SELECT count(*) FROM sessions WHERE id LIKE 'ses_pre%'"; fi
}

echo "Tessera HTTP benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$threads -c$connections -d$duration," \
    "$sessions sessions rotated ($mode tokens), $stored preloaded$([[ $sweep == 1 ]] && echo ' (expired, swept during the run)'), $rounds rounds"
if [[ $sweep == 1 ]]; then echo "expired sessions left before the validation rounds: $(expired)"; fi
# Warm-up, not reported: every token is validated at least once (so the measured rounds see the
# cache as a running service does), and both servers have run under load.
warmup=$(( sessions / 5000 > 5 ? sessions / 5000 : 5 ))
if [[ $cold == 1 ]]; then
    # Only the bare route is warmed up: the service restarts before each of its rounds, so that
    # every token it validates is validated for the first time since its start.
    echo "cold: the service restarts before each round; a round of more requests than $sessions sessions meets its own tokens again"
else
    wrk -t"$threads" -c"$connections" -d"${warmup}s" -s "$work/validate.lua" "http://127.0.0.1:$tessera_port/v1/session" >/dev/null
fi
wrk -t"$threads" -c"$connections" -d5s -s "$work/validate.lua" "http://127.0.0.1:$bare_port/v1/session" >/dev/null
# Both get the same requests from the same Lua script (the bare route ignores the token), so
# that wrk does the same work for both. The order alternates (bare route first in odd rounds,
# the service first in even ones), so that a drift of the machine's speed within rounds, or an
# advantage of going first or second, does not land on one side only.
run_bare() {
    run bare "round $round: bare route GET /v1/session" "http://127.0.0.1:$bare_port/v1/session" "$work/validate.lua" "$bare_pid"
}
run_tessera() {
    if [[ $cold == 1 ]]; then restart_tessera; fi
    if [[ -n ${PERF_OUT:-} && $round == 1 ]]; then # profile the service while it validates
        perf record -F 499 -g -o "$PERF_OUT" -p "$tessera_pid" -- sleep 5 >/dev/null 2>&1 &
    fi
    run validate "round $round: tessera GET /v1/session" "http://127.0.0.1:$tessera_port/v1/session" "$work/validate.lua" "$tessera_pid"
}
for round in $(seq 1 "$rounds"); do
    if (( round % 2 == 1 )); then
        run_bare
        run_tessera
    else
        run_tessera
        run_bare
    fi
done
if [[ $sweep == 1 ]]; then echo "expired sessions left after the validation rounds: $(expired)"; fi
if [[ -z $store ]] && command -v sqlite3 >/dev/null; then
    # Activity is written at most once per session per granularity window (a minute by
    # default): rounds that run a minute after the sessions were created write it for each.
    echo "sessions whose activity was written since their creation: $(sqlite3 "$db" \
        "SELECT count(*) FROM sessions WHERE last_seen_at > created_at AND id NOT LIKE 'ses_pre%'") of $sessions"
fi
rss_validated=$(rss_mib "$tessera_pid")
run create "tessera POST /v1/sessions (durable)" "http://127.0.0.1:$tessera_port/v1/sessions" "$work/create.lua" "$tessera_pid"

python3 - "$work/bare.results" "$work/validate.results" <<'PY'
import re, statistics, sys
def ms(text):
    number = float(re.match(r'[0-9.]+', text).group())
    return number * {'us': 0.001, 'ms': 1, 's': 1000}[text[len(re.match(r'[0-9.]+', text).group()):]]
bare = [line.split() for line in open(sys.argv[1])]
tessera = [line.split() for line in open(sys.argv[2])]
bare_rps, tessera_rps = (statistics.median(float(r[0]) for r in rows) for rows in (bare, tessera))
bare_p99, tessera_p99 = (statistics.median(ms(r[2]) for r in rows) for rows in (bare, tessera))
print(f"medians: bare route {bare_rps:.0f} req/s p99 {bare_p99:.2f}ms; tessera {tessera_rps:.0f} req/s p99 {tessera_p99:.2f}ms")
# Each round's two runs are minutes apart at most, so their ratio is the fairest comparison on a
# machine whose speed drifts; the median over rounds is the headline.
throughput = [float(t[0]) / float(b[0]) for b, t in zip(bare, tessera)]
p99 = [ms(t[2]) / ms(b[2]) for b, t in zip(bare, tessera)]
print("per round: throughput " + " ".join(f"{r:.2f}x" for r in throughput) + ", p99 " + " ".join(f"{r:.2f}x" for r in p99))
print(f"validation / bare route (median of the rounds' ratios): throughput {statistics.median(throughput):.2f}x, p99 {statistics.median(p99):.2f}x")
bare_cpu, tessera_cpu = (statistics.median(float(r[3]) for r in rows) for rows in (bare, tessera))
print(f"server CPU per request (medians): bare route {bare_cpu:.1f} µs, tessera {tessera_cpu:.1f} µs ({tessera_cpu / bare_cpu:.2f}x)")
PY
echo "tessera resident memory: $rss_started after start, $rss_validated after validation ($(python3 -c "print(min($sessions, 100000))") sessions cached at most)"
