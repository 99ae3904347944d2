// The header's notification bell for a signed-in user: the unread count as a badge, and a panel
// of the latest notifications, each a link to what it is about. New ones come without a reload:
// the list is polled with its ETag (a 304 costs the origin two small queries) while the page is
// visible, and at once when it becomes visible again. The server writes each notification's
// sentence; it goes in as text (dom.ts).
import { date, h, replace } from "./dom";
import { authFetch, authJson, safeNext } from "./session";

interface InboxItem {
  id: number;
  kind: string;
  text: string;
  link: string;
  created_at: number;
  read: boolean;
}

interface NotificationPage {
  items: InboxItem[];
  /** Capped by the API at this. */
  unread: number;
  next_before?: number;
}

/** The API stops counting here; the badge says "99+". */
const UNREAD_CAP = 100;
/** A few polls a minute per open page keeps well inside the edge's API quota. */
const POLL_MS = 20_000;

function unreadText(n: number): string {
  return n >= UNREAD_CAP ? "99+" : String(n);
}

/** "just now", "5 min ago", "3 h ago", then the date. */
function ago(unix: number): string {
  const s = Date.now() / 1000 - unix;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return date(unix);
}

/** The bell and its panel; starts polling. For the header of a signed-in user only. */
export function bell(): HTMLElement {
  let items: InboxItem[] = [];
  let unread = 0;
  let etag: string | null = null;
  let timer: number | undefined;
  let polling: Promise<void> | null = null;
  let stopped = false;

  // The button's name is a hidden phrase ("Notifications, 2 unread") that starts with its
  // visible word, so speech input finds it; the visible word and badge are not read twice. (An
  // aria-label would not contain the visible text "Notifications2", which axe flags.)
  const badge = h("span", { class: "bell-count", "aria-hidden": "true" });
  const spoken = h("span", { class: "visually-hidden" });
  const button = h(
    "button",
    { type: "button", id: "bell", class: "bell-button", "aria-expanded": "false", "aria-controls": "bell-panel" },
    h("span", { "aria-hidden": "true" }, "Notifications"),
    badge,
    spoken,
  );
  const readAll = h("button", { type: "button", id: "bell-read-all" }, "Mark all read");
  const list = h("ul", { id: "bell-list", class: "bell-list" });
  const status = h("p", { id: "bell-status", class: "bell-status", role: "status" });
  const panel = h(
    "div",
    { id: "bell-panel", class: "bell-panel", hidden: true },
    h("div", { class: "bell-head" }, h("h2", {}, "Notifications"), readAll),
    list,
    status,
  );
  const box = h("div", { class: "bell" }, button, panel);

  const drawCount = (): void => {
    badge.textContent = unread ? unreadText(unread) : "";
    badge.hidden = unread === 0;
    spoken.textContent = `Notifications, ${unread ? unreadText(unread) : "none"} unread`;
  };
  const drawList = (): void => {
    if (items.length === 0) {
      replace(list, h("li", { class: "bell-empty" }, "No notifications yet."));
      return;
    }
    replace(list, ...items.map(entry));
  };
  const entry = (n: InboxItem): HTMLLIElement => {
    const link = h(
      "a",
      { href: safeNext(n.link) },
      !n.read && h("span", { class: "visually-hidden" }, "Unread: "),
      h("span", { class: "bell-text" }, n.text),
      h("time", { class: "bell-time", datetime: new Date(n.created_at * 1000).toISOString() }, ago(n.created_at)),
    );
    link.addEventListener("click", (ev) => {
      if (n.read) return;
      const markRead = authJson<{ unread: number }>("POST", "/v1/me/notifications/read", { ids: [n.id] });
      // A plain click waits for the mark (briefly) before leaving, since leaving the page could
      // cancel the request; a click that opens another tab leaves this page where it is.
      if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) {
        void markRead.then((r) => {
          n.read = true;
          unread = r.unread;
          drawCount();
          drawList();
        }, () => undefined);
        return;
      }
      ev.preventDefault();
      const timeout = new Promise((done) => setTimeout(done, 3000));
      void Promise.race([markRead.catch(() => undefined), timeout]).then(() => location.assign(link.href));
    });
    return h("li", { class: "bell-item", "data-unread": n.read ? undefined : "true" }, link);
  };

  /** Reads the first page unless it is the one shown (304). */
  const refresh = (): Promise<void> =>
    (polling ??= (async () => {
      try {
        const headers: Record<string, string> = { accept: "application/json" };
        if (etag) headers["if-none-match"] = etag;
        const r = await authFetch("/v1/me/notifications", { headers, cache: "no-store" });
        if (r.status === 401) {
          // The session ended (authFetch already tried a refresh); the page's own calls say so.
          stopped = true;
          return;
        }
        if (r.status === 304 || !r.ok) return; // unchanged, or a hiccup: the next poll retries
        const page = (await r.json()) as NotificationPage;
        etag = r.headers.get("etag");
        items = page.items;
        unread = page.unread;
        status.textContent = "";
        drawCount();
        drawList();
      } catch {
        // Unreachable for now: the next poll retries.
      } finally {
        polling = null;
      }
    })());

  const schedule = (): void => {
    clearTimeout(timer);
    timer = stopped || document.hidden ? undefined : window.setTimeout(() => void poll(), POLL_MS);
  };
  const poll = async (): Promise<void> => {
    await refresh();
    schedule();
  };
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(timer);
    else if (!stopped) void poll();
  });

  const open = (yes: boolean): void => {
    panel.hidden = !yes;
    button.setAttribute("aria-expanded", String(yes));
  };
  button.addEventListener("click", () => {
    const opening = button.getAttribute("aria-expanded") !== "true";
    open(opening);
    if (opening) void refresh();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape" || panel.hidden) return;
    const focus = document.activeElement;
    open(false);
    if (!focus || focus === document.body || box.contains(focus)) button.focus();
  });
  document.addEventListener("click", (ev) => {
    if (!panel.hidden && !box.contains(ev.target as Node)) open(false);
  });
  // Busy rather than disabled while it runs: a disabled button would drop the keyboard focus.
  readAll.addEventListener("click", async () => {
    const newest = items[0];
    if (!newest || readAll.getAttribute("aria-busy") === "true") return;
    readAll.setAttribute("aria-busy", "true");
    status.textContent = "";
    try {
      const r = await authJson<{ unread: number }>("POST", "/v1/me/notifications/read", { up_to: newest.id });
      for (const n of items) n.read = true;
      unread = r.unread;
      drawCount();
      drawList();
      status.textContent = unread ? "" : "All read.";
    } catch {
      status.textContent = "Could not mark them read. Try again.";
    } finally {
      readAll.removeAttribute("aria-busy");
    }
  });

  drawCount();
  drawList();
  void poll();
  return box;
}
