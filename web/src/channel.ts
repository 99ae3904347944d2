// A channel: its name, description, subscribers and videos. `/channel?id=…`.
import "./nav";
import { ApiError, Channel, getJson, seg } from "./api";
import { byId, plural, replace } from "./dom";
import { pagedList } from "./list";

async function init(): Promise<void> {
  const id = new URLSearchParams(location.search).get("id") ?? "";
  const name = byId("channel-name");
  const about = byId("channel-about");
  if (!id) {
    name.textContent = "No channel named";
    return;
  }
  try {
    const c = await getJson<Channel>(`/v1/channels/${seg(id)}`);
    name.textContent = c.name;
    document.title = `${c.name} – edge-video`;
    replace(about, c.description || "", " ");
    byId("channel-subs").textContent = plural(c.subscribers ?? 0, "subscriber", "subscribers");
    await pagedList(byId("channel-videos"), `/v1/feeds/channel/${seg(id)}`, "This channel has no public videos yet.");
  } catch (e) {
    name.textContent = e instanceof ApiError && e.status === 404 ? "Channel not found" : "This channel could not be loaded";
    about.textContent = e instanceof ApiError ? e.message : "";
  }
}

void init();
