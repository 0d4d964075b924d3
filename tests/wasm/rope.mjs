// Runs the module's rope or rms_rows export in Node on one case and writes the result.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/rope.mjs module.wasm case.json in.bin out.f32
//
// case.json: {fn: "rope", t, h, dh, ldx, ldo, hso, nx, no} or {fn: "rms_rows", rows, n, eps}.
// rope: in.bin holds (float32) x [nx], cos [t * dh], signed sin [t * dh]; rms_rows: x [rows * n].
// x is placed flush against the end of a freshly grown memory (an over-read traps); the whole
// out buffer starts as a sentinel NaN between guard zones of it. out.f32 gets the out buffer
// (positions a strided out does not cover must still hold the sentinel), then one float: 1
// when the guards survived, else 0.
import fs from "node:fs";

const [wasmPath, casePath, inPath, outPath] = process.argv.slice(2);
const c = JSON.parse(fs.readFileSync(casePath, "utf8"));
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const buf = fs.readFileSync(inPath);
const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const rope = c.fn === "rope";
const nx = rope ? c.nx : c.rows * c.n, nt = rope ? c.t * c.dh : 0, no = rope ? c.no : c.rows * c.n;
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
memory.grow(1 + Math.ceil(4 * (nx + 2 * nt + no + 2 * GUARD) / PAGE));
const end = memory.buffer.byteLength / 4;
const x = end - nx, cs = x - nt, sn = cs - nt, out = sn - GUARD - no;
const f = new Float32Array(memory.buffer), u = new Uint32Array(memory.buffer);
f.set(input.subarray(0, nx), x);
u.fill(SENTINEL, out - GUARD, sn);
if (rope) {
  f.set(input.subarray(nx, nx + nt), cs);
  f.set(input.subarray(nx + nt), sn);
  exports.rope(4 * x, c.ldx, 4 * cs, 4 * sn, 4 * out, c.ldo, c.hso, c.t, c.h, c.dh);
} else {
  exports.rms_rows(4 * x, 4 * out, c.rows, c.n, c.eps);
}
let ok = 1;
for (const [a, b] of [[out - GUARD, out], [out + no, sn]])
  for (let i = a; i < b; i++) if (u[i] !== SENTINEL) ok = 0;
const result = new Float32Array(no + 1);
result.set(f.subarray(out, out + no));
result[no] = ok;
fs.writeFileSync(outPath, Buffer.from(result.buffer));
