#!/usr/bin/env bash
# What session events cost: two `tessera serve` on temporary SQLite data directories, one
# recording events (the default) and one with --no-session-events, measured in the same run on
# durable session creation (POST /v1/sessions), revocation (POST /v1/logout, each request a
# session of its own, created by the creation run) and validation (GET /v1/session, which must
# write no event). Rounds alternate which one goes first; each row's ratio is the median of the
# rounds' ratios (events on / events off).
#
#   scripts/bench-events.sh                    # 3 rounds, 10 s per run, 64 connections
#   ROUNDS=5 DURATION=20s scripts/bench-events.sh
#   WEBHOOK=1 scripts/bench-events.sh          # events on also deliver every event to a webhook
#                                              # receiver on loopback (a small Python server)
#
# Needs wrk and python3. Exits non-zero only when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
webhook=${WEBHOOK:-0}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
source scripts/bench-common.sh

key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning

if [[ $webhook == 1 ]]; then
    cat >"$work/receiver.py" <<'PY'
import http.server, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(f"Receiver listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
PY
    python3 "$work/receiver.py" >"$work/receiver" 2>&1 &
    pids+=($!)
    receiver_port=$(wait_for_port "$work/receiver" Receiver)
fi

start() { # name flags…: starts a service; sets started_pid and started_port (no subshell, so
    # that the pid reaches the cleanup)
    local name=$1
    shift
    mkdir -p "$work/$name"
    "$tessera_bin" serve --data-dir "$work/$name" --port 0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
    started_pid=$!
    pids+=("$started_pid")
    started_port=$(wait_for_port "$work/$name.out" Tessera)
}
if [[ $webhook == 1 ]]; then
    TESSERA_WEBHOOK_URL="http://127.0.0.1:$receiver_port/hook" \
        TESSERA_WEBHOOK_SECRET="whsec_$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')" start on
else
    start on
fi
on_port=$started_port
start off --no-session-events
off_port=$started_port

# Creation: each thread keeps the tokens it was given, for the revocation run.
cat >"$work/create.lua" <<LUA
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
end
function init(args)
    tokens = io.open(args[1] .. "." .. id, "w")
end
request = function()
    return wrk.format("POST", "/v1/sessions",
        { ["Authorization"] = "Bearer $key", ["Content-Type"] = "application/json" }, '{"subject":"bench-user"}')
end
response = function(status, headers, body)
    local token = body:match('"token":"(tss_[^"]+)"')
    if token then tokens:write(token, "\n") end
end
LUA
# Revocation: each request logs out a session of its own, and never the same one twice.
cat >"$work/logout.lua" <<'LUA'
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
end
function init(args)
    list = {}
    for line in io.lines(args[1] .. "." .. id) do list[#list + 1] = line end
    i = 0
end
request = function()
    i = i + 1
    return wrk.format("POST", "/v1/logout", { ["Authorization"] = "Bearer " .. (list[i] or "tss_exhausted") })
end
LUA

run() { # result-key label port path script [args]: prints one line and appends "rps p99 non2xx"
    local out="$work/$1.wrk"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$5" "http://127.0.0.1:$3$4" -- "${6:-}" >"$out"
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out")
    printf '%-46s %10s req/s   p50 %9s   p99 %9s   non-2xx %s\n' "$2" "$rps" "$p50" "$p99" "${non2xx:-0}"
    echo "$rps $p99 ${non2xx:-0}" >>"$work/$1.results"
}

measure() { # name port round
    run "create-$1" "round $3: $1 POST /v1/sessions" "$2" /v1/sessions "$work/create.lua" "$work/tokens-$1-$3"
    run "logout-$1" "round $3: $1 POST /v1/logout" "$2" /v1/logout "$work/logout.lua" "$work/tokens-$1-$3"
}

echo "Tessera events benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$threads -c$connections -d$duration, $rounds rounds," \
    "events on$([[ $webhook == 1 ]] && echo ' with a webhook') vs --no-session-events"
for round in $(seq 1 "$rounds"); do
    if (( round % 2 == 1 )); then
        measure on "$on_port" "$round"
        measure off "$off_port" "$round"
    else
        measure off "$off_port" "$round"
        measure on "$on_port" "$round"
    fi
done

# Validation writes no event: the same tokens validated on both, and the outbox of the service
# with events does not grow.
for name in on off; do
    # The creation runs' sessions were logged out: 1,000 fresh ones to validate.
    port_var="${name}_port"
    python3 - "${!port_var}" "$key" "$work/validate-$name" <<'PY'
import http.client, json, sys
port, key, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
with open(path, "w") as out:
    for i in range(1000):
        conn.request("POST", "/v1/sessions", json.dumps({"subject": f"validate-{i % 50}"}),
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        out.write(json.loads(conn.getresponse().read())["token"] + "\n")
PY
    validate_lua "$work/validate-$name" "$threads" >"$work/validate-$name.lua"
done
events_before=$(python3 -c "import sqlite3; print(sqlite3.connect('$work/on/tessera.sqlite').execute('select count(*) from session_events').fetchone()[0])")
for round in $(seq 1 "$rounds"); do
    run validate-on "round $round: on GET /v1/session" "$on_port" /v1/session "$work/validate-on.lua"
    run validate-off "round $round: off GET /v1/session" "$off_port" /v1/session "$work/validate-off.lua"
done
events_after=$(python3 -c "import sqlite3; print(sqlite3.connect('$work/on/tessera.sqlite').execute('select count(*) from session_events').fetchone()[0])")
echo "events recorded during the validation runs: $((events_after - events_before))"

python3 - "$work" "$rounds" <<'PY'
import re, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def ms(text):
    number = re.match(r'[0-9.]+', text).group()
    return float(number) * {'us': 0.001, 'ms': 1, 's': 1000}[text[len(number):]]
for row in ("create", "logout", "validate"):
    on = [line.split() for line in open(f"{work}/{row}-on.results")]
    off = [line.split() for line in open(f"{work}/{row}-off.results")]
    throughput = [float(a[0]) / float(b[0]) for a, b in zip(on, off)]
    p99 = [ms(a[1]) / ms(b[1]) for a, b in zip(on, off)]
    print(f"{row:9s} events on / off: throughput {statistics.median(throughput):.2f}x (rounds " + " ".join(f"{r:.2f}" for r in throughput)
          + f"), p99 {statistics.median(p99):.2f}x; medians on {statistics.median(float(a[0]) for a in on):.0f} req/s, "
          + f"off {statistics.median(float(b[0]) for b in off):.0f} req/s")
PY
