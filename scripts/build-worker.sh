#!/usr/bin/env bash
# Builds the Cloudflare Worker into edge/cloudflare/build/: the Rust half (cargo, then the
# pinned wasm-bindgen and binaryen's wasm-opt that scripts/setup.sh installs) and the JS shell
# that drives it (edge/cloudflare/shell.js, bundled by esbuild). The bundle is `index.js` beside
# `index_bg.wasm`. Prints the raw and gzip size of the Wasm module.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out=edge/cloudflare/build
# `wrangler deploy` runs this as wrangler.toml's [build] command. The test command's dry runs
# come right after it built the bundle, and say so (EDGE_WORKER_PREBUILT=1) to take seconds.
if [ -n "${EDGE_WORKER_PREBUILT:-}" ] && [ -f "$out/index.js" ]; then
  echo "build-worker: the bundle in $out is already built (EDGE_WORKER_PREBUILT)"
  exit 0
fi
bindgen="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
wasm_opt="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
esbuild="$root/node_modules/.bin/esbuild"
for tool in "$bindgen" "$wasm_opt" "$esbuild"; do
  [ -x "$tool" ] || { echo "build-worker: $tool is missing; run: bash scripts/setup.sh" >&2; exit 1; }
done
cargo build -q -p edge-cloudflare --target wasm32-unknown-unknown --release
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
# The reset function lets the shell start the instance afresh after a trap (a Rust panic), so
# one failed request never poisons the next.
"$bindgen" --target module --out-dir "$stage" --out-name index --no-typescript \
  --experimental-reset-state-function "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/edge_cloudflare.wasm"
# NO_MINIFY=1 builds for profiles (`PROFILE=1 bash bench/side-by-side/run.sh`): the JS stays
# readable and the Wasm keeps its function names (wasm-opt's -g), so Rust shows by name.
strip=(--strip-debug)
[ -n "${NO_MINIFY:-}" ] && strip=(-g)
"$wasm_opt" -Oz "${strip[@]}" --strip-producers "$stage/index_bg.wasm" -o "$stage/index_bg.wasm"
# wasm-bindgen's module target imports the Wasm as a source-phase import, which workerd reads
# as a plain module import.
sed -i 's/^import source /import /' "$stage/index.js"
cp edge/cloudflare/shell.js "$stage/shell.js"
minify=(--minify)
[ -n "${NO_MINIFY:-}" ] && minify=()
"$esbuild" "$stage/shell.js" --bundle --format=esm "${minify[@]}" --log-level=warning \
  --external:./index_bg.wasm --external:'cloudflare:*' --outfile="$stage/bundle.js"
mkdir -p "$out"
cp "$stage/index_bg.wasm" "$out/index_bg.wasm"
cp "$stage/bundle.js" "$out/index.js"
wasm="$out/index_bg.wasm"
raw=$(wc -c <"$wasm")
gz=$(gzip -9c "$wasm" | wc -c)
echo "worker size: $wasm raw ${raw} bytes, gzip ${gz} bytes"
# The size budget: 300 KiB gzip (ours; Workers allow far more, but size is paid at every cold
# start). Over it, the build fails rather than drifting silently.
budget=$((300 * 1024))
if [ "$gz" -gt "$budget" ] && [ -z "${NO_MINIFY:-}" ]; then
  echo "build-worker: gzip size ${gz} exceeds the ${budget}-byte budget; see docs/benchmarks.md 'Figures'" >&2
  exit 1
fi
