// The admin's walk in Chromium, against one running edge. Started by tests/tests/web.rs with
// EDGE_URL, RUNTIME, SCREENSHOT_DIR, COUNTRY_HEADER, COUNTRY, PASSWORD, ADMIN_EMAIL,
// MODERATOR_EMAIL and VIEWER_EMAIL (neither). Prints one line per step and `ADMIN OK`; exits
// non-zero on the first failure.
//
// The takedown: a viewer's watch page plays demo-free (8 s in 2 s segments) while its segments
// from the third on are held back, as a slow network would; the admin takes the video down; once
// the edge refuses its playback, the held segment requests go on, reach the edge, and the page
// must stop at that segment and say why.
import { env, fail, headersOnEverything } from "./walk.mjs";
import { users } from "./users.mjs";

const { base, browser, user } = await users("admin");
const VIDEO = "demo-free";
try {
  // Not an admin: told so.
  const other = await user();
  await other.signIn(env("VIEWER_EMAIL"), "/admin");
  await other.page.locator("#admin-gate", { hasText: "Moderators and admins only" }).waitFor();
  if (await other.page.locator("#admin").isVisible()) fail("a viewer sees the admin page");
  other.step("a viewer account is told the admin page is for moderators and admins");
  await other.ctx.close();

  const admin = await user();
  const { page, step } = admin;
  await admin.signIn(env("ADMIN_EMAIL"), "/admin");
  await page.locator("#admin").waitFor();
  await page.locator("#platform-stats #stats-totals").waitFor();
  await page.locator("#platform-stats .stats-chart canvas").waitFor();
  if (await page.locator("#platform-stats #stats-video").count()) fail("the platform's statistics offer a video choice");
  step("the platform's statistics: totals and a chart for the last 28 days");
  await admin.axe("admin");

  // Find users; change a role and back; end a user's sessions.
  await page.getByLabel("Email or user id").fill("example.com");
  await page.getByRole("button", { name: "Find users" }).click();
  await page.locator("#users .user-row").first().waitFor();
  const emails = await page.locator("#users .user-row h3").allTextContents();
  for (const want of [env("ADMIN_EMAIL"), env("VIEWER_EMAIL")]) {
    if (!emails.includes(want)) fail(`searching example.com found ${emails.join(", ")}, not ${want}`);
  }
  step(`found ${emails.length} users by part of their email`);
  await page.getByLabel("Email or user id").fill(env("VIEWER_EMAIL"));
  await page.getByRole("button", { name: "Find users" }).click();
  await page.locator("#users-status", { hasText: "1 found" }).waitFor();
  const viewer = page.locator("#users .user-row", { hasText: env("VIEWER_EMAIL") });
  if ((await page.locator("#users .user-row").count()) !== 1) fail("the whole address should find one user");
  const status = viewer.locator(".row-status");
  await viewer.getByLabel("Role").selectOption("creator");
  await viewer.getByRole("button", { name: "Change role" }).click();
  await status.filter({ hasText: "Now creator" }).waitFor();
  await viewer.locator(".user-role", { hasText: "creator" }).waitFor();
  await viewer.getByLabel("Role").selectOption("user");
  await viewer.getByRole("button", { name: "Change role" }).click();
  await status.filter({ hasText: "Now user" }).waitFor();
  step("a viewer made a creator, then a viewer again");
  await viewer.getByRole("button", { name: "Sign out everywhere" }).click();
  await status.filter({ hasText: "Every session ended" }).waitFor();
  step("the viewer's sessions ended");
  await admin.shot("admin-users");

  // A viewer watches while segments from the third on are held back.
  const watcher = await user();
  const held = [];
  let hold = true;
  await watcher.page.route(/\/hls\/.*\/seg_(\d+)\.ts$/, (route) => {
    const n = Number(/seg_(\d+)\.ts$/.exec(route.request().url())[1]);
    if (hold && n >= 2) held.push(route);
    else route.continue();
  });
  const refused = [];
  watcher.page.on("response", (r) => {
    if (r.status() === 451) refused.push(new URL(r.url()).pathname.replace(/\/hls\/([^/]+)\/[^/]+\//, "/hls/$1/…/"));
  });
  await watcher.page.goto(`${base}/watch?v=${VIDEO}`);
  await watcher.page.waitForFunction(() => document.querySelector("#video").currentTime > 0.5, null, { timeout: 30_000 });
  step("the viewer's page plays");

  // The admin takes it down.
  await page.getByLabel("Video id or watch link").fill(`${base}/watch?v=${VIDEO}`);
  await page.getByRole("button", { name: "Look up" }).click();
  const card = page.locator(`.video-card[data-id="${VIDEO}"]`);
  await card.locator(".takedown-state", { hasText: "Up" }).waitFor();
  await card.getByRole("button", { name: "Take video down" }).click();
  await card.locator(".takedown-state", { hasText: "Taken down" }).waitFor();
  step("taken down from the admin page");
  await admin.shot("admin-video");

  // Once the edge knows (the origin's sync pushes it), the held segments go on.
  const until = Date.now() + 30_000;
  for (;;) {
    const r = await fetch(`${base}/v1/videos/${VIDEO}/playback`, { headers: { [env("COUNTRY_HEADER")]: env("COUNTRY") } });
    if (r.status === 451) break;
    if (Date.now() > until) fail(`the edge still answers ${r.status} for the playback of a video taken down`);
    await new Promise((res) => setTimeout(res, 200));
  }
  if (!held.length) fail("the viewer's page asked for no segment past the second");
  hold = false;
  for (const r of held.splice(0)) await r.continue().catch(() => {});
  const notice = watcher.page.locator('#notice[data-kind="taken_down"]');
  await notice.waitFor({ timeout: 30_000 });
  const text = (await notice.innerText()).replace(/\s+/g, " ");
  if (!/taken down/i.test(text)) fail(`the notice says "${text}"`);
  if (!refused.some((p) => /\/seg_\d+\.ts$/.test(p))) fail(`no segment was refused (451s: ${refused.join(", ")})`);
  const playing = await watcher.page.evaluate(() => {
    const v = document.querySelector("#video");
    return !v.paused && !document.querySelector("#player").hidden;
  });
  if (playing) fail("the player still plays after its segment was refused");
  step(`the open watch page stopped at its next segment (${refused.find((p) => /seg_/.test(p))}) and says: "${text}"`);
  await watcher.shot("watch-taken-down-while-playing");
  await watcher.cspClean("watch page (taken down while playing)");
  await watcher.ctx.close();

  // Restored: it plays again.
  await card.getByRole("button", { name: "Restore video" }).click();
  await card.locator(".takedown-state", { hasText: "Up" }).waitFor();
  step("restored from the admin page");

  // Moderation: a viewer reports the video from its watch page; a moderator works the queue
  // (the reporter's note shown as text; dismissed, with a reason); the admin finds it in the
  // audit log, then suspends the viewer's account and reinstates it.
  const reporter = await user();
  await reporter.signIn(env("VIEWER_EMAIL"), `/watch?v=${VIDEO}`);
  await reporter.page.getByText("Report video").click();
  await reporter.page.getByRole("button", { name: "Send report" }).click();
  await reporter.page.locator(".report .form-problem", { hasText: "Choose a reason" }).waitFor();
  await reporter.page.getByLabel("Reason").selectOption("copyright");
  await reporter.page.getByLabel("What is wrong (optional)").fill("<b>my</b> song");
  await reporter.page.getByRole("button", { name: "Send report" }).click();
  await reporter.page.locator(".report-done").waitFor();
  step("a viewer reported the video from its watch page (a report without a reason refused first)");
  await reporter.axe("watch (reported)");
  await reporter.ctx.close();

  const moderator = await user();
  await moderator.signIn(env("MODERATOR_EMAIL"), "/admin");
  const item = moderator.page.locator(`.queue-item[data-target="video:${VIDEO}"]`);
  await item.waitFor();
  const notes = await item.locator(".notes").textContent();
  if (!notes.includes("<b>my</b> song")) fail(`the queue shows the note as ${JSON.stringify(notes)}`);
  if (await moderator.page.locator("#admin-only").isVisible()) fail("a moderator sees the admin-only sections");
  await moderator.axe("admin (moderator's queue)");
  await moderator.shot("admin-queue");
  await item.getByRole("button", { name: "Dismiss reports" }).click();
  await item.locator(".row-status", { hasText: "Give a reason" }).waitFor();
  await item.getByLabel("Reason").fill("a cover, allowed");
  await item.getByRole("button", { name: "Dismiss reports" }).click();
  await moderator.page.locator("#queue-status", { hasText: "Nothing to review" }).waitFor();
  step("the moderator dismissed the report from the queue (not before giving a reason)");
  await moderator.ctx.close();

  await page.reload();
  const latest = page.locator("#log-box tbody tr").first();
  await latest.filter({ hasText: "a cover, allowed" }).waitFor();
  step(`the audit log's latest line: "${(await latest.innerText()).replace(/\s+/g, " ")}"`);
  await admin.axe("admin (audit log)");
  await page.getByLabel("Email or user id").fill(env("VIEWER_EMAIL"));
  await page.getByRole("button", { name: "Find users" }).click();
  const account = page.locator("#users .user-row", { hasText: env("VIEWER_EMAIL") });
  await account.getByLabel("Reason").fill("a test suspension");
  await account.getByRole("button", { name: "Suspend account" }).click();
  await account.locator(".mod-actions .row-status", { hasText: "suspend account" }).waitFor();
  await account.getByRole("button", { name: "Reinstate account" }).click();
  await account.locator(".mod-actions .row-status", { hasText: "reinstate account" }).waitFor();
  step("the viewer's account suspended and reinstated");

  // An ad campaign started from the form (a script URL refused first), listed, then paused.
  await page.getByText("Start a campaign").click();
  const form = page.locator("#new-campaign");
  await form.getByLabel("Name").fill("Walk campaign");
  await form.getByLabel("Creative (a public video's id)").fill("demo-embed");
  await form.getByLabel("Click-through URL").fill("javascript:alert(1)");
  const ends = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
  await form.getByLabel("Ends on").fill(ends);
  await form.getByRole("button", { name: "Start campaign" }).click();
  await form.locator(".row-status", { hasText: "click url" }).waitFor();
  await form.getByLabel("Click-through URL").fill("https://advertiser.example/walk");
  await form.getByRole("button", { name: "Start campaign" }).click();
  const campaign = page.locator("#campaigns .campaign-row", { hasText: "Walk campaign" });
  await campaign.locator(".campaign-state", { hasText: "active" }).waitFor();
  await admin.axe("admin (campaigns)");
  await campaign.getByRole("button", { name: "Pause" }).click();
  await page.locator("#campaigns .campaign-row", { hasText: "Walk campaign" }).locator(".campaign-state", { hasText: "paused" }).waitFor();
  step("an ad campaign started from the form (a script URL refused first), then paused");
  await admin.cspClean("admin");
  headersOnEverything(admin, ["/admin", "/assets/admin.js", "/assets/app.css"]);
  console.log("ADMIN OK");
} finally {
  await browser.close();
}
