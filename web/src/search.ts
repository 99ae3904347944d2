// Search results: `/search?q=…`.
import "./nav";
import { seg } from "./api";
import { byId } from "./dom";
import { pagedList } from "./list";

const q = (new URLSearchParams(location.search).get("q") ?? "").trim();
const field = byId<HTMLInputElement>("q");
field.value = q;
const heading = byId("results-heading");
if (q) {
  heading.textContent = `Results for “${q}”`;
  document.title = `${q} – search – edge-video`;
  void pagedList(byId("results"), `/v1/search?q=${seg(q)}`, "No videos match.");
} else {
  heading.textContent = "Search";
  field.focus();
}
