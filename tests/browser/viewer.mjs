// A signed-out viewer's walk through the web app in Chromium (playwright-core), against one
// running edge. Started by tests/tests/web.rs with the environment walk.mjs reads, and:
//   MARKUP_COMMENT  the body of a comment on demo-free that holds markup (the test posted it)
// Prints one line per step and exits non-zero on the first failure. The signed-in viewer's
// walk (likes, comments, subscriptions) is social.mjs.
import { env, fail, headersOnEverything, playsAndSwitches, searchAndOpen, walk } from "./walk.mjs";

const markup = env("MARKUP_COMMENT");

await walk("viewer", async (w) => {
  const { base, page, step, axe, shot, cspClean } = w;
  // The player's reports (sendBeacon), as the edge answered them.
  const beacons = [];
  page.on("response", (r) => {
    if (new URL(r.url()).pathname === "/v1/beacons") beacons.push(r);
  });
  // Home: the home feed, then the other tabs.
  await page.goto(`${base}/`);
  await page.locator("#panel-home .card").first().waitFor();
  step(`home lists ${await page.locator("#panel-home .card").count()} videos`);
  await axe("home");
  await shot("home");
  await page.getByRole("tab", { name: "Trending" }).click();
  await page.locator("#panel-trending .card, #panel-trending .status:not(:empty)").first().waitFor();
  await page.getByRole("tab", { name: "Categories" }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#panel-categories .chip, #panel-categories p").first().waitFor();
  step("trending and categories tabs answer");

  // Search, by keyboard; the video plays, its quality and speed switch.
  const result = await searchAndOpen(w);
  await axe("search");
  await shot("search");
  await result.click();
  await page.waitForURL(/\/watch\?v=demo-free/);
  await playsAndSwitches(w);
  // Within its 10 s beat the player reports its start and what it played; the edge takes all.
  for (let i = 0; beacons.length === 0; i++) {
    if (i > 150) fail("no playback report within 15 s of playing");
    await page.waitForTimeout(100);
  }
  const sent = JSON.parse(beacons[0].request().postData() ?? "{}");
  const start = sent.events?.find((e) => e.type === "start");
  const beat = sent.events?.find((e) => e.type === "heartbeat");
  if (!sent.token || !start || !(start.startup_ms >= 0) || !(beat?.played?.length > 0)) {
    fail(`the first report lacks a token, a start or what played: ${JSON.stringify(sent)}`);
  }
  const taken = await beacons[0].json();
  if (beacons[0].status() !== 202 || taken.accepted !== sent.events.length) {
    fail(`the edge answered the report ${beacons[0].status()} ${JSON.stringify(taken)}`);
  }
  step(`the player reported ${sent.events.map((e) => e.type).join(", ")}; the edge took ${taken.accepted}`);
  const video = page.locator("#video");
  // k pauses (the page's shortcut, focus on the page itself).
  await page.locator("#title").click();
  await page.keyboard.press("k");
  await page.waitForFunction(() => document.querySelector("#video").paused);
  step("k pauses");
  // Reloaded, the page starts where the viewer left off.
  const pausedAt = await video.evaluate((v) => v.currentTime);
  await page.reload();
  await page.locator("#resume-note", { hasText: "Resumed at" }).waitFor();
  const resumedAt = await video.evaluate((v) => v.currentTime);
  if (resumedAt < pausedAt - 0.5) fail(`resumed at ${resumedAt}, paused at ${pausedAt}`);
  step(`resumes at ${resumedAt.toFixed(2)} s after a reload (paused at ${pausedAt.toFixed(2)} s)`);

  // The markup comment is text on the screen, and nothing of it ran or became an element.
  const body = page.locator("#comments .comment-body", { hasText: "<img" });
  await body.waitFor();
  if ((await body.textContent()) !== markup) fail(`comment shown as ${await body.textContent()}`);
  const injected = await page.evaluate(
    () => document.querySelectorAll("#comments img, #comments script, #comments b").length + (window.__xss ?? 0),
  );
  if (injected) fail("the comment's markup became elements or ran");
  step("a comment with markup stays inert text");
  await page.locator("#comment-form .sign-in a[href^='/signin?next=']").waitFor();
  await page.locator("#reactions a[href^='/signin?next=']").first().waitFor();
  await page.locator("#subscription a[href^='/signin?next=']").waitFor();
  if (await page.locator("#like, #dislike, #subscribe, #comment-text").count()) fail("signed out, yet the controls act");
  step("signed out: like, dislike, subscribe and comment invite sign-in");
  await axe("watch");
  await shot("watch");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot("watch-phone");
  await page.setViewportSize({ width: 1280, height: 800 });
  await cspClean("watch");

  // The channel, through its link.
  await page.locator("#channel a").click();
  await page.waitForURL(/\/channel\?id=/);
  await page.locator("#channel-videos .card").first().waitFor();
  step(`channel "${await page.locator("#channel-name").textContent()}" lists its videos`);
  await axe("channel");
  await shot("channel");

  // A members video invites sign-in; a taken-down or blocked one says why.
  await page.goto(`${base}/watch?v=demo-members`);
  await page.locator('#notice[data-kind="members"]', { hasText: "Sign in" }).waitFor();
  step("members video: invitation to sign in");
  await axe("watch (members)");
  await shot("watch-members");
  await page.goto(`${base}/watch?v=demo-taken`);
  await page.locator('#notice[data-kind="taken_down"]', { hasText: "taken down" }).waitFor();
  step(`taken-down video: "${(await page.locator("#notice").innerText()).replace(/\s+/g, " ")}"`);
  await shot("watch-taken");
  await page.goto(`${base}/watch?v=demo-geo`);
  await page.locator('#notice[data-kind="country_blocked"]', { hasText: "not available in your country" }).waitFor();
  step("France-only video, viewer elsewhere: blocked, and says so");
  await cspClean("refusals");

  // Every page and asset had the headers.
  headersOnEverything(w, ["/", "/search", "/watch", "/channel", "/assets/watch.js", "/assets/hls.js", "/assets/app.css"]);
  console.log("VIEWER OK");
});
