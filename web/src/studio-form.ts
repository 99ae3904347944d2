// The video form of the studio, for a new video and for editing one: every field the API takes,
// checked here as the origin checks them (origin/src/routes/videos.rs), so most mistakes are
// named beside their field before a request is sent; the origin's answer is shown otherwise.
import { h, replace } from "./dom";
import { describe } from "./gate";
import { CountryRule, MyChannel, MyVideo, VideoFields, Visibility } from "./studio-api";

const SLUG = /^[a-z0-9-]{1,32}$/;
const COUNTRY = /^[A-Z]{2}$/;
const MAX_TITLE = 200;
const MAX_DESCRIPTION = 5000;
const MAX_TAGS = 10;
const MAX_COUNTRIES = 250;

let forms = 0;

export interface VideoForm {
  form: HTMLFormElement;
  /** The fields as the API takes them, or the first problem (and its field focused). */
  read(): VideoFields | string;
  /** Only the fields that differ from `v`. */
  changes(v: MyVideo): VideoFields | string;
  /** Shows a problem the origin found (or clears it with ""). */
  say(message: string): void;
}

function field(id: string, label: string, control: HTMLElement, hint?: string): HTMLElement {
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "form-field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
  );
}

function options(select: HTMLSelectElement, list: [string, string][], chosen: string): void {
  for (const [value, text] of list) select.appendChild(h("option", { value, selected: value === chosen }, text));
}

/** A form for `v` (or a new video), with `channels` to choose from. */
export function videoForm(submitLabel: string, channels: MyChannel[], v?: MyVideo): VideoForm {
  const n = ++forms;
  const id = (s: string): string => `vf${n}-${s}`;
  const title = h("input", { id: id("title"), name: "title", required: true, maxlength: MAX_TITLE, autocomplete: "off" });
  title.value = v?.title ?? "";
  const description = h("textarea", { id: id("description"), name: "description", maxlength: MAX_DESCRIPTION, rows: 3 });
  description.value = v?.description ?? "";
  const visibility = h("select", { id: id("visibility"), name: "visibility" });
  options(
    visibility,
    [
      ["public", "Public"],
      ["members", "Members only"],
      ["private", "Private"],
    ],
    v?.visibility ?? "public",
  );
  const channel = h("select", { id: id("channel"), name: "channel" });
  options(
    channel,
    channels.map((c) => [c.id, c.name]),
    v?.channel_id ?? channels[0]?.id ?? "",
  );
  const category = h("input", { id: id("category"), name: "category", autocomplete: "off", maxlength: 32 });
  category.value = v?.category ?? "";
  const tags = h("input", { id: id("tags"), name: "tags", autocomplete: "off" });
  tags.value = (v?.tags ?? []).join(", ");
  const mode = h("select", { id: id("countries-mode"), name: "countries-mode" });
  options(
    mode,
    [
      ["", "Everywhere"],
      ["allow", "Only in the countries listed"],
      ["deny", "Everywhere except the countries listed"],
    ],
    v?.countries?.mode ?? "",
  );
  const countries = h("input", { id: id("countries"), name: "countries", autocomplete: "off" });
  countries.value = (v?.countries?.list ?? []).join(", ");
  const problem = h("p", { class: "form-problem", role: "alert" });
  const form = h(
    "form",
    { class: "video-form", novalidate: true },
    field(id("title"), "Title", title),
    field(id("description"), "Description", description),
    field(id("visibility"), "Visibility", visibility),
    channels.length ? field(id("channel"), "Channel", channel) : null,
    field(id("category"), "Category", category, "One word: a–z, 0–9 and -, e.g. music. Leave empty for none."),
    field(id("tags"), "Tags", tags, `Up to ${MAX_TAGS}, separated by commas; each a–z, 0–9 and -.`),
    field(id("countries-mode"), "Where it plays", mode),
    field(id("countries"), "Countries", countries, "Two-letter codes separated by commas, e.g. FR, DE."),
    problem,
    h("button", { type: "submit" }, submitLabel),
  );

  const fail = (el: HTMLElement, message: string): string => {
    problem.textContent = message;
    el.setAttribute("aria-invalid", "true");
    el.focus();
    return message;
  };
  const read = (): VideoFields | string => {
    problem.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const t = title.value.trim();
    if (!t || [...t].length > MAX_TITLE) return fail(title, `The title needs 1 to ${MAX_TITLE} characters.`);
    if ([...description.value].length > MAX_DESCRIPTION) return fail(description, `The description is longer than ${MAX_DESCRIPTION} characters.`);
    const cat = category.value.trim();
    if (cat && !SLUG.test(cat)) return fail(category, "The category is one word of a–z, 0–9 and - (at most 32).");
    const tagList = [...new Set(split(tags.value))];
    if (tagList.length > MAX_TAGS || tagList.some((t) => !SLUG.test(t))) {
      return fail(tags, `Tags: at most ${MAX_TAGS}, each of a–z, 0–9 and - (at most 32).`);
    }
    let rule: CountryRule | null = null;
    if (mode.value) {
      const list = [...new Set(split(countries.value).map((c) => c.toUpperCase()))];
      if (!list.length || list.length > MAX_COUNTRIES || list.some((c) => !COUNTRY.test(c))) {
        return fail(countries, "List the countries as two-letter codes, e.g. FR, DE.");
      }
      rule = { mode: mode.value as CountryRule["mode"], list };
    }
    return {
      title: t,
      description: description.value,
      visibility: visibility.value as Visibility,
      category: cat || null,
      tags: tagList,
      countries: rule,
      ...(channels.length ? { channel: channel.value } : {}),
    };
  };
  const changes = (v: MyVideo): VideoFields | string => {
    const f = read();
    if (typeof f === "string") return f;
    const out: VideoFields = {};
    if (f.title !== v.title) out.title = f.title;
    if (f.description !== v.description) out.description = f.description;
    if (f.visibility !== v.visibility) out.visibility = f.visibility;
    if (f.category !== v.category) out.category = f.category;
    if (JSON.stringify(f.tags) !== JSON.stringify(v.tags)) out.tags = f.tags;
    if (JSON.stringify(f.countries) !== JSON.stringify(v.countries)) out.countries = f.countries;
    if (f.channel !== undefined && f.channel !== v.channel_id) out.channel = f.channel;
    return out;
  };
  const say = (message: string): void => {
    problem.textContent = message;
  };
  return { form, read, changes, say };
}

function split(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

/**
 * A delete button that asks first: `question()` beside "Delete for good" and "Keep it"; the
 * first runs `remove()`, whose failure is said beside the buttons.
 */
export function deleteWithConfirmation(label: string, question: () => string, remove: () => Promise<void>): HTMLElement {
  const box = h("div", { class: "delete-area" });
  const ask = h("button", { type: "button", class: "delete" }, label);
  ask.onclick = () => {
    const sure = h("button", { type: "button", class: "delete-confirm" }, "Delete for good");
    const keep = h("button", { type: "button" }, "Keep it");
    const problem = h("p", { class: "form-problem", role: "alert" });
    replace(box, h("p", { role: "alert" }, question()), h("div", { class: "buttons" }, sure, keep), problem);
    sure.focus();
    keep.onclick = () => {
      replace(box, ask);
      ask.focus();
    };
    sure.onclick = async () => {
      sure.disabled = true;
      try {
        await remove();
      } catch (e) {
        problem.textContent = describe(e);
        sure.disabled = false;
      }
    };
  };
  replace(box, ask);
  return box;
}
