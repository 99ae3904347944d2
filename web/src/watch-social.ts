// The watch page's community features: like and dislike with their counts, subscribing to the
// video's channel, and comments (paged; write, reply, edit and delete one's own). Replies sit
// under their comment when it is on the page (the API lists oldest first, so a reply's comment
// comes before it). Signed out, every control is a link to sign in. Everything a user wrote goes
// in as text (dom.ts).
import { reportControl } from "./report";
import { ApiError, Comment, CommentPage, seg, VideoDetails, withQuery } from "./api";
import { append, byId, date, h, plural, replace } from "./dom";
import { authJson, signInHref, User, viewerJson } from "./session";

/** The longest comment the API takes, in characters. */
const MAX_COMMENT = 2000;

type Reaction = "like" | "dislike" | "none";

/** A sentence for the viewer about a failed `doing` ("post your comment"). */
export function explain(e: unknown, doing: string): string {
  if (!(e instanceof ApiError)) return `Could not ${doing}. Try again.`;
  switch (e.status) {
    case 0:
      return `Could not ${doing}: the server could not be reached. Check your connection and try again.`;
    case 401:
      return `Your session has ended. Sign in again to ${doing}.`;
    case 403:
      if (e.code === "not_author") return "Only its author can change this comment.";
      if (e.code === "entitlement_required" || e.reason === "entitlement_required")
        return `Only the channel's members can ${doing}.`;
      return `You may not ${doing}.`;
    case 404:
      return `Could not ${doing}: it no longer exists. Reload the page.`;
    case 413:
      return `Could not ${doing}: it is too long.`;
    case 422: {
      // A field error: "body: 1 to 2000 characters".
      const what = e.message.replace(/^body: /, "");
      return what === e.message ? `Could not ${doing}: ${e.message}.` : `A comment must be ${what}.`;
    }
    case 429:
      return `Too many requests. Wait a moment, then ${doing} again.`;
    case 451:
      return `This video is no longer available, so you cannot ${doing}.`;
    default:
      return `Could not ${doing} (${e.message}). Try again.`;
  }
}

/** A link that invites a signed-out viewer to sign in, dressed as the control it stands for. */
function signInLink(text: string, why: string): HTMLAnchorElement {
  return h("a", { class: "button", href: signInHref() }, text, h("span", { class: "visually-hidden" }, ` (${why})`));
}

/**
 * Runs `task` unless one is already under way for `el`, marking `el` busy meanwhile. The control
 * stays enabled (and keeps the keyboard focus); a second press while busy does nothing.
 */
async function once(el: HTMLElement, task: () => Promise<void>): Promise<void> {
  if (el.getAttribute("aria-busy") === "true") return;
  el.setAttribute("aria-busy", "true");
  try {
    await task();
  } finally {
    el.removeAttribute("aria-busy");
  }
}

function count(n: number): string {
  return n.toLocaleString("en");
}

/** Like and dislike, in `#reactions`. */
export function reactions(v: VideoDetails, me: User | null): void {
  const box = byId("reactions");
  let likes = v.likes;
  let dislikes = v.dislikes;
  if (!me) {
    replace(
      box,
      signInLink(`Like ${count(likes)}`, "sign in to like this video"),
      signInLink(`Dislike ${count(dislikes)}`, "sign in to dislike this video"),
    );
    return;
  }
  let mine: Reaction = (v.viewer?.reaction as Reaction | undefined) ?? "none";
  const like = h("button", { type: "button", id: "like", class: "toggle" });
  const dislike = h("button", { type: "button", id: "dislike", class: "toggle" });
  const error = h("p", { id: "reaction-error", class: "error", role: "alert" });
  const draw = (): void => {
    replace(like, "Like ", h("span", { class: "count" }, count(likes)));
    replace(dislike, "Dislike ", h("span", { class: "count" }, count(dislikes)));
    like.setAttribute("aria-pressed", String(mine === "like"));
    dislike.setAttribute("aria-pressed", String(mine === "dislike"));
  };
  const press = (which: "like" | "dislike"): Promise<void> =>
    once(box, async () => {
      const value: Reaction = mine === which ? "none" : which;
      error.textContent = "";
      try {
        const counts = await authJson<{ likes: number; dislikes: number }>("PUT", `/v1/videos/${seg(v.id)}/reaction`, { value });
        likes = counts.likes;
        dislikes = counts.dislikes;
        mine = value;
      } catch (e) {
        error.textContent = explain(e, which === "like" ? "like this video" : "dislike this video");
      }
      draw();
    });
  like.addEventListener("click", () => void press("like"));
  dislike.addEventListener("click", () => void press("dislike"));
  draw();
  replace(box, like, dislike, error);
}

