// Playback reports for the creator's statistics (`edge/app/src/routes/beacons.rs` takes them):
// what the viewer played, as stretches of the video; time to first frame; stalls; rendition
// switches; a fatal error; the end. Batched and sent with navigator.sendBeacon every 10 s while
// the page is open, and at once when it is hidden or left, so the last seconds are not lost.
// The view token from the playback answer says who, what and where; these only say what played.

/** Heartbeat interval. */
const EVERY_MS = 10_000;
/** The edge's bounds (`shared_wasm::beacon`): events per beacon, ranges and played ms per event. */
const MAX_EVENTS = 32;
const MAX_RANGES = 16;
const MAX_PLAYED_MS = 290_000;
/** A time update further than this from the last one (scaled by the speed) is a seek, not play. */
const STEP_MS = 1_500;

type Range = [number, number];
type Event =
  | { type: "start"; seq: number; startup_ms: number }
  | { type: "heartbeat" | "end"; seq: number; played: Range[] }
  | { type: "rebuffer"; seq: number; ms: number }
  | { type: "rendition"; seq: number; height: number }
  | { type: "error"; seq: number; code: string };
/** An event before it is numbered (Omit over each member of the union). */
type Unseq<E> = E extends unknown ? Omit<E, "seq"> : never;
type Unnumbered = Unseq<Event>;

export interface Reporter {
  /** The player switched to a rendition of this height. */
  rendition(height: number): void;
  /** Playback failed for good (a hls.js detail or the page's own code). */
  error(detail: string): void;
}

/** Reports `video`'s playback under `token` to `url` (a path of this page's origin). */
export function reportPlayback(video: HTMLVideoElement, token: string, url: string): Reporter {
  let seq = 0;
  let queue: Event[] = [];
  let played: Range[] = [];
  // The stretch playing now: [from, to] in ms, extended by time updates.
  let open: Range | null = null;
  let asked: number | null = null;
  let started = false;
  let stalledAt: number | null = null;

  const push = (e: Unnumbered): void => {
    queue.push({ ...e, seq: seq++ } as Event);
  };
  const close = (): void => {
    // Whole milliseconds, and only a stretch that still has some (the edge refuses empty ones).
    const range: Range | null = open && [Math.floor(open[0]), Math.floor(open[1])];
    if (range && range[1] > range[0]) played.push(range);
    open = null;
  };
  const position = (): number => video.currentTime * 1000;

  video.addEventListener("play", () => {
    if (!started && asked === null) asked = performance.now();
  });
  video.addEventListener("playing", () => {
    if (!started) {
      started = true;
      const startup = Math.round(performance.now() - (asked ?? performance.now()));
      push({ type: "start", startup_ms: Math.min(startup, 120_000) });
    } else if (stalledAt !== null) {
      push({ type: "rebuffer", ms: Math.min(Math.round(performance.now() - stalledAt), 600_000) });
    }
    stalledAt = null;
  });
  video.addEventListener("waiting", () => {
    if (started && !video.seeking) stalledAt = performance.now();
  });
  video.addEventListener("seeking", close);
  video.addEventListener("timeupdate", () => {
    if (video.paused || video.seeking) return;
    const t = position();
    const step = STEP_MS * Math.max(1, video.playbackRate);
    if (open && t >= open[1] && t - open[1] <= step) open[1] = t;
    else {
      close();
      open = [t, t];
    }
  });
  video.addEventListener("pause", close);

  const flush = (final: boolean): void => {
    // The stretch playing goes out as far as it got, and goes on from there.
    const going = open;
    close();
    if (going && !final) open = [going[1], going[1]];
    for (const chunk of chunks(played)) push({ type: final ? "end" : "heartbeat", played: chunk });
    played = [];
    while (queue.length > 0) {
      const batch = queue.slice(0, MAX_EVENTS);
      queue = queue.slice(MAX_EVENTS);
      send(url, JSON.stringify({ token, events: batch }));
    }
  };
  video.addEventListener("ended", () => flush(true));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush(false);
  });
  let timer = setInterval(() => flush(false), EVERY_MS);
  addEventListener("pagehide", () => {
    clearInterval(timer);
    flush(true);
  });
  // Back from the back/forward cache: the same view goes on.
  addEventListener("pageshow", (e) => {
    if (e.persisted) timer = setInterval(() => flush(false), EVERY_MS);
  });

  return {
    rendition: (height) => {
      if (height > 0) push({ type: "rendition", height: Math.min(height, 4320) });
    },
    error: (detail) => push({ type: "error", code: errorCode(detail) }),
  };
}

/**
 * Ranges cut into events the edge takes: at most 16 each and 290 s of play, in order and apart
 * (a stretch played again after a seek back starts another event).
 */
function chunks(ranges: Range[]): Range[][] {
  const out: Range[][] = [];
  let cur: Range[] = [];
  let ms = 0;
  for (const [from, to] of ranges) {
    let a = from;
    while (a < to) {
      const behind = cur.length > 0 && a < cur[cur.length - 1][1];
      if (behind || cur.length === MAX_RANGES || ms >= MAX_PLAYED_MS) {
        out.push(cur);
        cur = [];
        ms = 0;
      }
      const b = Math.min(to, a + (MAX_PLAYED_MS - ms));
      cur.push([a, b]);
      ms += b - a;
      a = b;
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** A player's error name as the edge takes it: `[a-z0-9_]`, at most 40. */
function errorCode(detail: string): string {
  const snake = detail
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .slice(0, 40);
  return snake || "unknown";
}

/** sendBeacon survives the page going away; where it refuses (too much queued), a keepalive fetch. */
function send(url: string, body: string): void {
  // text/plain: a simple request, the same as sendBeacon's.
  if (navigator.sendBeacon?.(url, body)) return;
  void fetch(url, { method: "POST", body, keepalive: true, headers: { "content-type": "text/plain" } }).catch(
    () => undefined,
  );
}
