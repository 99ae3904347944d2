// Live transcode progress: each processing video's status, asked in turns every few seconds
// until it is ready or has failed, shown as an overall bar and one bar per rendition.
import { ApiError } from "./api";
import { h, replace } from "./dom";
import { transcode, Transcode, VideoState } from "./studio-api";

const STAGES: Record<string, string> = {
  probe: "Reading the file",
  encode: "Encoding",
  finalize: "Finishing",
  done: "Ready",
  failed: "Failed",
};
const RENDITION_STATES: Record<string, string> = {
  queued: "waiting",
  running: "encoding",
  done: "done",
  dead: "failed",
};

/**
 * One status request per this many milliseconds for the whole page, whatever number of videos
 * is processing: they take turns, so the studio stays far inside the API's per-user rate limit
 * (each of N videos is asked every N × 2 s).
 */
const TICK_MS = 2000;
/** A refused or failing status is asked again this many times in a row before giving up. */
const MAX_FAILURES = 5;
/** After a 429 the page waits this long before its next status request. */
const BACK_OFF_MS = 10_000;

interface Followed {
  videoId: string;
  box: HTMLElement;
  label: string;
  failures: number;
  done: (state: VideoState) => void;
}

const followed: Followed[] = [];
let next = 0;
let ticking = false;

/** Shows `videoId`'s transcoding in `box` until it ends; resolves with the final state. */
export function watchTranscode(videoId: string, box: HTMLElement, label: string): Promise<VideoState> {
  return new Promise((done) => {
    followed.push({ videoId, box, label, failures: 0, done });
    if (!ticking) {
      ticking = true;
      void tick();
    }
  });
}

async function tick(): Promise<void> {
  while (followed.length) {
    next %= followed.length;
    const f = followed[next];
    let wait = TICK_MS;
    const end = (state: VideoState): void => {
      followed.splice(followed.indexOf(f), 1);
      f.done(state);
    };
    try {
      const t = await transcode(f.videoId);
      f.failures = 0;
      show(t, f.box, f.label);
      if (t.state === "ready" || t.state === "failed") end(t.state);
      else next++;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        replace(f.box, h("p", {}, "The video is gone."));
        end("failed");
      } else if (e instanceof ApiError && e.status === 429) {
        wait = BACK_OFF_MS;
      } else if (++f.failures >= MAX_FAILURES) {
        replace(f.box, h("p", { role: "alert" }, "Transcoding progress could not be loaded. Reload the page to try again."));
        end("processing");
      } else next++;
    }
    if (followed.length) await sleep(wait);
  }
  ticking = false;
}

function show(t: Transcode, box: HTMLElement, label: string): void {
  const stage = t.stage ? (STAGES[t.stage] ?? t.stage) : "Waiting for the transcoder";
  const error = t.error ? h("p", { class: "form-problem" }, `${t.error.message} (${t.error.code})`) : null;
  replace(
    box,
    h(
      "p",
      { class: "transcode-stage" },
      h("span", { class: "stage", "data-stage": t.stage ?? "queued" }, stage),
      ` · ${t.progress}%`,
    ),
    h("progress", { class: "transcode-total", max: 100, value: t.progress, "aria-label": `Transcoding of ${label}` }),
    t.renditions.length
      ? h(
          "ul",
          { class: "renditions", "aria-label": "Renditions" },
          ...t.renditions.map((r) =>
            h(
              "li",
              { "data-rendition": r.name, "data-state": r.state },
              h("span", { class: "rendition-name" }, r.name),
              h("progress", { max: 100, value: r.progress, "aria-label": `${r.name} rendition of ${label}` }),
              h(
                "span",
                { class: "rendition-state" },
                `${RENDITION_STATES[r.state] ?? r.state} ${r.progress}%${r.attempts > 1 ? ` (attempt ${r.attempts})` : ""}`,
              ),
              r.error ? h("span", { class: "form-problem" }, ` ${r.error.message}`) : null,
            ),
          ),
        )
      : null,
    error,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
