# Shared by the upload and transcoding benchmarks: a release origin on loopback with its own
# folders, the demo creator's token, and a new video with its upload ticket. STORE=s3 puts
# sources and media in a bucket of a loopback S3-compatible server (scripts/s3.sh) instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cargo build -p origin --release -q
work="$(mktemp -d /tmp/video-bench.XXXXXX)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export APP_SERVER__PORT="$port" APP_DATABASE__URL="sqlite://$work/origin.db" \
  APP_STORAGE__MEDIA_DIR="$work/media" APP_STORAGE__UPLOAD_DIR="$work/uploads" \
  APP_STORAGE__MAX_UPLOAD_BYTES=$((4 << 30)) \
  APP_EDGE__SHARED_SECRET="bench-edge-secret-0123456789abcdef0123" RUST_LOG="info"
origin_pid=""
trap 'kill $origin_pid 2>/dev/null || true; wait $origin_pid 2>/dev/null || true;
  [ -d "$work/s3" ] && bash scripts/s3.sh stop "$work/s3"; rm -rf "$work"' EXIT
if [ "${STORE:-local}" = s3 ]; then
  export APP_STORAGE__S3__ENDPOINT="$(bash scripts/s3.sh start "$work/s3")" \
    APP_STORAGE__S3__BUCKET=bench APP_STORAGE__S3__ACCESS_KEY_ID=testaccess \
    APP_STORAGE__S3__SECRET_ACCESS_KEY=testsecret-0123456789
fi
origin=("${CARGO_TARGET_DIR:-target}/release/origin" --config origin/config/base.toml)
"${origin[@]}" seed-demo >/dev/null
"${origin[@]}" serve >"$work/origin.log" 2>&1 &
origin_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# The origin's API answers only the edge: these calls carry the proof the edge would
# (`x-edge-auth`, shared-wasm/src/edge_auth.rs) for METHOD and PATH.
edge_auth() {
  python3 - "$APP_EDGE__SHARED_SECRET" "$1" "$2" <<'PY'
import base64, hashlib, hmac, sys, time
secret, method, path = sys.argv[1:4]
t = str(int(time.time()))
msg = b"edge-video/edge-to-origin/v1\0" + f"{method}\n{path}\n{t}".encode()
tag = base64.urlsafe_b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest())
print(f"x-edge-auth: v1.{t}.{tag.decode().rstrip('=')}")
PY
}
token="$(curl -sf "$base/v1/auth/login" -H "$(edge_auth POST /v1/auth/login)" \
  -H 'content-type: application/json' \
  -d '{"email":"demo@example.com","password":"demo-password"}' | json '["access_token"]')"

# Prints "video_id upload_url".
new_ticket() {
  local id
  id="$(curl -sf "$base/v1/videos" -H "$(edge_auth POST /v1/videos)" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"title":"bench","visibility":"public"}' | json '["id"]')"
  echo "$id $(curl -sf -X POST "$base/v1/videos/$id/upload" -H "$(edge_auth POST "/v1/videos/$id/upload")" \
    -H "authorization: Bearer $token" | json '["upload_url"]')"
}
