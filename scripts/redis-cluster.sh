#!/usr/bin/env bash
# A local three-primary Redis Cluster for the cluster tests: `scripts/redis-cluster.sh start`
# (idempotent) prints the REDIS_URL to use; `stop` ends it. Ports 7000-7002 unless BASE_PORT is set.
set -euo pipefail
base=${BASE_PORT:-7000}
dir=${CLUSTER_DIR:-/tmp/boxoffice-redis-cluster}
ports=("$base" "$((base + 1))" "$((base + 2))")

case "${1:-start}" in
start)
  mkdir -p "$dir"
  for p in "${ports[@]}"; do
    if ! redis-cli -p "$p" ping >/dev/null 2>&1; then
      mkdir -p "$dir/$p"
      redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout 2000 \
        --save "" --appendonly no --dir "$dir/$p" --daemonize yes \
        --logfile "$dir/$p/redis.log" >/dev/null
    fi
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  if ! redis-cli -p "$base" cluster info | grep -q cluster_state:ok; then
    if [ "$(redis-cli -p "$base" cluster info | awk -F: '/cluster_known_nodes/ {print $2}' | tr -d '\r')" != "3" ]; then
      redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
        --cluster-replicas 0 --cluster-yes >/dev/null
    fi
    for _ in $(seq 1 100); do
      redis-cli -p "$base" cluster info | grep -q cluster_state:ok && break
      sleep 0.1
    done
  fi
  redis-cli -p "$base" cluster info | grep -q cluster_state:ok
  echo "redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
  ;;
stop)
  for p in "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
