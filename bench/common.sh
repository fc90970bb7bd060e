# Sourced by the bench scripts (after they set BIN and WORK): shared defaults, the tools every run
# needs, and a fresh MariaDB database.
OUT=${OUT:-bench/results}
MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

for tool in "$BIN/boxoffice" "$BIN/loadgen"; do
    [[ -x $tool ]] || { echo "missing $tool: cargo build --release -p boxoffice -p loadgen" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "needs jq" >&2; exit 2; }
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
