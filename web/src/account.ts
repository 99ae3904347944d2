// The account page: display name, password, notification settings, subscriptions, and
// membership with the checkout button. Signed-out visitors are sent to sign in first.
import "./nav";
import { Channel, getJson, seg } from "./api";
import { checkoutButton } from "./checkout";
import { byId, date, h, replace } from "./dom";
import { field, onSubmit } from "./forms";
import { authJson, currentUser, reloadUser, signInHref, User } from "./session";

/** Each kind of notification the API knows, as the page names it, in the order shown. */
const KINDS: [string, string][] = [
  ["new_video", "New videos from channels I follow"],
  ["comment_reply", "Replies to my comments"],
  ["comment_like", "Likes on my comments"],
  ["moderation", "Moderation decisions"],
  ["billing", "Membership and payments"],
];
const CHANNELS = ["in_app", "email"] as const;

type Channels = Record<(typeof CHANNELS)[number], boolean>;
type Preferences = Record<string, Channels>;

/** Subscriptions listed by name; more than this many are counted, not fetched one by one. */
const SHOWN_SUBSCRIPTIONS = 50;

async function main(): Promise<void> {
  const user = await currentUser();
  if (!user) {
    location.replace(signInHref());
    return;
  }
  byId("account").hidden = false;
  byId("email").textContent = user.email;
  byId<HTMLInputElement>("display_name").value = user.display_name;
  membership(user);
  if (!user.email_confirmed) {
    const form = byId<HTMLFormElement>("confirm-form");
    form.hidden = false;
    onSubmit(form, byId("confirm-status"), async () => {
      const { sent_to } = await authJson<{ sent_to: string }>("POST", "/v1/me/email/confirm");
      return `Sent to ${sent_to}: follow the link in it.`;
    });
  }

  onSubmit(byId<HTMLFormElement>("name-form"), byId("name-status"), async (data) => {
    await authJson("PATCH", "/v1/me", { display_name: field(data, "display_name") });
    await reloadUser();
    return "Saved.";
  });
  onSubmit(byId<HTMLFormElement>("password-form"), byId("password-status"), async (data) => {
    const next = field(data, "new");
    if (next.length < 10) return "Passwords are at least 10 characters.";
    if (next !== field(data, "confirm")) return "The two new passwords differ.";
    await authJson("PATCH", "/v1/me", { password: { current: field(data, "current"), new: next } });
    // A new password ends every session, this one too.
    location.assign("/signin?changed=1");
  });
  // Its own status line: settings that fail to load leave the rest of the page working.
  notificationPreferences().catch((e) => {
    byId("prefs-status").textContent =
      e instanceof Error ? e.message : "Your notification settings could not be loaded.";
  });
  await subscriptions();
}

function membership(user: User): void {
  const box = byId("membership");
  const m = user.membership;
  const active = m?.status === "active" && m.period_end * 1000 > Date.now();
  if (active && m) {
    replace(box, h("p", {}, `Member (${m.tier}), paid through ${date(m.period_end)}.`));
    return;
  }
  replace(
    box,
    h("p", {}, m ? "Your membership has ended." : "Members watch members-only videos."),
    checkoutButton(),
  );
}

/** A checkbox per kind and channel; saving sends the kinds that changed. */
async function notificationPreferences(): Promise<void> {
  let saved = await authJson<Preferences>("GET", "/v1/me/notification-preferences");
  const boxes = new Map<string, Record<string, HTMLInputElement>>();
  const rows = KINDS.filter(([kind]) => saved[kind]).map(([kind, label]) => {
    const cells = CHANNELS.map((ch) => {
      const box = h("input", {
        type: "checkbox",
        id: `pref-${kind}-${ch}`,
        name: `${kind}.${ch}`,
        // "Replies to my comments By email": the row's and the column's headers.
        "aria-labelledby": `pref-${kind} prefs-${ch}`,
      });
      return [ch, box] as const;
    });
    boxes.set(kind, Object.fromEntries(cells));
    return h("tr", {}, h("th", { scope: "row", id: `pref-${kind}` }, label), ...cells.map(([, box]) => h("td", {}, box)));
  });
  const show = (prefs: Preferences): void => {
    for (const [kind, byChannel] of boxes) for (const ch of CHANNELS) byChannel[ch].checked = prefs[kind][ch];
  };
  replace(byId("prefs-rows"), ...rows);
  show(saved);
  onSubmit(byId<HTMLFormElement>("prefs-form"), byId("prefs-status"), async () => {
    const changed: Preferences = {};
    for (const [kind, byChannel] of boxes) {
      const now = { in_app: byChannel.in_app.checked, email: byChannel.email.checked };
      if (now.in_app !== saved[kind].in_app || now.email !== saved[kind].email) changed[kind] = now;
    }
    if (Object.keys(changed).length === 0) return "Nothing changed.";
    saved = await authJson<Preferences>("PUT", "/v1/me/notification-preferences", changed);
    show(saved);
    return "Saved.";
  });
}

async function subscriptions(): Promise<void> {
  const list = byId("subscriptions");
  const { channels } = await authJson<{ channels: string[] }>("GET", "/v1/me/subscriptions");
  if (channels.length === 0) {
    replace(list, h("li", {}, "No subscriptions yet."));
    return;
  }
  const shown = await Promise.all(
    channels.slice(0, SHOWN_SUBSCRIPTIONS).map((id) =>
      getJson<Channel>(`/v1/channels/${seg(id)}`).catch(() => null),
    ),
  );
  replace(
    list,
    ...shown.map((c, i) =>
      h("li", {}, h("a", { href: `/channel?id=${seg(channels[i])}` }, c ? c.name : channels[i])),
    ),
    channels.length > SHOWN_SUBSCRIPTIONS &&
      h("li", {}, `and ${channels.length - SHOWN_SUBSCRIPTIONS} more`),
  );
}

main().catch((e) => {
  byId("account-status").textContent =
    e instanceof Error ? e.message : "The account could not be loaded.";
});
