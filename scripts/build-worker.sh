#!/usr/bin/env bash
# Builds the Cloudflare Worker (edge/cloudflare/build/) with worker-build, using the pinned
# wasm-bindgen and wasm-opt installed by scripts/setup.sh instead of downloading them.
# Prints the raw and gzip size of the Wasm module.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# `wrangler deploy` runs this as wrangler.toml's [build] command. The test command's dry runs
# come right after it built the bundle, and say so (EDGE_WORKER_PREBUILT=1) to take seconds.
if [ -n "${EDGE_WORKER_PREBUILT:-}" ] && [ -f edge/cloudflare/build/index.js ]; then
  echo "build-worker: the bundle in edge/cloudflare/build is already built (EDGE_WORKER_PREBUILT)"
  exit 0
fi
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
for tool in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN"; do
  [ -x "$tool" ] || { echo "build-worker: $tool is missing; run: bash scripts/setup.sh" >&2; exit 1; }
done
command -v worker-build >/dev/null || { echo "build-worker: worker-build is missing; run: bash scripts/setup.sh" >&2; exit 1; }
(cd edge/cloudflare && worker-build --release)
wasm=edge/cloudflare/build/index_bg.wasm
raw=$(wc -c <"$wasm")
gz=$(gzip -9c "$wasm" | wc -c)
echo "worker size: $wasm raw ${raw} bytes, gzip ${gz} bytes"
# The size budget: 300 KiB gzip (ours; Workers allow far more, but size is paid at every cold
# start). Over it, the build fails rather than drifting silently.
budget=$((300 * 1024))
if [ "$gz" -gt "$budget" ]; then
  echo "build-worker: gzip size ${gz} exceeds the ${budget}-byte budget; see docs/benchmarks.md 'Figures'" >&2
  exit 1
fi
