// The Worker's entry: carries out the I/O commands of the Rust edge (src/driver.rs) and gives
// back their answers. It holds no policy: what to read, fetch, cache, check or answer is
// decided in Rust, and this file only says how a command is done with the runtime's APIs.
// A request crosses into Wasm once to begin and once per answer; commands come out as one JSON
// string per step and their bytes as one buffer. A test (edge/cloudflare/tests/shell.rs) checks
// that the only string literals here are command names, the two module names, KV's binary read
// type and the Durable Object's storage key, and that each operation reads only its command's
// fields.
import { DurableObject } from 'cloudflare:workers';
import * as edge from './index.js';

// Answers' numbers for a `fetch` that could not be built or timed out, and a body over its
// command's `max` (driver.rs).
const NOT_SENT = -2, TIMED_OUT = -3, TOO_LARGE = -4;
// KV's read type for bytes.
const AS_BYTES = { type: 'arrayBuffer' };
let configured = false;
let nextId = 0;
// WebCrypto keys imported for the driver, by the number it keeps for each.
let keys = [];

// A call into Wasm; if it throws, this request gets what `fallback` gives. A trap (a Rust
// panic) leaves the instance unusable, so it is started afresh for later requests; any other
// error leaves it as it is (a reset fails every request in flight in the isolate).
function guard(call, fallback) {
  try {
    return call();
  } catch (e) {
    console.error(e);
    if (e instanceof WebAssembly.RuntimeError) {
      edge.__wbg_reset_state();
      configured = false;
      keys = [];
    }
    return fallback(e);
  }
}

const head = (r) => JSON.stringify([r.status, [...r.headers]]);

class Exchange {
  constructor(id, request, env, ctx) {
    this.id = id;
    this.request = request;
    this.env = env;
    this.ctx = ctx;
    // Responses whose bodies stay in JS (cache hits, passed-through fetches), by number.
    this.held = [];
    this.responded = this.ended = false;
  }

  hold(r) {
    return this.held.push(r) - 1;
  }

  // Starts every command of a step, in order, before any of them awaits: a cache put takes its
  // copy of a held body before the response that passes that body on.
  run(commands) {
    let payload;
    const bytes = (r) => r && (payload ??= edge.payload()).subarray(r[0], r[0] + r[1]);
    for (const c of JSON.parse(commands)) {
      if (c.c === 'respond') this.send(c, bytes);
      else if (c.c === 'end') this.end();
      else this.answer(c.t, ops[c.c](this, c, bytes));
    }
    // Work left after the response (deferred cache writes) keeps the request alive; most
    // requests end with their response and need no such promise.
    if (this.responded && !this.ended && !this.settle) {
      this.ctx.waitUntil(new Promise((settle) => { this.settle = settle; }));
    }
  }

  end() {
    this.ended = true;
    this.settle?.();
  }

  send(c, bytes) {
    this.responded = true;
    let r;
    try {
      const body = c.h != null ? this.held[c.h].body : c.s ?? bytes(c.b) ?? null;
      r = new Response(body, { status: c.status, headers: c.headers });
    } catch (e) {
      console.error(e);
      r = new Response(null, { status: 500 });
    }
    // Answered in the first step (before `fetch` returned): `fetch` returns the response itself.
    if (this.respond) this.respond(r);
    else this.response = r;
  }

  // Gives the driver a command's outcome: [number, text, bytes], or the error.
  answer(tag, work) {
    const resume = (ok, num, text, body) =>
      this.run(guard(() => edge.resume(this.id, tag, ok, num, text, body), edge.failed));
    work.then(([num = -1, text, body]) => resume(true, num, text, body), (e) => resume(false, -1, String(e)));
  }
}

