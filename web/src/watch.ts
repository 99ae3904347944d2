// The watch page: `/watch?v=ID`. Details and comments from the read API; playback through a
// signed manifest URL; refusals (members, taken down, blocked) explained with the API's reason;
// likes, the channel's subscription and comments in watch-social.ts. Calls carry the viewer's
// token when signed in (session.ts), so the answers can say what the viewer did.
import "./nav";
import { ApiError, Playback, seg, VideoDetails } from "./api";
import { checkoutButton } from "./checkout";
import { byId, date, h, plural, replace } from "./dom";
import { fetchAd, playAd } from "./ads";
import { reportPlayback } from "./beacons";
import { loadHls, Player, startPlayer } from "./player";
import { reportControl } from "./report";
import { currentUser, signInHref, User, viewerJson } from "./session";
import { comments, reactions, subscription } from "./watch-social";

const REASONS: Record<string, string> = {
  taken_down: "This video was taken down and can no longer be watched.",
  country_blocked: "This video is not available in your country.",
};

/** Shows why the video cannot be watched; `kind` is for styling and tests. */
function refuse(kind: string, heading: string, text: string, extra?: Node): void {
  const box = byId("notice");
  box.dataset.kind = kind;
  replace(box, h("h2", {}, heading), h("p", {}, text), extra);
  box.hidden = false;
  byId("player").hidden = true;
}

function refusal(e: unknown): void {
  if (!(e instanceof ApiError)) {
    refuse("error", "Something went wrong", "The video could not be loaded. Try again later.");
    return;
  }
  if (e.status === 451) {
    const reason = e.reason ?? e.code;
    const known = REASONS[reason];
    refuse(reason, "Unavailable", known ?? e.message, known ? h("p", { class: "api-message" }, `Reason given: ${e.message}`) : undefined);
  } else if (e.status === 401) {
    // A members video without a signed-in viewer.
    refuse(
      "members",
      "For members",
      "This video is for the channel's members. Sign in with a membership to watch it.",
      signIn("Sign in to watch"),
    );
  } else if (e.status === 403 && (e.reason ?? e.code) === "entitlement_required") {
    refuse(
      "membership",
      "For members",
      "This video is for the channel's members. Join the membership to watch it.",
      checkoutButton(),
    );
  } else if (e.status === 404) {
    refuse("not_found", "Video not found", "There is no video at this address, or it is private.");
  } else if (e.status === 429) {
    refuse("rate_limited", "Too many requests", "Wait a moment and reload the page.");
  } else {
    refuse(e.code, "Unavailable", e.message);
  }
}

function signIn(what: string): HTMLElement {
  return h("p", { class: "sign-in" }, h("a", { href: signInHref() }, what), ".");
}

function details(v: VideoDetails, me: User | null): void {
  document.title = `${v.title} – edge-video`;
  byId("title").textContent = v.title;
  const channel = byId("channel");
  if (v.channel_id) {
    replace(channel, h("a", { href: `/channel?id=${seg(v.channel_id)}` }, v.channel_name ?? v.owner_name ?? "Channel"));
  } else if (v.owner_name) {
    channel.textContent = v.owner_name;
  }
  subscription(v, me);
  reactions(v, me);
  // Signed-in viewers may report what others published.
  if (me && me.id !== v.owner_id) replace(byId("report-video"), reportControl({ video: v.id }, "Report video"));
  replace(
    byId("stats"),
    h("span", { id: "comment-count" }, plural(v.comments, "comment", "comments")),
    " · ",
    date(v.created_at),
  );
  byId("description").textContent = v.description;
  const tags = byId("tags");
  replace(tags, ...v.tags.map((t) => h("li", {}, h("a", { href: `/search?q=${seg(t)}` }, `#${t}`))));
  tags.hidden = !v.tags.length;
  if (v.visibility === "public" && v.poster_url) byId<HTMLVideoElement>("video").poster = v.poster_url;
}

type Settled<T> = { value: T } | { error: unknown };

/** A promise that never rejects, so it can wait unobserved while something else runs first. */
function settled<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

async function init(): Promise<void> {
  const id = new URLSearchParams(location.search).get("v") ?? "";
  if (!id) {
    refuse("not_found", "No video", "This address names no video. Find one from the home page.");
    byId("title").textContent = "Video unavailable";
    byId("about").hidden = true;
    return;
  }
  const me = await currentUser().catch(() => null);
  const playback = `/v1/videos/${seg(id)}/playback`;
  // Asked at once beside the details: the player's first request waits for the slower of the two,
  // not for both in turn.
  const first = settled(viewerJson<Playback>(playback));
  const hlsReady = loadHls();
  // The pre-roll, if any, asked beside them (null when none applies or the asking failed).
  const ad = fetchAd(id);
  let v: VideoDetails;
  try {
    v = await viewerJson<VideoDetails>(`/v1/videos/${seg(id)}`);
    details(v, me);
  } catch (e) {
    refusal(e);
    // Nothing to show about a video we may not describe.
    byId("title").textContent = "Video unavailable";
    byId("about").hidden = true;
    return;
  }
  void comments(v, me);
  let player: Player | null = null;
  const outcome = (r: Settled<Playback>): Playback | null => {
    if ("value" in r) return r.value;
    player?.destroy();
    refusal(r.error);
    return null;
  };
  const ask = async (): Promise<Playback | null> => outcome(await settled(viewerJson<Playback>(playback)));
  const play = outcome(await first);
  if (!play) return;
  // Played from this page's own origin (the CSP's media and connect sources are 'self').
  const manifest = new URL(play.manifest_url, location.href);
  const path = manifest.pathname + manifest.search;
  const video = byId<HTMLVideoElement>("video");
  if (!video.poster) video.poster = path.replace(/master\.m3u8$/, "poster.jpg");
  await hlsReady;
  const preRoll = await ad;
  if (preRoll) await playAd(preRoll);
  const beacons = new URL(play.beacon_url, location.href);
  const report = reportPlayback(video, play.view_token, beacons.pathname);
  player = startPlayer(id, path, (detail) => {
    // Playback stopped: ask the API whether the video is still ours to watch, and say why not.
    void ask().then((ok) => {
      if (ok) refuse("error", "Playback stopped", `The video could not be played (${detail}). Reload to try again.`);
    });
  }, report);
}

void init();
