#!/usr/bin/env bash
# The web app's figures (docs/benchmarks.md "Web app"):
#   1. the watch page's weight: HTML + CSS + JS excluding hls.js, each gzip -9, and hls.js alone;
#      the studio's and the admin page's the same way;
#   2. per edge runtime (wrangler dev, spin-host, spin up when a Spin CLI is found), the time from
#      navigation to the first `playing` event in Chromium on loopback, RUNS (5) fresh contexts
#      each: first (edge cache cold), median, min, max.
# The stacks are started by the end-to-end harness (tests/src/lib.rs): `bench_first_play_*` in
# tests/tests/web.rs, ignored in normal runs, runs bench/web/first-play.mjs against each.
# Needs: bash scripts/setup.sh && bash scripts/build.sh, and /usr/bin/chromium.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
dist=web/dist
[ -f "$dist/watch.html" ] || { echo "bench: $dist is missing; run bash scripts/build.sh" >&2; exit 1; }

gz() { gzip -9c "$1" | wc -c; }
html=$(gz "$dist/watch.html"); css=$(gz "$dist/assets/app.css"); js=$(gz "$dist/assets/watch.js")
hls=$(gz "$dist/assets/hls.js")
total=$((html + css + js))
echo "[bench] watch page, gzip -9: html $html B + css $css B + js $js B = $total B ($(awk "BEGIN{printf \"%.1f\", $total/1024}") KiB; goal ≤ 50 KiB); hls.js $hls B ($(awk "BEGIN{printf \"%.1f\", $hls/1024}") KiB), its own file"
# The creator's and the admin's pages (the studio's JS carries tus-js-client).
for page in studio admin; do
  h=$(gz "$dist/$page.html"); j=$(gz "$dist/assets/$page.js")
  echo "[bench] $page page, gzip -9: html $h B + css $css B + js $j B = $((h + css + j)) B"
done

export RUNS="${RUNS:-5}"
skip=()
if [ -z "${SPIN_BIN:-}" ] && ! command -v spin >/dev/null && [ ! -x "$root/../shared/bin/spin" ]; then
  echo "[bench] no Spin CLI: spin up is left out"
  skip=(--skip under_spin_up)
fi
# One runtime at a time, so they do not compete for the two cores.
cargo test -q -p e2e --test web -- --ignored --test-threads 1 --nocapture bench_first_play "${skip[@]}" 2>&1 \
  | grep -oE '\{"runtime".*\}|FAILED|panicked.*' || true
