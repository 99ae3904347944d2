// Runs a wasm32-wasip1 program (the verification benchmark) in Node's V8, the engine workerd
// embeds, so its figures are what the Worker pays per check.
// Usage: node bench/wasi-run.mjs path/to/program.wasm [args…]
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, exit } from 'node:process';

const [path, ...args] = argv.slice(2);
if (!path) {
  console.error('usage: node bench/wasi-run.mjs program.wasm [args…]');
  exit(2);
}
const wasi = new WASI({ version: 'preview1', args: [path, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
