// One row of the studio's video list: the video's state, its upload (tus) or transcoding, the
// edit form and the delete button with its confirmation.
import { seg } from "./api";
import { clock, date, h, replace } from "./dom";
import { deleteVideo, editVideo, MyChannel, MyVideo, VideoState } from "./studio-api";
import { describe } from "./gate";
import { deleteWithConfirmation, videoForm } from "./studio-form";
import { watchTranscode } from "./studio-transcode";
import { formatBytes, StudioUpload, Unfinished } from "./studio-upload";

const STATES: Record<VideoState, string> = {
  uploading: "Waiting for its file",
  processing: "Processing",
  ready: "Ready",
  failed: "Failed",
};
const VISIBILITY: Record<string, string> = { public: "Public", members: "Members only", private: "Private" };
const ACCEPT = "video/mp4,video/quicktime,video/webm,video/x-matroska,video/mp2t,.mp4,.mov,.webm,.mkv,.ts";

export interface RowHost {
  channels(): MyChannel[];
  /** Says something in the page's live region. */
  announce(message: string): void;
  removed(id: string): void;
}

export class VideoRow {
  readonly el: HTMLLIElement;
  private readonly badge = h("span", { class: "badge" });
  private readonly heading = h("h3", { class: "video-title" });
  private readonly meta = h("p", { class: "meta" });
  private readonly body = h("div", { class: "row-body" });
  private watching = false;

  constructor(
    private video: MyVideo,
    private readonly host: RowHost,
    private readonly unfinished?: Unfinished,
  ) {
    this.el = h("li", { class: "video-row", "data-id": video.id });
    const edit = h("details", { class: "edit" }, h("summary", {}, "Edit details"));
    edit.addEventListener("toggle", () => {
      if (edit.open) this.editForm(edit);
    });
    const danger = deleteWithConfirmation(
      "Delete video",
      () => `Delete “${this.video.title}” for good? Its file and every rendition go with it.`,
      async () => {
        await deleteVideo(this.video.id);
        this.el.remove();
        this.host.removed(this.video.id);
        this.host.announce(`Deleted “${this.video.title}”.`);
      },
    );
    this.el.append(h("div", { class: "row-head" }, this.heading, this.badge), this.meta, this.body, edit, danger);
    this.render();
  }

  /** The row from the video: its head always, its body unless `keepBody`. */
  private render(keepBody = false): void {
    const v = this.video;
    this.el.dataset.state = v.state;
    this.heading.textContent = v.title;
    this.badge.textContent = v.taken_down ? `${STATES[v.state]} · Taken down` : STATES[v.state];
    this.badge.dataset.state = v.state;
    const parts = [VISIBILITY[v.visibility] ?? v.visibility, `created ${date(v.created_at)}`];
    if (v.duration_ms) parts.push(clock(v.duration_ms / 1000));
    this.meta.textContent = parts.join(" · ");
    if (keepBody) return;
    if (v.state === "uploading") this.uploadArea();
    else if (v.state === "ready") replace(this.body, ...this.readyNotes());
    else this.transcoding();
  }

  private readyNotes(): HTMLElement[] {
    const v = this.video;
    const link = h("a", { href: `/watch?v=${seg(v.id)}`, class: "watch-link" }, "Watch");
    if (!v.taken_down) return [link];
    return [link, h("p", { class: "form-problem" }, "An admin took this video down: nobody can watch it.")];
  }

  /** Follows the transcoding (after `lead`, e.g. the upload's last word) until it ends. */
  private transcoding(lead?: HTMLElement): void {
    if (this.watching) return;
    this.watching = true;
    const box = h("div", { class: "transcode", "aria-live": "polite" });
    replace(this.body, lead, box);
    void watchTranscode(this.video.id, box, this.video.title).then((state) => {
      this.watching = false;
      if (state === this.video.state) return;
      this.video = { ...this.video, state };
      this.render(true);
      // Ready: the Watch link above the finished bars; failed: the bars say why.
      if (state === "ready") {
        this.body.prepend(...this.readyNotes());
        this.host.announce(`“${this.video.title}” is ready to watch.`);
      }
    });
  }

  private uploadArea(): void {
    const v = this.video;
    const id = `file-${v.id}`;
    const input = h("input", { type: "file", id, accept: ACCEPT });
    const bar = h("progress", { max: 100, value: 0, hidden: true, "aria-label": `Upload of ${v.title}` });
    const status = h("p", { class: "upload-status", role: "status" });
    const pause = h("button", { type: "button", class: "pause", hidden: true }, "Pause upload");
    const resume = h("button", { type: "button", class: "resume", hidden: true }, "Resume upload");
    const note = this.unfinished
      ? h(
          "p",
          { class: "hint resume-note" },
          `An upload of “${this.unfinished.name}” (${formatBytes(this.unfinished.size)}) stopped before it finished: choose that file again to continue where it stopped.`,
        )
      : null;
    replace(
      this.body,
      h("div", { class: "upload" }, h("label", { for: id }, "Video file"), input, note, bar, status, h("div", { class: "buttons" }, pause, resume)),
    );
    let upload: StudioUpload | null = null;
    input.onchange = () => {
      const file = input.files?.[0];
      if (!file) return;
      input.disabled = true;
      status.textContent = "Starting the upload…";
      upload = new StudioUpload(v.id, file, {
        progress: (sent, total) => {
          bar.hidden = false;
          bar.value = total ? Math.floor((sent / total) * 100) : 0;
          bar.dataset.sent = String(sent);
          status.textContent = `Uploading: ${formatBytes(sent)} of ${formatBytes(total)} (${bar.value}%)`;
          pause.hidden = false;
        },
        paused: (on) => {
          pause.hidden = on;
          resume.hidden = !on;
          if (on) status.textContent = `Paused at ${bar.value}%. What was sent stays on the server.`;
        },
        done: () => {
          this.host.announce(`“${v.title}” is uploaded.`);
          this.video = { ...this.video, state: "processing" };
          this.render(true);
          this.transcoding(h("p", { class: "upload-status" }, "Uploaded. Transcoding follows."));
        },
        failed: (message) => {
          status.textContent = message;
          pause.hidden = true;
          resume.hidden = false;
          input.disabled = false;
        },
      });
      void upload.start();
    };
    pause.onclick = () => void upload?.pause();
    resume.onclick = () => {
      if (upload) {
        status.textContent = "Resuming…";
        upload.resume();
      }
    };
  }

  private editForm(box: HTMLDetailsElement): void {
    if (box.querySelector("form")) return;
    const f = videoForm("Save changes", this.host.channels(), this.video);
    f.form.onsubmit = async (e) => {
      e.preventDefault();
      const changes = f.changes(this.video);
      if (typeof changes === "string") return;
      if (!Object.keys(changes).length) {
        f.say("Nothing changed.");
        return;
      }
      try {
        await editVideo(this.video.id, changes);
      } catch (err) {
        f.say(describe(err));
        return;
      }
      const { channel, ...rest } = changes;
      this.video = { ...this.video, ...rest, ...(channel ? { channel_id: channel } : {}) };
      this.render();
      f.say("Saved.");
      this.host.announce(`Saved “${this.video.title}”.`);
    };
    box.appendChild(f.form);
  }

}
