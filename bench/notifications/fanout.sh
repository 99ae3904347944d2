#!/usr/bin/env bash
# Notification fan-out: a video published to a channel with N subscribers (default 100,000).
# The publish (an admin restoring the demo's taken-down video, through the API as the edge calls
# it) commits at once with one `notify.fanout` job; the job then writes every subscriber's
# notification in batches. Prints the publish's answer time, the time until the last subscriber
# has the notification, and notifications written per second, on a release origin.
#   [DB=sqlite|postgres] [BATCH=1000] bash bench/notifications/fanout.sh [subscribers]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
n="${1:-100000}"
cargo build -p origin --release -q
work="$(mktemp -d /tmp/video-bench.XXXXXX)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
origin_pid=""
pgdir=""
trap 'kill $origin_pid 2>/dev/null || true; wait $origin_pid 2>/dev/null || true;
  [ -n "$pgdir" ] && bash scripts/postgres.sh stop "$pgdir"; rm -rf "$work"' EXIT
if [ "${DB:-sqlite}" = postgres ]; then
  # A folder of its own: the server's user must reach it, and $work is private to us.
  pgdir="$(mktemp -d /tmp/video-pg.XXXXXX)"
  pg="$(bash scripts/postgres.sh start "$pgdir")"
  psql -q "$pg" -c "CREATE DATABASE bench"
  db_url="$pg/bench"
else
  db_url="sqlite://$work/origin.db"
fi
export APP_SERVER__PORT="$port" APP_DATABASE__URL="$db_url" \
  APP_STORAGE__MEDIA_DIR="$work/media" APP_STORAGE__UPLOAD_DIR="$work/uploads" \
  APP_NOTIFICATIONS__FANOUT_BATCH="${BATCH:-1000}" \
  APP_EDGE__SHARED_SECRET="bench-edge-secret-0123456789abcdef0123" RUST_LOG="info"
origin=("${CARGO_TARGET_DIR:-target}/release/origin" --config origin/config/base.toml)
"${origin[@]}" seed-demo >/dev/null

# N subscribers of the demo channel, straight into the database, their addresses confirmed (each
# notification is then also written waiting for its email, as for real users).
subscribers="
  INSERT INTO users (id, email, password_hash, role, created_at, email_confirmed_at)
    SELECT 'bench-' || i, 'bench-' || i || '@example.com', 'x', 'user', 0, 0 FROM n;
  INSERT INTO subscriptions (user_id, channel_id, created_at)
    SELECT 'bench-' || i, (SELECT channel_id FROM videos WHERE id = 'demo-taken'), 0 FROM n;"
if [ "${DB:-sqlite}" = postgres ]; then
  psql -q "$db_url" -c "CREATE TEMP TABLE n AS SELECT generate_series(1, $n) AS i; $subscribers"
else
  python3 - "$work/origin.db" "$n" "$subscribers" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TEMP TABLE n (i INTEGER)")
db.executemany("INSERT INTO n VALUES (?)", ((i,) for i in range(1, int(sys.argv[2]) + 1)))
db.executescript(sys.argv[3])
db.commit()
PY
fi

"${origin[@]}" serve >"$work/origin.log" 2>&1 &
origin_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

python3 - "$base" "$APP_EDGE__SHARED_SECRET" "$db_url" "$work" "$n" <<'PY'
import base64, hashlib, hmac, json, subprocess, sys, time, urllib.request
base, secret, db_url, work, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

def call(method, path, body=None, token=None):
    # The proof the edge adds to every call (shared-wasm/src/edge_auth.rs).
    t = str(int(time.time()))
    msg = b"edge-video/edge-to-origin/v1\0" + f"{method}\n{path}\n{t}".encode()
    tag = base64.urlsafe_b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode().rstrip("=")
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None)
    req.add_header("x-edge-auth", f"v1.{t}.{tag}")
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    return json.load(urllib.request.urlopen(req))

def query(sql):
    if db_url.startswith("sqlite"):
        import sqlite3
        return sqlite3.connect(f"file:{work}/origin.db?mode=ro", uri=True).execute(sql).fetchone()[0]
    return subprocess.run(["psql", "-qtA", db_url, "-c", sql], capture_output=True, text=True, check=True).stdout.strip()

admin = call("POST", "/v1/auth/login", {"email": "admin@example.com", "password": "demo-password"})["access_token"]
start = time.monotonic()
call("PATCH", "/v1/videos/demo-taken", {"taken_down": False}, admin)
committed = time.monotonic() - start
job = "SELECT state FROM jobs WHERE kind = 'notify.fanout' AND key = 'video:demo-taken'"
while query(job) != "done":
    time.sleep(0.02)
last = time.monotonic() - start
told = int(query("SELECT COUNT(*) FROM notifications WHERE key = 'video:demo-taken'"))
assert told == n, f"{told} notifications for {n} subscribers"
print(f"{n} subscribers: publish answered in {committed * 1000:.0f} ms; "
      f"last subscriber told after {last:.2f} s; {n / last:,.0f} notifications/s")
PY
