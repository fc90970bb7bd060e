#!/usr/bin/env bash
# The issue-6 sell-out benchmark, end to end, on this machine: for each backend a fresh database,
# 20,000 seeded buyers, the release server, an organizer, calibrate + sell-out in one loadgen run
# (report in bench/results/), `boxoffice audit-stock` of the event, server stopped.
#
#   cargo build --release -p boxoffice -p loadgen
#   bench/sell-out.sh                      # MariaDB + Redis, then SQLite
#   BACKENDS=sqlite USERS=32 bench/sell-out.sh
#   PERF=1 bench/sell-out.sh               # profile the whole machine during the sale (no calibrate)
#   STATUS=1 bench/sell-out.sh             # MariaDB statements per confirmed order (no calibrate)
#
# Settings (environment): BACKENDS ("mariadb sqlite"), TICKETS (10000), BUYERS (20000),
# USERS (160 loadgen workers), CALIBRATE_USERS (16), CALIBRATE_SECONDS (10 measured per phase),
# PORT (18096), BIN (release binaries), OUT (bench/results), MYSQL_URL (mysql://root@127.0.0.1:3306),
# REDIS_URL (redis://127.0.0.1:6379), WORK (scratch directory: tokens, server logs, profiles).
# Exits non-zero if any run failed (loadgen's oversell check or audit-stock).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
BACKENDS=${BACKENDS:-mariadb sqlite}
TICKETS=${TICKETS:-10000}
BUYERS=${BUYERS:-20000}
USERS=${USERS:-160}
CALIBRATE_USERS=${CALIBRATE_USERS:-16}
CALIBRATE_SECONDS=${CALIBRATE_SECONDS:-10}
PORT=${PORT:-18096}
WORK=${WORK:-$(mktemp -d /tmp/bo-sellout.XXXXXX)}
DATABASE=bo_bench_sellout
ORGANIZER_EMAIL=organizer@sellout.bench.local
ORGANIZER_PASSWORD='sell-out organizer 2026'
# shellcheck source=bench/common.sh
source bench/common.sh
echo "scratch files in $WORK"

server_pid=
perf_pid=
# Stops what this script started (by process id), whichever way a backend's run ends.
cleanup() {
    if [[ -n $perf_pid ]]; then kill -INT "$perf_pid" 2>/dev/null || true; fi
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
}

seconds_since() { echo $(($(date +%s) - $1)); }

# Runs one backend (in a subshell of its own); its settings are exported BOXOFFICE_* variables.
run_backend() {
    trap cleanup EXIT
    local backend=$1 started
    echo "=== $backend: fresh database"
    case $backend in
        mariadb)
            fresh_mariadb "$DATABASE"
            export BOXOFFICE_DATABASE_URL="$MYSQL_URL/$DATABASE"
            export BOXOFFICE_REDIS_URL="$REDIS_URL"
            ;;
        sqlite)
            rm -f "$WORK/$DATABASE.db" "$WORK/$DATABASE.db-wal" "$WORK/$DATABASE.db-shm"
            export BOXOFFICE_DATABASE_URL="sqlite://$WORK/$DATABASE.db?mode=rwc"
            unset BOXOFFICE_REDIS_URL
            ;;
        *) echo "unknown backend $backend" >&2; return 2 ;;
    esac
    bench_server_env

    echo "=== $backend: seeding $BUYERS buyers"
    started=$(date +%s)
    "$BIN/boxoffice" bench seed --users "$BUYERS" --out "$WORK/tokens-$backend.jsonl"
    echo "seeding took $(seconds_since "$started") s (access tokens live 15 minutes from here)"
    "$BIN/boxoffice" user create --role organizer --email "$ORGANIZER_EMAIL" \
        --password "$ORGANIZER_PASSWORD" --name "sell-out organizer"

    echo "=== $backend: starting the server on :$PORT"
    start_server "$WORK/server-$backend.log" || return 1
    organizer_token "$WORK/organizer-$backend.token"

    # A profiled run profiles the sale alone: the whole machine (server, database, loadgen),
    # without the calibrate phases.
    local calibrate=(--with-calibrate --calibrate-users "$CALIBRATE_USERS" --duration "$CALIBRATE_SECONDS")
    if [[ ${PERF:-0} == 1 || ${STATUS:-0} == 1 ]]; then
        calibrate=()
    fi
    if [[ ${STATUS:-0} == 1 && $backend == mariadb ]]; then
        mariadb_status >"$WORK/status-before.txt"
    fi
    if [[ ${PERF:-0} == 1 ]]; then
        perf record -a -g -F 499 -o "$WORK/perf-$backend.data" 2>"$WORK/perf-$backend.log" &
        perf_pid=$!
    fi

    echo "=== $backend: sell-out${calibrate:+ with calibrate first}"
    local status=0 before report event
    before=$(ls "$OUT"/*-sell-out.json 2>/dev/null | sort | tail -n 1 || true)
    "$BIN/loadgen" sell-out --target "http://127.0.0.1:$PORT" \
        --tokens "$WORK/tokens-$backend.jsonl" --organizer-token-file "$WORK/organizer-$backend.token" \
        --database-url "$BOXOFFICE_DATABASE_URL" --tickets "$TICKETS" --buyers "$BUYERS" \
        --users "$USERS" "${calibrate[@]}" --mysql-url "$MYSQL_URL" --redis-url "$REDIS_URL" \
        --out "$OUT" || status=$?

    if [[ ${STATUS:-0} == 1 && $backend == mariadb ]]; then
        mariadb_status >"$WORK/status-after.txt"
        # Counters that moved, divided by the tickets sold: what one confirmed order cost MariaDB.
        join "$WORK/status-before.txt" "$WORK/status-after.txt" |
            awk -v n="$TICKETS" '$3 - $2 > 0 { printf "%-40s %12d %8.3f\n", $1, $3 - $2, ($3 - $2) / n }' \
            >"$WORK/status-$backend.txt"
        echo "per order: $WORK/status-$backend.txt"
    fi
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf_pid=
        perf report -i "$WORK/perf-$backend.data" --stdio --no-children --sort comm,dso \
            2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 40 >"$WORK/perf-$backend-by-process.txt" || true
        perf report -i "$WORK/perf-$backend.data" --stdio --no-children --comm boxoffice \
            --sort symbol -g none 2>/dev/null | grep -v '^$' | head -n 80 >"$WORK/perf-$backend-server.txt" || true
        echo "profile: $WORK/perf-$backend-by-process.txt, $WORK/perf-$backend-server.txt"
    fi

    report=$(ls "$OUT"/*-sell-out.json 2>/dev/null | sort | tail -n 1 || true)
    if [[ -n $report && $report != "$before" ]]; then
        event=$(jq -r '.sell_out.event_id // empty' "$report")
        if [[ -n $event ]]; then
            echo "=== $backend: audit-stock --event $event"
            "$BIN/boxoffice" audit-stock --event "$event" || status=1
        fi
    fi

    echo "=== $backend: stopping the server"
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    return "$status"
}

failed=0
for backend in $BACKENDS; do
    # A subshell with errexit of its own (errexit is ignored in a function called from `||`).
    set +e
    (
        set -e
        run_backend "$backend"
    )
    status=$?
    set -e
    if [[ $status != 0 ]]; then
        echo "!!! $backend failed (status $status)" >&2
        failed=1
    fi
done
exit "$failed"
