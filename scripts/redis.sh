#!/usr/bin/env bash
# A throwaway Redis server (Debian's package) on loopback, for the Spin edge's Redis-backed tests.
#   bash scripts/redis.sh start DIR   starts a server whose files live in DIR, prints its URL
#   bash scripts/redis.sh stop DIR    stops that server (its own pid file) and removes DIR
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?folder}"
command -v redis-server >/dev/null || { echo "redis.sh: no redis-server; run scripts/setup.sh" >&2; exit 1; }

case "$cmd" in
start)
  mkdir -p "$dir"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # Loopback only, nothing saved to disk (the data lives for one test run). The tests give each
  # edge its own numbered database, hence many of them.
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --databases 4096 \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --daemonize yes
  for _ in $(seq 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && { echo "redis://127.0.0.1:$port"; exit 0; }
    sleep 0.1
  done
  cat "$dir/redis.log" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/redis.pid" ]; then
    pid="$(cat "$dir/redis.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
