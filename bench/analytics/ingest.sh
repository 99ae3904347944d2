#!/usr/bin/env bash
# Playback analytics at the origin (release build, this machine):
#  1. ingest: `wrk` POSTs beacons to /internal/beacons as the edge does (10 events each: a start,
#     eight heartbeats, an end; every beacon a new view, so every event is a new row) for 10 s
#     over 16 connections; prints beacons/s and events/s;
#  2. rollup: N events (default 1,000,000: 100,000 views of the 8 s demo videos by 50,000
#     viewers) written straight into playback_events, then the origin started with its rollup;
#     prints the time until none is pending, and events/s.
# With EVENTS=clickhouse the events go to a ClickHouse server on loopback (Debian's, started
# here; the rollup reads inserts a second old), the views and hourly rows to DB.
# With GATHERED=K each request carries K beacons to /internal/beacons/batch, as a Worker sends
# the beacons it gathered.
#   [DB=sqlite|postgres] [EVENTS=database|clickhouse] [GATHERED=K] bash bench/analytics/ingest.sh [events]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
n="${1:-1000000}"
if ! command -v wrk >/dev/null; then
  echo "[bench] installing wrk"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
cargo build -p origin --release -q
work="$(mktemp -d /tmp/video-bench.XXXXXX)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
origin_pid=""
pgdir=""
chdir=""
stop_origin() { if [ -n "$origin_pid" ]; then kill "$origin_pid" 2>/dev/null || true; wait "$origin_pid" 2>/dev/null || true; origin_pid=""; fi; }
trap 'stop_origin; [ -n "$pgdir" ] && bash scripts/postgres.sh stop "$pgdir"; [ -n "$chdir" ] && bash scripts/clickhouse.sh stop "$chdir"; rm -rf "$work"' EXIT
if [ "${DB:-sqlite}" = postgres ]; then
  pgdir="$(mktemp -d /tmp/video-pg.XXXXXX)"
  pg="$(bash scripts/postgres.sh start "$pgdir")"
  psql -q "$pg" -c "CREATE DATABASE bench"
  db_url="$pg/bench"
  sql() { psql -qtA "$db_url" -c "$1"; }
else
  db_url="sqlite://$work/origin.db"
  sql() { python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); r = c.execute(sys.argv[2]).fetchone(); c.commit(); print(r[0] if r else "")' "$work/origin.db" "$1"; }
fi
events="${EVENTS:-database}"
label="${DB:-sqlite}"
if [ "$events" = clickhouse ]; then
  chdir="$(mktemp -d /tmp/video-ch.XXXXXX)"
  ch="$(bash scripts/clickhouse.sh start "$chdir")"
  export APP_ANALYTICS__CLICKHOUSE__URL="$ch" APP_ANALYTICS__CLICKHOUSE__DATABASE=bench \
    APP_ANALYTICS__CLICKHOUSE__SETTLE_SECS=1
  chq() { curl -sS --fail "$ch/?database=bench" --data-binary "$1"; }
  label="ClickHouse, views in ${DB:-sqlite}"
