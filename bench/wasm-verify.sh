#!/usr/bin/env bash
# The verification benchmark (shared-wasm/benches/verify.rs) compiled to Wasm and run in V8
# (Node's WASI), the engine workerd embeds; then the same checks with WebCrypto for comparison.
# Usage: bash bench/wasm-verify.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
wasm=$(cargo bench --no-run -p shared-wasm --bench verify --target wasm32-wasip1 \
  --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "verify" and m.get("executable"):
        print(m["executable"])')
echo "[wasm, V8] $wasm"
node --no-warnings bench/wasi-run.mjs "$wasm"
echo "[WebCrypto, Node]"
node bench/webcrypto.mjs
