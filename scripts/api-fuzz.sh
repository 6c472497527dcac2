#!/usr/bin/env bash
# Fuzzes the running service against its OpenAPI document with schemathesis, with real
# credentials and every check on. Exits non-zero on any 5xx, any answer the document does not
# allow (status, headers, content type, body schema), any other schemathesis check failure,
# any ` error ` (or ` critical `) line in the server's log, a served /openapi.yaml that differs
# from the file, or too few requests really authenticated (API_FUZZ_MIN_AUTH).
#
#   scripts/api-fuzz.sh                      # after building .build/debug/tessera
#
# What it does, from a clean state: makes a temporary data directory with two users (alice for
# the operations that read and write, bob for those that end sessions), starts a fake upstream
# site on 127.0.0.1 (scripts/api-fuzz/upstream.py) and `tessera serve --port 0` with an
# upstream pool on it and a new admin API key (TESSERA_ADMIN_API_KEY; its metrics listener on a
# free port), adds an operator (ops, role admin) with that key, checks that a cookie session, a
# bearer session token, an access token, the service key, the admin key and an operator's
# session work (and alice's session is refused the admin API), then runs schemathesis on the
# document in the repository (not the served one, so that fixes to the file count without a
# rebuild). Credentials are applied per security scheme and operation by
# scripts/api-fuzz/hooks.py; operations that end sessions get a new session per case, and the
# admin operations that change a user are kept off alice, bob and ops. The server and the
# upstream are stopped on exit.
#
# The two event streams (GET /v1/events, GET /v1/session/events) are left out: an answer that
# never ends is what they are for, and a fuzzer's request would only time out. Their errors and
# streams are tested through the real executable (EventStreamServeTests).
#
# Checks: `--checks all`, `unsupported_method` included (a served path with another method is
# `405 REQ_1006` with `Allow`). The served /openapi.yaml must equal the
# file, unless the binary is older than the file's last change (a commit, or an uncommitted
# edit): then the check is skipped, and says so.
#
# Environment:
#   TESSERA_BIN        the binary (default .build/debug/tessera; a relative path is taken from the
#                      repository)
#   API_FUZZ_EXAMPLES  test cases per operation and phase (default 150: about 2 minutes on 2 cores)
#   API_FUZZ_SEED      the seed (default 20261201); the same seed and binary give the same cases,
#                      but for the order two workers and the stateful phase take (a few in 5,000)
#   API_FUZZ_WORKERS   schemathesis workers (default 2; 1 with a Python before 3.13)
#   API_FUZZ_PYTHON    the Python for the virtual environment (default: the newest 3.12+ found,
#                      else python3; requirements.txt is pinned for 3.11 to 3.13)
#   API_FUZZ_VENV      the virtual environment for schemathesis (default .build-api-fuzz/venv;
#                      made, and refreshed when scripts/api-fuzz/requirements.txt changes)
#   API_FUZZ_OUT       where reports (JUnit, NDJSON), statistics and the server's log are kept
#                      (default .build-api-fuzz/last)
#   API_FUZZ_MIN_AUTH  the least share of requests to secured operations that must carry a real
#                      credential and be accepted with it (default 0.5; a run gives about 0.85)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bin=${TESSERA_BIN:-.build/debug/tessera}
[[ "$bin" = /* ]] || bin="$root/$bin"
# The service is configured here alone: no TESSERA_… setting of the caller's leaks into it (a
# TESSERA_SERVICE_API_KEY, say, would leave DIR/service-api-key unwritten).
while read -r name; do unset "$name"; done < <(compgen -e | grep '^TESSERA_' || true)
spec="$root/Sources/TesseraHummingbird/openapi.yaml"
here="$root/scripts/api-fuzz"
examples=${API_FUZZ_EXAMPLES:-150}
seed=${API_FUZZ_SEED:-20261201}
workers=${API_FUZZ_WORKERS:-2}
venv=${API_FUZZ_VENV:-$root/.build-api-fuzz/venv}
out=${API_FUZZ_OUT:-$root/.build-api-fuzz/last}
min_auth=${API_FUZZ_MIN_AUTH:-0.5}
password='api-fuzz-password'
operator=ops
started=$SECONDS

say() { printf 'api-fuzz: %s\n' "$*"; }
die() {
    say "$*" >&2
    exit 1
}

[[ -x "$bin" ]] || die "no tessera binary at $bin (build it, or set TESSERA_BIN)"
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"

# --- schemathesis, pinned, in its own virtual environment
# The newest Python 3.12+ there is (on PATH or under pyenv), else python3. Before 3.13, CPython
# can fail `ast.parse` with "SystemError: AST constructor recursion depth mismatch" when two
# threads parse at once (python/cpython#106905; seen here with 3.11.7), which hypothesis does
# while it generates; with such a Python the fuzzer runs one worker.
pick_python() {
    local candidate
    local candidates=("${API_FUZZ_PYTHON:-}" python3.13 python3.12)
    if command -v pyenv >/dev/null; then
        candidates+=($(ls -d "$(pyenv root)"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV))
    fi
    for candidate in "${candidates[@]}"; do
        [[ -n "$candidate" ]] && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null &&
            { echo "$candidate"; return; }
    done
    echo python3
}
python=$(pick_python)
python_version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
if "$python" -c 'import sys; sys.exit(not sys.version_info < (3, 13))'; then
    say "Python $python_version may fail ast.parse under threads (python/cpython#106905): one worker"
    workers=1
fi
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1) $python_version"
if [[ ! -x "$venv/bin/st" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    say "installing schemathesis into $venv (Python $python_version)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
fi
say "$("$venv/bin/st" --version), Python $python_version"

# --- a clean service
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-api-fuzz.XXXXXX")
server_pid=
upstream_pid=
cleanup() {
    local status=$?
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null && { wait "$server_pid" 2>/dev/null || true; }; fi
    if [[ -n "$upstream_pid" ]]; then kill "$upstream_pid" 2>/dev/null && { wait "$upstream_pid" 2>/dev/null || true; }; fi
    mkdir -p "$out"
    cp "$work/server.log" "$out/server.log" 2>/dev/null || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$out"
mkdir -p "$out"

data="$work/data"
mkdir -p "$data"
for user in alice bob; do
    echo "$password" | "$bin" users add "$user" --data-dir "$data" --bcrypt-cost 4 >/dev/null
done

# wait_for FILE PATTERN PID: the first line of FILE matching PATTERN, within 30 s.
wait_for() {
    local line
    for _ in $(seq 300); do
        line=$(grep -m1 -E "$2" "$1" 2>/dev/null || true)
        if [[ -n "$line" ]]; then
            echo "$line"
            return 0
        fi
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

python3 "$here/upstream.py" >"$work/upstream.log" 2>&1 &
upstream_pid=$!
upstream_url=$(wait_for "$work/upstream.log" '^upstream listening on ' "$upstream_pid" | sed 's/^upstream listening on //') ||
    die "the fake upstream did not start: $(cat "$work/upstream.log")"
cat >"$work/upstreams.yaml" <<EOF
upstreams:
  - name: fuzz
    baseURL: $upstream_url
    login:
      path: /login
      fields: { username: { value: fuzz }, password: { value: fuzz } }
      success: { cookie: SESSID }
    keepAlive: { path: /ping }
    pool: { min: 1, max: 2 }
    borrowTimeout: 2
    maxBodyBytes: 65536
EOF

# X-Forwarded-For is trusted so that the fuzzer's failed logins count against the addresses
# hooks.py gives them (and the per-address limit is exercised), not all against 127.0.0.1.
# A new admin key for every run (as `tessera keys new-admin-key` makes them: tak_ and 32 random
# bytes in base64url); the metrics listener on a free port, not the default 9464 that another
# service (or run) may hold.
admin_key="tak_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
[[ "$admin_key" =~ ^tak_[A-Za-z0-9_-]{43}$ ]] || die "could not make an admin key"
TESSERA_BCRYPT_COST=4 TESSERA_MAX_FAILED_LOGINS=1000000 TESSERA_TRUST_FORWARDED_FOR=1 \
    TESSERA_ADMIN_API_KEY=$admin_key TESSERA_METRICS_ADDRESS=127.0.0.1:0 \
    "$bin" serve --data-dir "$data" --port 0 --upstreams "$work/upstreams.yaml" >"$work/server.log" 2>&1 &
server_pid=$!
listening=$(wait_for "$work/server.log" '^Tessera listening on http://127\.0\.0\.1:[0-9]+$' "$server_pid") ||
    die "the server did not start: $(tail -20 "$work/server.log")"
base=${listening#Tessera listening on }
key=$(cat "$data/service-api-key")
say "serving $base ($bin)"

# --- the served document is the file
served="$work/served-openapi.yaml"
curl -fsS "$base/openapi.yaml" -o "$served"
spec_changed=$(git log -1 --format=%ct -- "$spec" 2>/dev/null || echo 0)
git diff --quiet HEAD -- "$spec" 2>/dev/null || spec_changed=$(stat -c %Y "$spec")
spec_status=0
if cmp -s "$served" "$spec"; then
    say "GET /openapi.yaml is the file"
elif (($(stat -L -c %Y "$bin") < spec_changed)); then
    say "GET /openapi.yaml differs from the file, but the binary is older than the file's last change: not checked (rebuild to check)"
else
    say "GET /openapi.yaml differs from $spec, and the binary is newer than the file: the build serves another document"
    diff -u "$spec" "$served" | head -40 || true
    spec_status=1
fi

# --- real credentials work (the hooks make their own the same way)
json_field() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(eval("v"+sys.argv[1]))' "$1"; }
login=$(curl -fsS -c "$work/cookies" -H 'Content-Type: application/json' \
    -d "{\"username\":\"alice\",\"password\":\"$password\"}" "$base/v1/login")
csrf=$(json_field '["csrfToken"]' <<<"$login")
access=$(curl -fsS -H 'Content-Type: application/json' \
    -d "{\"username\":\"alice\",\"password\":\"$password\",\"mode\":\"token\"}" "$base/v1/login" | json_field '["accessToken"]')
session_token=$(curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"subject":"api-fuzz-check"}' "$base/v1/sessions" | json_field '["token"]')
check() {
    local name=$1
    shift
    local status
    status=$(curl -sS -o /dev/null -w '%{http_code}' "$@")
    [[ "$status" == 200 ]] || die "the $name was refused ($status)"
}
check "cookie session" -b "$work/cookies" "$base/v1/session"
check "access token" -H "Authorization: Bearer $access" "$base/v1/session"
check "session token" -H "Authorization: Bearer $session_token" "$base/v1/session"
check "service key" -H "Authorization: Bearer $key" "$base/v1/upstreams"
[[ -n "$csrf" ]] || die "the cookie login gave no CSRF token"
# The operator is made through the admin API, with the admin key.
curl -fsS -o /dev/null -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$operator\",\"password\":\"$password\",\"role\":\"admin\"}" "$base/v1/admin/users" ||
    die "the admin key could not add the operator"
operator_access=$(curl -fsS -H 'Content-Type: application/json' \
    -d "{\"username\":\"$operator\",\"password\":\"$password\",\"mode\":\"token\"}" "$base/v1/login" | json_field '["accessToken"]')
check "admin key" -H "Authorization: Bearer $admin_key" "$base/v1/admin/overview"
check "operator's session" -H "Authorization: Bearer $operator_access" "$base/v1/admin/users"
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $access" "$base/v1/admin/users")
[[ "$status" == 403 ]] || die "alice's session, who is no operator, got $status from the admin API (403 expected)"
say "credentials: cookie session + CSRF token, access token, session token, service key, admin key and operator's session all accepted"

# --- schemathesis
stats="$out/stats.json"
# schemathesis and hypothesis keep caches in the working directory: keep them out of the tree.
scratch="$root/.build-api-fuzz/scratch"
mkdir -p "$scratch"
set +e
(
    cd "$scratch"
    export API_FUZZ_BASE_URL=$base API_FUZZ_SERVICE_KEY=$key API_FUZZ_USER=alice API_FUZZ_DESTROYER=bob \
        API_FUZZ_ADMIN_KEY=$admin_key API_FUZZ_OPERATOR=$operator API_FUZZ_SPEC=$spec \
        API_FUZZ_PASSWORD=$password API_FUZZ_UPSTREAM=fuzz API_FUZZ_STATS=$stats \
        SCHEMATHESIS_HOOKS="$here/hooks.py"
    exec "$venv/bin/st" --config-file "$here/schemathesis.toml" run "$spec" \
        --url "$base" \
        --checks all \
        --max-examples "$examples" \
        --seed "$seed" \
        --workers "$workers" \
        --generation-database none \
        --request-timeout 10 \
        --exclude-operation-id streamEvents --exclude-operation-id streamSessionEvents \
        --no-color \
        --report junit,ndjson --report-dir "$out"
) 2>&1 | tee "$out/schemathesis.txt"
st_status=${PIPESTATUS[0]}
set -e

# --- the server's log: a client's request must never log an error
kill "$server_pid" 2>/dev/null && { wait "$server_pid" 2>/dev/null || true; }
server_pid=
errors=$(grep -c -E ' (error|critical) ' "$work/server.log" || true)
if ((errors > 0)); then
    say "the server logged $errors error line(s):"
    grep -E ' (error|critical) ' "$work/server.log" | head -20
fi

auth_status=0
if [[ -f "$stats" ]]; then
    "$venv/bin/python" "$here/summary.py" "$stats" "$min_auth" || auth_status=1
else
    say "no statistics were written (did the hooks load?)"
    auth_status=1
fi

say "schemathesis exit $st_status, server error lines $errors, served document check $spec_status, $((SECONDS - started)) s; reports in $out"
if ((st_status != 0 || errors > 0 || spec_status != 0 || auth_status != 0)); then
    say "FAILED"
    exit 1
fi
say "passed"
