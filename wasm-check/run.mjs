// Runs a WASI preview1 module (the wasm32-wasip1 build of wasm-check) under Node's `node:wasi`,
// with the process's arguments after the module path, and exits with the module's exit code.
//
//   node --disable-warning=ExperimentalWarning wasm-check/run.mjs path/to/wasm-check.wasm [args...]
import { readFile } from "node:fs/promises";
import { argv, exit } from "node:process";
import { WASI } from "node:wasi";

const [, , module, ...args] = argv;
if (!module) {
  console.error("usage: node run.mjs MODULE.wasm [ARGS...]");
  exit(2);
}
const wasi = new WASI({
  version: "preview1",
  args: [module, ...args],
  env: {},
  returnOnExit: true,
});
const compiled = await WebAssembly.compile(await readFile(module));
const instance = await WebAssembly.instantiate(compiled, wasi.getImportObject());
exit(wasi.start(instance));