/** The subscribe button and subscriber count of the video's channel, in `#subscription`. */
export function subscription(v: VideoDetails, me: User | null): void {
  const box = byId("subscription");
  if (!v.channel_id) {
    box.hidden = true;
    return;
  }
  const channel = v.channel_id;
  let subscribers = v.subscribers;
  const shown = h("span", { id: "subscribers" });
  const drawCount = (): void => {
    shown.textContent = plural(subscribers, "subscriber", "subscribers");
  };
  drawCount();
  if (!me) {
    replace(box, signInLink("Subscribe", "Sign in to subscribe to this channel"), " ", shown);
    return;
  }
  let subscribed = v.viewer?.subscribed ?? false;
  const button = h("button", { type: "button", id: "subscribe", class: "toggle" }, "Subscribe");
  const error = h("p", { id: "subscribe-error", class: "error", role: "alert" });
  const draw = (): void => {
    button.setAttribute("aria-pressed", String(subscribed));
    drawCount();
  };
  button.addEventListener("click", () => {
    void once(button, async () => {
      error.textContent = "";
      const want = !subscribed;
      try {
        await authJson(want ? "PUT" : "DELETE", `/v1/channels/${seg(channel)}/subscription`);
        if (want !== subscribed) subscribers = Math.max(0, subscribers + (want ? 1 : -1));
        subscribed = want;
      } catch (e) {
        error.textContent = explain(e, want ? "subscribe" : "unsubscribe");
      }
      draw();
    });
  });
  draw();
  replace(box, button, " ", shown, error);
}

/** A comment's text as the API takes it, or why not. */
function checkComment(text: string): string | null {
  const t = text.trim();
  if (!t) return "Write something first.";
  if ([...t].length > MAX_COMMENT) return `A comment must be 1 to ${MAX_COMMENT} characters; this one has ${[...t].length}.`;
  return null;
}

/** The comment in `input`, trimmed; or null, after saying in `error` what is wrong with it. */
function commentOf(input: HTMLTextAreaElement, error: HTMLElement): string | null {
  const bad = checkComment(input.value);
  if (!bad) return input.value.trim();
  error.textContent = bad;
  input.focus();
  return null;
}

/** A textarea with its visible label and a live character count. */
function textField(id: string, label: string, value = ""): { field: HTMLElement; input: HTMLTextAreaElement } {
  const input = h("textarea", { id, name: "body", rows: 3, maxlength: MAX_COMMENT, required: true });
  input.value = value;
  const hint = h("span", { class: "hint", id: `${id}-count` });
  const update = (): void => {
    hint.textContent = `${[...input.value].length} / ${MAX_COMMENT}`;
  };
  input.setAttribute("aria-describedby", hint.id);
  input.addEventListener("input", update);
  update();
  return { field: h("div", { class: "field" }, h("label", { for: id }, label), input, hint), input };
}

/** The comments section: the list (paged), the form to write one, a reply form on each, and one's
 * own to edit or delete. */
