// A video's file, sent with tus-js-client straight to the creator's home region (the `tus_url`
// of an upload ticket, on the origin: its CORS allows this page's origin). Pausing aborts the
// request in flight and keeps what reached the origin; resuming asks the origin how much it has
// and sends the rest. The upload's URL is kept in localStorage under a fingerprint of the video
// and the file, so after a reload the same file, chosen again, continues where it stopped.
import { defaultOptions, DetailedError, PreviousUpload, Upload } from "tus-js-client";
import { ApiError } from "./api";
import { uploadTicket } from "./studio-api";

/**
 * Bytes per PATCH. A request of its own per chunk keeps each under the request-body limits of
 * proxies and CDNs in front of an origin (Cloudflare's is 100 MB); the origin keeps partial
 * chunks too, so a chunk is not the unit of loss, only of one request.
 */
export const CHUNK_BYTES = 8 * 1024 * 1024;
/** tus-js-client retries a failed request (network, 5xx, 409 offset, 423 busy) after these waits. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
const PREFIX = "studio";

/** How the page shows one upload. */
export interface UploadView {
  progress(sent: number, total: number): void;
  paused(on: boolean): void;
  done(): void;
  failed(message: string): void;
}

/** The key tus-js-client stores the upload's URL under: the video and the file as the browser
 * describes it (name, size, time), nothing sent anywhere. */
function fingerprint(videoId: string, file: File): string {
  return [PREFIX, videoId, file.size, file.lastModified, encodeURIComponent(file.name)].join(":");
}

/** An upload of `videoId` left unfinished in this browser: the file's name and size. */
export interface Unfinished {
  name: string;
  size: number;
}

/**
 * The unfinished uploads tus-js-client keeps in this browser, by video id; entries of videos
 * not in `waiting` (finished elsewhere, deleted, another account's) are forgotten, since each
 * holds an upload's URL, which is the upload's credential until it expires.
 */
export async function unfinished(waiting: Set<string>): Promise<Map<string, Unfinished>> {
  const found = new Map<string, Unfinished>();
  const storage = defaultOptions.urlStorage;
  let all: PreviousUpload[] = [];
  try {
    all = await storage.findAllUploads();
  } catch {
    return found; // no storage (private mode): nothing to resume
  }
  for (const u of all) {
    // `tus::studio:{video}:{size}:{modified}:{name}::{n}`
    const fp = u.urlStorageKey.split("::")[1] ?? "";
    const [prefix, video, size, , name] = fp.split(":");
    if (prefix !== PREFIX || !video) continue;
    if (!waiting.has(video)) {
      await storage.removeUpload(u.urlStorageKey).catch(() => undefined);
      continue;
    }
    found.set(video, { name: safeDecode(name ?? ""), size: Number(size) });
  }
  return found;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** What the origin or the network said, in words for the creator. */
export function uploadError(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof DetailedError && e.originalResponse) {
    const status = e.originalResponse.getStatus();
    try {
      const body = JSON.parse(e.originalResponse.getBody()) as { message?: string };
      if (body.message) return `The upload was refused (${status}): ${body.message}`;
    } catch {
      // not JSON: the status says enough
    }
    return `The upload was refused (${status}).`;
  }
  return "The upload stopped: the origin could not be reached. Resume to try again.";
}

export class StudioUpload {
  private upload: Upload | null = null;
  private running = false;

  constructor(
    readonly videoId: string,
    readonly file: File,
    private readonly view: UploadView,
  ) {}

  /** Starts, or continues an upload this browser began earlier with the same file. */
  async start(): Promise<void> {
    this.running = true;
    this.view.paused(false);
    let ticket;
    try {
      // A fresh ticket each time: tus-js-client creates a new upload with it only when the one
      // it resumes is gone (expired, finished elsewhere).
      ticket = await uploadTicket(this.videoId);
    } catch (e) {
      this.running = false;
      this.view.failed(uploadError(e));
      return;
    }
    const type = this.file.type;
    if (!ticket.content_types.includes(type)) {
      this.running = false;
      this.view.failed(`This file's type (${type || "unknown"}) is not one the studio takes: MP4, QuickTime, WebM, Matroska or MPEG-TS.`);
      return;
    }
    if (this.file.size > ticket.max_bytes) {
      this.running = false;
      this.view.failed(`The file is larger than the ${formatBytes(ticket.max_bytes)} an upload may have.`);
      return;
    }
    const upload = new Upload(this.file, {
      endpoint: ticket.tus_url,
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      metadata: { filetype: type },
      fingerprint: () => Promise.resolve(fingerprint(this.videoId, this.file)),
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => this.view.progress(sent, total),
      onSuccess: () => {
        this.running = false;
        this.view.done();
      },
      onError: (e) => {
        this.running = false;
        this.view.failed(uploadError(e));
      },
    });
    this.upload = upload;
    const previous = await upload.findPreviousUploads();
    if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  }

  /** Stops sending; what reached the origin stays there. */
  async pause(): Promise<void> {
    if (!this.upload || !this.running) return;
    this.running = false;
    await this.upload.abort(false);
    this.view.paused(true);
  }

  /** Asks the origin how much it has and sends the rest. */
  resume(): void {
    if (!this.upload || this.running) return;
    this.running = true;
    this.view.paused(false);
    this.upload.start();
  }
}

export function formatBytes(n: number): string {
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}
