// The admin area's moderation: the review queue (moderators and admins), the audit log (admins),
// and the suspend / reinstate controls of an account. Every action carries a reason, which the
// audit log keeps and a taken-down video's viewers are told.
import { seg } from "./api";
import { date, h, replace } from "./dom";
import { describe } from "./gate";
import { authJson } from "./session";

type Target = { video: string } | { comment: string } | { user: string };
type ActionName = "dismiss" | "remove_comment" | "take_down" | "restore" | "suspend" | "reinstate";

interface QueueItem {
  target: { video?: string; comment?: string };
  reports: number;
  reasons: Record<string, number>;
  first_at: number;
  last_at: number;
  notes: { reason: string; note: string; created_at: number }[];
  context: {
    title?: string;
    owner?: string | null;
    taken_down?: boolean;
    body?: string;
    author?: string | null;
    video?: string;
    removed?: boolean;
  } | null;
}

interface LogLine {
  seq: number;
  actor: string;
  action: ActionName;
  target: { video?: string; comment?: string; user?: string } | null;
  reason: string;
  reports: number;
  created_at: number;
}

const act = (action: ActionName, target: Target, reason: string): Promise<{ reports: number; videos: string[] }> =>
  authJson("POST", "/v1/moderation/actions", { action, ...target, reason });

const when = (unix: number): string => new Date(unix * 1000).toLocaleString();

let fields = 0;

/** A reason field and one button per action; `done` runs after an action went through. */
function actionForm(
  actions: [ActionName, string, Target][],
  say: (m: string) => void,
  done: (action: ActionName) => void,
): HTMLElement {
  const id = `mod-reason-${++fields}`;
  const reason = h("input", { id, maxlength: 500, autocomplete: "off" });
  const status = h("p", { class: "row-status", role: "status" });
  const buttons = actions.map(([action, label, target]) => {
    const b = h("button", { type: "button", "data-action": action }, label);
    b.onclick = async () => {
      const why = reason.value.trim();
      if (!why) {
        status.textContent = "Give a reason: the audit log keeps it.";
        reason.focus();
        return;
      }
      for (const x of buttons) x.disabled = true;
      try {
        const r = await act(action, target, why);
        status.textContent = `Done: ${label.toLowerCase()} (${r.reports} report${r.reports === 1 ? "" : "s"} closed).`;
        say(status.textContent);
        done(action);
      } catch (e) {
        status.textContent = describe(e);
      }
      for (const x of buttons) x.disabled = false;
    };
    return b;
  });
  return h(
    "div",
    { class: "mod-actions" },
    h("div", { class: "form-field" }, h("label", { for: id }, "Reason"), reason),
    h("div", { class: "buttons" }, ...buttons),
    status,
  );
}

function queueItem(item: QueueItem, say: (m: string) => void, reload: () => void): HTMLElement {
  const reasons = Object.entries(item.reasons)
    .map(([r, n]) => `${r} ${n}`)
    .join(", ");
  const c = item.context;
  let what: HTMLElement;
  let actions: [ActionName, string, Target][];
  if (item.target.video) {
    const video = item.target.video;
    what = h(
      "div",
      {},
      h("h3", {}, h("a", { href: `/watch?v=${seg(video)}` }, c?.title ?? video)),
      h("p", { class: "meta" }, `Video ${video} · owner ${c?.owner ?? "none"}${c?.taken_down ? " · taken down" : ""}`),
    );
    actions = [
      c?.taken_down ? ["restore", "Restore video", { video }] : ["take_down", "Take video down", { video }],
      ["dismiss", "Dismiss reports", { video }],
    ];
    if (c?.owner) actions.push(["suspend", "Suspend the owner", { user: c.owner }]);
  } else {
    const comment = item.target.comment ?? "";
    what = h(
      "div",
      {},
      h("h3", {}, "Comment", c?.video ? " on " : null, c?.video ? h("a", { href: `/watch?v=${seg(c.video)}` }, c.video) : null),
      h("blockquote", { class: "reported-text" }, c?.removed ? "(removed)" : (c?.body ?? "(gone)")),
      h("p", { class: "meta" }, `by ${c?.author ?? "a deleted account"}`),
    );
    actions = [
      ["remove_comment", "Remove comment", { comment }],
      ["dismiss", "Dismiss reports", { comment }],
    ];
  }
  const key = item.target.video ? `video:${item.target.video}` : `comment:${item.target.comment}`;
  return h(
    "li",
    { class: "queue-item", "data-target": key },
    what,
    h("p", { class: "meta" }, `${item.reports} report${item.reports === 1 ? "" : "s"}: ${reasons} · first ${when(item.first_at)} · latest ${when(item.last_at)}`),
    item.notes.length
      ? h("ul", { class: "notes", "aria-label": "Reporters' notes" }, ...item.notes.map((n) => h("li", {}, `${n.reason}: `, n.note)))
      : null,
    actionForm(actions, say, reload),
  );
}

/** The review queue in `list`, its state in `status`. */
export async function showQueue(list: HTMLElement, status: HTMLElement, say: (m: string) => void): Promise<void> {
  const reload = (): void => void showQueue(list, status, say);
  status.textContent = "Loading…";
  try {
    const { items } = await authJson<{ items: QueueItem[] }>("GET", "/v1/moderation/queue");
    replace(list, ...items.map((i) => queueItem(i, say, reload)));
    status.textContent = items.length ? "" : "Nothing to review.";
  } catch (e) {
    status.textContent = describe(e);
  }
}

/** The audit log in `box`, newest first, with "Older" to page on. */
export async function showLog(box: HTMLElement, before?: number): Promise<void> {
  let page: { items: LogLine[]; next_before: number | null };
  try {
    page = await authJson("GET", `/v1/moderation/log${before ? `?before=${before}` : ""}`);
  } catch (e) {
    replace(box, h("p", { role: "alert" }, describe(e)));
    return;
  }
  const target = (t: LogLine["target"]): string =>
    t?.video ? `video ${t.video}` : t?.comment ? `comment ${t.comment}` : t?.user ? `user ${t.user}` : "—";
  const rows = page.items.map((l) =>
    h(
      "tr",
      { "data-seq": l.seq },
      h("td", {}, `${date(l.created_at)} ${new Date(l.created_at * 1000).toLocaleTimeString()}`),
      h("td", {}, l.actor),
      h("td", {}, l.action.replace("_", " ")),
      h("td", {}, target(l.target)),
      h("td", {}, l.reason),
      h("td", {}, String(l.reports)),
    ),
  );
  const older = h("button", { type: "button" }, "Older");
  older.hidden = page.next_before === null;
  older.onclick = () => void showLog(box, page.next_before ?? undefined);
  replace(
    box,
    page.items.length
      ? h(
          "table",
          { class: "log-table" },
          h("caption", {}, "Moderation actions, newest first"),
          h("thead", {}, h("tr", {}, ...["When", "Who", "Action", "Target", "Why", "Reports closed"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, ...rows),
        )
      : h("p", {}, "No actions yet."),
    older,
  );
}

/** Suspend and reinstate for account `user`. */
export function accountActions(user: string, say: (m: string) => void): HTMLElement {
  return actionForm(
    [
      ["suspend", "Suspend account", { user }],
      ["reinstate", "Reinstate account", { user }],
    ],
    say,
    () => {},
  );
}
