#!/usr/bin/env bash
# Side by side, one machine, the same request pattern against:
#   1. the built Rust Worker under `workerd serve` (no wrangler dev proxy),
#   2. a JS Worker doing the same work with WebCrypto, in the same workerd (js-worker.mjs),
#   3. the JS "I/O floor" Worker: only the segment path's KV read, cache match and pass-through,
#      no checks (js-floor.mjs), so the figures show how much of each Worker is glue,
#   4. nginx with `secure_link` serving the same file from disk,
#   5. the Spin component under spin-host (release build, Wasmtime's pooling allocator).
# Workloads, each driven by wrk over loopback: one signed 480p segment (a cache hit for the
# workers, disk for nginx); a variant playlist, the same way; /healthz (the fixed cost of each runtime's request glue); a 64 KiB
# Range of an 8 MiB file (the Workers' Cache API cuts it; Spin's entry is cut in Wasm; nginx from
# disk); a playback URL for the members video with a Bearer JWT (EdDSA verified by WebCrypto
# in both Workers, by the Rust verifier on Spin); and a player's beacon of ten events (the Rust
# Worker and Spin only: the quota, the view token, the events' bounds and the signed forward to
# the origin's ingest, which stores each event once and drops the repeats). The whole round runs RUNS times, alternating
# servers, and the table gives each figure's median (this machine varies by ±15 % run to run).
#
# Usage: bash bench/side-by-side/run.sh   (RUNS=3 DURATION=10 CONNECTIONS=32 THREADS=1 ORIGIN_BIN WORKLOADS IO_DELAY_MS to change;
#        PROFILE=1 samples the Workers with V8's profiler instead, see below)
# Needs: the built origin and Worker (bash scripts/build.sh), node_modules (scripts/setup.sh);
# installs nginx and wrk from the distribution if they are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
runs="${RUNS:-3}"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-1}"
# The origin behind the edges: a debug build unless ORIGIN_BIN names another (the beacon
# workload goes through to its ingest: give it target/release/origin for that figure).
origin_bin="${ORIGIN_BIN:-target/debug/origin}"
# Which file of the demo's ladder to request (a ~300 KB segment by default).
media="${MEDIA:-480p/seg_001.ts}"
# Milliseconds each KV read and cache match of the Workers waits (0: answered at once). Loopback
# stores answer in microseconds, where a real location's take about a millisecond or more: with
# IO_DELAY_MS=2 CONNECTIONS=1 the p50 column shows how many rounds of reads a request waits for.
io_delay="${IO_DELAY_MS:-0}"

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
for f in "$workerd" "$origin_bin" edge/cloudflare/build/index.js edge/cloudflare/build/index_bg.wasm \
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
spin_port=$(port); floor_port=$(port)
nginx_port=$(port)
edge_secret="$(rand)"; sync_secret="$(rand)"; playback_key="$(rand)"; link_secret="$(rand)"
# The playback and beacon quotas made too large to bind during a run (a 1 ms cell, a burst of
# 10^9), so the JWT and beacon workloads measure the rate-limit calls, not refusals.
rate_limits="playback=1000000000/1000000,beacons=1000000000/1000000"

echo "[bench] origin with the demo content (ffmpeg renders it once)"
# The origin pushes its records to the Rust edge as in production, so the edge reads each
# video's synced record (one KV read), not a read-through copy.
export APP_SERVER__PORT=$origin_port APP_DATABASE__URL="sqlite://$work/origin.db" APP_AUTH__ACCESS_TTL_SECS=3600 \
  APP_STORAGE__MEDIA_DIR="$work/media" APP_EDGE__SHARED_SECRET="$edge_secret" RUST_LOG=warn \
  APP_SYNC__SECRET="$sync_secret" APP_SYNC__EDGES="http://127.0.0.1:$rust_port/internal/sync,http://127.0.0.1:$spin_port/internal/sync"
"$origin_bin" seed-demo >/dev/null
"$origin_bin" serve >"$work/origin.log" 2>&1 &
pids+=($!)

