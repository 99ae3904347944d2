// The player: hls.js (its own file, the global `Hls`, see loadHls) on a <video> with the
// browser's controls, plus a quality menu (auto + each rendition), playback speed, keyboard
// shortcuts and resume where the viewer left off.
import type HlsType from "hls.js";
import type { Reporter } from "./beacons";
import { byId, clock, h } from "./dom";

declare const Hls: typeof HlsType | undefined;

/**
 * Runs /assets/hls.js (a classic script defining the global `Hls`). The watch page preloads it,
 * so this costs its parse, not a round trip; the page's API requests are already on their way.
 * Resolves either way: without hls.js the player falls back to the browser's own HLS, or says
 * it cannot play.
 */
export function loadHls(): Promise<void> {
  return new Promise((resolve) => {
    const s = document.createElement("script");
    s.src = "/assets/hls.js";
    s.onload = () => resolve();
    s.onerror = () => resolve();
    document.head.appendChild(s);
  });
}

export const SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
/** Statuses of a playlist or segment the edge refused to this viewer (`edge/app/src/routes/hls.rs`). */
const REFUSALS = [401, 403, 404, 410, 451];
const RESUME_PREFIX = "resume:";
/** Positions this close to either end are not worth resuming: 5 s, or a tenth of a short video. */
const resumeMargin = (duration: number): number => Math.min(5, (duration || 0) / 10);

export interface Player {
  video: HTMLVideoElement;
  /** Stops loading (the page is showing a refusal instead). */
  destroy(): void;
}

/** Fatal playback failure: the page asks the API why and says so. */
export type OnFatal = (detail: string) => void;

export function startPlayer(
  videoId: string,
  manifest: string,
  onFatal: OnFatal,
  report?: Reporter,
): Player {
  const video = byId<HTMLVideoElement>("video");
  const quality = byId<HTMLSelectElement>("quality");
  const speed = byId<HTMLSelectElement>("speed");
  let hls: HlsType | null = null;

  if (typeof Hls !== "undefined" && Hls.isSupported()) {
    const hlsjs = new Hls({ capLevelToPlayerSize: false });
    hls = hlsjs;
    hlsjs.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      quality.replaceChildren(h("option", { value: "-1" }, "Auto"));
      data.levels.forEach((l, i) => {
        const label = l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s`;
        quality.appendChild(h("option", { value: String(i) }, label));
      });
      quality.disabled = false;
      autoplay(video);
    });
    hlsjs.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      const auto = quality.options[0];
      const l = hlsjs.levels[data.level];
      if (auto) auto.textContent = hlsjs.autoLevelEnabled && l?.height ? `Auto (${l.height}p)` : "Auto";
      video.dataset.level = String(data.level);
      if (l?.height) report?.rendition(l.height);
    });
    hlsjs.on(Hls.Events.ERROR, (_e, data) => {
      // A playlist or segment the edge refuses (the video taken down, made private or
      // geo-blocked since the page opened, or the token expired) is refused for every rendition
      // alike: stop at this segment and let the page say why, rather than let hls.js try the
      // other renditions and play out the buffer first.
      const status = data.response?.code ?? 0;
      const refused = REFUSALS.includes(status);
      if (!data.fatal && !refused) return;
      hlsjs.destroy();
      video.pause();
      const detail = refused ? `refused_${status}` : data.details;
      report?.error(detail);
      onFatal(detail);
    });
    hlsjs.loadSource(manifest);
    hlsjs.attachMedia(video);
    quality.onchange = () => {
      const n = Number(quality.value);
      // -1 hands the choice back to hls.js's bandwidth estimate; a rendition is switched at once.
      if (n < 0) hlsjs.currentLevel = -1;
      else hlsjs.currentLevel = n;
    };
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    // Safari plays HLS itself and picks renditions on its own.
    video.src = manifest;
    autoplay(video);
    quality.replaceChildren(h("option", { value: "-1" }, "Auto"));
    video.addEventListener("error", () => {
      report?.error("media_error");
      onFatal("media_error");
    });
  } else {
    onFatal("hls_unsupported");
  }

  for (const s of SPEEDS) {
    speed.appendChild(h("option", { value: String(s), selected: s === 1 }, s === 1 ? "Normal (1x)" : `${s}x`));
  }
  speed.disabled = false;
  speed.onchange = () => {
    video.playbackRate = Number(speed.value);
  };
  video.addEventListener("ratechange", () => {
    speed.value = String(video.playbackRate);
  });

  resume(videoId, video);
  shortcuts(video);
  return {
    video,
    destroy: () => {
      hls?.destroy();
      video.removeAttribute("src");
    },
  };
}

/** Starts at once where the browser lets a page play by itself; elsewhere the viewer presses play. */
function autoplay(video: HTMLVideoElement): void {
  void video.play().catch(() => undefined);
}

function resume(videoId: string, video: HTMLVideoElement): void {
  const key = RESUME_PREFIX + videoId;
  const note = byId("resume-note");
  const saved = Number(safeGet(key));
  video.addEventListener(
    "loadedmetadata",
    () => {
      const margin = resumeMargin(video.duration);
      if (saved > margin && saved < video.duration - margin) {
        video.currentTime = saved;
        note.textContent = `Resumed at ${clock(saved)}.`;
      }
    },
    { once: true },
  );
  let last = 0;
  const save = (): void => {
    const t = video.currentTime;
    const margin = resumeMargin(video.duration);
    if (video.ended || t >= video.duration - margin) safeRemove(key);
    else if (t > margin) safeSet(key, t.toFixed(1));
  };
  video.addEventListener("timeupdate", () => {
    if (Math.abs(video.currentTime - last) < 2) return;
    last = video.currentTime;
    save();
  });
  video.addEventListener("pause", save);
  video.addEventListener("ended", save);
  addEventListener("pagehide", save);
}

// localStorage throws in some private modes and when full: resuming is a nicety, never an error.
function safeGet(k: string): string | null {
  try {
    return localStorage.getItem(k);
  } catch {
    return null;
  }
}
function safeSet(k: string, v: string): void {
  try {
    localStorage.setItem(k, v);
  } catch {
    /* see safeGet */
  }
}
function safeRemove(k: string): void {
  try {
    localStorage.removeItem(k);
  } catch {
    /* see safeGet */
  }
}

/** space/k play-pause, j/l back/forward 10 s, f fullscreen, m mute; not while typing or on a control that uses the key. */
function shortcuts(video: HTMLVideoElement): void {
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target as HTMLElement | null;
    const tag = t?.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t?.isContentEditable) return;
    // Space on a button or link activates it; on the video (its own controls) it is ours.
    if (e.key === " " && (tag === "BUTTON" || tag === "A")) return;
    switch (e.key.toLowerCase()) {
      case " ":
      case "k":
        if (video.paused) void video.play().catch(() => undefined);
        else video.pause();
        break;
      case "j":
        video.currentTime = Math.max(0, video.currentTime - 10);
        break;
      case "l":
        video.currentTime = Math.min(video.duration || Infinity, video.currentTime + 10);
        break;
      case "f":
        if (document.fullscreenElement) void document.exitFullscreen();
        else void video.requestFullscreen?.().catch(() => undefined);
        break;
      case "m":
        video.muted = !video.muted;
        break;
      default:
        return;
    }
    e.preventDefault();
  });
}
