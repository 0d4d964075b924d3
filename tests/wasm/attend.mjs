// Runs the module's attend export in Node on one case and writes the result.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/attend.mjs module.wasm case.json in.bin out.f32
//
// case.json: {t, p, h, g, dh, ldq, hsq, ldkv, hskv, ldo, hso, causal, scale, nq, nkv, no}; in.bin
// holds (float32) the q buffer [nq], then the k and v buffers [nkv] each. v is placed flush
// against the end of a freshly grown memory (an over-read traps). The whole out buffer [no]
// and the scratch rows [t * ceil(p / 4) * 4] start as a sentinel NaN between guard zones of it;
// out.f32 gets the out buffer (positions outside the view must still hold the sentinel),
// then one float: 1 when the guards around out and scratch survived, else 0.
import fs from "node:fs";

const [wasmPath, casePath, inPath, outPath] = process.argv.slice(2);
const c = JSON.parse(fs.readFileSync(casePath, "utf8"));
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const buf = fs.readFileSync(inPath);
const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const ns = c.t * Math.ceil(c.p / 4) * 4;
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
memory.grow(1 + Math.ceil(4 * (c.nq + 2 * c.nkv + c.no + ns + 4 * GUARD) / PAGE));
const end = memory.buffer.byteLength / 4;
const v = end - c.nkv, k = v - c.nkv, q = k - c.nq;
const out = q - GUARD - c.no, s = out - GUARD - ns;
const f = new Float32Array(memory.buffer), u = new Uint32Array(memory.buffer);
f.set(input.subarray(0, c.nq), q);
f.set(input.subarray(c.nq, c.nq + c.nkv), k);
f.set(input.subarray(c.nq + c.nkv), v);
u.fill(SENTINEL, s - GUARD, q);
exports.attend(4 * q, 4 * k, 4 * v, 4 * out, 4 * s, c.t, c.p, c.h, c.g, c.dh,
               c.ldq, c.hsq, c.ldkv, c.hskv, c.ldo, c.hso, c.causal, c.scale);
let ok = 1;
for (const [a, b] of [[s - GUARD, s], [s + ns, out], [out + c.no, q]])
  for (let i = a; i < b; i++) if (u[i] !== SENTINEL) ok = 0;
const result = new Float32Array(c.no + 1);
result.set(f.subarray(out, out + c.no));
result[c.no] = ok;
fs.writeFileSync(outPath, Buffer.from(result.buffer));
