#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, idempotently, without any download from
# outside the package registries. Safe to run again: each step checks before it installs.
#   - Rust Wasm targets (from rust-toolchain.toml)
#   - wasm-bindgen-cli, exactly the `wasm-bindgen` version in Cargo.lock
#   - npm packages from package-lock.json (wrangler, binaryen's wasm-opt; esbuild, typescript,
#     hls.js for the web app; playwright-core, axe-core for its browser tests)
#   - ffmpeg/ffprobe (Debian package)
#   - a PostgreSQL server and python3 (Debian packages), for the origin's PostgreSQL tests
#   - s3s-fs (crates.io), an S3-compatible server the storage tests run against
#   - a Redis server (Debian package), for the Spin edge's Redis-backed run
#   - aiosmtpd (Debian package), the SMTP server the notification emails go to in the tests
#   - Chromium (Debian package), for the web app's browser tests (playwright-core drives it)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

say() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] FAILED: %s\n' "$1" >&2; printf '[setup] what to do: %s\n' "$2" >&2; exit 1; }

lock_version() {
  # The version of package $1 in Cargo.lock.
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

command -v cargo >/dev/null || fail "cargo not found" "install Rust with rustup"
command -v node >/dev/null && command -v npm >/dev/null || fail "node/npm not found" "install Node.js 20+ (apt-get install nodejs npm)"

say "Rust toolchain and Wasm targets (rust-toolchain.toml)"
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add wasm32-unknown-unknown wasm32-wasip2 wasm32-wasip1 >/dev/null \
  || fail "rustup target add" "check that rustup can reach its distribution server"

bindgen_version="$(lock_version wasm-bindgen)"
[ -n "$bindgen_version" ] || fail "Cargo.lock lacks wasm-bindgen" "run: cargo generate-lockfile"

# Installs Debian packages ($2…) or fails with what to do ($1).
apt_install() {
  local what_to_do="$1"; shift
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null \
    || fail "apt-get install $*" "$what_to_do"
}

have_version() { command -v "$1" >/dev/null && "$1" --version 2>/dev/null | grep -q "$2"; }

if have_version wasm-bindgen "$bindgen_version"; then
  say "wasm-bindgen $bindgen_version present"
else
  say "installing wasm-bindgen-cli $bindgen_version (a few minutes)"
  # --locked first; its lock file can name a yanked crate, so fall back to a fresh resolution.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked \
    || cargo install wasm-bindgen-cli --version "$bindgen_version" \
    || fail "cargo install wasm-bindgen-cli $bindgen_version" "it must equal wasm-bindgen in Cargo.lock; check crates.io access"
fi

say "npm packages from package-lock.json"
if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/wasm-opt ] \
   || [ ! -x node_modules/.bin/esbuild ] \
   || ! cmp -s package-lock.json node_modules/.package-lock.json.copy 2>/dev/null; then
  npm ci --no-fund --no-audit --loglevel=error \
    || fail "npm ci" "check npm registry access; package-lock.json pins wrangler and binaryen"
  cp package-lock.json node_modules/.package-lock.json.copy
fi
wrangler_version="$(node -p "require('./node_modules/wrangler/package.json').version")"
want_wrangler="$(node -p "require('./package.json').devDependencies.wrangler")"
[ "$wrangler_version" = "$want_wrangler" ] || fail "wrangler $wrangler_version installed, $want_wrangler pinned" "rm -rf node_modules && bash scripts/setup.sh"
node_modules/.bin/wasm-opt --version | grep -q "version 132" || fail "wasm-opt is not binaryen 132" "rm -rf node_modules && bash scripts/setup.sh"

# cargo fuzz needs a nightly toolchain (sanitizer flags); the project itself builds on stable.
if rustup run nightly rustc --version >/dev/null 2>&1; then
  say "nightly toolchain present (for cargo fuzz)"
else
  say "installing the nightly toolchain (for cargo fuzz)"
  rustup toolchain install nightly --profile minimal >/dev/null \
    || fail "rustup toolchain install nightly" "check that rustup can reach its distribution server"
fi
if command -v cargo-fuzz >/dev/null; then
  say "cargo-fuzz present"
else
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked || fail "cargo install cargo-fuzz" "check crates.io access"
fi

if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
  say "ffmpeg present"
else
  say "installing ffmpeg (apt)"
  apt_install "install ffmpeg and ffprobe with your package manager" ffmpeg
fi

# An S3-compatible server that checks SigV4, for the object-store tests (pinned: newer releases
# need a newer rustc than the project's).
s3s_version="0.14.1"
if s3s-fs --version 2>/dev/null | grep -q "$s3s_version"; then
  say "s3s-fs $s3s_version present"
else
  say "installing s3s-fs $s3s_version"
  cargo install s3s-fs --version "$s3s_version" --features binary --locked \
    || fail "cargo install s3s-fs" "check crates.io access"
fi

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v python3 >/dev/null \
  && id postgres >/dev/null 2>&1; then
  say "PostgreSQL server present"
else
  say "installing PostgreSQL (apt)"
  apt_install "install Debian's postgresql package (the tests start their own server on loopback)" postgresql python3
fi

# Debian's python3 with its aiosmtpd: the SMTP server the notification emails are sent to in the
# tests (`tests/src/smtp_sink.py`), run by /usr/bin/python3, whatever python3 is first on PATH.
if /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  say "aiosmtpd present"
else
  say "installing aiosmtpd (apt)"
  apt_install "install Debian's python3-aiosmtpd package (the tests run an SMTP server on loopback)" python3 python3-aiosmtpd
fi

if command -v redis-server >/dev/null; then
  say "Redis server present"
else
  say "installing Redis (apt)"
  apt_install "install Debian's redis-server package (the tests start their own server on loopback)" redis-server
fi

if [ -x /usr/sbin/clickhouse-server ]; then
  say "ClickHouse server present"
else
  say "installing ClickHouse (apt)"
  apt_install "install Debian's clickhouse-server package (the analytics tests start their own server on loopback)" clickhouse-server
fi

if [ -x /usr/bin/chromium ]; then
  say "Chromium present"
else
  say "installing Chromium (apt), for the browser tests"
  apt_install "install Debian's chromium package (/usr/bin/chromium; the web tests drive it with playwright-core)" chromium
fi

say "ready: wasm-bindgen $bindgen_version, wrangler $wrangler_version, $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