fi
# Events stored, and those past the rollup's reach so far.
stored_events() {
  if [ "$events" = clickhouse ]; then chq "SELECT count() FROM playback_events"; else sql "SELECT COUNT(*) FROM playback_events"; fi
}
pending_events() {
  if [ "$events" = database ]; then sql "SELECT COUNT(*) FROM playback_events WHERE pending = 1"; return; fi
  # After the cursor the rollup keeps in the database (none yet: all of them).
  local cursor
  cursor="$(sql "SELECT inserted || ',''' || view_id || ''',' || seq FROM analytics_cursor WHERE store = 'clickhouse'")"
  chq "SELECT count() FROM playback_events WHERE (toUInt32(inserted), view_id, seq) > (${cursor:-0,'',0})"
}
secret="bench-edge-secret-0123456789abcdef0123"
export APP_SERVER__PORT="$port" APP_DATABASE__URL="$db_url" \
  APP_STORAGE__MEDIA_DIR="$work/media" APP_STORAGE__UPLOAD_DIR="$work/uploads" \
  APP_EDGE__SHARED_SECRET="$secret" APP_ANALYTICS__ROLLUP_SECS=1 RUST_LOG="warn"
origin=("${CARGO_TARGET_DIR:-target}/release/origin" --config origin/config/base.toml)
"${origin[@]}" seed-demo >/dev/null
base="http://127.0.0.1:$port"
start_origin() {
  "${origin[@]}" serve >>"$work/origin.log" 2>&1 &
  origin_pid=$!
  for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
}

# 1. Ingest, the rollup off. The edge's proof holds for a minute (shared-wasm/src/edge_auth.rs).
# GATHERED=K: K beacons a request to /internal/beacons/batch, as a Worker sends what it gathered.
per="${GATHERED:-1}"
path=/internal/beacons
if [ "$per" -gt 1 ]; then path=/internal/beacons/batch; label="$label, $per beacons a request"; fi
APP_ANALYTICS__ROLLUP=false start_origin
proof="$(python3 - "$secret" "$path" <<'PY'
import base64, hashlib, hmac, sys, time
t = str(int(time.time()))
msg = b"edge-video/edge-to-origin/v1\0" + f"POST\n{sys.argv[2]}\n{t}".encode()
tag = base64.urlsafe_b64encode(hmac.new(sys.argv[1].encode(), msg, hashlib.sha256).digest()).decode().rstrip("=")
print(f"v1.{t}.{tag}")
PY
)"
now="$(date +%s)"
cat >"$work/beacons.lua" <<LUA
-- Each thread runs its own Lua state: setup (in the main one) gives each a number of its own.
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local n = 0
function request()
  n = n + 1
  local events = '{"type":"start","seq":0,"startup_ms":640}'
  for k = 1, 8 do
    events = events .. string.format(',{"type":"heartbeat","seq":%d,"played":[[%d,%d]]}', k, (k - 1) * 900, k * 900)
  end
  events = events .. ',{"type":"end","seq":9,"played":[[7200,8000]]}'
  local beacons = {}
  for b = 1, $per do
    local view = (n - 1) * $per + b
    beacons[b] = string.format('{"view":{"w":"bench-%d-%d","v":"demo-free","u":"u:bench-%d","c":"DE","d":"desktop","i":$now,"e":$((now + 43200))},"received_at":$now,"events":[%s]}', tid, view, view % 50000, events)
  end
  local body = table.concat(beacons, ",")
  if $per > 1 then body = '{"beacons":[' .. body .. ']}' end
  return wrk.format("POST", "$path", {["content-type"] = "application/json", ["x-edge-auth"] = "$proof"}, body)
end
LUA
wrk -t2 -c16 -d10s -s "$work/beacons.lua" "$base" | tee "$work/wrk.txt" | grep -E "Requests/sec|Non-2xx" || true
rps="$(awk '/Requests\/sec/ { print $2 }' "$work/wrk.txt")"
stored="$(stored_events)"
echo "ingest ($label): $(python3 -c "print(f'{float(\"$rps\") * $per:,.0f}')") beacons/s, $(python3 -c "print(f'{float(\"$rps\") * $per * 10:,.0f}')") events/s; $stored events stored"
# Every beacon was a new view: a beacon lost or stored twice would show here.
requests="$(awk '/requests in/ { print $1 }' "$work/wrk.txt")"
[ "$stored" -ge $((requests * per * 10 - 16 * per * 10)) ] || { echo "only $stored events stored for $requests requests"; exit 1; }
stop_origin

# 2. Rollup of n events written straight into the table (views of ten events each).
t0=$((now - 3600))
if [ "$events" = clickhouse ]; then
  chq "TRUNCATE TABLE playback_events"
  chq "$(cat <<SQL
INSERT INTO playback_events (view_id, seq, video_id, viewer, country, device, issued_at, received_at, kind, data)
SELECT concat('v', toString(intDiv(number, 10))), number % 10,
       ['demo-free', 'demo-members', 'demo-geo'][intDiv(number, 10) % 3 + 1],
       concat('u:', toString(intDiv(number, 10) % 50000)), 'DE', 'desktop', $t0, $t0 + (number % 10) * 10,
       if(number % 10 = 0, 'start', 'heartbeat'),
       if(number % 10 = 0, concat('{"type":"start","seq":0,"startup_ms":', toString(200 + number % 1000), '}'),
          concat('{"type":"heartbeat","seq":', toString(number % 10), ',"played":[[', toString((number % 10 - 1) * 900),
                 ',', toString((number % 10) * 900), ']]}'))
FROM system.numbers LIMIT $n
SQL
)"
  # The view rows the ingest's beacons would have left are not there: none was rolled up.
elif [ "${DB:-sqlite}" = postgres ]; then
  series="SELECT i FROM generate_series(0, $n - 1) AS i"
  text="::text"
else
  series="WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $n - 1) SELECT i FROM s"
  text=""
fi
if [ "$events" = database ]; then
sql "DELETE FROM playback_events" >/dev/null
sql "INSERT INTO playback_events (view_id, seq, video_id, viewer, country, device, issued_at, received_at, kind, data)
     SELECT 'v' || (i / 10)$text, i % 10,
            CASE (i / 10) % 3 WHEN 0 THEN 'demo-free' WHEN 1 THEN 'demo-members' ELSE 'demo-geo' END,
            'u:' || ((i / 10) % 50000)$text, 'DE', 'desktop', $t0, $t0 + (i % 10) * 10,
            CASE WHEN i % 10 = 0 THEN 'start' ELSE 'heartbeat' END,
            CASE WHEN i % 10 = 0 THEN '{\"type\":\"start\",\"seq\":0,\"startup_ms\":' || (200 + i % 1000)$text || '}'
                 ELSE '{\"type\":\"heartbeat\",\"seq\":' || (i % 10)$text || ',\"played\":[[' || ((i % 10 - 1) * 900)$text
                      || ',' || ((i % 10) * 900)$text || ']]}' END
     FROM ($series) AS g" >/dev/null
fi
echo "rollup ($label): $(pending_events) events pending"
started=$(date +%s.%N)
start_origin
while [ "$(pending_events)" != 0 ]; do sleep 0.5; done
took=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
views="$(sql "SELECT COUNT(*) FROM playback_views WHERE counted_at IS NOT NULL")"
echo "rollup ($label): $n events in $took s ($(python3 -c "print(f'{$n / $took:,.0f}')") events/s); $views views counted"
# Other writers (the job runner's claims) must not have been locked out meanwhile.
echo "rollup ($label): $(grep -c 'database is locked' "$work/origin.log" || true) writes refused as locked meanwhile"
