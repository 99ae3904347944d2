#!/usr/bin/env bash
# A throwaway S3-compatible server (s3s-fs, which checks SigV4) on loopback, for the tests.
#   bash scripts/s3.sh start DIR   serves DIR/data with the test keys, prints its endpoint
#   bash scripts/s3.sh stop DIR    stops it (the PID it wrote) and removes DIR
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?folder}"
case "$cmd" in
start)
  command -v s3s-fs >/dev/null || { echo "s3.sh: no s3s-fs; run scripts/setup.sh" >&2; exit 1; }
  mkdir -p "$dir/data"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # The keys the storage tests sign with (origin/tests/api/storage.rs).
  s3s-fs --host 127.0.0.1 --port "$port" --access-key testaccess \
    --secret-key testsecret-0123456789 "$dir/data" >"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "http://127.0.0.1:$port"
      exit 0
    fi
    sleep 0.1
  done
  cat "$dir/server.log" >&2
  exit 1
  ;;
stop)
  [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
