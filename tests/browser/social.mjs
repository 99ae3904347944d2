// A viewer who signs up, finds the public demo video by search, plays it, switches its quality
// and speed, likes it, comments (markup stays text; edits one comment, deletes another),
// subscribes to its channel, and finds the like, the subscription and the comment again after a
// reload. Run by tests/tests/web.rs after viewer.mjs, on the same edge, with the environment
// walk.mjs reads. Prints one line per step; exits non-zero on the first failure.
import { fail, headersOnEverything, playsAndSwitches, searchAndOpen, walk } from "./walk.mjs";

const MARKUP = "<img src=x onerror=alert(1)>";

const number = (s) => Number.parseInt((s ?? "").replace(/[^0-9]/g, ""), 10);

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

  headersOnEverything(w, ["/", "/search", "/watch", "/assets/watch.js"]);
  console.log("SOCIAL OK");
});