export async function comments(v: VideoDetails, me: User | null): Promise<void> {
  const list = byId("comments");
  const status = byId("comments-status");
  const more = byId<HTMLButtonElement>("comments-more");
  const countShown = byId("comment-count");
  let total = v.comments;
  /** Each comment shown, by id: where its replies go. */
  const shown = new Map<string, HTMLLIElement>();
  const recount = (delta: number): void => {
    total = Math.max(0, total + delta);
    countShown.textContent = plural(total, "comment", "comments");
    status.textContent = list.children.length ? "" : "No comments yet.";
  };

  /** The "Reply" button of comment `c` and the box its form opens in. */
  const replying = (c: Comment): { button: HTMLButtonElement; box: HTMLElement } => {
    const box = h("div", { class: "comment-reply", id: `reply-box-${c.id}` });
    const button = h("button", { type: "button", class: "reply", "aria-expanded": "false", "aria-controls": box.id }, "Reply");
    const close = (): void => {
      replace(box);
      button.setAttribute("aria-expanded", "false");
    };
    button.addEventListener("click", () => {
      if (button.getAttribute("aria-expanded") === "true") return close();
      const { field, input } = textField(`reply-${c.id}`, "Your reply");
      const send = h("button", { type: "submit" }, "Post reply");
      const cancel = h("button", { type: "button" }, "Cancel");
      const error = h("p", { class: "error", role: "alert" });
      const form = h("form", { class: "comment-edit", novalidate: true }, field, h("div", { class: "row" }, send, cancel), error);
      cancel.addEventListener("click", () => {
        close();
        button.focus();
      });
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const text = commentOf(input, error);
        if (text === null) return;
        void once(form, async () => {
          error.textContent = "";
          try {
            const posted = await authJson<Comment>("POST", `/v1/videos/${seg(v.id)}/comments`, { body: text, reply_to: c.id });
            add([posted]);
            recount(1);
            close();
            button.focus();
            status.textContent = "Your reply was posted.";
          } catch (e) {
            error.textContent = explain(e, "post your reply");
          }
        });
      });
      replace(box, form);
      button.setAttribute("aria-expanded", "true");
      input.focus();
    });
    return { button, box };
  };

  /** Comment `c`; `under` when it is shown under the comment it answers. */
  const item = (c: Comment, under: boolean): HTMLLIElement => {
    const own = !!me && c.author_id === me.id && !c.deleted;
    const who = own ? "You" : c.author_id ? `Viewer ${c.author_id.slice(0, 8)}` : "Deleted account";
    const meta = h("p", { class: "comment-meta" });
    const body = h("p", { class: c.deleted ? "comment-body removed" : "comment-body" }, c.deleted ? "Comment removed." : c.body);
    const li = h("li", { class: "comment", id: `comment-${c.id}`, "data-own": own ? "true" : undefined }, meta, body);
    // A reply whose comment is not on the page says so, since no indent shows it.
    const replyNote = c.parent_id && !under ? " · replying to a comment" : "";
    const drawMeta = (edited: boolean, at: number): void => {
      meta.textContent = `${who}${replyNote} · ${date(at)}${edited ? " · edited" : ""}`;
    };
    drawMeta(!!c.edited_at, c.created_at);
    const reply = me && !c.deleted ? replying(c) : null;
    if (!own) {
      if (reply) append(li, h("div", { class: "comment-actions" }, reply.button), reply.box);
      if (me && !c.deleted) li.appendChild(reportControl({ comment: c.id }, "Report comment"));
      return li;
    }

    const actions = h("div", { class: "comment-actions" });
    const error = h("p", { class: "error", role: "alert" });
    let text = c.body;
    const idle = (): void => {
      const edit = h("button", { type: "button", class: "edit" }, "Edit");
      const del = h("button", { type: "button", class: "delete" }, "Delete");
      edit.setAttribute("aria-label", "Edit your comment");
      del.setAttribute("aria-label", "Delete your comment");
      edit.addEventListener("click", editing);
      del.addEventListener("click", confirming);
      replace(actions, edit, del, reply?.button);
      body.hidden = false;
    };
    const editing = (): void => {
      const { field, input } = textField(`edit-${c.id}`, "Edit your comment", text);
      const save = h("button", { type: "submit" }, "Save");
      const cancel = h("button", { type: "button" }, "Cancel");
      const form = h("form", { class: "comment-edit", novalidate: true }, field, h("div", { class: "row" }, save, cancel));
      cancel.addEventListener("click", () => {
        error.textContent = "";
        idle();
      });
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const edited = commentOf(input, error);
        if (edited === null) return;
        void (async () => {
          save.disabled = cancel.disabled = true;
          error.textContent = "";
          try {
            const saved = await authJson<Comment>("PATCH", `/v1/comments/${seg(c.id)}`, { body: edited });
            text = saved.body;
            body.textContent = saved.body;
            drawMeta(true, saved.created_at);
            idle();
            actions.querySelector<HTMLButtonElement>(".edit")?.focus();
          } catch (e) {
            error.textContent = explain(e, "save your comment");
            save.disabled = cancel.disabled = false;
          }
        })();
      });
      body.hidden = true;
      replace(actions, form);
      input.focus();
    };
    const confirming = (): void => {
      const yes = h("button", { type: "button", class: "danger" }, "Delete");
      const no = h("button", { type: "button" }, "Keep");
      yes.setAttribute("aria-label", "Yes, delete my comment");
      no.setAttribute("aria-label", "No, keep my comment");
      no.addEventListener("click", () => {
        idle();
        actions.querySelector<HTMLButtonElement>(".delete")?.focus();
      });
      yes.addEventListener("click", () => {
        void (async () => {
          yes.disabled = no.disabled = true;
          error.textContent = "";
          try {
            await authJson("DELETE", `/v1/comments/${seg(c.id)}`);
            body.textContent = "Comment removed.";
            body.className = "comment-body removed";
            body.hidden = false;
            li.removeAttribute("data-own");
            actions.remove();
            reply?.box.remove();
            recount(-1);
            status.textContent = "Your comment was deleted.";
          } catch (e) {
            error.textContent = explain(e, "delete your comment");
            yes.disabled = no.disabled = false;
          }
        })();
      });
      replace(actions, h("span", {}, "Delete this comment? "), yes, no);
      yes.focus();
    };
    idle();
    append(li, actions, error, reply?.box);
    return li;
  };

  /** The list of `li`'s replies, made when the first one comes. */
  const repliesOf = (li: HTMLLIElement): HTMLElement =>
    li.querySelector<HTMLElement>(":scope > .replies") ?? li.appendChild(h("ol", { class: "comment-list replies" }));

  const add = (items: Comment[]): void => {
    for (const c of items) {
      if (shown.has(c.id)) continue;
      const parent = c.parent_id ? shown.get(c.parent_id) : undefined;
      const li = item(c, !!parent);
      shown.set(c.id, li);
      (parent ? repliesOf(parent) : list).append(li);
    }
  };

  const load = async (cursor?: string): Promise<void> => {
    more.disabled = true;
    try {
      const path = withQuery(`/v1/videos/${seg(v.id)}/comments`, { cursor, limit: "20" });
      // With the viewer's token, a members video's comments come to its members.
      const page = await viewerJson<CommentPage>(path);
      add(page.items);
      status.textContent = list.children.length ? "" : "No comments yet.";
      more.hidden = !page.next_cursor;
      if (page.next_cursor) {
        const next = page.next_cursor;
        more.onclick = () => void load(next);
      }
    } catch (e) {
      status.textContent =
        e instanceof ApiError && (e.status === 401 || e.status === 403)
          ? "Comments on this video are for its channel's members."
          : "Comments could not be loaded.";
      more.hidden = true;
    }
    more.disabled = false;
  };

  // The form: writing needs a viewer; signed out, an invitation.
  const formBox = byId("comment-form");
  if (!me) {
    replace(formBox, h("p", { class: "sign-in" }, h("a", { href: signInHref() }, "Sign in"), " to comment, like or subscribe."));
  } else {
    const { field, input } = textField("comment-text", "Add a comment");
    const post = h("button", { type: "submit", id: "comment-post" }, "Post comment");
    const error = h("p", { id: "comment-error", class: "error", role: "alert" });
    // Checked by commentOf, which says what is wrong in the page (not a browser bubble).
    const form = h("form", { id: "comment-new", novalidate: true }, field, h("div", { class: "row" }, post), error);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = commentOf(input, error);
      if (text === null) return;
      void once(form, async () => {
        error.textContent = "";
        try {
          const c = await authJson<Comment>("POST", `/v1/videos/${seg(v.id)}/comments`, { body: text });
          add([c]);
          input.value = "";
          input.dispatchEvent(new Event("input"));
          recount(1);
          status.textContent = "Your comment was posted.";
        } catch (e) {
          error.textContent = explain(e, "post your comment");
        }
      });
    });
    replace(formBox, form);
  }
  await load();
}