// One function per command (src/driver.rs `Command`); each takes its bytes before it awaits.
const ops = {
  async body(x, c) {
    const chunks = [];
    let size = 0;
    const reader = x.request.body?.getReader();
    for (let part = await reader?.read(); part && !part.done; part = await reader.read()) {
      size += part.value.length;
      if (size > c.max) {
        // The rest is read and dropped, not kept: answering before the body is in would leave
        // a connection that cannot carry the next request.
        while (!(await reader.read()).done);
        return [TOO_LARGE];
      }
      chunks.push(part.value);
    }
    const body = new Uint8Array(size);
    chunks.reduce((at, chunk) => (body.set(chunk, at), at + chunk.length), 0);
    return [-1, undefined, body];
  },
  async kv_get(x, c) {
    const v = await x.env.EDGE_KV.get(c.key, AS_BYTES);
    return v === null ? [] : [-1, undefined, new Uint8Array(v)];
  },
  async kv_put(x, c, bytes) {
    await x.env.EDGE_KV.put(c.key, bytes(c.b), c.ttl == null ? {} : { expirationTtl: c.ttl });
    return [];
  },
  async cache_match(x, c) {
    const key = c.headers.length ? new Request(c.key, { headers: c.headers }) : c.key;
    const hit = await caches.default.match(key);
    return hit ? [x.hold(hit), head(hit)] : [];
  },
  async cache_put(x, c, bytes) {
    const body = c.h != null ? x.held[c.h].clone().body : bytes(c.b);
    await caches.default.put(c.key, new Response(body, { status: c.status, headers: c.headers }));
    return [];
  },
  async limit(x, c) {
    const ns = x.env.RATE_LIMITER;
    const d = await ns.get(ns.idFromName(c.key)).check(c.q);
    return [-1, undefined, new Uint8Array(d.buffer, d.byteOffset, d.byteLength)];
  },
  async fetch(x, c, bytes) {
    const abort = new AbortController();
    let request;
    try {
      request = new Request(c.url, { method: c.method, headers: c.headers, body: bytes(c.b), signal: abort.signal });
    } catch (e) {
      return [NOT_SENT, String(e)];
    }
    const timer = setTimeout(() => abort.abort(), c.ms);
    try {
      const r = await fetch(request);
      if (c.pass) return [x.hold(r), head(r)];
      return [-1, head(r), new Uint8Array(await r.arrayBuffer())];
    } catch (e) {
      if (abort.signal.aborted) return [TIMED_OUT];
      throw e;
    } finally {
      clearTimeout(timer);
    }
  },
  async read(x, c) {
    return [-1, undefined, new Uint8Array(await x.held[c.h].arrayBuffer())];
  },
  async asset(x, c) {
    const r = await x.env.ASSETS.fetch(c.url);
    return [r.status, undefined, new Uint8Array(await r.arrayBuffer())];
  },
  async import_key(x, c, bytes) {
    const raw = bytes(c.b);
    return [keys.push(await crypto.subtle.importKey(c.format, raw, c.alg, false, c.usages)) - 1];
  },
  async verify(x, c, bytes) {
    const [sig, msg] = [bytes(c.sig), bytes(c.msg)];
    return [(await crypto.subtle.verify(c.alg, keys[c.k], sig, msg)) ? 1 : 0];
  },
  async sleep(x, c) {
    await new Promise((done) => setTimeout(done, c.ms));
    return [];
  },
};

export default {
  fetch(request, env, ctx) {
    const x = new Exchange(nextId++, request, env, ctx);
    const cf = request.cf ?? {};
    const begin = () => {
      if (!configured) {
        // Vars and secrets are env's string values (as its keys are); bindings stay here.
        const settings = Object.fromEntries(Object.entries(env).filter(([k, v]) => typeof v === typeof k));
        edge.configure(JSON.stringify(settings));
        configured = true;
      }
      const h = [request.method, request.url, [...request.headers], cf.country ?? null, cf.continent ?? null];
      return edge.begin(x.id, JSON.stringify(h));
    };
    x.run(guard(begin, edge.failed));
    // A request needing no I/O (`/healthz`, a refusal) is answered without a promise.
    return x.response ?? new Promise((respond) => { x.respond = respond; });
  },
};

// One per rate-limit key, holding its GCRA state (src/exports.rs `limit` decides). A Durable
// Object handles one call at a time and its input gate holds new ones while storage is written,
// so concurrent requests on a key are strictly serialised: a burst of N against a limit of L
// admits exactly L.
export class RateLimiter extends DurableObject {
  async check([limit, window]) {
    if (this.tat === undefined) this.tat = (await this.ctx.storage.get('tat')) ?? null;
    const decide = () => edge.limit(limit, window, this.tat ?? undefined, Date.now());
    // The new arrival time first (NaN: unchanged), then the decision, all for the driver.
    const answer = guard(decide, (e) => { throw e; });
    if (!Number.isNaN(answer[0])) {
      this.tat = answer[0];
      await this.ctx.storage.put('tat', this.tat);
    }
    return answer;
  }
}
