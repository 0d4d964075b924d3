// Runs the module's gelu(x, y, n) export in Node on the floats of an input file.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/gelu.mjs module.wasm in.f32 out.json
//
// x is placed flush against the end of a freshly grown memory (an over-read traps) and y
// sits between two guard zones of a sentinel NaN that must survive; then the same input is
// run in place (y == x). Writes {out, inplace, guards_ok} (arrays of the n results).
import fs from "node:fs";

const [wasmPath, inPath, outPath] = process.argv.slice(2);
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const buf = fs.readFileSync(inPath);
const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const n = input.length;
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
const bytes = 4 * (2 * n + 2 * GUARD);
memory.grow(1 + Math.ceil(bytes / PAGE));
const total = memory.buffer.byteLength;
const x = total - 4 * n, y = x - 4 * (n + GUARD);  // [.. guard][y][guard][x] end
const f = new Float32Array(memory.buffer), u = new Uint32Array(memory.buffer);
f.set(input, x / 4);
u.fill(SENTINEL, y / 4 - GUARD, y / 4 + n + GUARD);
exports.gelu(x, y, n);
let guardsOk = true;
for (let i = y / 4 - GUARD; i < y / 4; i++) guardsOk &&= u[i] === SENTINEL;
for (let i = y / 4 + n - (n % 4); i < y / 4 + n + GUARD; i++) guardsOk &&= u[i] === SENTINEL;  // tail untouched
const out = Array.from(f.subarray(y / 4, y / 4 + n - (n % 4)));
exports.gelu(x, x, n);
const inplace = Array.from(f.subarray(x / 4, x / 4 + n - (n % 4)));
fs.writeFileSync(outPath, JSON.stringify({ out, inplace, guards_ok: guardsOk }));
