#!/usr/bin/env bash
# Builds every artifact the stack and the tests run: the web app (web/dist, served by both edges),
# the origin, the Spin test host and the tests (native), the Worker bundle
# (wasm32-unknown-unknown: the Rust half by cargo and wasm-bindgen, the JS shell by esbuild) and the Spin components (wasm32-wasip2). One target/
# directory serves all of them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
echo "[build] web app (web/dist)"
node web/build.mjs
echo "[build] native: the origin, the Spin test host and every test"
# The whole workspace with its tests, so features resolve as they do for `cargo test
# --workspace` and the test run reuses every artifact: `-p origin -p spin-host` resolves other
# features (of serde_json, reqwest, chrono …) and the test run compiled most dependencies again.
cargo build --workspace --lib --bins --tests
echo "[build] Spin components: the edge and the web app's static files (wasm32-wasip2)"
cargo build -p edge-spin -p edge-spin-static --target wasm32-wasip2 --release
echo "[build] Worker (wasm32-unknown-unknown and its JS shell)"
bash scripts/build-worker.sh
