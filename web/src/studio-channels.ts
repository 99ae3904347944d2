// The studio's channels: the creator's list, each editable and deletable (the origin refuses to
// delete one that still has videos, and says so), and a form for a new one.
import { seg } from "./api";
import { h, replace } from "./dom";
import { createChannel, deleteChannel, editChannel, MyChannel } from "./studio-api";
import { describe } from "./gate";
import { deleteWithConfirmation } from "./studio-form";

const MAX_NAME = 100;
const MAX_DESCRIPTION = 5000;

let forms = 0;

interface ChannelForm {
  form: HTMLFormElement;
  name: HTMLInputElement;
  description: HTMLTextAreaElement;
  problem: HTMLElement;
}

function channelForm(label: string, c?: MyChannel): ChannelForm {
  const n = ++forms;
  const name = h("input", { id: `cf${n}-name`, required: true, maxlength: MAX_NAME, autocomplete: "off" });
  name.value = c?.name ?? "";
  const description = h("textarea", { id: `cf${n}-description`, maxlength: MAX_DESCRIPTION, rows: 2 });
  description.value = c?.description ?? "";
  const problem = h("p", { class: "form-problem", role: "alert" });
  const form = h(
    "form",
    { class: "channel-form", novalidate: true },
    h("div", { class: "form-field" }, h("label", { for: name.id }, "Channel name"), name),
    h("div", { class: "form-field" }, h("label", { for: description.id }, "About the channel"), description),
    problem,
    h("button", { type: "submit" }, label),
  );
  return { form, name, description, problem };
}

/** Checks a channel's fields as the origin does; the problem, or null. */
function invalid(name: string, description: string): string | null {
  if (!name || [...name].length > MAX_NAME) return `The name needs 1 to ${MAX_NAME} characters.`;
  if ([...description].length > MAX_DESCRIPTION) return `The description is longer than ${MAX_DESCRIPTION} characters.`;
  return null;
}

export class Channels {
  private list: MyChannel[];

  constructor(
    initial: MyChannel[],
    private readonly box: HTMLElement,
    private readonly announce: (m: string) => void,
    /** Called after any change, so the video forms offer the current channels. */
    private readonly changed: () => void,
  ) {
    this.list = [...initial];
    this.render();
  }

  all(): MyChannel[] {
    return this.list;
  }

  private render(): void {
    const items = h("ul", { class: "channel-list", id: "channels" }, ...this.list.map((c) => this.row(c)));
    const add = channelForm("Create channel");
    add.form.id = "new-channel";
    this.onSubmit(add, async (name, description) => {
      this.list.push(await createChannel(name, description));
      return `Created the channel “${name}”.`;
    });
    replace(
      this.box,
      this.list.length ? items : h("p", {}, "No channels yet: your first video gets one."),
      h("details", { class: "new-channel" }, h("summary", {}, "New channel"), add.form),
    );
  }

  /** Checks `f` as the origin does, runs `save` with its fields, says what it answers, and
   * shows the list anew; a problem is said in the form. */
  private onSubmit(f: ChannelForm, save: (name: string, description: string) => Promise<string>): void {
    f.form.onsubmit = async (e) => {
      e.preventDefault();
      const name = f.name.value.trim();
      const problem = invalid(name, f.description.value);
      if (problem) {
        f.problem.textContent = problem;
        f.name.focus();
        return;
      }
      let said: string;
      try {
        said = await save(name, f.description.value);
      } catch (err) {
        f.problem.textContent = describe(err);
        return;
      }
      this.announce(said);
      this.render();
      this.changed();
    };
  }

  private row(c: MyChannel): HTMLElement {
    const edit = channelForm("Save channel", c);
    this.onSubmit(edit, async (name, description) => {
      const saved = await editChannel(c.id, name, description);
      this.list = this.list.map((x) => (x.id === c.id ? { ...x, ...saved } : x));
      return `Saved the channel “${name}”.`;
    });
    const danger = deleteWithConfirmation(
      "Delete channel",
      () => `Delete the channel “${c.name}”? Only a channel without videos can go.`,
      async () => {
        await deleteChannel(c.id);
        this.list = this.list.filter((x) => x.id !== c.id);
        this.announce(`Deleted the channel “${c.name}”.`);
        this.render();
        this.changed();
      },
    );
    return h(
      "li",
      { class: "studio-channel", "data-id": c.id },
      h("h3", {}, h("a", { href: `/channel?id=${seg(c.id)}` }, c.name)),
      c.description ? h("p", { class: "description" }, c.description) : null,
      h("details", { class: "edit" }, h("summary", {}, "Edit channel"), edit.form),
      danger,
    );
  }
}
