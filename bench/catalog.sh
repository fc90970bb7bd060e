#!/usr/bin/env bash
# The issue-5 / issue-10 catalog reads on this machine: the release server on MariaDB + Redis, an
# organizer who publishes an event with a 50,000-seat map and a product (loadgen does the setup),
# then `loadgen catalog` (anonymous event list, product, seat state) and, right after in the same
# session, `loadgen calibrate` for the ceilings of the day. Reports in bench/results/.
#
#   cargo build --release -p boxoffice -p loadgen
#   bench/catalog.sh
#
# Settings (environment): USERS (64 loadgen workers), DURATION (10 s per phase), CALIBRATE_USERS
# (16), PORT (18092), BIN, OUT, MYSQL_URL (mysql://root@127.0.0.1:3306),
# REDIS_URL (redis://127.0.0.1:6379), WORK (scratch directory: token, server log).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
USERS=${USERS:-64}
DURATION=${DURATION:-10}
CALIBRATE_USERS=${CALIBRATE_USERS:-16}
PORT=${PORT:-18092}
WORK=${WORK:-$(mktemp -d /tmp/bo-catalog.XXXXXX)}
DATABASE=bo_bench_catalog
ORGANIZER_EMAIL=organizer@catalog.bench.local
ORGANIZER_PASSWORD='catalog organizer 2026'
# shellcheck source=bench/common.sh
source bench/common.sh
echo "scratch files in $WORK"

server_pid=
trap '[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true' EXIT

fresh_mariadb "$DATABASE"
export BOXOFFICE_DATABASE_URL="$MYSQL_URL/$DATABASE" BOXOFFICE_REDIS_URL="$REDIS_URL"
bench_server_env

"$BIN/boxoffice" user create --role organizer --email "$ORGANIZER_EMAIL" \
    --password "$ORGANIZER_PASSWORD" --name "catalog organizer"
start_server "$WORK/server.log"
organizer_token "$WORK/organizer.token"

"$BIN/loadgen" catalog --target "http://127.0.0.1:$PORT" \
    --organizer-token-file "$WORK/organizer.token" --users "$USERS" --duration "$DURATION" \
    --out "$OUT"
"$BIN/loadgen" calibrate --users "$CALIBRATE_USERS" --duration "$DURATION" \
    --mysql-url "$MYSQL_URL" --redis-url "$REDIS_URL" --out "$OUT"
