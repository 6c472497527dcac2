# Shared by the bench-*.sh and profile-http.sh scripts (sourced, not run): builds the
# release binaries, makes a work directory that is removed on exit with every server started
# (append their pids to `pids`), and waits for a server's "listening on" line.

swift build -c release --product tessera >/dev/null 2>&1 || swift build -c release --product tessera
swift build -c release --product BareRoute >/dev/null 2>&1 || swift build -c release --product BareRoute
bin=$(swift build -c release --show-bin-path 2>/dev/null)
# TESSERA_BIN: measure another build of `tessera` (an earlier commit's, say) against this
# build's bare route.
tessera_bin=${TESSERA_BIN:-$bin/tessera}

# Each service's metrics on a free port, so that several run side by side.
export TESSERA_METRICS_ADDRESS=${TESSERA_METRICS_ADDRESS:-127.0.0.1:0}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { # a port free on 127.0.0.1 now, for a server that cannot pick its own
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # file prefix: prints the port once the server named `prefix` listens
    for _ in $(seq 1 600); do
        if port=$(grep -oE "$2 listening on http://127\.0\.0\.1:[0-9]+" "$1" 2>/dev/null | grep -oE '[0-9]+$'); then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "server did not start: $(cat "$1" "$1.err" 2>/dev/null | tail -5)" >&2
    exit 1
}

cpu_ticks() { # pid: user + system time of the process, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

create_sessions() { # port key count mode: creates `count` sessions through the API on 8
    # connections and prints their bearer tokens, a line each (access tokens for mode "token")
    python3 - "$1" "$2" "$3" "$4" <<'PY'
import http.client, json, sys, threading
port, key, count, mode = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
tokens = [None] * count
def create(start):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(start, count, 8):
        request = {"subject": f"bench-{i % 100}"}
        if mode == "token":
            request["mode"] = "token"
        conn.request("POST", "/v1/sessions", json.dumps(request),
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status != 201:
            print(f"session creation failed: {response.status} {body}", file=sys.stderr)
            return
        tokens[i] = body["accessToken"] if mode == "token" else body["token"]
workers = [threading.Thread(target=create, args=(n,)) for n in range(8)]
for w in workers: w.start()
for w in workers: w.join()
if None in tokens: sys.exit("session creation failed")
print("\n".join(tokens))
PY
}

validate_lua() { # tokens-file wrk-threads [cookie]: a wrk script for GET /v1/session that
    # rotates over the tokens (as bearer tokens, or with "cookie" as the session cookie); each wrk
    # thread walks its own stretch, so that together they visit every one
    local header='["Authorization"] = "Bearer " .. tokens[i]'
    if [[ ${3:-} == cookie ]]; then header='["Cookie"] = "tessera_session=" .. tokens[i]'; fi
    # CLOSE=1: a new connection per request (what accepting and counting connections costs).
    if [[ ${CLOSE:-} == 1 ]]; then header+=', ["Connection"] = "close"'; fi
    cat <<LUA
local tokens = {}
for line in io.lines("$1") do tokens[#tokens + 1] = line end
local threads, i = 0, 0
function setup(thread)
    thread:set("offset", threads)
    threads = threads + 1
end
function init(args)
    i = math.floor(offset * #tokens / $2)
end
request = function()
    i = i % #tokens + 1
    return wrk.format("GET", "/v1/session", { $header })
end
LUA
}
