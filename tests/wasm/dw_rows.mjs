// Runs the module's dw_rows export in Node on one case and writes the result.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/dw_rows.mjs module.wasm case.json in.bin out.f32
//
// case.json: {h, k, n, lp, c}; in.bin holds (float32) xp [(h + k - 1) * lp], taps [k * k * n] and
// bias [n] back to back. taps is placed flush against the end of a freshly grown memory (an
// over-read traps); out [h * n] sits between two guard zones of a sentinel NaN that must
// survive. out.f32 gets out, then one float: 1 when the guards survived, else 0.
import fs from "node:fs";

const [wasmPath, casePath, inPath, outPath] = process.argv.slice(2);
const { h, k, n, lp, c } = JSON.parse(fs.readFileSync(casePath, "utf8"));
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const buf = fs.readFileSync(inPath);
const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const nx = (h + k - 1) * lp, nt = k * k * n;
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
const floats = h * n + 2 * GUARD + n + nx + nt;
memory.grow(1 + Math.ceil(4 * floats / PAGE));
const end = memory.buffer.byteLength / 4;
const taps = end - nt, xp = taps - nx, bias = xp - n, out = bias - GUARD - h * n;
const f = new Float32Array(memory.buffer), u = new Uint32Array(memory.buffer);
f.set(input.subarray(0, nx), xp);
f.set(input.subarray(nx, nx + nt), taps);
f.set(input.subarray(nx + nt), bias);
u.fill(SENTINEL, out - GUARD, out + h * n + GUARD);
exports.dw_rows(4 * xp, 4 * taps, 4 * bias, 4 * out, h, k, n, lp, c);
let ok = 1;
for (let i = out - GUARD; i < out; i++) if (u[i] !== SENTINEL) ok = 0;
for (let i = out + h * n; i < out + h * n + GUARD; i++) if (u[i] !== SENTINEL) ok = 0;
const result = new Float32Array(h * n + 1);
result.set(f.subarray(out, out + h * n));
result[h * n] = ok;
fs.writeFileSync(outPath, Buffer.from(result.buffer));
