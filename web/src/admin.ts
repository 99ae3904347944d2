// The admin page, `/admin`: the review queue (moderators and admins, moderation.ts); for
// admins also: find a user by id or email and change their role, end their sessions, suspend or
// reinstate them; look a video up and take it down or restore it; read the audit log and the
// platform's playback statistics; run the ad campaigns (admin-ads.ts). Anyone
// else gets a clear message (the API refuses them anyway).
import "./nav";
import { ApiError, seg, VideoDetails } from "./api";
import { byId, date, h, replace } from "./dom";
import { announce, describe, requireUser } from "./gate";
import { AdCampaigns } from "./admin-ads";
import { accountActions, showLog, showQueue } from "./moderation";
import { authJson, User } from "./session";
import { platformStats } from "./studio-api";
import { Stats } from "./studio-stats";

type Role = User["role"];
const ROLES: [Role, string][] = [
  ["user", "Viewer"],
  ["creator", "Creator"],
  ["moderator", "Moderator"],
  ["admin", "Admin"],
];
const VIDEO_ID = /^[A-Za-z0-9_-]{1,64}$/;

interface FoundUser {
  id: string;
  email: string;
  role: Role;
  display_name: string;
  home_region: string | null;
  created_at: number;
}

interface AdminVideo extends VideoDetails {
  taken_down: boolean;
}

function userRow(u: FoundUser, me: User): HTMLElement {
  const status = h("p", { class: "row-status", role: "status" });
  const roleId = `role-${u.id}`;
  const role = h("select", { id: roleId });
  for (const [value, text] of ROLES) role.appendChild(h("option", { value, selected: value === u.role }, text));
  const shownRole = h("span", { class: "user-role" }, u.role);
  const setRole = h("button", { type: "button", class: "set-role" }, "Change role");
  setRole.onclick = async () => {
    const next = role.value as Role;
    if (next === u.role) {
      status.textContent = `Already ${next}.`;
      return;
    }
    setRole.disabled = true;
    try {
      await authJson("POST", `/v1/admin/users/${seg(u.id)}/role`, { role: next });
      u.role = next;
      shownRole.textContent = next;
      status.textContent = `Now ${next}. Their sessions ended: they sign in again with the new role.`;
      say(`${u.email} is now ${next}.`);
    } catch (e) {
      status.textContent = describe(e);
    }
    setRole.disabled = false;
  };
  const revoke = h("button", { type: "button", class: "revoke" }, "Sign out everywhere");
  revoke.onclick = async () => {
    revoke.disabled = true;
    try {
      await authJson("POST", `/v1/admin/users/${seg(u.id)}/revoke`);
      status.textContent = "Every session ended; every token issued so far is refused.";
      say(`${u.email} is signed out everywhere.`);
    } catch (e) {
      status.textContent = describe(e);
    }
    revoke.disabled = false;
  };
  return h(
    "li",
    { class: "user-row", "data-id": u.id },
    h("h3", {}, u.email),
    h(
      "p",
      { class: "meta" },
      u.display_name ? `${u.display_name} · ` : "",
      "role ",
      shownRole,
      ` · id ${u.id} · region ${u.home_region ?? "–"} · joined ${date(u.created_at)}`,
    ),
    u.id === me.id ? h("p", { class: "hint" }, "This is you: changing your own role or sessions signs you out.") : null,
    h("div", { class: "buttons" }, h("label", { for: roleId }, "Role"), role, setRole, revoke),
    status,
    u.id === me.id ? null : accountActions(u.id, say),
  );
}

async function findUsers(me: User): Promise<void> {
  const q = byId<HTMLInputElement>("user-q").value.trim();
  const status = byId("users-status");
  const list = byId("users");
  if (!q) {
    status.textContent = "Type an email (or part of one) or a user id.";
    return;
  }
  status.textContent = "Searching…";
  try {
    const { items } = await authJson<{ items: FoundUser[] }>("GET", `/v1/admin/users?q=${seg(q)}`);
    replace(list, ...items.map((u) => userRow(u, me)));
    status.textContent = items.length ? `${items.length} found${items.length === 20 ? " (the first 20: narrow the search)" : ""}.` : "No user matches.";
  } catch (e) {
    replace(list);
    status.textContent = describe(e);
  }
}

/** A video id from an id or a watch link (`/watch?v=ID`). */
function videoId(input: string): string | null {
  const s = input.trim();
  if (VIDEO_ID.test(s)) return s;
  try {
    const v = new URL(s, location.origin).searchParams.get("v");
    return v && VIDEO_ID.test(v) ? v : null;
  } catch {
    return null;
  }
}

function showVideo(v: AdminVideo): void {
  const status = h("p", { class: "row-status", role: "status" });
  const state = h("span", { class: "takedown-state" });
  const toggle = h("button", { type: "button", class: "takedown" });
  const render = (): void => {
    state.textContent = v.taken_down ? "Taken down" : "Up";
    state.dataset.down = String(v.taken_down);
    toggle.textContent = v.taken_down ? "Restore video" : "Take video down";
  };
  toggle.onclick = async () => {
    const down = !v.taken_down;
    toggle.disabled = true;
    try {
      const r = await authJson<{ taken_down: boolean }>("PATCH", `/v1/videos/${seg(v.id)}`, { taken_down: down });
      v.taken_down = r.taken_down;
      render();
      status.textContent = v.taken_down
        ? "Taken down: playback and every segment request are refused from now on."
        : "Restored: it plays again.";
      say(`“${v.title}” ${v.taken_down ? "taken down" : "restored"}.`);
    } catch (e) {
      status.textContent = describe(e);
    }
    toggle.disabled = false;
  };
  render();
  replace(
    byId("video-result"),
    h(
      "div",
      { class: "video-card", "data-id": v.id },
      h("h3", {}, h("a", { href: `/watch?v=${seg(v.id)}` }, v.title)),
      h("p", { class: "meta" }, `${v.owner_name || v.owner_id || "no owner"} · ${v.visibility} · ${v.state} · `, state),
      h("div", { class: "buttons" }, toggle),
      status,
    ),
  );
}

async function findVideo(): Promise<void> {
  const status = byId("video-status");
  const id = videoId(byId<HTMLInputElement>("video-id").value);
  replace(byId("video-result"));
  if (!id) {
    status.textContent = "That is neither a video id nor a watch link.";
    return;
  }
  status.textContent = "Looking up…";
  try {
    showVideo(await authJson<AdminVideo>("GET", `/v1/videos/${seg(id)}`));
    status.textContent = "";
  } catch (e) {
    status.textContent = e instanceof ApiError && e.status === 404 ? "No video with that id." : describe(e);
  }
}

/** Says `message` in the page's live region. */
const say = (message: string): void => announce("admin-message", message);

async function init(): Promise<void> {
  const me = await requireUser(
    "admin-gate",
    ["Sign in", "The admin page is for moderators and admins."],
    (u) => u.role === "admin" || u.role === "moderator",
    (u) => ["Moderators and admins only", `Your account (${u.email}) is neither.`],
  );
  if (!me) return;
  byId("admin").hidden = false;
  void showQueue(byId("queue"), byId("queue-status"), say);
  if (me.role !== "admin") return;
  byId("admin-only").hidden = false;
  void showLog(byId("log-box"));
  new Stats(byId("platform-stats"), platformStats, null);
  new AdCampaigns(byId("campaigns-box"), say);
  byId("user-search").onsubmit = (e) => {
    e.preventDefault();
    void findUsers(me);
  };
  byId("video-find").onsubmit = (e) => {
    e.preventDefault();
    void findVideo();
  };
}

void init();
