#!/usr/bin/env bash
# Tessera against its peers, in one run: a who-am-I by session cookie (`GET /v1/session`) on
#
# - bare:        a bare Hummingbird route (Benchmarks/BareRoute), no session at all: the baseline;
# - tessera:     `tessera serve` on SQLite (durable: WAL, synchronous FULL), cookie `tessera_session`;
# - hb-auth:     hummingbird-auth's SessionMiddleware on its in-memory driver;
# - vapor:       Vapor's SessionsMiddleware on its in-memory driver;
# - vapor-fluent: Vapor's SessionsMiddleware on Fluent with SQLite (a file);
#
# the peers built from Benchmarks/Peers (a package of its own). Each server gets SESSIONS
# sessions (default 1), made through its own login, and wrk rotates over their cookies. Rounds
# rotate the order of the servers; each ratio is the median of the rounds' ratios to the bare
# route (and to Tessera), throughput and p99.
#
#   scripts/bench-peers.sh                          # 5 rounds, 10 s each, wrk -t1 -c32, one session
#   SESSIONS=10000 ROUNDS=3 scripts/bench-peers.sh  # 10,000 sessions rotated on each
#
# Needs wrk and python3. Exits non-zero only when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
threads=${THREADS:-1}
rounds=${ROUNDS:-5}
sessions=${SESSIONS:-1}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
source scripts/bench-common.sh
swift build -c release --package-path Benchmarks/Peers >/dev/null 2>&1 || swift build -c release --package-path Benchmarks/Peers
peers=$(swift build -c release --package-path Benchmarks/Peers --show-bin-path 2>/dev/null)

key="tsk_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TESSERA_SERVICE_API_KEY=$key TESSERA_LOG_LEVEL=warning
mkdir -p "$work/data"

declare -A port
"$tessera_bin" serve --data-dir "$work/data" --port 0 >"$work/tessera.out" 2>"$work/tessera.err" &
pids+=($!)
PORT=0 "$bin/BareRoute" >"$work/bare.out" 2>"$work/bare.err" &
pids+=($!)
PORT=0 "$peers/PeerHummingbirdAuth" >"$work/hb-auth.out" 2>"$work/hb-auth.err" &
pids+=($!)
port[vapor]=$(free_port)
PORT=${port[vapor]} "$peers/PeerVapor" >"$work/vapor.out" 2>"$work/vapor.err" &
pids+=($!)
port[vapor-fluent]=$(free_port)
PORT=${port[vapor-fluent]} DRIVER=fluent DATABASE="$work/vapor-fluent.sqlite" "$peers/PeerVapor" >"$work/vapor-fluent.out" 2>"$work/vapor-fluent.err" &
pids+=($!)
port[tessera]=$(wait_for_port "$work/tessera.out" Tessera)
port[bare]=$(wait_for_port "$work/bare.out" BareRoute)
port[hb-auth]=$(wait_for_port "$work/hb-auth.out" PeerHummingbirdAuth)
wait_for_port "$work/vapor.out" PeerVapor >/dev/null
wait_for_port "$work/vapor-fluent.out" PeerVaporFluent >/dev/null

# Each server's cookies, a line each: Tessera's from POST /v1/sessions, the peers' from their
# logins (their Set-Cookie).
cookies() { # name port
    python3 - "$1" "$2" "$key" "$sessions" <<'PY'
import http.client, json, sys
name, port, key, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(count):
    if name == "tessera":
        conn.request("POST", "/v1/sessions", json.dumps({"subject": f"bench-{i % 100}"}),
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read())
        print(f"tessera_session={body['token']}")
    else:
        conn.request("POST", "/login", "", {"Content-Length": "0"})
        response = conn.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie")
        if response.status != 200 or not cookie:
            sys.exit(f"{name}: the login answered {response.status} without a cookie")
        print(cookie.split(";")[0])
PY
}
names=(bare tessera hb-auth vapor vapor-fluent)
for name in tessera hb-auth vapor vapor-fluent; do
    cookies "$name" "${port[$name]}" >"$work/$name.cookies"
done
cp "$work/tessera.cookies" "$work/bare.cookies" # the bare route ignores them; wrk does the same work
for name in "${names[@]}"; do
    cat >"$work/$name.lua" <<LUA
local cookies = {}
for line in io.lines("$work/$name.cookies") do cookies[#cookies + 1] = line end
local i = 0
request = function()
    i = i % #cookies + 1
    return wrk.format("GET", "/v1/session", { ["Cookie"] = cookies[i] })
end
LUA
    # Each answers who-am-I with the cookie before it is measured.
    status=$(python3 -c "
import http.client, sys
conn = http.client.HTTPConnection('127.0.0.1', ${port[$name]})
conn.request('GET', '/v1/session', headers={'Cookie': open('$work/$name.cookies').readline().strip()})
response = conn.getresponse(); body = response.read()
print(response.status, body[:120].decode())")
    echo "$name: GET /v1/session answers $status"
    [[ $status == 200* ]] || { echo "$name does not answer who-am-I" >&2; exit 1; }
done

echo "Peers benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$threads -c$connections -d$duration," \
    "$sessions session(s) rotated on each, $rounds rounds"
for name in "${names[@]}"; do # warm-up, not reported
    wrk -t"$threads" -c"$connections" -d3s -s "$work/$name.lua" "http://127.0.0.1:${port[$name]}/v1/session" >/dev/null
done
for round in $(seq 1 "$rounds"); do
    # Each round starts one further along the list, so that no server always goes first or last.
    for index in "${!names[@]}"; do
        name=${names[$(((index + round - 1) % ${#names[@]}))]}
        out="$work/$name.wrk"
        wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$work/$name.lua" "http://127.0.0.1:${port[$name]}/v1/session" >"$out"
        rps=$(awk '/Requests\/sec/ {print $2}' "$out")
        p99=$(awk '$1 == "99%" {print $2}' "$out")
        printf 'round %s: %-13s %10s req/s   p99 %9s   non-2xx %s\n' "$round" "$name" "$rps" "$p99" "$(awk '/Non-2xx/ {print $5}' "$out")"
        echo "$rps $p99" >>"$work/$name.results"
    done
done
arguments=()
for name in "${names[@]}"; do arguments+=("$name=$work/$name.results"); done
echo "against the bare route:"
python3 scripts/bench-ratios.py bare "${arguments[@]}"
echo "against Tessera:"
python3 scripts/bench-ratios.py tessera "${arguments[@]}"
