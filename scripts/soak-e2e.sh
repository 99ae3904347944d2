#!/usr/bin/env bash
# Runs the end-to-end test binaries N times in a row (both edge runtimes are in every binary),
# against the origin on SQLite and on PostgreSQL, and prints a table of runs and failures per
# test. Finds flaky tests: nothing is retried. Exits non-zero if any run of any test failed.
#   bash scripts/soak-e2e.sh 5                         # both databases
#   SOAK_DATABASES=sqlite bash scripts/soak-e2e.sh 3   # one
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs="${1:?usage: scripts/soak-e2e.sh N}"
databases="${SOAK_DATABASES:-sqlite postgres}"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false

bash scripts/setup.sh >/dev/null
bash scripts/build.sh
cargo test -p e2e --no-run

work="$(mktemp -d /tmp/video-soak.XXXXXX)"
# Their own folders, as scripts/test.sh makes them (PostgreSQL's user must reach its own).
pgdir="$(mktemp -d /tmp/video-pg.XXXXXX)"
s3dir="$(mktemp -d /tmp/video-s3.XXXXXX)"
redisdir="$(mktemp -d /tmp/video-redis.XXXXXX)"
trap 'bash scripts/redis.sh stop "$redisdir"; bash scripts/s3.sh stop "$s3dir"; bash scripts/postgres.sh stop "$pgdir"' EXIT
pg_url="$(bash scripts/postgres.sh start "$pgdir")"
s3_url="$(bash scripts/s3.sh start "$s3dir")"
redis_url="$(bash scripts/redis.sh start "$redisdir")"

results="$work/results"
: >"$results"
for i in $(seq 1 "$runs"); do
  for db in $databases; do
    log="$work/run-$i-$db.log"
    echo "[soak] run $i/$runs, origin on $db (log: $log)"
    start=$(date +%s)
    # As scripts/test.sh pairs them: Spin's store in SQLite with the origin on SQLite, in Redis
    # with PostgreSQL (where the Redis tests run).
    pass=(env TEST_S3_ENDPOINT="$s3_url")
    args=(-- --skip on_redis)
    if [ "$db" = postgres ]; then
      pass+=(TEST_POSTGRES_URL="$pg_url" TEST_REDIS_URL="$redis_url")
      args=()
    fi
    "${pass[@]}" cargo test -p e2e --no-fail-fast "${args[@]}" >"$log" 2>&1 || true
    echo "[soak]   $(( $(date +%s) - start )) s"
    # `Running tests/feeds.rs (…)` names the binary of the `test … ok|FAILED` lines after it; a
    # binary with no `test result:` line crashed, and a build error runs nothing.
    awk -v db="$db" '
      function ended() { if (bin != "" && !done) print db, bin "::(crashed)", 1 }
      /^ *Running tests\// { ended(); bin = $2; sub(/^tests\//, "", bin); sub(/\.rs$/, "", bin); done = 0 }
      /^test result:/ { done = 1 }
      /^test .* \.\.\. (ok|FAILED)$/ { print db, bin "::" $2, ($NF == "ok" ? 0 : 1) }
      /^error: could not compile/ { print db, "(build)", 1 }
      END { ended() }
    ' "$log" >>"$results"
  done
done

echo
printf '%-9s %-72s %5s %7s\n' database test runs failed
awk '{ key = $1 " " $2; n[key]++; f[key] += $3 }
     END { for (k in n) { split(k, p, " "); printf "%-9s %-72s %5d %7d\n", p[1], p[2], n[k], f[k] } }' \
  "$results" | sort
failed="$(awk '{ t += $3 } END { print t + 0 }' "$results")"
echo "[soak] $failed failed runs; logs in $work"
[ "$failed" -eq 0 ]
