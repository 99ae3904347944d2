#!/usr/bin/env bash
# Short coverage-guided fuzzing runs (cargo fuzz / libFuzzer, nightly) of the parsers that face
# untrusted input: playback tokens, access tokens, HLS paths. Each target runs FUZZ_SECONDS
# (default 20) from the committed corpus in fuzz/corpus/; a crash fails the run and leaves the
# input in fuzz/artifacts/. New inputs go to a scratch folder (libFuzzer writes to the first
# corpus it is given), so a test run leaves the working tree as it found it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
secs="${FUZZ_SECONDS:-20}"
log="$(mktemp)"
scratch="$(mktemp -d)"
trap 'rm -rf "$log" "$scratch"' EXIT
for target in playback_token jwt_verify hls_path; do
  echo "[fuzz] $target for ${secs}s"
  mkdir -p "$scratch/$target"
  if ! cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "[fuzz] $target FAILED; the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
  grep -E "DONE|stat::number_of_executed_units|stat::new_units_added" "$log" || true
done
