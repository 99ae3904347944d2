// Several users at once in one Chromium, for the walks that need more than one (studio.mjs,
// admin.mjs): each user a browser context of their own (their own session cookie), each page
// watched as walk.mjs watches a walk's page, and signing in through the sign-in page.
import { launch } from "./chromium.mjs";
import { env, watched } from "./walk.mjs";

/** A browser for the walk `who`; `user()` opens a context and a page for one more user. */
export async function users(who) {
  const base = env("EDGE_URL");
  const browser = await launch();
  /**
   * With `country` (the default), every request of the page says the viewer's country in the
   * trusted header the Spin edge reads. A page that talks to another origin (the studio's
   * uploads) goes without: a browser sends no such header, and the origin's CORS refuses it.
   */
  const user = async ({ country = true } = {}) => {
    const ctx = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      extraHTTPHeaders: country ? { [env("COUNTRY_HEADER")]: env("COUNTRY") } : {},
    });
    const w = await watched(who, ctx, await ctx.newPage());
    /** Signs `email` in through the sign-in page, which then goes on to `next`. */
    const signIn = async (email, next) => {
      await w.page.goto(`${base}/signin?next=${encodeURIComponent(next)}`);
      await w.page.getByLabel("Email").fill(email);
      await w.page.getByLabel("Password").fill(env("PASSWORD"));
      await w.page.getByRole("button", { name: "Sign in" }).click();
      await w.page.waitForURL((u) => u.pathname === next.split("?")[0]);
      w.step(`signed in as ${email}`);
    };
    return { ctx, signIn, ...w };
  };
  return { base, browser, user };
}
