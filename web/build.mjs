// Builds the web app into web/dist (git-ignored), the folder both edges serve:
//   *.html       each page of pages/ inside pages/layout.html
//   assets/*.js  one esbuild bundle per page (ES modules, minified); assets/hls.js is hls.js's
//                own light build, loaded by the watch page alone; assets/uplot.js is uPlot's
//                own build, loaded by the statistics of the studio and the admin page;
//                assets/vast.js is vast-client's, loaded by the watch page when an ad is served
//   assets/app.css, _headers (the security headers, see static/_headers)
// Run by scripts/build.sh: `node web/build.mjs`.
import { build } from "esbuild";
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const require = createRequire(import.meta.url);

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });

const layout = readFileSync(join(here, "pages/layout.html"), "utf8");
const entries = [];
for (const file of readdirSync(join(here, "pages"))) {
  if (file === "layout.html" || !file.endsWith(".html")) continue;
  const src = readFileSync(join(here, "pages", file), "utf8");
  const title = /<!-- title: (.*?) -->/.exec(src)?.[1];
  const scripts = /<!-- scripts: (.*?) -->/.exec(src)?.[1].split(/\s+/);
  if (!title || !scripts) throw new Error(`${file}: needs <!-- title: … --> and <!-- scripts: … -->`);
  const body = src.replace(/<!-- (title|scripts): .*? -->\n/g, "");
  const tags = scripts.map((s) =>
    s === "hls"
      ? // Fetched from the start, run when the page's script asks for it (web/src/player.ts, loadHls),
        // so the page's own requests do not wait for hls.js to be parsed.
        `<link rel="preload" href="/assets/hls.js" as="script">`
      : `<script type="module" src="/assets/${s}.js"></script>`,
  );
  for (const s of scripts) if (s !== "hls") entries.push(s);
  const html = layout
    .replace("{{title}}", title)
    .replace("{{scripts}}", tags.join("\n"))
    .replace("{{body}}", body.trim());
  writeFileSync(join(dist, file), html);
}

await build({
  entryPoints: Object.fromEntries(entries.map((e) => [e, join(here, "src", `${e}.ts`)])),
  outdir: join(dist, "assets"),
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  // tus-js-client points bundlers at a Babel build down to ES5 (its helpers in every module);
  // the same code as written (lib/, shipped in the package) is less than half the size minified.
  alias: { "tus-js-client": "tus-js-client/lib/browser/index.js" },
  logLevel: "warning",
});
await build({
  entryPoints: [join(here, "static/app.css")],
  outfile: join(dist, "assets/app.css"),
  // One file: app.css imports uPlot's stylesheet (the studio's charts).
  bundle: true,
  minify: true,
  logLevel: "warning",
});
cpSync(require.resolve("hls.js/dist/hls.light.min.js"), join(dist, "assets/hls.js"));
// The studio's and the admin page's charts, loaded when drawn (web/src/studio-stats.ts).
cpSync(require.resolve("uplot/dist/uPlot.iife.min.js"), join(dist, "assets/uplot.js"));
// The pre-roll's VAST reader, imported when the edge serves an ad (web/src/ads.ts).
cpSync(require.resolve("@dailymotion/vast-client/dist/vast-client.min.js"), join(dist, "assets/vast.js"));
cpSync(join(here, "static/_headers"), join(dist, "_headers"));
console.log(`[web] built ${dist}`);
