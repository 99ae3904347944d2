#!/usr/bin/env bash
# A throwaway PostgreSQL server (Debian's package) on loopback, for the origin's tests.
#   bash scripts/postgres.sh start DIR   initialises a cluster in DIR, starts it, prints its URL
#   bash scripts/postgres.sh stop DIR    stops that cluster (its own postmaster.pid) and removes DIR
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?folder}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "postgres.sh: no PostgreSQL server; run scripts/setup.sh" >&2; exit 1; }
# The server refuses to run as root: run it as the package's own user.
as=()
[ "$(id -u)" = 0 ] && as=(runuser -u postgres --)

case "$cmd" in
start)
  mkdir -p "$dir"
  [ ${#as[@]} -gt 0 ] && chown postgres "$dir"
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # Loopback only, socket in DIR. fsync off: the cluster lives for one test run, and tests
  # kill origins, never this server.
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "postgres://postgres@127.0.0.1:$port"
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
