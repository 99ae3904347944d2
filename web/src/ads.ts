// Pre-roll ads: the edge says whether this viewer gets one before this video
// (`GET /v1/ads/vast`, a VAST 4 document: members and non-public videos never do), and the
// player shows it first. VAST is read and tracked by vast-client (the IAB's events: the
// impression at the first frame, the quartiles, the end, a skip, a click), loaded from its own
// file (/assets/vast.js) only when there is an ad. An ad never keeps the video from playing:
// any failure ends it and the video starts.
import type HlsType from "hls.js";
import type * as Vast from "@dailymotion/vast-client";
import { seg } from "./api";
import { byId } from "./dom";
import { authFetch, currentUser } from "./session";

declare const Hls: typeof HlsType | undefined;

/** vast-client's own ES module build, copied by web/build.mjs. */
const VAST_MODULE = "/assets/vast.js";
/** The ad request is given up after this: the video does not wait longer for it. */
const ASK_TIMEOUT_MS = 3_000;
/** An ad that has not started playing by then, or stopped moving for this long, is given up. */
const STALL_MS = 10_000;

/** The VAST document for video `id` if it holds an ad; null otherwise, or if asking failed. */
export async function fetchAd(id: string): Promise<Document | null> {
  try {
    const path = `/v1/ads/vast?video=${seg(id)}`;
    const init = { headers: { accept: "application/xml" }, signal: AbortSignal.timeout(ASK_TIMEOUT_MS) };
    // Signed in, the token says whether the viewer is a member (members see no ads).
    const signedIn = await currentUser().catch(() => null);
    const r = signedIn ? await authFetch(path, init) : await fetch(path, init);
    if (!r.ok) return null;
    const doc = new DOMParser().parseFromString(await r.text(), "application/xml");
    return doc.getElementsByTagNameNS("*", "Ad").length ? doc : null;
  } catch {
    return null;
  }
}

/** Plays the ad of `doc` in the player's ad box; resolves when it ended, was skipped or failed. */
export async function playAd(doc: Document): Promise<void> {
  try {
    const vast = (await import(/* the module's URL, not bundled */ VAST_MODULE)) as typeof Vast;
    const response = await new vast.VASTParser().parseVAST(doc);
    const ad = response.ads?.[0];
    const creative = ad?.creatives?.find((c: { type: string }) => c.type === "linear");
    const media = creative?.mediaFiles?.[0];
    if (!ad || !creative || !media?.fileURL) return;
    await play(new vast.VASTTracker(null, ad, creative), new URL(media.fileURL, location.href), creative.videoClickThroughURLTemplate?.url);
  } catch {
    /* no ad, then */
  }
}

function play(tracker: Vast.VASTTracker, media: URL, clickThrough: string | undefined): Promise<void> {
  const box = byId("ad");
  const video = byId<HTMLVideoElement>("ad-video");
  const skip = byId<HTMLButtonElement>("ad-skip");
  const link = byId<HTMLAnchorElement>("ad-link");
  const main = byId<HTMLVideoElement>("video");
  return new Promise((resolve) => {
    let hls: HlsType | null = null;
    const listening = new AbortController();
    const on = { signal: listening.signal };
    // Given up if it stops moving (or never starts), and in any case a while after its end.
    let moved = Date.now();
    const deadline = Date.now() + (tracker.assetDuration || 60) * 1000 + 3 * STALL_MS;
    const watchdog = setInterval(() => {
      if (Date.now() - moved > STALL_MS || Date.now() > deadline) finish();
    }, 1_000);
    const finish = (): void => {
      if (listening.signal.aborted) return;
      listening.abort();
      clearInterval(watchdog);
      tracker.removeAllListeners("skip-countdown");
      hls?.destroy();
      video.pause();
      video.removeAttribute("src");
      // Stops a download the browser's own HLS may still be making.
      video.load();
      box.hidden = true;
      main.hidden = false;
      resolve();
    };

    tracker.on("skip-countdown", (left: number) => {
      skip.disabled = left > 0;
      skip.textContent = left > 0 ? `Skip in ${Math.ceil(left)}` : "Skip ad";
    });
    video.addEventListener("playing", () => tracker.trackImpression(), { once: true, ...on });
    video.addEventListener(
      "timeupdate",
      () => {
        moved = Date.now();
        tracker.setProgress(video.currentTime);
      },
      on,
    );
    video.addEventListener(
      "ended",
      () => {
        tracker.complete();
        finish();
      },
      on,
    );
    // Paused by the viewer (where the browser showed controls): not a stall.
    video.addEventListener("pause", () => (moved = Number.POSITIVE_INFINITY), on);
    video.addEventListener("play", () => (moved = Date.now()), on);
    video.addEventListener("error", finish, on);
    skip.onclick = () => {
      tracker.skip();
      finish();
    };
    if (clickThrough?.startsWith("https://")) {
      link.href = clickThrough;
      link.hidden = false;
      link.onclick = () => tracker.click();
    } else {
      link.hidden = true;
    }
    skip.disabled = true;
    main.hidden = true;
    box.hidden = false;

    // Played from this page's own origin, as the video is (the CSP's media source is 'self').
    const path = media.pathname + media.search;
    if (typeof Hls !== "undefined" && Hls.isSupported()) {
      const h = new Hls();
      hls = h;
      h.on(Hls.Events.ERROR, (_e, data) => {
        if (data.fatal) finish();
      });
      h.loadSource(path);
      h.attachMedia(video);
    } else {
      video.src = path;
    }
    // Where the browser will not start it by itself, the viewer presses play.
    void video.play().catch(() => {
      video.controls = true;
    });
  });
}
