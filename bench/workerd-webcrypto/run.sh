#!/usr/bin/env bash
# The access-token signature check as the Worker makes it (WebCrypto, key imported once), timed
# inside workerd itself rather than Node: `workerd serve` runs worker.mjs on loopback, and each
# figure is (time of N checks − time of 0 checks) / N over HTTP, the median of 7 requests each.
# Usage: bash bench/workerd-webcrypto/run.sh [N]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench/workerd-webcrypto"
n="${1:-2000}"
workerd="$root/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
[ -x "$workerd" ] || { echo "workerd is missing; run: bash scripts/setup.sh" >&2; exit 1; }
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cp "$here/worker.mjs" "$root"/shared-wasm/tests/vectors/wycheproof_{ed25519,ecdsa_secp256r1_sha256_p1363}_test.json "$work/"
cat >"$work/config.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .w)],
  sockets = [(name = "http", address = "127.0.0.1:$port", http = (), service = "main")],
);
const w :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "wycheproof_ed25519_test.json", json = embed "wycheproof_ed25519_test.json"),
    (name = "wycheproof_ecdsa_secp256r1_sha256_p1363_test.json",
     json = embed "wycheproof_ecdsa_secp256r1_sha256_p1363_test.json"),
  ],
  compatibilityDate = "2025-09-01",
);
CAPNP
"$workerd" serve "$work/config.capnp" >"$work/workerd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/names" >/dev/null 2>&1 && break; sleep 0.2; done
echo "Ed25519 names accepted by this workerd: $(curl -fs "http://127.0.0.1:$port/names")"
echo "Wycheproof through this workerd's WebCrypto (with the Worker's own refusals: small-order Ed25519 keys, signatures not 64 bytes):"
report() { python3 -c 'import json,sys
for alg, r in json.load(sys.stdin).items():
    print("  %s: %d of %d cases agree (%d valid, %d invalid)" % (alg, r["agree"], r["valid"] + r["invalid"], r["valid"], r["invalid"]))
    for d in r["disagree"]:
        print("    disagrees:", d)'; }
curl -fs "http://127.0.0.1:$port/wycheproof" | report
echo "The same through WebCrypto alone (no Worker refusals):"
curl -fs "http://127.0.0.1:$port/wycheproof?bare=1" | report
echo "WebCrypto alone, identity key with signature (identity, 0) over any message: $(curl -fs "http://127.0.0.1:$port/small-order")"
[ "${WYCHEPROOF_ONLY:-}" ] && exit 0
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_of() { # alg count → median seconds of 7 requests
  for _ in $(seq 7); do
    curl -fs -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/?alg=$1&n=$2"
  done | median
}
for alg in ed25519 p256; do
  curl -fs "http://127.0.0.1:$port/?alg=$alg&n=$n" >/dev/null # warm up: fixtures, JIT
  t0=$(time_of "$alg" 0)
  tn=$(time_of "$alg" "$n")
  awk -v a="$alg" -v t0="$t0" -v tn="$tn" -v n="$n" \
    'BEGIN { printf "workerd WebCrypto %-8s verify: %7.1f µs per check (%d checks %.1f ms, empty request %.2f ms)\n", a, (tn - t0) / n * 1e6, n, tn * 1e3, t0 * 1e3 }'
done
