#!/usr/bin/env bash
# A 2 GiB upload by PUT to a release origin on loopback: throughput, and the origin's memory
# before and at its peak (VmHWM), to show it streams rather than buffers.
#   bash bench/uploads/upload.sh [bytes]
source "$(dirname "$0")/common.sh"
bytes="${1:-$((2 << 30))}"
export APP_TRANSCODE__WORKERS=0 # this measures the upload alone
read -r id url < <(new_ticket)
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$origin_pid/status"; }
before="$(rss VmRSS)"
start="$(date +%s.%N)"
# An MP4's first box (the upload is sniffed), then zeros.
{ printf '\0\0\0\030ftypisom\0\0\002\0isomiso2'; head -c "$((bytes - 24))" /dev/zero; } |
  curl -sf -X PUT -H 'content-type: video/mp4' -T - "$url" >/dev/null
end="$(date +%s.%N)"
if [ "${STORE:-local}" = s3 ]; then
  stored="$(stat -c %s "$work/s3/data/bench/sources/$id".*)" # s3s-fs keeps objects as files
else
  stored="$(stat -c %s "$work/uploads/sources/$id".*)"
fi
python3 - "$bytes" "$stored" "$start" "$end" "$before" "$(rss VmHWM)" <<'PY'
import sys
n, stored, start, end, before, peak = int(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:5]), int(sys.argv[5]), int(sys.argv[6])
assert stored == n, f"stored {stored} of {n} bytes"
secs = end - start
print(f"upload: {n / 2**20:.0f} MiB in {secs:.2f} s = {n / 2**20 / secs:.0f} MiB/s; "
      f"origin RSS {before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB")
PY
