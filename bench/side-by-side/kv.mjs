// An in-memory KV namespace for `workerd serve` (benchmarks only): workerd turns a kvNamespace
// binding's calls into HTTP requests to this service, GET/PUT/DELETE on /{urlencoded key}.
// One instance per worker under test, so each starts empty. Expiry is ignored: runs are short.
const store = new Map();

export default {
  async fetch(request, env) {
    const key = decodeURIComponent(new URL(request.url).pathname.slice(1));
    switch (request.method) {
      case 'GET': {
        // IO_DELAY_MS (run.sh): each read waits this long, as a read from a store elsewhere does.
        if (env.DELAY_MS > 0) await new Promise((done) => setTimeout(done, Number(env.DELAY_MS)));
        const value = store.get(key);
        return value === undefined ? new Response(null, { status: 404 }) : new Response(value);
      }
      case 'PUT':
        store.set(key, new Uint8Array(await request.arrayBuffer()));
        return new Response(null, { status: 200 });
      case 'DELETE':
        store.delete(key);
        return new Response(null, { status: 200 });
      default:
        return new Response(null, { status: 405 });
    }
  },
};
