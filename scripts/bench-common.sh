# Shared by scripts/bench-http.sh and scripts/profile-http.sh (sourced, not run): builds the
# release binaries, makes a work directory that is removed on exit with every server started
# (append their pids to `pids`), and waits for a server's "listening on" line.

swift build -c release --product tessera >/dev/null 2>&1 || swift build -c release --product tessera
swift build -c release --product BareRoute >/dev/null 2>&1 || swift build -c release --product BareRoute
bin=$(swift build -c release --show-bin-path 2>/dev/null)
# TESSERA_BIN: measure another build of `tessera` (an earlier commit's, say) against this
# build's bare route.
tessera_bin=${TESSERA_BIN:-$bin/tessera}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

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
