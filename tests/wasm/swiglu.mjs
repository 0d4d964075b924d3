// Runs the module's swiglu(gu, y, rows, f) export in Node on a [rows, 2f] float32 input file.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/swiglu.mjs module.wasm in.f32 rows f out.json
//
// gu is placed flush against the end of a freshly grown memory (an over-read traps) and y
// [rows, f] sits between two guard zones of a sentinel NaN that must survive.
// Writes {out (rows * f results), guards_ok}.
import fs from "node:fs";

const [wasmPath, inPath, rowsArg, fArg, outPath] = process.argv.slice(2);
const rows = Number(rowsArg), f = Number(fArg);
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const buf = fs.readFileSync(inPath);
const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
if (input.length !== rows * 2 * f) throw new Error(`expected ${rows * 2 * f} floats, got ${input.length}`);
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
const n = rows * f;
memory.grow(1 + Math.ceil(4 * (input.length + n + 2 * GUARD) / PAGE));
const total = memory.buffer.byteLength;
const gu = total - 4 * input.length, y = gu - 4 * (n + GUARD);  // [.. guard][y][guard][gu] end
const fl = new Float32Array(memory.buffer), u = new Uint32Array(memory.buffer);
fl.set(input, gu / 4);
u.fill(SENTINEL, y / 4 - GUARD, y / 4 + n + GUARD);
exports.swiglu(gu, y, rows, f);
let guardsOk = true;
for (let i = y / 4 - GUARD; i < y / 4; i++) guardsOk &&= u[i] === SENTINEL;
for (let i = y / 4 + n; i < y / 4 + n + GUARD; i++) guardsOk &&= u[i] === SENTINEL;
fs.writeFileSync(outPath, JSON.stringify({ out: Array.from(fl.subarray(y / 4, y / 4 + n)), guards_ok: guardsOk }));
