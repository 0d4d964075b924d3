// Runs the module's dw_s2 export in Node on one case and writes the result.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/dw_s2.mjs module.wasm case.json in.bin out.f32
//
// case.json: {hp, wp, ho, wo, k, c}; in.bin holds (float32) xp [hp * wp * c], taps [k * k * c] and
// bias [c] back to back. xp is placed flush against the end of a freshly grown memory (an
// over-read traps); out [ho * wo * c] sits between two guard zones of a sentinel NaN that
// must survive. out.f32 gets out, then one float: 1 when the guards survived, else 0.
import fs from "node:fs";

const [wasmPath, casePath, inPath, outPath] = process.argv.slice(2);
const { hp, wp, ho, wo, k, c } = JSON.parse(fs.readFileSync(casePath, "utf8"));
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const buf = fs.readFileSync(inPath);
const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const nx = hp * wp * c, nt = k * k * c, no = ho * wo * c;
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
memory.grow(1 + Math.ceil(4 * (nx + nt + c + no + 2 * GUARD) / PAGE));
const end = memory.buffer.byteLength / 4;
const xp = end - nx, taps = xp - nt, bias = taps - c, out = bias - GUARD - no;
const f = new Float32Array(memory.buffer), u = new Uint32Array(memory.buffer);
f.set(input.subarray(0, nx), xp);
f.set(input.subarray(nx, nx + nt), taps);
f.set(input.subarray(nx + nt), bias);
u.fill(SENTINEL, out - GUARD, out + no + GUARD);
exports.dw_s2(4 * xp, 4 * taps, 4 * bias, 4 * out, ho, wo, k, wp, c);
let ok = 1;
for (let i = out - GUARD; i < out; i++) if (u[i] !== SENTINEL) ok = 0;
for (let i = out + no; i < out + no + GUARD; i++) if (u[i] !== SENTINEL) ok = 0;
const result = new Float32Array(no + 1);
result.set(f.subarray(out, out + no));
result[no] = ok;
fs.writeFileSync(outPath, Buffer.from(result.buffer));
