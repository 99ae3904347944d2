// The creator studio, `/studio`: a creator's videos with their states, a new video, each video's
// upload (tus, straight to the home region's origin), transcoding, edits and deletion, the
// creator's statistics, monthly earnings statements, channels and webhook endpoints. Signed-out visitors and accounts below creator get a clear message.
import "./nav";
import { ApiError } from "./api";
import { byId, replace } from "./dom";
import { announce, describe, gate, requireUser } from "./gate";
import {
  createVideo,
  creatorStats,
  editVideo,
  Endpoint,
  MyChannel,
  MyVideo,
  myChannels,
  myEndpoints,
  myVideos,
} from "./studio-api";
import { Channels } from "./studio-channels";
import { Earnings } from "./studio-earnings";
import { Stats } from "./studio-stats";
import { videoForm } from "./studio-form";
import { unfinished } from "./studio-upload";
import { VideoRow } from "./studio-videos";
import { Webhooks } from "./studio-webhooks";

/** Says `message` in the page's live region. */
const say = (message: string): void => announce("studio-message", message);

async function init(): Promise<void> {
  const user = await requireUser(
    "studio-gate",
    ["Sign in to use the studio", "The studio is where creators upload and manage their videos."],
    (u) => u.role !== "user",
    (u) => [
      "The studio is for creators",
      `Your account (${u.email}) can watch, comment and subscribe, but not upload. An admin can make it a creator account.`,
    ],
  );
  if (!user) return;
  let videos: MyVideo[];
  let channelList: MyChannel[];
  let endpoints: Endpoint[];
  try {
    [{ items: videos }, { channels: channelList }, { items: endpoints }] = await Promise.all([
      myVideos(),
      myChannels(user.id),
      myEndpoints(),
    ]);
  } catch (e) {
    gate("studio-gate", "Studio unavailable", e instanceof ApiError ? e.message : "Your videos could not be loaded. Reload the page to try again.");
    return;
  }
  byId("studio").hidden = false;
  const stored = await unfinished(new Set(videos.filter((v) => v.state === "uploading").map((v) => v.id)));
  const list = byId("videos");
  const status = byId("videos-status");
  const rows = new Map<string, VideoRow>();
  const empty = (): void => {
    status.textContent = rows.size ? "" : "No videos yet. Create one above.";
  };
  const host = {
    channels: (): MyChannel[] => channels.all(),
    announce: say,
    removed: (id: string): void => {
      rows.delete(id);
      empty();
    },
  };
  const newForm = (): void => {
    const f = videoForm("Create video", channels.all());
    f.form.id = "new-video-form";
    f.form.onsubmit = async (e) => {
      e.preventDefault();
      const fields = f.read();
      if (typeof fields === "string") return;
      let created: { id: string };
      // A new video takes every field but its country rule, which is an edit.
      const { countries, ...rest } = fields;
      try {
        created = await createVideo(rest);
      } catch (err) {
        f.say(describe(err));
        return;
      }
      let ruleSaved = true;
      if (countries) {
        try {
          await editVideo(created.id, { countries });
        } catch (err) {
          ruleSaved = false;
          say(`Created, but its country rule was not saved (${describe(err)}): set it under Edit details.`);
        }
      }
      // The list's row takes it from here: its file input is next.
      const v: MyVideo = {
        id: created.id,
        title: fields.title ?? "",
        description: fields.description ?? "",
        visibility: fields.visibility ?? "public",
        state: "uploading",
        category: fields.category ?? null,
        tags: fields.tags ?? [],
        countries: ruleSaved ? (countries ?? null) : null,
        taken_down: false,
        channel_id: fields.channel ?? null,
        duration_ms: null,
        created_at: Math.floor(Date.now() / 1000),
      };
      const row = new VideoRow(v, host);
      rows.set(v.id, row);
      list.prepend(row.el);
      empty();
      byId<HTMLDetailsElement>("new-video-box").open = false;
      newForm();
      if (ruleSaved) say(`Created “${v.title}”. Choose its file to upload it.`);
      row.el.querySelector<HTMLInputElement>('input[type="file"]')?.focus();
    };
    replace(byId("new-video"), f.form);
  };
  const channels = new Channels(channelList, byId("channels-box"), say, newForm);
  new Webhooks(endpoints, byId("webhooks-box"), say);
  new Stats(byId("stats-box"), creatorStats, videos);
  new Earnings(byId("earnings-box"));
  newForm();
  for (const v of videos) {
    const row = new VideoRow(v, host, stored.get(v.id));
    rows.set(v.id, row);
    list.appendChild(row.el);
  }
  empty();
}

void init();
