#!/usr/bin/env bash
# A local MariaDB primary and a replica of it, for the read-replica tests:
# `scripts/mariadb-replica.sh start` (idempotent) prints one line, the primary's URL (root, every
# privilege) and the replica's URL (user `bo_reader`: SELECT only, so nothing the app sends there
# can write), separated by a space:
#   mysql://root@127.0.0.1:3310 mysql://bo_reader@127.0.0.1:3311
# `stop` shuts both down and removes their directory. Ports 3310 (primary) and 3311 (replica)
# unless BASE_PORT is set; data under /tmp/boxoffice-mariadb-replica unless REPLICA_DIR is set.
# Needs the mariadb-server package (mariadbd, mariadb-install-db) and mariadb-client.
set -euo pipefail
base=${BASE_PORT:-3310}
dir=${REPLICA_DIR:-/tmp/boxoffice-mariadb-replica}
primary=$base
replica=$((base + 1))
mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)

sql() { # sql PORT STATEMENTS... as root over TCP
  local port=$1
  shift
  mariadb --no-defaults -uroot -h127.0.0.1 -P"$port" --batch --skip-column-names -e "$*"
}
up() { mariadb-admin --no-defaults -uroot -h127.0.0.1 -P"$1" --connect-timeout=2 ping >/dev/null 2>&1; }
fail() {
  echo "$0: $*" >&2
  for f in "$dir"/*/error.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}

# mariadbd will not run as root unless told to; as root, run it as the package's `mysql` user.
run_as=()
if [ "$(id -u)" -eq 0 ]; then
  if id mysql >/dev/null 2>&1; then run_as=(--user=mysql); else run_as=(--user=root); fi
fi
own() { if [ "$(id -u)" -eq 0 ] && id mysql >/dev/null 2>&1; then chown -R mysql:mysql "$@"; fi; }

# Small buffers and no fsync: a test server that starts in a second and is thrown away.
common=(--no-defaults --bind-address=127.0.0.1 --skip-name-resolve --innodb-buffer-pool-size=64M
  --innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=0 --sync-binlog=0
  --performance-schema=OFF --max-connections=300 --character-set-server=utf8mb4
  --collation-server=utf8mb4_unicode_ci)

start_node() { # start_node NAME PORT EXTRA_OPTIONS...
  local name=$1 port=$2
  shift 2
  local d="$dir/$name"
  up "$port" && return 0
  if ! [ -d "$d/data/mysql" ]; then
    rm -rf "$d" && mkdir -p "$d"
    if [ -d "$dir/seed/mysql" ]; then
      cp -a "$dir/seed" "$d/data"
    else
      rm -rf "$dir/seed"
      own "$dir"
      mariadb-install-db "${common[@]}" "${run_as[@]}" --datadir="$dir/seed" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
        fail "mariadb-install-db failed: $(tail -n 5 "$dir/install.log")"
      cp -a "$dir/seed" "$d/data"
    fi
  fi
  own "$dir"
  # setsid and no inherited stdout: `$(scripts/mariadb-replica.sh start)` must not wait for it.
  setsid "$mariadbd" "${common[@]}" "${run_as[@]}" --datadir="$d/data" --port="$port" \
    --socket="$d/mysqld.sock" --pid-file="$d/mysqld.pid" --log-error="$d/error.log" \
    "$@" </dev/null >/dev/null 2>&1 &
}

case "${1:-start}" in
start)
  mkdir -p "$dir"
  start_node primary "$primary" --server-id=1 --log-bin=mysql-bin --binlog-format=ROW
  start_node replica "$replica" --server-id=2 --read-only=1 --relay-log=relay-bin
  for port in "$primary" "$replica"; do
    for _ in $(seq 1 120); do up "$port" && break; sleep 0.25; done
    up "$port" || fail "MariaDB on port $port did not start"
  done
  # On the primary, so that they replicate: the replica's login and the app's read-only user.
  sql "$primary" "CREATE USER IF NOT EXISTS 'bo_repl'@'%';
    GRANT REPLICATION SLAVE ON *.* TO 'bo_repl'@'%';
    CREATE USER IF NOT EXISTS 'bo_reader'@'%';
    GRANT SELECT ON *.* TO 'bo_reader'@'%';"
  if [ -z "$(sql "$replica" "SHOW SLAVE STATUS")" ]; then
    sql "$replica" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$primary,
      MASTER_USER='bo_repl', MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos"
  fi
  sql "$replica" "START SLAVE" 2>/dev/null || true
  # Caught up (the users above exist there) before anyone is told to use it.
  pos=$(sql "$primary" "SELECT @@gtid_binlog_pos")
  [ "$(sql "$replica" "SELECT MASTER_GTID_WAIT('$pos', 30)")" = 0 ] ||
    fail "the replica did not catch up: $(sql "$replica" 'SHOW SLAVE STATUS\G' | grep -E 'Running|Error')"
  echo "mysql://root@127.0.0.1:$primary mysql://bo_reader@127.0.0.1:$replica"
  ;;
stop)
  for port in "$replica" "$primary"; do
    mariadb-admin --no-defaults -uroot -h127.0.0.1 -P"$port" shutdown >/dev/null 2>&1 || true
  done
  for name in replica primary; do
    pid=$(cat "$dir/$name/mysqld.pid" 2>/dev/null || true)
    for _ in $(seq 1 100); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
