#!/usr/bin/env bash
# One client holds many idle connections; can another client still get an answer? Starts
# `tessera serve` (BIN, default this checkout's release build) with an open-file limit of
# FILES (256), opens CONNECTIONS (400) idle connections from 127.0.0.1, then asks GET /healthz
# from 127.0.0.2 (loopback has every address of 127.0.0.0/8) and says how it went.
#
#   scripts/connection-flood.sh
#   BIN=/tmp/tessera-before FILES=1024 CONNECTIONS=2000 scripts/connection-flood.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-.build/release/tessera}
files=${FILES:-256}
connections=${CONNECTIONS:-400}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

(ulimit -n "$files"; exec "$bin" serve --data-dir "$work/data" --port 0 --metrics-address off >"$work/log" 2>&1) &
pid=$!
for _ in $(seq 100); do
    port=$(sed -n 's#^Tessera listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$work/log")
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n ${port:-} ]] || { cat "$work/log" >&2; exit 1; }
grep -o 'max_connections=[0-9]* max_per_client=[a-z0-9]*' "$work/log" || echo "(no connection limits logged)"

python3 - "$port" "$connections" <<'PY'
import http.client, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(count):
    s = socket.socket()
    s.settimeout(2)
    s.bind(("127.0.0.1", 0))
    try:
        s.connect(("127.0.0.1", port))
    except OSError as error:
        print(f"connection {len(held) + 1} failed: {error}")
        break
    held.append(s)
print(f"{len(held)} idle connections from 127.0.0.1")
time.sleep(1)
start = time.monotonic()
try:
    other = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=("127.0.0.2", 0))
    other.request("GET", "/healthz")
    status = other.getresponse().status
    print(f"GET /healthz from 127.0.0.2: {status} after {(time.monotonic() - start) * 1000:.0f} ms")
except Exception as error:
    print(f"GET /healthz from 127.0.0.2: no answer ({error}) after {time.monotonic() - start:.1f} s")
still = 0
for s in held:
    s.setblocking(False)
    try:
        still += s.recv(1) != b""
    except BlockingIOError:
        still += 1
    except OSError:
        pass
print(f"{still} of the idle connections still open")
PY
