# Sourced by the bench scripts (after they set BIN and WORK): shared defaults, the tools every run
# needs, and a fresh MariaDB database.
OUT=${OUT:-bench/results}
MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

for tool in "$BIN/boxoffice" "$BIN/loadgen"; do
    [[ -x $tool ]] || { echo "missing $tool: cargo build --release -p boxoffice -p loadgen" >&2; exit 2; }
done
for tool in jq curl; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
mkdir -p "$WORK" "$OUT"

# The mysql client's options for MYSQL_URL (mysql://user@host:port).
mysql_options() {
    local authority=${MYSQL_URL#*://} user host port
    user=${authority%@*}
    host=${authority#*@}
    port=${host##*:}
    host=${host%:*}
    echo --protocol=TCP -h "$host" -P "$port" -u "$user"
}

# MariaDB's global counters (statements, commits, round trips), sorted by name for `join`.
mariadb_status() {
    # shellcheck disable=SC2046
    mysql $(mysql_options) -N -e "SHOW GLOBAL STATUS WHERE Variable_name REGEXP
        '^(Com_(select|insert|update|delete|commit|rollback|begin|stmt_prepare|stmt_execute|stmt_close|ping)|Questions|Innodb_data_fsyncs|Handler_commit)$'" |
        sort
}

# Drops and creates database $1 on MYSQL_URL (mysql://user@host:port → the mysql client's options).
fresh_mariadb() {
    # shellcheck disable=SC2046
    mysql $(mysql_options) -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 CHARACTER SET utf8mb4"
}

# Starts the release server in the background, its log in $1, and waits until /readyz answers.
# Sets server_pid (call it directly, not in a subshell).
start_server() {
    "$BIN/boxoffice" serve >"$1" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || { echo "server died: $1" >&2; return 1; }
        sleep 0.2
    done
    echo "server not ready after 20 s: $1" >&2
    return 1
}

# Signs ORGANIZER_EMAIL in with ORGANIZER_PASSWORD and writes the access token to $1.
organizer_token() {
    curl -fsS "http://127.0.0.1:$PORT/auth/login" -H 'content-type: application/json' \
        -d "$(jq -n --arg e "$ORGANIZER_EMAIL" --arg p "$ORGANIZER_PASSWORD" '{email: $e, password: $p}')" |
        jq -r .access_token >"$1"
}

# What every benchmarked server runs with, besides its database (the caller exports
# BOXOFFICE_DATABASE_URL): buyers seeded without Argon2 each (BENCH_MODE), no per-IP limits since
# all load comes from one loopback address (RATE_LIMITS=off is accepted only with BENCH_MODE=true
# on a local PUBLIC_URL), listening on PORT.
bench_server_env() {
    export BOXOFFICE_BENCH_MODE=true BOXOFFICE_RATE_LIMITS=off
    export BOXOFFICE_LISTEN=127.0.0.1:$PORT BOXOFFICE_PUBLIC_URL=http://localhost:$PORT
}
