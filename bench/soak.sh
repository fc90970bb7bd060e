#!/usr/bin/env bash
# The issue-10 soak: the release server on MariaDB + Redis, 2,000 seeded buyers, an organizer, then
# `loadgen soak` for DURATION seconds (default 600) with the server's RSS sampled every 5 s.
# Report (JSON, Markdown and an SVG chart over time) in bench/results/.
#
#   cargo build --release -p boxoffice -p loadgen
#   bench/soak.sh                 # 10 minutes
#   DURATION=60 bench/soak.sh     # a quick look
#   DURATION=2400 bench/soak.sh   # 40 minutes: buyers refresh their 15-minute access tokens
#
# Settings (environment): DURATION (600), USERS (32), BUYERS (2000), PORT (18097), BIN, OUT,
# MYSQL_URL (mysql://root@127.0.0.1:3306), REDIS_URL (redis://127.0.0.1:6379), WORK.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
DURATION=${DURATION:-600}
USERS=${USERS:-32}
BUYERS=${BUYERS:-2000}
PORT=${PORT:-18097}
WORK=${WORK:-$(mktemp -d /tmp/bo-soak.XXXXXX)}
DATABASE=bo_bench_soak
ORGANIZER_EMAIL=organizer@soak.bench.local
ORGANIZER_PASSWORD='soak organizer 2026'
# shellcheck source=bench/common.sh
source bench/common.sh

server_pid=
trap '[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true' EXIT

fresh_mariadb "$DATABASE"
export BOXOFFICE_DATABASE_URL="$MYSQL_URL/$DATABASE" BOXOFFICE_REDIS_URL="$REDIS_URL"
bench_server_env

"$BIN/boxoffice" bench seed --users "$BUYERS" --out "$WORK/tokens.jsonl"
"$BIN/boxoffice" user create --role organizer --email "$ORGANIZER_EMAIL" \
    --password "$ORGANIZER_PASSWORD" --name "soak organizer"
start_server "$WORK/server.log"
organizer_token "$WORK/organizer.token"

"$BIN/loadgen" soak --target "http://127.0.0.1:$PORT" --tokens "$WORK/tokens.jsonl" \
    --organizer-token-file "$WORK/organizer.token" --server-pid "$server_pid" \
    --users "$USERS" --warmup 5 --duration "$DURATION" --out "$OUT"
grep -c '"level":"ERROR"\| ERROR ' "$WORK/server.log" || true
