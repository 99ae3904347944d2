// The creator's walk through the studio in Chromium, against one running edge. Started by
// tests/tests/web.rs with EDGE_URL, RUNTIME, SCREENSHOT_DIR, COUNTRY_HEADER, COUNTRY, PASSWORD,
// CREATOR_EMAIL (a creator), VIEWER_EMAIL (not one), UPLOAD_FILE (an MP4 of over one tus chunk,
// 8 MiB), WEBHOOK_URL (a webhook receiver) and WEBHOOK_SECRETS_FILE (where that receiver reads
// the secret it checks signatures with). Prints one line per step and `STUDIO OK`; exits
// non-zero on the first failure.
//
// The upload goes from the page straight to the origin (another origin than the page's), so the
// browser preflights it: the walk never uses Playwright's request routing, which answers every
// preflight itself while a route is set. It pauses requests through the DevTools protocol's
// Fetch domain instead, where preflights reach the origin's CORS as they would without a test.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { env, fail, headersOnEverything } from "./walk.mjs";
import { users } from "./users.mjs";

const CHUNK = 8 * 1024 * 1024;
const file = env("UPLOAD_FILE");
const size = statSync(file).size;
if (size <= CHUNK) fail(`${file} is ${size} bytes: it must span two chunks`);

const { base, browser, user } = await users("studio");
try {
  // Signed out, then signed in without the creator role: told why, nothing else.
  const visitor = await user();
  await visitor.page.goto(`${base}/studio`);
  await visitor.page.locator("#studio-gate", { hasText: "Sign in" }).waitFor();
  await visitor.signIn(env("VIEWER_EMAIL"), "/studio");
  await visitor.page.locator("#studio-gate", { hasText: "for creators" }).waitFor();
  if (await visitor.page.locator("#studio").isVisible()) fail("a viewer sees the studio");
  visitor.step("signed out: invited to sign in; a viewer account: told the studio is for creators");
  await visitor.axe("studio (not a creator)");
  await visitor.ctx.close();

  const creator = await user({ country: false });
  const { page, step } = creator;
  // What went wrong on the way, for the failure messages.
  const trouble = [];
  page.on("requestfailed", (r) => trouble.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on("console", (m) => m.type() === "error" && trouble.push(`console: ${m.text()}`));
  await creator.signIn(env("CREATOR_EMAIL"), "/studio");
  await page.locator("#studio").waitFor();
  await page.locator("#videos .video-row").first().waitFor();
  step(`the studio lists ${await page.locator("#videos .video-row").count()} videos`);
  // Statistics: the last 28 days' totals and chart; one video's adds its retention curve.
  await page.locator("#stats-totals").waitFor();
  const views = await page.locator("#stats-totals dd").first().textContent();
  await page.locator("#stats-out .stats-chart canvas").first().waitFor();
  await page.locator("#stats-video").selectOption({ index: 1 });
  await page.locator("#stats-retention").waitFor();
  const charts = await page.locator("#stats-out .stats-chart canvas").count();
  if (charts < 2) fail(`one video's statistics draw ${charts} charts, want the period's and the retention`);
  step(`statistics: ${views} views in 28 days, charted; one video's retention curve drawn`);

  // Earnings: last month's statement (closed by the test), its total and its CSV.
  const month = env("EARNINGS_MONTH");
  await page.getByRole("button", { name: new RegExp(`^${month}:`) }).click();
  const total = (Number(env("EARNINGS_TOTAL")) / 100).toFixed(2);
  await page.locator("#earnings-total", { hasText: total }).waitFor();
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#earnings-csv").click()]);
  const csv = readFileSync(await download.path(), "utf8");
  if (!csv.includes(`statement,total,,,${env("EARNINGS_TOTAL")}`)) fail(`the CSV lacks the total: ${csv}`);
  if (download.suggestedFilename() !== `earnings-${month}-eur.csv`) fail(`CSV named ${download.suggestedFilename()}`);
  step(`earnings: ${month}'s statement totals ${total}, and its CSV says the same`);

  // A webhook endpoint for the creator's server (the test's receiver): a refused URL said
  // plainly; the secret shown once, and put into the receiver as a creator would put it into
  // their server's settings.
  const hookUrl = env("WEBHOOK_URL");
  await page.getByText("New webhook endpoint").click();
  const hookForm = page.locator("#new-webhook");
  await hookForm.getByLabel("Endpoint URL").fill("ftp://hooks.example/");
  await hookForm.getByRole("button", { name: "Add endpoint" }).click();
  await hookForm.locator(".form-problem", { hasText: "https" }).waitFor();
  await hookForm.getByLabel("Endpoint URL").fill(hookUrl);
  await hookForm.getByRole("button", { name: "Add endpoint" }).click();
  const hook = page.locator(".webhook", { hasText: hookUrl });
  const secret = await hook.locator(".webhook-secret .secret").textContent();
  if (!secret?.startsWith("whsec_")) fail(`the new endpoint's secret reads ${JSON.stringify(secret)}`);
  writeFileSync(env("WEBHOOK_SECRETS_FILE"), secret);
  step("a webhook endpoint added (a bad URL refused first); its secret shown once");

  // A new video.
  const title = `Studio upload (${env("RUNTIME")})`;
  await page.getByText("Create a video, then upload its file").click();
  const form = page.locator("#new-video-form");
  await form.getByLabel("Title").fill(title);
  await form.getByLabel("Description").fill("Uploaded by the browser test <b>as text</b>.");
  await form.getByLabel("Tags").fill("test, upload");
  await form.getByRole("button", { name: "Create video" }).click();
  const row = page.locator(".video-row", { hasText: title });
  await row.waitFor();
  const id = await row.getAttribute("data-id");
  if ((await row.getAttribute("data-state")) !== "uploading") fail("a new video should wait for its file");
  step(`created ${id}, waiting for its file`);
  await creator.axe("studio");
  await creator.shot("studio");

  // Requests to the upload URLs go through here: a PATCH past the first chunk is held while
  // `hold` is set (the creator pauses, or reloads, meanwhile); everything else goes on.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Fetch.enable", { patterns: [{ urlPattern: "*/uploads/tus/*" }] });
  let hold = true;
  const held = [];
  const offsets = [];
  const preflights = [];
  cdp.on("Fetch.requestPaused", (e) => {
    const r = e.request;
    const header = (k) => Object.entries(r.headers).find(([n]) => n.toLowerCase() === k)?.[1];
    if (r.method === "OPTIONS") preflights.push(r.url);
    if (r.method === "PATCH") {
      const offset = Number(header("upload-offset"));
      offsets.push(offset);
      if (hold && offset > 0) {
        held.push({ id: e.requestId, offset });
        return;
      }
    }
    cdp.send("Fetch.continueRequest", { requestId: e.requestId }).catch(() => {});
  });
  const release = async () => {
    for (const h of held.splice(0)) {
      await cdp.send("Fetch.failRequest", { requestId: h.id, errorReason: "Aborted" }).catch(() => {});
    }
  };
  const heldCount = async (n) => {
    const until = Date.now() + 30_000;
    while (held.length < n) {
      if (Date.now() > until) {
        const said = await page.locator(".upload-status").allTextContents();
        fail(`no PATCH past the first chunk was held (offsets sent: ${offsets.join(", ")}; the page says: ${said.join(" | ")}; ${trouble.join("; ")})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  // Upload: the first chunk goes, the second is held; the creator pauses.
  const status = row.locator(".upload-status");
  await row.getByLabel("Video file").setInputFiles(file);
  await heldCount(1);
  if (held[0].offset !== CHUNK) fail(`the second PATCH starts at ${held[0].offset}, not ${CHUNK}`);
  await row.getByRole("button", { name: "Pause upload" }).click();
  await status.filter({ hasText: "Paused" }).waitFor();
  step(`first chunk sent (${CHUNK} of ${size} bytes), paused: "${await status.textContent()}"`);
  await release();

  // Resumed: the origin says how much it has and the next PATCH starts there.
  await row.getByRole("button", { name: "Resume upload" }).click();
  await heldCount(1);
  if (held[0].offset !== CHUNK) fail(`resumed at ${held[0].offset}, not at the origin's ${CHUNK}`);
  step(`resumed from the origin's offset ${held[0].offset}`);

  // Reloaded mid-upload: the page knows the unfinished upload; the same file, chosen again,
  // continues where it stopped.
  await page.reload();
  await release();
  hold = false;
  const again = page.locator(`.video-row[data-id="${id}"]`);
  await again.locator(".resume-note", { hasText: basename(file) }).waitFor();
  step(`after a reload: "${await again.locator(".resume-note").textContent()}"`);
  const before = offsets.length;
  await again.getByLabel("Video file").setInputFiles(file);
  await again.locator(".upload-status", { hasText: "Uploaded" }).waitFor({ timeout: 60_000 });
  const after = offsets.slice(before);
  if (after[0] !== CHUNK) fail(`after the reload the upload went from ${after[0]}, not ${CHUNK} (offsets ${after})`);
  if (!preflights.length) fail("no CORS preflight reached the origin");
  step(`uploaded: after the reload it went on from ${after[0]} (${preflights.length} preflights answered by the origin)`);
  await cdp.send("Fetch.disable");

  // Transcoding, live, to ready: one bar per rendition.
  const renditions = again.locator(".renditions li");
  await renditions.first().waitFor({ timeout: 60_000 });
  await creator.shot("studio-transcoding");
  await page.locator(`.video-row[data-id="${id}"][data-state="ready"]`).waitFor({ timeout: 180_000 });
  const ladder = await renditions.evaluateAll((li) => li.map((l) => `${l.dataset.rendition} ${l.dataset.state}`));
  if (ladder.join(", ") !== "240p done, 360p done") fail(`renditions at the end: ${ladder.join(", ")}`);
  step(`transcoding followed live to ready: ${ladder.join(", ")}`);
  await creator.shot("studio-ready");

  // Every field edited, and kept.
  const ready = page.locator(`.video-row[data-id="${id}"]`);
  await ready.getByText("Edit details").click();
  const edit = ready.locator("form");
  const newTitle = `${title}, edited`;
  await edit.getByLabel("Title").fill(newTitle);
  await edit.getByLabel("Description").fill("Edited in the studio.");
  await edit.getByLabel("Visibility").selectOption("public");
  await edit.getByLabel("Category").fill("tests");
  await edit.getByLabel("Tags").fill("test, edited");
  await edit.getByLabel("Where it plays").selectOption("deny");
  await edit.getByLabel("Countries").fill("fr, be");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await edit.locator(".form-problem", { hasText: "Saved." }).waitFor();
  await page.reload();
  const kept = page.locator(`.video-row[data-id="${id}"]`);
  await kept.locator(".video-title", { hasText: newTitle }).waitFor();
  await kept.getByText("Edit details").click();
  const values = await kept.locator("form").evaluate((f) =>
    Object.fromEntries([...f.elements].filter((e) => e.name).map((e) => [e.name, e.value])),
  );
  const want = { category: "tests", tags: "test, edited", "countries-mode": "deny", countries: "FR, BE", description: "Edited in the studio." };
  for (const [k, v] of Object.entries(want)) if (values[k] !== v) fail(`${k} is ${JSON.stringify(values[k])} after a reload, not ${JSON.stringify(v)}`);
  step("every field edited and kept across a reload");

  // It plays on its watch page, for anyone: a viewer follows the studio's link. (A context of
  // its own, whose requests say the viewer's country as the CDN in front of a Spin edge would;
  // the creator's context sends no such header, see above.)
  const href = await kept.getByRole("link", { name: "Watch" }).getAttribute("href");
  if (href !== `/watch?v=${id}`) fail(`the Watch link goes to ${href}`);
  const viewer = await user();
  await viewer.page.goto(`${base}${href}`);
  await viewer.page.locator("#title", { hasText: newTitle }).waitFor();
  await viewer.page.waitForFunction(() => document.querySelector("#video")?.currentTime >= 1, null, { timeout: 30_000 });
  step("the uploaded video plays on /watch");
  await viewer.cspClean("watch (the uploaded video)");
  await viewer.ctx.close();

  // A video deleted, after its confirmation.
  await page.goto(`${base}/studio`);
  await page.getByText("Create a video, then upload its file").click();
  await page.locator("#new-video-form").getByLabel("Title").fill("To be deleted");
  await page.locator("#new-video-form").getByRole("button", { name: "Create video" }).click();
  const doomed = page.locator(".video-row", { hasText: "To be deleted" });
  await doomed.getByRole("button", { name: "Delete video" }).click();
  await doomed.getByRole("button", { name: "Keep it" }).click();
  await doomed.getByRole("button", { name: "Delete video" }).click();
  await doomed.getByRole("button", { name: "Delete for good" }).click();
  await doomed.waitFor({ state: "detached" });
  await page.reload();
  await page.locator("#videos .video-row").first().waitFor();
  if (await page.locator(".video-row", { hasText: "To be deleted" }).count()) fail("the deleted video is still listed");
  step("a video deleted after its confirmation, and gone after a reload");

  // The endpoint's delivery log: the uploaded video's events delivered, one sent again, the
  // secret rotated, the endpoint deleted.
  await hook.getByText("Deliveries").click();
  const readyLine = hook.locator('tr[data-state="delivered"]', { hasText: "video.ready" }).filter({ hasText: id });
  const refreshUntil = async (what, found) => {
    const until = Date.now() + 60_000;
    while (!(await found())) {
      if (Date.now() > until) fail(`the delivery log never showed ${what}: ${await hook.locator(".delivery-log").textContent()}`);
      await hook.getByRole("button", { name: "Refresh" }).click();
      await page.waitForTimeout(500);
    }
  };
  await refreshUntil(`${id}'s video.ready delivered`, async () => (await readyLine.count()) === 1);
  const event = await readyLine.getAttribute("data-event");
  await readyLine.getByRole("button", { name: "Send again" }).click();
  const line = hook.locator(`tr[data-event="${event}"]`);
  await refreshUntil("the event delivered again", async () =>
    (await line.getAttribute("data-state")) === "delivered" && (await line.locator("td").nth(3).textContent()) === "2");
  step(`the delivery log shows ${await hook.locator("tbody tr").count()} deliveries; ${event} sent again`);
  await creator.axe("studio (webhooks)");
  await hook.scrollIntoViewIfNeeded();
  await creator.shot("studio-webhooks");
  await hook.getByRole("button", { name: "Rotate secret" }).click();
  const rotated = await hook.locator(".webhook-secret", { hasText: "New signing secret" }).locator(".secret").textContent();
  if (!rotated?.startsWith("whsec_") || rotated === secret) fail(`the rotated secret reads ${JSON.stringify(rotated)}`);
  await hook.getByRole("button", { name: "Delete endpoint" }).click();
  await hook.getByRole("button", { name: "Delete for good" }).click();
  await hook.waitFor({ state: "detached" });
  step("the secret rotated, the endpoint deleted");

  // Channels: created, renamed, deleted.
  const channelName = `Second channel (${env("RUNTIME")})`;
  await page.getByText("New channel", { exact: true }).click();
  const add = page.locator("#new-channel");
  await add.getByLabel("Channel name").fill(channelName);
  await add.getByLabel("About the channel").fill("Made by the test.");
  await add.getByRole("button", { name: "Create channel" }).click();
  const channel = page.locator(".studio-channel", { hasText: channelName });
  await channel.waitFor();
  await channel.getByText("Edit channel").click();
  await channel.getByLabel("Channel name").fill(`${channelName}, renamed`);
  await channel.getByRole("button", { name: "Save channel" }).click();
  const renamed = page.locator(".studio-channel", { hasText: `${channelName}, renamed` });
  await renamed.waitFor();
  await renamed.getByRole("button", { name: "Delete channel" }).click();
  await renamed.getByRole("button", { name: "Delete for good" }).click();
  await renamed.waitFor({ state: "detached" });
  step("a channel created, renamed and deleted");

  await creator.axe("studio (after the walk)");
  await page.setViewportSize({ width: 390, height: 844 });
  await creator.shot("studio-phone");
  await creator.cspClean("studio");
  headersOnEverything(creator, ["/studio", "/assets/studio.js", "/assets/app.css"]);
  console.log("STUDIO OK");
} finally {
  await browser.close();
}
