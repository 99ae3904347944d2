#!/usr/bin/env bash
# Transcoding overhead: the pipeline (upload complete → video ready: ffprobe, every rendition,
# poster, master playlist, renames, database) against the same ffprobe and ffmpeg commands run
# by hand, one after another, as the origin logged them.
#   bash bench/uploads/transcode.sh [seconds of 720p source]
source "$(dirname "$0")/common.sh"
secs="${1:-30}"
ffmpeg -hide_banner -loglevel error -nostdin -y \
  -f lavfi -i "testsrc2=size=1280x720:rate=24:duration=$secs" \
  -f lavfi -i "sine=frequency=500:sample_rate=48000:duration=$secs" \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac "$work/source.mp4"
read -r id url < <(new_ticket)
curl -sf -X PUT -H 'content-type: video/mp4' --data-binary "@$work/source.mp4" "$url" >/dev/null
# Polled slowly, so the polling takes no CPU from ffmpeg; the times come from the origin's log.
until curl -sf "$base/v1/videos/$id/transcode" -H "authorization: Bearer $token" | grep -q '"state":"ready"'; do
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
# Replay into a scratch folder: the origin's work folders were renamed away.
scratch = os.path.join(work, "by-hand")
os.makedirs(scratch)
media = os.path.join(work, "media")
replayed = []
for args in commands:
    args = [a.replace(os.path.join(media, f".work-{video}"), scratch) for a in args]
    for a in args:
        if a.startswith(scratch) and (a.endswith(".m3u8") or a.endswith(".ts")):
            os.makedirs(os.path.dirname(a), exist_ok=True)
    replayed.append(args)
runs = []
for _ in range(3):
    t0 = time.monotonic()
    for args in replayed:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    runs.append(time.monotonic() - t0)
print("by hand, each run:", " ".join(f"{r:.2f}" for r in runs))
by_hand = sorted(runs)[1]  # the median of three
pipeline = end - start  # upload committed → video ready
print(f"transcode: {len(replayed)} commands; pipeline {pipeline:.2f} s, by hand {by_hand:.2f} s, "
      f"overhead {100 * (pipeline / by_hand - 1):+.1f} % (against the median run by hand)")
PY
