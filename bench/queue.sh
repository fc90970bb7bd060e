#!/usr/bin/env bash
# The issue-7 waiting-room benchmarks on this machine, with the queue on Redis: a fresh SQLite
# database (the queue's hot calls never touch it), seeded buyers, the release server, then
#   1. redis-benchmark -t zadd: the Redis ceiling of this run;
#   2. loadgen queue-burst: distinct buyers join, poll status by queue token; the line is filled
#      to HOLD_WAITERS and Redis used_memory read; status polled again with the line that long;
#   3. loadgen ws-fanout: SOCKETS WebSockets from several 127.0.0.x source addresses, one
#      admission wave, the server's RSS. With WS_HTTP2_STREAMS=N the sockets are HTTP/2
#      streams (RFC 8441), N per connection, as a load balancer carries them upstream: then the
#      open-file limit no longer caps the count.
# Reports in bench/results/.
#
#   cargo build --release -p boxoffice -p loadgen
#   bench/queue.sh
#   SCENARIOS=ws-fanout SOCKETS=5000 bench/queue.sh
#   SCENARIOS=ws-fanout SOCKETS=50000 WS_HTTP2_STREAMS=200 bench/queue.sh
#   SCENARIOS=ws-fanout SOCKETS=50000 WS_HTTP2_STREAMS=200 WS_HTTP1_SOCKETS=18000 bench/queue.sh
#
# Settings (environment): SCENARIOS ("queue-burst ws-fanout"), BUYERS (150000 seeded; the joiners
# of queue-burst), USERS (64 loadgen workers), DURATION (10 s per status phase), HOLD_WAITERS
# (1000000), SOCKETS (18000: the open-file limit here is 20000 for the server and for loadgen),
# WS_HTTP2_STREAMS (0: one HTTP/1.1 connection per socket), WS_HTTP1_SOCKETS (with
# WS_HTTP2_STREAMS: this many sockets over HTTP/1.1, the rest as HTTP/2 streams; default none),
# PORT (18097), BIN (release binaries), OUT (bench/results), REDIS_URL (redis://127.0.0.1:6379),
# WORK (scratch directory: tokens, server log).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
SCENARIOS=${SCENARIOS:-queue-burst ws-fanout}
# 150,000 joiners make a join phase of ≈ 7 s here: 50,000 last ≈ 2 s and vary by ±15 % between runs.
BUYERS=${BUYERS:-150000}
USERS=${USERS:-64}
DURATION=${DURATION:-10}
HOLD_WAITERS=${HOLD_WAITERS:-1000000}
SOCKETS=${SOCKETS:-18000}
WS_HTTP2_STREAMS=${WS_HTTP2_STREAMS:-0}
WS_HTTP1_SOCKETS=${WS_HTTP1_SOCKETS:-}
PORT=${PORT:-18097}
WORK=${WORK:-$(mktemp -d /tmp/bo-queue.XXXXXX)}
ORGANIZER_EMAIL=organizer@queue.bench.local
ORGANIZER_PASSWORD='queue organizer 2026'
# shellcheck source=bench/common.sh
source bench/common.sh
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark" >&2; exit 2; }
echo "scratch files in $WORK"
# As many sockets as the hard limit allows, for the server and for loadgen.
ulimit -n "$(ulimit -Hn)"

server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

export BOXOFFICE_DATABASE_URL="sqlite://$WORK/queue.db?mode=rwc"
export BOXOFFICE_REDIS_URL="$REDIS_URL"
bench_server_env

echo "=== seeding $BUYERS buyers"
started=$(date +%s)
"$BIN/boxoffice" bench seed --users "$BUYERS" --out "$WORK/tokens.jsonl"
echo "seeding took $(($(date +%s) - started)) s (access tokens live 15 minutes from here)"
"$BIN/boxoffice" user create --role organizer --email "$ORGANIZER_EMAIL" \
    --password "$ORGANIZER_PASSWORD" --name "queue organizer"

echo "=== starting the server on :$PORT"
start_server "$WORK/server.log"
organizer_token "$WORK/organizer.token"

status=0
for scenario in $SCENARIOS; do
    case $scenario in
        queue-burst)
            echo "=== redis-benchmark -t zadd (50 clients, no pipelining)"
            host=${REDIS_URL#*://}
            host=${host%%/*}
            zadd=$(redis-benchmark -h "${host%:*}" -p "${host##*:}" -t zadd -n 1000000 -q |
                tr '\r' '\n' | awk '/^ZADD:/ {print $2}' | tail -n 1)
            echo "ZADD: $zadd requests per second"
            echo "=== loadgen queue-burst"
            "$BIN/loadgen" queue-burst --target "http://127.0.0.1:$PORT" \
                --tokens "$WORK/tokens.jsonl" --organizer-token-file "$WORK/organizer.token" \
                --buyers "$BUYERS" --users "$USERS" --duration "$DURATION" \
                --zadd-ceiling "$zadd" --hold-waiters "$HOLD_WAITERS" \
                --redis-url "$REDIS_URL" --out "$OUT" || status=1
            ;;
        ws-fanout)
            echo "=== loadgen ws-fanout ($SOCKETS sockets, HTTP/2 streams per connection: $WS_HTTP2_STREAMS)"
            "$BIN/loadgen" ws-fanout --target "http://127.0.0.1:$PORT" \
                --tokens "$WORK/tokens.jsonl" --organizer-token-file "$WORK/organizer.token" \
                --buyers "$SOCKETS" --users "$USERS" --server-pid "$server_pid" \
                --ws-http2-streams "$WS_HTTP2_STREAMS" ${WS_HTTP1_SOCKETS:+--ws-http1-sockets "$WS_HTTP1_SOCKETS"} \
                --out "$OUT" || status=1
            ;;
        *) echo "unknown scenario $scenario" >&2; status=2 ;;
    esac
done

echo "=== stopping the server"
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=
exit "$status"
