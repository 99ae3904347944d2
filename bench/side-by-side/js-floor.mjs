// The I/O floor: what a segment cache hit costs a Worker with no checks at all. It does only
// the I/O of the segment path (the video record's KV read, the cache match, the body passed
// through), so the gap between it and the Workers that check tokens is their glue and policy.
// Benchmarks only; it reads the cache the JS Worker filled (the same cache service).
const PATH = /^\/hls\/([A-Za-z0-9_-]{1,64})\/[A-Za-z0-9_-]{1,512}\/((?:[a-z0-9_]{1,32}\/)?[a-z0-9_]{1,64}\.(?:ts|m3u8))$/;

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const m = PATH.exec(url.pathname);
    if (!m) return new Response(null, { status: 400 });
    const [, id, file] = m;
    if ((await env.EDGE_KV.get(`video:${id}`)) === null) return new Response(null, { status: 404 });
    const hit = await caches.default.match(`${env.CACHE_ORIGIN}/__edge-cache/hls/${id}/${file}`);
    if (!hit) return new Response(null, { status: 504 });
    return new Response(hit.body, hit);
  },
};
