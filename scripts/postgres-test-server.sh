#!/usr/bin/env bash
# Starts (or stops) a throwaway PostgreSQL server on loopback for the tests, as the unprivileged
# `postgres` user, in a temporary directory. Prints the URL the tests take in
# TESSERA_TEST_POSTGRES_URL.
#
#   scripts/postgres-test-server.sh start   # installs PostgreSQL from Debian's packages if missing
#   scripts/postgres-test-server.sh stop
#   scripts/postgres-test-server.sh pause    # an outage: stop immediately, keep the data
#   scripts/postgres-test-server.sh resume   # start again on the same data
# TESSERA_PG_DIR and TESSERA_PG_PORT choose another directory and port (default
# /tmp/tessera-test-postgres and 25432), for a server of a test's own.
set -euo pipefail

dir=${TESSERA_PG_DIR:-/tmp/tessera-test-postgres}
port=${TESSERA_PG_PORT:-25432}
url="postgres://tessera:tessera@127.0.0.1:${port}/tessera_test"

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

server_options() {
    echo "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=200"
}

as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "${1:-}" in
start)
    if [[ -z $(pg_bin) ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bin=$(pg_bin)
    if [[ -f $dir/data/postmaster.pid ]]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    echo "postgres" > "$dir/pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir/pwfile"
    as_postgres "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$dir/initdb.log"
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$(server_options)" start >/dev/null
    as_postgres "$bin/psql" -h "$dir" -p "$port" -U postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE tessera LOGIN PASSWORD 'tessera'" \
        -c "CREATE DATABASE tessera_test OWNER tessera" >/dev/null
    echo "$url"
    ;;
stop)
    bin=$(pg_bin)
    if [[ -n $bin && -f $dir/data/postmaster.pid ]]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
pause)
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
resume)
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$(server_options)" start >/dev/null
    ;;
*)
    echo "usage: $0 start|stop|pause|resume" >&2
    exit 2
    ;;
esac
