// The home page: tabs for the home feed, trending and categories (a category opens its feed).
import "./nav";
import { Categories, getJson, seg } from "./api";
import { byId, h, plural, replace } from "./dom";
import { pagedList } from "./list";

type Tab = "home" | "trending" | "categories";
const TABS: Tab[] = ["home", "trending", "categories"];

function select(tab: Tab, focus: boolean): void {
  for (const t of TABS) {
    const button = byId(`tab-${t}`);
    const on = t === tab;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
    byId(`panel-${t}`).hidden = !on;
    if (on && focus) button.focus();
  }
  history.replaceState(null, "", tab === "home" ? "/" : `/?tab=${tab}`);
  void show(tab);
}

const shown = new Set<Tab>();

async function show(tab: Tab): Promise<void> {
  if (shown.has(tab)) return;
  shown.add(tab);
  const panel = byId(`panel-${tab}`);
  if (tab === "categories") return categories(panel);
  const path = tab === "home" ? "/v1/feeds/home" : "/v1/feeds/trending";
  await pagedList(panel, path, "No videos yet.");
}

async function categories(panel: HTMLElement): Promise<void> {
  const { categories } = await getJson<Categories>("/v1/categories");
  const feed = h("section", { "aria-live": "polite" });
  const list = h(
    "ul",
    { class: "chips" },
    ...categories.map((c) => {
      const b = h("button", { type: "button", class: "chip", "aria-pressed": "false" }, c.slug, h("span", { class: "count" }, ` (${plural(c.videos, "video", "videos")})`));
      b.onclick = () => {
        for (const other of list.querySelectorAll("button")) other.setAttribute("aria-pressed", "false");
        b.setAttribute("aria-pressed", "true");
        replace(feed, h("h2", {}, c.slug));
        const body = h("div");
        feed.appendChild(body);
        void pagedList(body, `/v1/feeds/category/${seg(c.slug)}`, "No videos in this category.");
      };
      return h("li", {}, b);
    }),
  );
  replace(panel, categories.length ? list : h("p", {}, "No categories yet."), feed);
}

function init(): void {
  const tablist = byId("tabs");
  for (const t of TABS) byId(`tab-${t}`).onclick = () => select(t, false);
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern); Tab moves into the panel.
  tablist.addEventListener("keydown", (e) => {
    const i = TABS.findIndex((t) => byId(`tab-${t}`).getAttribute("aria-selected") === "true");
    let next = -1;
    if (e.key === "ArrowRight") next = (i + 1) % TABS.length;
    else if (e.key === "ArrowLeft") next = (i + TABS.length - 1) % TABS.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = TABS.length - 1;
    if (next < 0) return;
    e.preventDefault();
    select(TABS[next], true);
  });
  const asked = new URLSearchParams(location.search).get("tab");
  select(TABS.includes(asked as Tab) ? (asked as Tab) : "home", false);
}

init();
