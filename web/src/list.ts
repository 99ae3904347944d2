// A paged list of videos (feeds, search, a channel): cards with poster, title and date, and a
// "More" button while the API hands out a next cursor.
import { ApiError, FeedPage, getJson, seg, withQuery } from "./api";
import { append, clock, date, h, replace } from "./dom";

export function videoCard(v: FeedPage["items"][number]): HTMLLIElement {
  const href = `/watch?v=${seg(v.id)}`;
  const secs = v.duration_ms ? v.duration_ms / 1000 : 0;
  // The title beside it names the link; the picture adds nothing a reader needs.
  const poster = h("img", { src: `/posters/${seg(v.id)}.jpg`, alt: "", loading: "lazy", width: 320, height: 180 });
  // A poster the viewer may not see (a video blocked where they are) leaves the plain frame.
  poster.addEventListener("error", () => poster.remove(), { once: true });
  return h(
    "li",
    { class: "card" },
    h(
      "a",
      { href, class: "card-link" },
      h(
        "span",
        { class: "thumb" },
        poster,
        secs ? h("span", { class: "duration" }, clock(secs)) : null,
      ),
      h("span", { class: "card-title" }, v.title),
    ),
    h("span", { class: "card-meta" }, date(v.created_at)),
  );
}

/**
 * Fills `into` with the pages of `path` (a FeedPage route). `empty` is said when there is
 * nothing. Returns once the first page is shown.
 */
export async function pagedList(into: HTMLElement, path: string, empty: string): Promise<void> {
  const list = h("ul", { class: "cards" });
  const more = h("button", { type: "button", class: "more" }, "More videos");
  const status = h("p", { class: "status", role: "status" });
  replace(into, list, status);
  const load = async (cursor?: string): Promise<void> => {
    more.disabled = true;
    try {
      const page = await getJson<FeedPage>(withQuery(path, { cursor }));
      append(list, ...page.items.map(videoCard));
      if (!list.children.length) status.textContent = empty;
      if (page.next_cursor) {
        const next = page.next_cursor;
        more.onclick = () => void load(next);
        more.disabled = false;
        if (!more.isConnected) into.appendChild(more);
      } else {
        more.remove();
      }
    } catch (e) {
      status.textContent = e instanceof ApiError ? e.message : "Something went wrong.";
      more.disabled = false;
    }
  };
  await load();
}
