#!/usr/bin/env bash
# Transcoding overhead: the pipeline (upload complete → video ready: ffprobe, every rendition,
# poster, master playlist, storing, database) against the same ffprobe and ffmpeg commands run
# by hand, one after another, as the origin logged them. Runs alternate (pipeline, by hand,
# pipeline, …) so drift in the machine's speed hits both sides alike; medians are compared.
#   [STORE=s3] [RUNS=3] bash bench/uploads/transcode.sh [seconds of 720p source]
source "$(dirname "$0")/common.sh"
secs="${1:-30}"
ffmpeg -hide_banner -loglevel error -nostdin -y \
  -f lavfi -i "testsrc2=size=1280x720:rate=24:duration=$secs" \
  -f lavfi -i "sine=frequency=500:sample_rate=48000:duration=$secs" \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac "$work/source.mp4"
for _ in $(seq "${RUNS:-3}"); do
  read -r id url < <(new_ticket)
  curl -sf -X PUT -H 'content-type: video/mp4' --data-binary "@$work/source.mp4" "$url" >/dev/null
  # Polled slowly, so the polling takes no CPU from ffmpeg; the times come from the origin's log.
  until curl -sf "$base/v1/videos/$id/transcode" -H "$(edge_auth GET "/v1/videos/$id/transcode")" \
      -H "authorization: Bearer $token" | grep -q '"state":"ready"'; do
    sleep 1
  done
  python3 - "$work" "$id" <<'PY'
import datetime, json, os, re, shutil, subprocess, sys, time
work, video = sys.argv[1], sys.argv[2]
ansi = re.compile(r"\x1b\[[0-9;]*m")
commands = []
start = end = None
stamp = lambda line: datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
for line in open(os.path.join(work, "origin.log")):
    line = ansi.sub("", line)
    if "upload complete" in line and video in line:
        start = stamp(line)
    if "transcoded, ready" in line and video in line:
        end = stamp(line)
    if "ffmpeg command" in line and video in line:
        commands.append(json.JSONDecoder().raw_decode(line.split("args=", 1)[1])[0])
# Replay into a scratch folder: the origin's work folder is gone once the video is ready.
scratch = os.path.join(work, "by-hand", video)
os.makedirs(scratch)
origin_scratch = os.path.join(work, "uploads", "work", video)
replayed = [[a.replace(origin_scratch, scratch) for a in args] for args in commands]
for args in replayed:
    for a in args:
        if os.path.basename(a).startswith("sources_"):
            # A bucket's source, fetched to scratch by the worker: fetched again for the replay.
            key = os.path.basename(a).replace("_", "/", 1)
            shutil.copy(os.path.join(work, "s3", "data", "bench", key), a)
        if a.startswith(scratch) and (a.endswith(".m3u8") or a.endswith(".ts")):
            os.makedirs(os.path.dirname(a), exist_ok=True)
t0 = time.monotonic()
for args in replayed:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
by_hand = time.monotonic() - t0
shutil.rmtree(scratch)
with open(os.path.join(work, "runs"), "a") as f:
    f.write(f"{end - start} {by_hand} {len(replayed)}\n")
print(f"pipeline {end - start:.2f} s, by hand {by_hand:.2f} s ({len(replayed)} commands)")
PY
done
python3 - "$work/runs" <<'PY'
import statistics, sys
runs = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
pipeline = statistics.median(r[0] for r in runs)
by_hand = statistics.median(r[1] for r in runs)
print(f"transcode: {len(runs)} runs each; median pipeline {pipeline:.2f} s, median by hand "
      f"{by_hand:.2f} s, overhead {100 * (pipeline / by_hand - 1):+.1f} %")
PY
