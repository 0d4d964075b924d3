// Runs the module's softmax_rows(x, y, rows, n) export in Node on one case.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/softmax.mjs module.wasm rows n in.f32 out.json
//
// x [rows, n] is placed flush against the end of a freshly grown memory (an over-read traps)
// and y sits between two guard zones of a sentinel NaN that must survive; then the same
// input is run in place (y == x). Writes {out, inplace, guards_ok}.
import fs from "node:fs";

const [wasmPath, rowsArg, nArg, inPath, outPath] = process.argv.slice(2);
const rows = Number(rowsArg), n = Number(nArg), len = rows * n;
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const buf = fs.readFileSync(inPath);
const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
memory.grow(1 + Math.ceil(4 * (2 * len + 2 * GUARD) / PAGE));
const end = memory.buffer.byteLength / 4;
const x = end - len, y = x - GUARD - len;
const f = new Float32Array(memory.buffer), u = new Uint32Array(memory.buffer);
f.set(input, x);
u.fill(SENTINEL, y - GUARD, y + len + GUARD);
exports.softmax_rows(4 * x, 4 * y, rows, n);
let guardsOk = true;
for (let i = y - GUARD; i < y; i++) guardsOk &&= u[i] === SENTINEL;
for (let i = y + len; i < y + len + GUARD; i++) guardsOk &&= u[i] === SENTINEL;
const out = Array.from(f.subarray(y, y + len));
exports.softmax_rows(4 * x, 4 * x, rows, n);
const inplace = Array.from(f.subarray(x, x + len));
fs.writeFileSync(outPath, JSON.stringify({ out, inplace, guards_ok: guardsOk }));
