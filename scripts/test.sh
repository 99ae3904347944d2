#!/usr/bin/env bash
# Runs every test: formatting, lints, the core on all three targets, unit and API tests, and the
# end-to-end tests against workerd (wrangler dev) and the Spin component (Wasmtime, and `spin up`
# with its store in SQLite and in Redis).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export WRANGLER_SEND_METRICS=false
# No network at dev time: keep Miniflare from downloading a sample `request.cf` object.
export CLOUDFLARE_CF_FETCH_ENABLED=false

bash scripts/setup.sh

echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The adapters compile to empty crates on the host; lint them on their real targets too.
cargo clippy -p edge-cloudflare --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p edge-spin -p edge-spin-static --target wasm32-wasip2 -- -D warnings

echo "[test] web app: TypeScript typecheck (tsc)"
node_modules/.bin/tsc -p web

echo "[test] shared-wasm builds for wasm32-unknown-unknown and wasm32-wasip2"
cargo build -p shared-wasm --target wasm32-unknown-unknown
cargo build -p shared-wasm --target wasm32-wasip2

bash scripts/build.sh

# The deployment file as wrangler reads it for each environment: config, bindings, and the
# bundle just built (wrangler.toml's [build] command is told it is already there). Offline:
# a dry run needs no account, and the banner (which checks for updates) stays off. Any warning
# (a misspelt key, a var missing from an environment) fails it.
echo "[test] wrangler deploy --dry-run --env staging, production"
for env in staging production; do
  out="$(mktemp -d)"
  if ! EDGE_WORKER_PREBUILT=1 WRANGLER_HIDE_BANNER=true node_modules/.bin/wrangler deploy \
         --dry-run --env "$env" --outdir "$out/bundle" >"$out/log" 2>&1 \
     || grep -q "WARNING" "$out/log"; then
    cat "$out/log"
    rm -rf "$out"
    echo "[test] FAILED: wrangler deploy --dry-run --env $env" >&2
    exit 1
  fi
  rm -rf "$out"
done

echo "[test] fuzzing (short runs, committed corpus)"
bash scripts/fuzz.sh

# The servers the tests use, each stopped at exit if it was started; one step failing does not
# keep the others running.
log="$(mktemp)"
pgdir="" s3dir="" redisdir="" chdir=""
cleanup() {
  [ -z "$chdir" ] || bash scripts/clickhouse.sh stop "$chdir" || true
  [ -z "$redisdir" ] || bash scripts/redis.sh stop "$redisdir" || true
  [ -z "$s3dir" ] || bash scripts/s3.sh stop "$s3dir" || true
  [ -z "$pgdir" ] || bash scripts/postgres.sh stop "$pgdir" || true
  rm -f "$log"
}
trap cleanup EXIT
echo "[test] starting PostgreSQL on loopback"
pgdir="$(mktemp -d /tmp/video-pg.XXXXXX)"
pg_url="$(bash scripts/postgres.sh start "$pgdir")"
echo "[test] starting an S3-compatible server (s3s-fs) on loopback"
s3dir="$(mktemp -d /tmp/video-s3.XXXXXX)"
s3_url="$(bash scripts/s3.sh start "$s3dir")"
echo "[test] starting Redis on loopback"
redisdir="$(mktemp -d /tmp/video-redis.XXXXXX)"
redis_url="$(bash scripts/redis.sh start "$redisdir")"
echo "[test] starting ClickHouse on loopback"
chdir="$(mktemp -d /tmp/video-ch.XXXXXX)"
TEST_CLICKHOUSE_URL="$(bash scripts/clickhouse.sh start "$chdir")"
export TEST_CLICKHOUSE_URL

# The end-to-end tests also run under the Spin CLI's `spin up` (`*_under_spin_up`). No registry
# has it: it is found as the harness finds it (tests/src/lib.rs, `spin_cli`), and without one
# those tests are skipped by name, and the run says so at the start and at the end.
# The second pass runs the end-to-end tests through one edge runtime: `spin up` with its store in
# Redis when there is a Spin CLI, else the Wasmtime host. What it adds is the origin on
# PostgreSQL (and Spin's Redis store), which no edge runtime sees differently from SQLite; every
# runtime has had every test against the same origin code in the first pass.
skip=(--)
spin_bin="${SPIN_BIN:-$(command -v spin || true)}"
if [ -z "$spin_bin" ] && [ -x "$root/../shared/bin/spin" ]; then spin_bin="$root/../shared/bin/spin"; fi
if [ -n "$spin_bin" ]; then
  echo "[test] the end-to-end tests run under spin up too ($("$spin_bin" --version))"
  spin_note=""
  second_pass=(--skip _on_workerd_via_wrangler_dev --skip _on_spin_component_in_wasmtime)
else
  spin_note="[test] SKIPPED: the end-to-end tests under spin up (no Spin CLI: set SPIN_BIN, put spin on PATH, or ../shared/bin/spin)"
  echo "$spin_note"
  skip+=(--skip under_spin_up)
  second_pass=(--skip _on_workerd_via_wrangler_dev)
fi

# Both passes run whatever the first one gives, and cargo runs every test binary (--no-fail-fast);
# the run fails at the end if either pass did, after listing every failed test.
# The Spin edge under `spin up` keeps its state in a SQLite file in the first pass and in Redis
# in the second (`TEST_REDIS_URL`), where the tests that need Redis (`*_on_redis`) run too.
status=0
echo "[test] cargo test (unit, vectors, API, end to end; origin on SQLite, Spin's store SQLite)" | tee "$log"
TEST_S3_ENDPOINT="$s3_url" cargo test --workspace --no-fail-fast "${skip[@]}" --skip on_redis 2>&1 \
  | tee -a "$log" || status=1
# The browser walks (tests/tests/web.rs) run in the first pass only: the pages reach the database
# through the same API whose PostgreSQL paths the API and end-to-end tests cover here, and three
# runtimes of Chromium walks are the longest part of a pass.
echo "[test] the origin's API and the end-to-end tests again (one edge runtime), origin on PostgreSQL, Spin's store Redis (browser walks: first pass only)" | tee -a "$log"
# The whole workspace again, not `-p origin -p e2e`: another package selection resolves other
# features (tokio's, hyper's …) and compiles most dependencies a third time, which costs far more
# than running the other crates' unit tests (seconds) once more.
TEST_POSTGRES_URL="$pg_url" TEST_S3_ENDPOINT="$s3_url" TEST_REDIS_URL="$redis_url" \
  cargo test --workspace --no-fail-fast "${skip[@]}" "${second_pass[@]}" \
  --skip web_app_on_ --skip web_app_under_ --skip account_on_ --skip account_under_ \
  --skip studio_and_admin_ 2>&1 \
  | tee -a "$log" || status=1
# One closing line for the whole run (cargo prints one per test binary, the last often "0 passed").
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
if [ -n "$spin_note" ]; then echo "$spin_note"; fi
if [ "$status" -ne 0 ]; then
  echo "[test] FAILED:"
  grep -E '^\[test\] |^test .* FAILED$|^error: ' "$log" || true
  exit 1
fi