cp edge/cloudflare/build/index.js edge/cloudflare/build/index_bg.wasm "$here"/*.mjs "$work/"
cat >"$work/config.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "rust", worker = .rust),
    (name = "js", worker = .js),
    (name = "floor", worker = .floor),
    (name = "rust-kv", worker = .kv),
    (name = "js-kv", worker = .kv),
    (name = "rust-cache", worker = .cache),
    (name = "js-cache", worker = .cache),
    (name = "loopback", network = (allow = ["private", "local"])),
  ],
  sockets = [
    (name = "rust", address = "127.0.0.1:$rust_port", http = (), service = "rust"),
    (name = "js", address = "127.0.0.1:$js_port", http = (), service = "js"),
    (name = "floor", address = "127.0.0.1:$floor_port", http = (), service = "floor"),
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
    (name = "RATE_LIMITS", text = "$rate_limits"),
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
    (name = "RATE_LIMITER", durableObjectNamespace = "RateLimiter"),
  ],
  durableObjectNamespaces = [(className = "RateLimiter", uniqueKey = "bench-js-rate-limiter")],
  durableObjectStorage = (inMemory = void),
  cacheApiOutbound = "js-cache",
  globalOutbound = "loopback",
);

const floor :Workerd.Worker = (
  modules = [(name = "js-floor.mjs", esModule = embed "js-floor.mjs")],
  compatibilityDate = "2025-09-01",
  bindings = [
    (name = "EDGE_KV", kvNamespace = "js-kv"),
    (name = "CACHE_ORIGIN", text = "http://127.0.0.1:$js_port"),
  ],
  cacheApiOutbound = "js-cache",
);

const kv :Workerd.Worker = (
  modules = [(name = "kv.mjs", esModule = embed "kv.mjs")],
  bindings = [(name = "DELAY_MS", text = "$io_delay")],
  compatibilityDate = "2025-09-01",
);

const cache :Workerd.Worker = (
  modules = [(name = "cache.mjs", esModule = embed "cache.mjs")],
  bindings = [(name = "DELAY_MS", text = "$io_delay")],
  compatibilityDate = "2025-09-01",
);
CAPNP
echo "[bench] workerd serve (the three workers)"
inspector=()
if [ -n "${PROFILE:-}" ]; then inspector_port=$(port); inspector=(--inspector-addr="127.0.0.1:$inspector_port"); fi
"$workerd" serve "$work/config.capnp" "${inspector[@]}" >"$work/workerd.log" 2>&1 &
workerd_pid=$!
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
  --var "rate_limits=$rate_limits" \
  >"$work/spin.log" 2>&1 &
spin_pid=$!
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
nginx_pid=$!
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

# A member's access token (the demo account), and the JS Worker's copies of the records the
# Rust edge has from the origin's sync (its KV namespace is its own).
login=$(curl -fs -X POST -H 'content-type: application/json' \
  --data '{"email":"demo@example.com","password":"demo-password"}' "http://127.0.0.1:$rust_port/v1/auth/login")
jwt=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$login")
sub=$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["sub"])' "$jwt")
curl -fs -X PUT --data '{"title":"Members only","visibility":"members","state":"ready","taken_down":false}' \
  "http://127.0.0.1:$jskv_port/video%3Ademo-members" >/dev/null
curl -fs -X PUT --data "{\"status\":\"active\",\"period_end\":$(( $(date +%s) + 30 * 86400 ))}" \
  "http://127.0.0.1:$jskv_port/ent%3A$sub" >/dev/null
playback="/v1/videos/demo-members/playback"
# Each issues a URL the Rust edge plays and a view token it takes (the JS Worker's too: same key,
# same formats), and refuses a request without the access token.
for base in "http://127.0.0.1:$rust_port" "http://127.0.0.1:$js_port" "http://127.0.0.1:$spin_port"; do
  answer=$(curl -s -H "authorization: Bearer $jwt" "$base$playback")
  issued=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["manifest_url"])' "$answer" 2>/dev/null) \
    || { echo "bench: $base did not issue a playback URL: $answer" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }
  manifest_path="$(echo "$issued" | sed -E 's#^https?://[^/]+##')"
  curl -fs -o /dev/null "http://127.0.0.1:$rust_port$manifest_path" \
    || { echo "bench: the URL $base issued does not play" >&2; exit 1; }
  # Its view token too: the JS Worker signs one as the Rust edge does, and the edge takes it.
  report=$(python3 -c 'import json,sys; print(json.dumps({"token": json.loads(sys.argv[1])["view_token"],
    "events": [{"type": "heartbeat", "seq": 0, "played": [[0, 800]]}]}))' "$answer") \
    || { echo "bench: $base gave no view token: $answer" >&2; exit 1; }
  took=$(curl -s -X POST -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0' \
    --data-binary "$report" "http://127.0.0.1:$rust_port/v1/beacons")
  [ "$took" = '{"accepted":1}' ] || { echo "bench: the view token $base issued was refused: $took" >&2; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$playback")
  [ "$code" = 401 ] || { echo "bench: $base issued a members URL without a token ($code)" >&2; exit 1; }
done

# A player's report on a view of the public demo, as a browser sends it (a person's
# `User-Agent`: the edge drops a program's), accepted whole by both edges.
answer=$(curl -fs "http://127.0.0.1:$rust_port/v1/videos/demo-free/playback")
python3 - "$answer" >"$work/beacon.json" <<'PY'
import json, sys
token = json.loads(sys.argv[1])["view_token"]
events = [{"type": "heartbeat", "seq": i, "played": [[i * 800, i * 800 + 800]]} for i in range(10)]
print(json.dumps({"token": token, "events": events}), end="")
PY
beacon_lua="$work/beacon.lua"
cat >"$beacon_lua" <<LUA
local f = io.open("$work/beacon.json"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
LUA
for base in "http://127.0.0.1:$rust_port" "http://127.0.0.1:$spin_port"; do
  took=$(curl -s -X POST -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0' \
    --data-binary @"$work/beacon.json" "$base/v1/beacons")
  [ "$took" = '{"accepted":10}' ] || { echo "bench: $base took the beacon as $took" >&2; exit 1; }
done

results="$work/results.txt"
# The processes that answer workload `name`: its server's CPU time per request is the figure
# that load on this shared machine moves least (wrk and the servers compete for two cores). The
# workerd process holds the KV and cache stand-ins too, the same for both Workers.
servers() {
  case $1 in
    rust* | js* | floor*) echo "$workerd_pid" ;;
    spin*) echo "$spin_pid" ;;
    nginx*) echo "$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')" ;;
  esac
}
cpu_ticks() { # pids: their user + system time, in clock ticks
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
hz=$(getconf CLK_TCK)
run() { # name url [wrk options]: appends "name rps p50 p99 cpu-us-per-request" to $results
  local -a procs=($(servers "$1"))
  local before; before=$(cpu_ticks "${procs[@]}")
  wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "${@:3}" "$2" >"$work/wrk-$1.txt"
  local used=$(($(cpu_ticks "${procs[@]}") - before))
  awk -v name="$1" -v used="$used" -v hz="$hz" \
    '/requests in/ {n=$1} /Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} / Non-2xx/ {bad=$4}
     END {if (bad) {print name ": non-2xx: " bad > "/dev/stderr"; exit 1}
          print name, rps, p50, p99, (n ? used / hz * 1e6 / n : 0)}' \
    "$work/wrk-$1.txt" >>"$results"
}
# Runs `run` for each "name url" pair given, in reverse order on even rounds, so no server is
# always the first (or the last) after a pause.
each() { # round then pairs of name url; extra wrk options in $wrk_opts
  local round=$1; shift
  local -a names=() urls=()
  while [ $# -gt 0 ]; do names+=("$1"); urls+=("$2"); shift 2; done
  local -a order=($(seq 0 $((${#names[@]} - 1))))
  if [ $((round % 2)) = 0 ]; then order=($(printf '%s\n' "${order[@]}" | tac)); fi
  for i in "${order[@]}"; do run "${names[$i]}" "${urls[$i]}" "${wrk_opts[@]}"; done
}

# A 64 KiB range of a larger file, from each cache once warmed by a whole GET. The JS Worker has
# no range code: the figure is the Rust edge's, Spin's and nginx's.
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
floor_url="http://127.0.0.1:$floor_port$seg_path"
# A variant playlist (229 bytes): the fixed cost per request with a body that is all glue.
playlist="480p/index.m3u8"
pl_path="${seg_path%$media}$playlist"
pl_uri="/hls/demo-free/$playlist"
pl_md5=$(printf '%s' "$expires$pl_uri $link_secret" | openssl md5 -binary | base64 | tr '+/' '-_' | tr -d '=')
pl_nginx="http://127.0.0.1:$nginx_port$pl_uri?md5=$pl_md5&expires=$expires"
for url in "http://127.0.0.1:$rust_port$pl_path" "http://127.0.0.1:$js_port$pl_path" "$pl_nginx" \
  "http://127.0.0.1:$spin_port$pl_path"; do
  curl -fs -o /dev/null "$url"; curl -fs -o "$work/got" "$url"
  cmp -s "$work/got" "$work/media/demo-free/$playlist" || { echo "bench: $url served another playlist" >&2; exit 1; }
done
curl -fs -o "$work/got" "$floor_url" && cmp -s "$work/got" "$file" \
  || { echo "bench: the I/O floor Worker served other bytes" >&2; exit 1; }

# WORKLOADS="playlist healthz" runs only those (the table leaves the others out).
workloads=" ${WORKLOADS:-segment playlist healthz range jwt beacon} "

# PROFILE=1: instead of the rounds, sample each Worker's isolate while wrk loads it, and say
# where the time went (bench/side-by-side/profile.mjs); the .cpuprofile files stay in $PROFILE_DIR.
if [ -n "${PROFILE:-}" ]; then
  out="${PROFILE_DIR:-$root/target/bench-profile}"; mkdir -p "$out"
  profile() { # service workload url [wrk options]
    node --experimental-websocket --no-warnings "$here/profile.mjs" "http://127.0.0.1:$inspector_port" \
      "$1" "$duration" "$out/$1-$2.cpuprofile" &
    local prof=$!
    sleep 0.5
    wrk -t"$threads" -c"$connections" -d"${duration}s" "${@:4}" "$3" | grep 'Requests/sec' | sed "s/^/[profile] $1 $2: /"
    wait "$prof"
  }
  if [[ $workloads == *" segment "* ]]; then profile rust segment "$rust_url"; profile js segment "$js_url"; fi
  if [[ $workloads == *" playlist "* ]]; then
    profile rust playlist "http://127.0.0.1:$rust_port$pl_path"; profile js playlist "http://127.0.0.1:$js_port$pl_path"
  fi
  if [[ $workloads == *" healthz "* ]]; then
    profile rust healthz "http://127.0.0.1:$rust_port/healthz"; profile js healthz "http://127.0.0.1:$js_port/healthz"
  fi
  if [[ $workloads == *" jwt "* ]]; then
    profile rust jwt "http://127.0.0.1:$rust_port$playback" -H "authorization: Bearer $jwt"
    profile js jwt "http://127.0.0.1:$js_port$playback" -H "authorization: Bearer $jwt"
  fi
  echo "[bench] profiles in $out"
  exit 0
fi

echo "[bench] wrk: $runs round(s), ${duration}s each, $connections connections, $threads thread(s), segment of $size bytes"
for round in $(seq 1 "$runs"); do
  echo "[bench] round $round of $runs"
  wrk_opts=()
  [[ $workloads == *" segment "* ]] &&
    each "$round" rust "$rust_url" js "$js_url" floor "$floor_url" nginx "$nginx_url" spin "$spin_url"
  [[ $workloads == *" playlist "* ]] &&
    each "$round" rust-playlist "http://127.0.0.1:$rust_port$pl_path" js-playlist "http://127.0.0.1:$js_port$pl_path" \
      nginx-playlist "$pl_nginx" spin-playlist "http://127.0.0.1:$spin_port$pl_path"
  [[ $workloads == *" healthz "* ]] &&
    each "$round" rust-healthz "http://127.0.0.1:$rust_port/healthz" \
      js-healthz "http://127.0.0.1:$js_port/healthz" spin-healthz "http://127.0.0.1:$spin_port/healthz"
  wrk_opts=(-s "$range_lua")
  [[ $workloads == *" range "* ]] &&
    each "$round" rust-range "http://127.0.0.1:$rust_port$large_path" \
      spin-range "http://127.0.0.1:$spin_port$large_path" \
      nginx-range "http://127.0.0.1:$nginx_port$large_uri?md5=$large_md5&expires=$expires"
  wrk_opts=(-H "authorization: Bearer $jwt")
  [[ $workloads == *" jwt "* ]] &&
    each "$round" rust-jwt "http://127.0.0.1:$rust_port$playback" \
      js-jwt "http://127.0.0.1:$js_port$playback" spin-jwt "http://127.0.0.1:$spin_port$playback"
  wrk_opts=(-s "$beacon_lua")
  [[ $workloads == *" beacon "* ]] &&
    each "$round" rust-beacon "http://127.0.0.1:$rust_port/v1/beacons" \
      spin-beacon "http://127.0.0.1:$spin_port/v1/beacons"
done

python3 - "$results" "$runs" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    name, rps, p50, p99, cpu = line.split()
    rows[name].append((float(rps), p50, p99, float(cpu)))
def ms(t):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if t.endswith(unit):
            return float(t[: -len(unit)]) * f
    raise ValueError(t)
med = {n: (statistics.median(r for r, _, _, _ in v),
           statistics.median(ms(p) for _, p, _, _ in v),
           statistics.median(ms(p) for _, _, p, _ in v),
           statistics.median(c for _, _, _, c in v)) for n, v in rows.items()}
labels = [
    ("rust", "Rust Worker, segment (HIT)"), ("js", "JS Worker, segment (WebCrypto)"),
    ("floor", "JS I/O floor, segment (no checks)"), ("nginx", "nginx secure_link, segment"),
    ("spin", "Spin component, segment"), ("rust-playlist", "Rust Worker, playlist (HIT)"),
    ("js-playlist", "JS Worker, playlist"), ("nginx-playlist", "nginx, playlist"),
    ("spin-playlist", "Spin component, playlist"), ("rust-healthz", "Rust Worker, GET /healthz"),
    ("js-healthz", "JS Worker, GET /healthz"), ("spin-healthz", "Spin component, GET /healthz"),
    ("rust-range", "Rust Worker, 64 KiB range (HIT)"), ("spin-range", "Spin component, 64 KiB range"),
    ("nginx-range", "nginx, 64 KiB range"), ("rust-jwt", "Rust Worker, playback URL + JWT"),
    ("js-jwt", "JS Worker, playback URL + JWT"), ("spin-jwt", "Spin component, playback URL + JWT"),
    ("rust-beacon", "Rust Worker, beacon of 10 events"), ("spin-beacon", "Spin component, beacon"),
]
print(f"\nmedian of {sys.argv[2]} round(s)")
print(f"{'server, workload':<38} {'requests/s':>12} {'p50 ms':>9} {'p99 ms':>9} {'CPU us/req':>11}")
for name, label in labels:
    if name in med:
        rps, p50, p99, cpu = med[name]
        print(f"{label:<38} {rps:>12.0f} {p50:>9.2f} {p99:>9.2f} {cpu:>11.1f}")
def r(a, b):
    return f"{med[a][0] / med[b][0]:.2f}x" if a in med and b in med else "-"
def c(a, b):
    # The inverse ratio of CPU per request: above 1x, Rust needs less CPU for the same work.
    return f"{med[b][3] / med[a][3]:.2f}x" if a in med and b in med and med[a][3] else "-"
print(f"\nRust / JS: segment {r('rust', 'js')}, playlist {r('rust-playlist', 'js-playlist')}, "
      f"JWT {r('rust-jwt', 'js-jwt')}, /healthz {r('rust-healthz', 'js-healthz')}   "
      f"(goals: >= 1.1x, >= 1.1x, >= 1.1x, >= 0.9x)")
print(f"  by CPU per request (JS's / Rust's): segment {c('rust', 'js')}, "
      f"playlist {c('rust-playlist', 'js-playlist')}, JWT {c('rust-jwt', 'js-jwt')}, "
      f"/healthz {c('rust-healthz', 'js-healthz')}")
print(f"Rust / JS I/O floor, segment: {r('rust', 'floor')} (goal >= 0.9x)   "
      f"Rust / nginx, segment: {r('rust', 'nginx')}")
PY
