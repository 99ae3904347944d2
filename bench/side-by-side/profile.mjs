// Samples one Worker's isolate through workerd's inspector (the V8 CPU profiler) while a load
// runs, then says where its time went: Rust compiled to Wasm, the JS glue around it
// (wasm-bindgen's and the driven entry's shell), V8's builtins and the runtime's APIs, garbage collection,
// and time outside JS (workerd's own C++: HTTP, KV, cache, and idle).
//
// Usage: node --experimental-websocket profile.mjs <inspector base, http://127.0.0.1:PORT>
//          <worker service name> <seconds> <out.cpuprofile>
// The .cpuprofile opens in Chromium's DevTools (Performance panel) for the full call tree.
import { writeFileSync } from 'node:fs';

const [base, service, seconds, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: profile.mjs <inspector base> <service> <seconds> <out.cpuprofile>');
  process.exit(2);
}

// workerd lists one target per Worker, named after its service.
const targets = await (await fetch(`${base}/json/list`)).json();
const target = targets.find((t) => t.id === service);
if (!target) {
  console.error(`no inspector target ${service} at ${base}: ${targets.map((t) => t.id).join(', ')}`);
  process.exit(1);
}
const ws = new WebSocket(target.webSocketDebuggerUrl);
const pending = new Map();
let nextId = 1;
ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  const waiter = pending.get(msg.id);
  if (waiter) {
    pending.delete(msg.id);
    if (msg.error) waiter.reject(new Error(JSON.stringify(msg.error)));
    else waiter.resolve(msg.result);
  }
};
const send = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params }));
  });
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = () => reject(new Error(`inspector connection to ${service} failed`));
});

await send('Profiler.enable');
// 100 µs between samples: a request here takes a few hundred µs.
await send('Profiler.setSamplingInterval', { interval: 100 });
await send('Profiler.start');
console.log(`[profile] ${service}: sampling for ${seconds} s`);
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
const { profile } = await send('Profiler.stop');
ws.close();
writeFileSync(out, JSON.stringify(profile));

// Self time per node: samples × the mean interval between them.
const counts = new Map();
for (const id of profile.samples) counts.set(id, (counts.get(id) || 0) + 1);
const totalUs = profile.endTime - profile.startTime;
const usPerSample = totalUs / profile.samples.length;

const IDLE = 'idle (waiting: no JS to run)';
const category = ({ functionName: name, url }) => {
  if (name === '(idle)') return IDLE;
  if (name === '(program)') return 'outside JS (workerd: HTTP, KV, cache, scheduling)';
  if (name === '(garbage collector)') return 'garbage collection';
  if (url.startsWith('wasm://') || /^\$?func\d+$|^wasm-function/.test(name)) return 'Rust (Wasm)';
  if (url) return `JS: ${url.split('/').pop()}`;
  return 'V8 builtins and runtime APIs';
};
const byCategory = new Map();
const byFunction = new Map();
for (const node of profile.nodes) {
  const us = (counts.get(node.id) || 0) * usPerSample;
  if (!us) continue;
  const c = category(node.callFrame);
  byCategory.set(c, (byCategory.get(c) || 0) + us);
  const f = `${node.callFrame.functionName || '(anonymous)'}  ${node.callFrame.url.split('/').pop()}`;
  byFunction.set(f, (byFunction.get(f) || 0) + us);
}
const busyUs = totalUs - (byCategory.get(IDLE) || 0);
const line = (label, us) =>
  `  ${label.padEnd(56)} ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / totalUs).toFixed(1).padStart(5)} %`;
console.log(`[profile] ${service}: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s busy`);
for (const [c, us] of [...byCategory].sort((a, b) => b[1] - a[1])) console.log(line(c, us));
console.log('  top functions by self time:');
for (const [f, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(line(f, us));
