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

# Drops and creates database $1 on MYSQL_URL (mysql://user@host:port → the mysql client's options).
fresh_mariadb() {
    local authority=${MYSQL_URL#*://} user host port
    user=${authority%@*}
    host=${authority#*@}
    port=${host##*:}
    host=${host%:*}
    mysql --protocol=TCP -h "$host" -P "$port" -u "$user" \
        -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 CHARACTER SET utf8mb4"
}
