#!/usr/bin/env bash
# Side by side, one run, one machine, the same segment and request pattern:
#   1. the built Rust Worker under `workerd serve` (no wrangler dev proxy),
#   2. a JS Worker doing the same segment-request path with WebCrypto, in the same workerd,
#   3. nginx with `secure_link` serving the same file from disk,
#   4. the Spin component under spin-host (release build, Wasmtime's pooling allocator).
# Each answers GET of one signed 480p segment URL from its cache (workers) or disk (nginx);
# wrk drives each in turn over loopback. Then a 64 KiB Range of an 8 MiB file (from each cache:
# the Workers' Cache API cuts it; Spin's entry is cut in Wasm; nginx from disk). Prints
# requests/s, p50 and p99, and the ratios.
#
# Usage: bash bench/side-by-side/run.sh      (DURATION=10 CONNECTIONS=32 THREADS=1 to change)
# Needs: the built origin and Worker (bash scripts/build.sh), node_modules (scripts/setup.sh);
# installs nginx and wrk from the distribution if they are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-1}"
# Which file of the demo's ladder to request (a ~300 KB segment by default).
media="${MEDIA:-480p/seg_001.ts}"

for tool in nginx wrk; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    echo "[bench] installing nginx-light and wrk"
    apt-get install -y nginx-light wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nginx-light wrk >/dev/null; }
  fi
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
workerd="$root/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
echo "[bench] spin-host, release build (the first one takes minutes)"
cargo build -q -p spin-host --release
for f in "$workerd" target/debug/origin edge/cloudflare/build/index.js edge/cloudflare/build/index_bg.wasm \
  target/wasm32-wasip2/release/edge_spin.wasm target/release/spin-host; do
  [ -e "$f" ] || { echo "bench: $f is missing; run bash scripts/setup.sh && bash scripts/build.sh" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rand() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
origin_port=$(port); rust_port=$(port); js_port=$(port); jskv_port=$(port); rustkv_port=$(port)
spin_port=$(port)
nginx_port=$(port)
edge_secret="$(rand)"; sync_secret="$(rand)"; playback_key="$(rand)"; link_secret="$(rand)"

echo "[bench] origin with the demo content (ffmpeg renders it once)"
# The origin pushes its records to the Rust edge as in production, so the edge reads each
# video's synced record (one KV read), not a read-through copy.
export APP_SERVER__PORT=$origin_port APP_DATABASE__URL="sqlite://$work/origin.db" \
  APP_STORAGE__MEDIA_DIR="$work/media" APP_EDGE__SHARED_SECRET="$edge_secret" RUST_LOG=warn \
  APP_SYNC__SECRET="$sync_secret" APP_SYNC__EDGES="http://127.0.0.1:$rust_port/internal/sync,http://127.0.0.1:$spin_port/internal/sync"
target/debug/origin seed-demo >/dev/null
target/debug/origin serve >"$work/origin.log" 2>&1 &
pids+=($!)

cp edge/cloudflare/build/index.js edge/cloudflare/build/index_bg.wasm "$here"/*.mjs "$work/"
cat >"$work/config.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "rust", worker = .rust),
    (name = "js", worker = .js),
    (name = "rust-kv", worker = .kv),
    (name = "js-kv", worker = .kv),
    (name = "rust-cache", worker = .cache),
    (name = "js-cache", worker = .cache),
    (name = "loopback", network = (allow = ["private", "local"])),
  ],
  sockets = [
    (name = "rust", address = "127.0.0.1:$rust_port", http = (), service = "rust"),
    (name = "js", address = "127.0.0.1:$js_port", http = (), service = "js"),
    (name = "js-kv", address = "127.0.0.1:$jskv_port", http = (), service = "js-kv"),
    (name = "rust-kv", address = "127.0.0.1:$rustkv_port", http = (), service = "rust-kv"),
  ],
);

const rust :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
  bindings = [
    (name = "EDGE_KV", kvNamespace = "rust-kv"),
    (name = "RATE_LIMITER", durableObjectNamespace = "RateLimiter"),
    (name = "ORIGIN_URL", text = "http://127.0.0.1:$origin_port"),
    (name = "EDGE_ORIGIN_SECRET", text = "$edge_secret"),
    (name = "SYNC_SECRET", text = "$sync_secret"),
    (name = "PLAYBACK_KEYS", text = "bench:$playback_key"),
    (name = "PLAYBACK_ACTIVE_KID", text = "bench"),
    (name = "JWT_ISSUER", text = "edge-video-origin"),
    (name = "JWT_AUDIENCE", text = "edge-video"),
  ],
  durableObjectNamespaces = [(className = "RateLimiter", uniqueKey = "bench-rate-limiter")],
  durableObjectStorage = (inMemory = void),
  cacheApiOutbound = "rust-cache",
  globalOutbound = "loopback",
);

const js :Workerd.Worker = (
  modules = [(name = "js-worker.mjs", esModule = embed "js-worker.mjs")],
  compatibilityDate = "2025-09-01",
  bindings = [
    (name = "EDGE_KV", kvNamespace = "js-kv"),
    (name = "ORIGIN_URL", text = "http://127.0.0.1:$origin_port"),
    (name = "EDGE_ORIGIN_SECRET", text = "$edge_secret"),
    (name = "PLAYBACK_KEY", text = "$playback_key"),
    (name = "PLAYBACK_KID", text = "bench"),
  ],
  cacheApiOutbound = "js-cache",
  globalOutbound = "loopback",
);

const kv :Workerd.Worker = (
  modules = [(name = "kv.mjs", esModule = embed "kv.mjs")],
  compatibilityDate = "2025-09-01",
);

const cache :Workerd.Worker = (
  modules = [(name = "cache.mjs", esModule = embed "cache.mjs")],
  compatibilityDate = "2025-09-01",
);
CAPNP
echo "[bench] workerd serve (both workers)"
"$workerd" serve "$work/config.capnp" >"$work/workerd.log" 2>&1 &
pids+=($!)

wait_up() {
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "bench: $1 did not come up" >&2; cat "$work"/*.log >&2; exit 1
}
echo "[bench] spin-host (the Spin component)"
target/release/spin-host --component target/wasm32-wasip2/release/edge_spin.wasm \
  --listen "127.0.0.1:$spin_port" --allow-outbound "http://127.0.0.1:*" \
  --var "origin_url=http://127.0.0.1:$origin_port" --var "edge_origin_secret=$edge_secret" \
  --var "sync_secret=$sync_secret" --var "playback_keys=bench:$playback_key" \
  --var playback_active_kid=bench --var jwt_issuer=edge-video-origin --var jwt_audience=edge-video \
  >"$work/spin.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$origin_port/healthz"
wait_up "http://127.0.0.1:$rust_port/healthz"
wait_up "http://127.0.0.1:$spin_port/healthz"
wait_up "http://127.0.0.1:$rustkv_port/video%3Ademo-free"

# One signed URL, minted by the Rust edge; the JS worker holds the same key and checks it too.
manifest=$(curl -fs "http://127.0.0.1:$rust_port/v1/videos/demo-free/playback" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_url"])')
seg_path="$(echo "$manifest" | sed -E "s#^https?://[^/]+##; s#master\\.m3u8\$#$media#")"
file="$work/media/demo-free/$media"
size=$(wc -c <"$file")
curl -fs -X PUT --data '{"taken_down":false}' "http://127.0.0.1:$jskv_port/video%3Ademo-free" >/dev/null

expires=$(( $(date +%s) + 3600 ))
uri="/hls/demo-free/$media"
md5=$(printf '%s' "$expires$uri $link_secret" | openssl md5 -binary | base64 | tr '+/' '-_' | tr -d '=')
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
error_log $work/nginx/logs/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:$nginx_port;
    location /hls/ {
      secure_link \$arg_md5,\$arg_expires;
      secure_link_md5 "\$secure_link_expires\$uri $link_secret";
      if (\$secure_link = "") { return 403; }
      if (\$secure_link = "0") { return 410; }
      alias $work/media/;
      types { video/mp2t ts; application/vnd.apple.mpegurl m3u8; }
    }
  }
}
NGINX
chmod -R a+rX "$work"
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)

rust_url="http://127.0.0.1:$rust_port$seg_path"
spin_url="http://127.0.0.1:$spin_port$seg_path"
js_url="http://127.0.0.1:$js_port$seg_path"
nginx_url="http://127.0.0.1:$nginx_port$uri?md5=$md5&expires=$expires"
wait_up "$nginx_url"
# Warm the caches, and check that all three serve the very same bytes (and refuse a bad tag).
for url in "$rust_url" "$js_url" "$nginx_url" "$spin_url"; do
  curl -fs -o "$work/got" "$url"; curl -fs -o "$work/got" "$url"
  cmp -s "$work/got" "$file" || { echo "bench: $url served other bytes" >&2; exit 1; }
done
# The same path with one character of the tag changed.
tampered=$(python3 -c 'import sys; p=sys.argv[1]; i=p.index("/demo-free/")+20; print(p[:i]+("B" if p[i]!="B" else "C")+p[i+1:])' "$seg_path")
for base in "http://127.0.0.1:$rust_port" "http://127.0.0.1:$js_port"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$tampered")
  [ "$code" = 403 ] || { echo "bench: a tampered token got $code at $base" >&2; exit 1; }
done

run() { # name url [wrk options] → "rps p50 p99"
  wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "${@:3}" "$2" >"$work/wrk-$1.txt"
  awk '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} / Non-2xx/ {bad=$4}
       END {if (bad) {print "non-2xx: " bad > "/dev/stderr"; exit 1}; print rps, p50, p99}' "$work/wrk-$1.txt"
}
echo "[bench] wrk: ${duration}s each, $connections connections, $threads thread(s), segment of $size bytes"
read -r rust_rps rust_p50 rust_p99 < <(run rust "$rust_url")
read -r js_rps js_p50 js_p99 < <(run js "$js_url")
read -r ng_rps ng_p50 ng_p99 < <(run nginx "$nginx_url")
read -r spin_rps spin_p50 spin_p99 < <(run spin "$spin_url")
# The fixed cost of each runtime's request glue: a route that does nothing.
read -r rust0_rps rust0_p50 rust0_p99 < <(run rust-healthz "http://127.0.0.1:$rust_port/healthz")
read -r js0_rps js0_p50 js0_p99 < <(run js-healthz "http://127.0.0.1:$js_port/healthz")
read -r spin0_rps spin0_p50 spin0_p99 < <(run spin-healthz "http://127.0.0.1:$spin_port/healthz")

# A 64 KiB range of a larger file, from each cache once warmed by a whole GET. The JS Worker has
# no range code: the figure is the Rust edge's and nginx's.
head -c $((8 << 20)) /dev/urandom >"$work/media/demo-free/large.mp4"
chmod a+r "$work/media/demo-free/large.mp4"
large_path="${seg_path%$media}large.mp4"
for url in "http://127.0.0.1:$rust_port$large_path" "http://127.0.0.1:$spin_port$large_path"; do
  curl -fs -o /dev/null "$url"; curl -fs -o /dev/null "$url"
  curl -fs -H 'range: bytes=1048576-1114111' -o "$work/got" "$url"
  cmp -s "$work/got" <(tail -c +1048577 "$work/media/demo-free/large.mp4" | head -c 65536) \
    || { echo "bench: $url served another range" >&2; exit 1; }
done
large_uri="/hls/demo-free/large.mp4"
large_md5=$(printf '%s' "$expires$large_uri $link_secret" | openssl md5 -binary | base64 | tr '+/' '-_' | tr -d '=')
range_lua="$work/range.lua"
echo 'wrk.headers["Range"] = "bytes=1048576-1114111"' >"$range_lua"
read -r rr_rps rr_p50 rr_p99 < <(run rust-range "http://127.0.0.1:$rust_port$large_path" -s "$range_lua")
read -r sr_rps sr_p50 sr_p99 < <(run spin-range "http://127.0.0.1:$spin_port$large_path" -s "$range_lua")
read -r nr_rps nr_p50 nr_p99 < <(run nginx-range "http://127.0.0.1:$nginx_port$large_uri?md5=$large_md5&expires=$expires" -s "$range_lua")
printf '\n%-34s %12s %10s %10s\n' "server" "requests/s" "p50" "p99"
printf '%-34s %12s %10s %10s\n' "Rust Worker (workerd serve)" "$rust_rps" "$rust_p50" "$rust_p99"
printf '%-34s %12s %10s %10s\n' "JS Worker, WebCrypto (workerd)" "$js_rps" "$js_p50" "$js_p99"
printf '%-34s %12s %10s %10s\n' "nginx secure_link" "$ng_rps" "$ng_p50" "$ng_p99"
printf '%-34s %12s %10s %10s\n' "Spin component (spin-host)" "$spin_rps" "$spin_p50" "$spin_p99"
printf '%-34s %12s %10s %10s\n' "(Rust Worker, GET /healthz)" "$rust0_rps" "$rust0_p50" "$rust0_p99"
printf '%-34s %12s %10s %10s\n' "(JS Worker, GET /healthz)" "$js0_rps" "$js0_p50" "$js0_p99"
printf '%-34s %12s %10s %10s\n' "(Spin component, GET /healthz)" "$spin0_rps" "$spin0_p50" "$spin0_p99"
printf '%-34s %12s %10s %10s\n' "Rust Worker, 64 KiB range (HIT)" "$rr_rps" "$rr_p50" "$rr_p99"
printf '%-34s %12s %10s %10s\n' "Spin component, 64 KiB range" "$sr_rps" "$sr_p50" "$sr_p99"
printf '%-34s %12s %10s %10s\n' "nginx, 64 KiB range" "$nr_rps" "$nr_p50" "$nr_p99"
python3 - "$rust_rps" "$js_rps" "$ng_rps" <<'PY'
import sys
rust, js, ng = map(float, sys.argv[1:])
print(f"\nRust / JS Worker: {rust / js:.2f}x   Rust / nginx: {rust / ng:.2f}x   (goals: > 1x, >= 0.8x)")
PY
