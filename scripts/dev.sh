#!/usr/bin/env bash
# Brings up the whole local stack: the origin (with a demo user and two demo videos rendered by
# ffmpeg) and the edge under `wrangler dev`, which also serves the web app (web/dist, built here).
# Prints the URLs to try. Ctrl-C stops both.
# State lives in .dev/ (delete it to start over).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export WRANGLER_SEND_METRICS=false
# No network at dev time: keep Miniflare from downloading a sample `request.cf` object.
export CLOUDFLARE_CF_FETCH_ENABLED=false
origin_port="${ORIGIN_PORT:-8700}"
edge_port="${EDGE_PORT:-8787}"
smtp_port="${SMTP_PORT:-2525}"

bash scripts/setup.sh
cargo build -p origin
node web/build.mjs

mkdir -p .dev
# Local secrets, made once: the edge→origin secret, the origin→edge sync secret, a playback key.
rand() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
if [ ! -f .dev.vars ]; then
  umask 077
  printf 'EDGE_ORIGIN_SECRET=%s\nPLAYBACK_KEYS=pk1:%s\n' "$(rand)" "$(rand)" > .dev.vars
fi
# Older .dev.vars files predate the sync.
grep -q '^SYNC_SECRET=' .dev.vars || printf 'SYNC_SECRET=%s\n' "$(rand)" >> .dev.vars
APP_EDGE__SHARED_SECRET="$(sed -n 's/^EDGE_ORIGIN_SECRET=//p' .dev.vars)"
APP_SYNC__SECRET="$(sed -n 's/^SYNC_SECRET=//p' .dev.vars)"
# The origin's outbox pushes video, user and entitlement records to the edge's sync endpoint.
# Notification emails go to the tests' SMTP server on loopback, which writes each one to
# .dev/mail/messages.jsonl; a minute's digest window instead of ten.
export APP_EDGE__SHARED_SECRET APP_SYNC__SECRET APP_SERVER__PORT="$origin_port" \
  APP_SYNC__EDGES="http://127.0.0.1:$edge_port/internal/sync" \
  APP_WEB__ORIGINS="http://127.0.0.1:$edge_port" \
  APP_NOTIFICATIONS__SMTP_URL="smtp://127.0.0.1:$smtp_port" APP_NOTIFICATIONS__DIGEST_SECS=60

mkdir -p .dev/mail
/usr/bin/python3 tests/src/smtp_sink.py "$smtp_port" .dev/mail >/dev/null &
smtp_pid=$!
./target/debug/origin seed-demo
./target/debug/origin serve &
origin_pid=$!
trap 'kill $origin_pid $smtp_pid 2>/dev/null || true' EXIT

cat <<MSG

  origin:  http://127.0.0.1:$origin_port   (its API and media answer the edge only; upload URLs are public)
  edge:    http://127.0.0.1:$edge_port    (wrangler dev / workerd; first start builds the Worker)

  web:     http://127.0.0.1:$edge_port/watch?v=demo-free     (the demo plays here)
           http://127.0.0.1:$edge_port/                      (home: feeds, trending, categories; search)
           http://127.0.0.1:$edge_port/signin                (demo@example.com / demo-password; or sign up)
           http://127.0.0.1:$edge_port/studio                (the demo creator's studio: upload, edit, channels)
           http://127.0.0.1:$edge_port/admin                 (admin@example.com / demo-password: users, takedowns)
  mail:    .dev/mail/messages.jsonl                          (notification emails, as an SMTP server on :$smtp_port got them)

  try:
    curl http://127.0.0.1:$edge_port/v1/videos/demo-free/playback
    TOKEN=\$(curl -s -X POST http://127.0.0.1:$edge_port/v1/auth/login -H 'content-type: application/json' \\
      -d '{"email":"demo@example.com","password":"demo-password"}' | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
    curl -H "authorization: Bearer \$TOKEN" http://127.0.0.1:$edge_port/v1/videos/demo-members/playback
    ffprobe "<manifest_url from the answer>"     # or open it in any HLS player

MSG
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$edge_port" \
  --var "ORIGIN_URL:http://127.0.0.1:$origin_port" --persist-to .dev/wrangler
