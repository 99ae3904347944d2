#!/usr/bin/env bash
# A throwaway ClickHouse server (Debian's package) on loopback, for the analytics event store's
# tests and benchmark.
#   bash scripts/clickhouse.sh start DIR   starts a server whose files live in DIR, prints its URL
#   bash scripts/clickhouse.sh stop DIR    stops that server (its own pid file) and removes DIR
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?folder}"
server=/usr/sbin/clickhouse-server

case "$cmd" in
start)
  [ -x "$server" ] || { echo "clickhouse.sh: no $server; run scripts/setup.sh" >&2; exit 1; }
  mkdir -p "$dir/data/" "$dir/tmp/"
  port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  http="$(port)"
  tcp="$(port)"
  # Loopback only; one user `default` without a password, as the tests reach it (nothing else
  # can); its files in DIR, its logs too.
  cat >"$dir/users.xml" <<'EOF'
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
EOF
  cat >"$dir/config.xml" <<EOF
<yandex>
  <logger>
    <level>warning</level>
    <log>$dir/server.log</log>
    <errorlog>$dir/error.log</errorlog>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
</yandex>
EOF
  "$server" --config-file="$dir/config.xml" --pid-file="$dir/server.pid" --daemon
  for _ in $(seq 200); do
    if python3 -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:$http/ping', timeout=1).read() != b'Ok.\n')" 2>/dev/null; then
      echo "http://127.0.0.1:$http"
      exit 0
    fi
    sleep 0.1
  done
  cat "$dir/error.log" >&2 2>/dev/null || true
  exit 1
  ;;
stop)
  if [ -f "$dir/server.pid" ]; then
    pid="$(cat "$dir/server.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # Still there after 10 s: its files are about to go, so it goes too.
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
