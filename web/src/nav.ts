// The header's account links, on every page: "Sign in" / "Sign up", or the signed-in user's
// links (studio for creators, admin for admins), the notification bell and "Sign out". Imported
// for its effect by each page's script.
import { byId, h, replace } from "./dom";
import { bell } from "./notifications";
import { currentUser, signInHref, signOut } from "./session";

async function mount(): Promise<void> {
  const nav = byId("nav-user");
  let user;
  try {
    user = await currentUser();
  } catch {
    user = null; // the header never blocks a page; the page's own calls say what failed
  }
  if (!user) {
    replace(nav, h("a", { href: signInHref() }, "Sign in"), h("a", { href: "/signup" }, "Sign up"));
    return;
  }
  const out = h("button", { type: "button", class: "link" }, "Sign out");
  out.addEventListener("click", async () => {
    out.disabled = true;
    await signOut().catch(() => undefined);
    location.assign("/");
  });
  replace(
    nav,
    user.role !== "user" && h("a", { href: "/studio" }, "Studio"),
    (user.role === "admin" || user.role === "moderator") &&
      h("a", { href: "/admin" }, user.role === "admin" ? "Admin" : "Moderation"),
    bell(),
    h("a", { href: "/account", id: "nav-account" }, user.display_name || user.email),
    out,
  );
}

void mount();
