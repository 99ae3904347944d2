// A viewer who signs up, finds the public demo video by search, plays it, switches its quality
// and speed, likes it, comments (markup stays text; edits one comment, deletes another),
// subscribes to its channel, and finds the like, the subscription and the comment again after a
// reload. Then another user (REPLIER_EMAIL, through the API) replies to the comment twice: the
// header's bell counts both without a reload (its own 20 s poll: nothing here speeds it up),
// lists them, marks one read by opening it and the rest with "Mark all read"; the viewer replies
// to a reply, and saves a notification setting on the account page. Run by tests/tests/web.rs
// after viewer.mjs, on the same edge, with the environment walk.mjs reads and PASSWORD,
// REPLIER_EMAIL. Prints one line per step; exits non-zero on the first failure.
import { env, fail, headersOnEverything, playsAndSwitches, searchAndOpen, walk } from "./walk.mjs";

const MARKUP = "<img src=x onerror=alert(1)>";

const number = (s) => Number.parseInt((s ?? "").replace(/[^0-9]/g, ""), 10);

/** The longest the bell may take to show a new notification: one poll (20 s) and some slack. */
const BELL_WAIT = 40_000;

/** An API call from outside the browser, as REPLIER_EMAIL would make it from their own device. */
async function api(method, path, body, token) {
  const headers = { "content-type": "application/json", [env("COUNTRY_HEADER")]: env("COUNTRY") };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${env("EDGE_URL")}${path}`, { method, headers, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) fail(`${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

await walk("social", async (w) => {
  const { base, runtime, page, step, axe, shot, cspClean } = w;

  // Signs up on the sign-up page, and lands on the home page signed in.
  const email = `social-${runtime}-${Date.now()}@example.com`;
  await page.goto(`${base}/signup`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel(/^Display name/).fill("Social Viewer");
  await page.getByLabel(/^Password \(/).fill("a long enough password");
  await page.getByLabel("Password again").fill("a long enough password");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.waitForURL(`${base}/`);
  await page.locator("#nav-account", { hasText: "Social Viewer" }).waitFor();
  step(`signed up as ${email} on /signup`);

  const result = await searchAndOpen(w);
  await result.click();
  await page.waitForURL(/\/watch\?v=demo-free/);
  await playsAndSwitches(w);

  // Like: pressed and counted; dislike by keyboard releases it; like again.
  const like = page.locator("#like");
  const dislike = page.locator("#dislike");
  await like.waitFor();
  if ((await like.getAttribute("aria-pressed")) !== "false") fail("a new viewer's like starts pressed");
  const likes = number(await like.locator(".count").textContent());
  await like.click();
  await page.locator('#like[aria-pressed="true"]').waitFor();
  if (number(await like.locator(".count").textContent()) !== likes + 1) fail("the like was not counted");
  await dislike.focus();
  await page.keyboard.press("Enter");
  await page.locator('#dislike[aria-pressed="true"]').waitFor();
  await page.locator('#like[aria-pressed="false"]').waitFor();
  if (number(await like.locator(".count").textContent()) !== likes) fail("the like was not taken back");
  await page.keyboard.press(" ");
  await page.locator('#dislike[aria-pressed="false"]').waitFor();
  await like.click();
  await page.locator('#like[aria-pressed="true"]').waitFor();
  step(`likes: ${likes} → ${likes + 1}; dislike by keyboard (Enter, Space) toggles; liked again`);

  // Subscribe to the video's channel.
  const subscribe = page.locator("#subscribe");
  const subscribers = number(await page.locator("#subscribers").textContent());
  if ((await subscribe.getAttribute("aria-pressed")) !== "false") fail("a new viewer starts subscribed");
  await subscribe.click();
  await page.locator('#subscribe[aria-pressed="true"]').waitFor();
  if (number(await page.locator("#subscribers").textContent()) !== subscribers + 1) fail("the subscription was not counted");
  step(`subscribed: ${subscribers} → ${subscribers + 1} subscribers`);

  // Comments: what goes wrong is said plainly.
  const field = page.getByLabel("Add a comment");
  const post = page.locator("#comment-post");
  const error = page.locator("#comment-error");
  await post.click();
  await error.filter({ hasText: "Write something first." }).waitFor();
  const comments = "**/v1/videos/demo-free/comments";
  await page.route(comments, (route) =>
    route.request().method() === "POST" ? route.abort("connectionfailed") : route.continue(),
  );
  await field.fill("lost on the way");
  await post.click();
  await error.filter({ hasText: "could not be reached" }).waitFor();
  await page.unroute(comments);
  step(`errors said: "Write something first." and "${await error.textContent()}"`);

  // Written, shown as the viewer's own; markup stays characters.
  const text = `A fine test pattern, seen on ${runtime} (${Date.now()})`;
  await field.fill(text);
  await post.click();
  const mine = page.locator('#comments li[data-own="true"]', { hasText: text });
  await mine.waitFor();
  if (!(await mine.locator(".comment-meta").textContent()).startsWith("You")) fail("own comment not marked as the viewer's");
  if ((await error.textContent()) !== "") fail("the error stayed after a comment was posted");
  await field.fill(MARKUP);
  await post.click();
  const markup = page.locator('#comments li[data-own="true"]', { hasText: MARKUP });
  await markup.waitFor();
  if ((await markup.locator(".comment-body").textContent()) !== MARKUP) fail("the markup comment was changed");
  if (await page.locator("#comments img, #comments script").count()) fail("a comment's markup became an element");
  step("comments posted; the one with markup is inert text");

  // Edit one's own; delete the other (after saying yes).
  const edited = `${text}, edited`;
  await mine.getByRole("button", { name: "Edit your comment" }).click();
  await mine.getByLabel("Edit your comment").fill(edited);
  await mine.getByRole("button", { name: "Save" }).click();
  await mine.locator(".comment-body", { hasText: edited }).waitFor();
  if (!(await mine.locator(".comment-meta").textContent()).includes("edited")) fail("the edit is not marked");
  await markup.getByRole("button", { name: "Delete your comment" }).click();
  await markup.getByRole("button", { name: "Yes, delete my comment" }).click();
  await page.locator("#comments-status", { hasText: "deleted" }).waitFor();
  if (await page.locator('#comments li[data-own="true"]', { hasText: MARKUP }).count()) fail("the deleted comment is still there");
  step("own comment edited; the other deleted");

  await axe("watch (signed in)");
  await shot("watch-signed-in");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot("watch-signed-in-phone");
  await page.setViewportSize({ width: 1280, height: 800 });
  await cspClean("watch (signed in)");

  // After a reload the page says what the viewer did.
  await page.reload();
  await page.locator('#like[aria-pressed="true"]').waitFor();
  await page.locator('#subscribe[aria-pressed="true"]').waitFor();
  await page.locator('#comments li[data-own="true"] .comment-body', { hasText: edited }).waitFor();
  if (await page.locator("#comments .comment-body", { hasText: MARKUP }).count()) fail("the deleted comment came back");
  step("after a reload: liked, subscribed, the edited comment there and the deleted one gone");
  await cspClean("watch (reloaded)");

  // Notifications: another user replies twice to the viewer's comment while the page is open.
  const bell = page.locator("#bell");
  const badge = bell.locator(".bell-count");
  /** The bell, found by its accessible name. */
  const bellSays = (n) => page.getByRole("button", { name: `Notifications, ${n} unread`, exact: true });
  await bellSays("none").waitFor();
  const mineId = (await mine.getAttribute("id")).replace(/^comment-/, "");
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  const { access_token: replier } = await api("POST", "/v1/auth/login", {
    email: env("REPLIER_EMAIL"),
    password: env("PASSWORD"),
  });
  const replies = [`First answer from ${runtime}`, `Second answer from ${runtime}`];
  for (const body of replies) {
    await api("POST", "/v1/videos/demo-free/comments", { body, reply_to: mineId }, replier);
  }
  const t0 = Date.now();
  await badge.filter({ hasText: /^2$/ }).waitFor({ timeout: BELL_WAIT });
  if (!(await page.evaluate(() => window.__sameDocument))) fail("the page reloaded");
  await bellSays(2).waitFor({ timeout: 1000 });
  step(`two replies by ${env("REPLIER_EMAIL")}: the bell says 2 after ${((Date.now() - t0) / 1000).toFixed(1)} s, no reload`);

  // The panel lists them, newest first, unread; opening one marks it read.
  await bell.click();
  if ((await bell.getAttribute("aria-expanded")) !== "true") fail("the bell's panel is not expanded");
  const entries = page.locator("#bell-list .bell-item");
  await entries.first().waitFor();
  const texts = await entries.allTextContents();
  if (texts.length !== 2 || !texts[0].includes(replies[1]) || !texts[1].includes(replies[0]) || !texts.every((t) => t.includes("replied to your comment"))) {
    fail(`the panel lists ${JSON.stringify(texts)}`);
  }
  if ((await page.locator('#bell-list .bell-item[data-unread="true"]').count()) !== 2) fail("both should be unread");
  step(`the panel lists: ${texts.map((t) => JSON.stringify(t)).join(", ")}`);
  await axe("watch (notifications open)");
  await shot("notifications");
  const navigated = page.waitForEvent("framenavigated", { predicate: (f) => f === page.mainFrame() });
  await entries.first().locator("a").click();
  await navigated;
  await page.waitForURL(/\/watch\?v=demo-free$/);
  await badge.filter({ hasText: /^1$/ }).waitFor();
  await bellSays(1).waitFor({ timeout: 1000 });
  step("opening the newest went to its video and marked it read: the bell says 1");
  await bell.click();
  await page.locator('#bell-list .bell-item[data-unread="true"]').first().waitFor();
  await page.getByRole("button", { name: "Mark all read" }).click();
  await bellSays("none").waitFor();
  if (await badge.isVisible()) fail("the badge still shows after Mark all read");
  if (await page.locator('#bell-list .bell-item[data-unread="true"]').count()) fail("an entry is still unread");
  await page.keyboard.press("Escape");
  if ((await bell.getAttribute("aria-expanded")) !== "false") fail("Escape did not close the panel");
  step("Mark all read: the badge is gone; Escape closes the panel");

  // The replies sit under the viewer's comment; the viewer answers the first one.
  const under = page.locator(`#comment-${mineId} > .replies > li`);
  await under.first().waitFor();
  const shownUnder = await under.allTextContents();
  if (shownUnder.length !== 2 || !replies.every((r) => shownUnder.some((t) => t.includes(r)))) {
    fail(`under the viewer's comment: ${JSON.stringify(shownUnder)}`);
  }
  const answered = under.filter({ hasText: replies[0] });
  const replyButton = answered.locator(":scope > .comment-actions > button.reply");
  await replyButton.click();
  if ((await replyButton.getAttribute("aria-expanded")) !== "true") fail("the Reply button is not expanded");
  const answer = `Thanks, answered on ${runtime}`;
  await answered.getByLabel("Your reply").fill(answer);
  await answered.getByRole("button", { name: "Post reply" }).click();
  const nested = answered.locator(':scope > .replies > li[data-own="true"]', { hasText: answer });
  await nested.waitFor();
  await page.locator("#comments-status", { hasText: "Your reply was posted." }).waitFor();
  await axe("watch (replies)");
  await shot("watch-replies");
  await page.reload();
  await page.locator(`#comment-${mineId} > .replies > li > .replies > li[data-own="true"]`, { hasText: answer }).waitFor();
  step("the viewer's reply to a reply is posted and, after a reload, still nested under it");
  await cspClean("watch (notifications and replies)");

  // A notification setting saved on the account page stays saved.
  await page.goto(`${base}/account#notifications`);
  const byEmail = page.getByRole("checkbox", { name: "Replies to my comments By email" });
  await byEmail.waitFor();
  const was = await byEmail.isChecked();
  await byEmail.setChecked(!was);
  await page.getByRole("button", { name: "Save notification settings" }).click();
  await page.locator("#prefs-status", { hasText: "Saved." }).waitFor();
  await page.reload();
  await byEmail.waitFor();
  if ((await byEmail.isChecked()) === was) fail("the notification setting did not stay saved");
  if ((await page.getByRole("checkbox", { name: "Replies to my comments In the app" }).isChecked()) !== true) {
    fail("in-app replies were turned off by saving email alone");
  }
  step(`account: replies by email ${was ? "off" : "on"}, saved, and so after a reload`);
  await axe("account (notification settings)");
  await cspClean("account");

  headersOnEverything(w, ["/", "/search", "/watch", "/account", "/assets/watch.js"]);
  console.log("SOCIAL OK");
});
