// Runs a batch of GEMM cases (or timings) on a tiny-vlm WASM module in Node.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/harness.mjs job.json
//
// job.json: {wasm, inputs, outputs, results, cases: [...], bench: [...]}
//   inputs:  float32 file; each case names its arrays as [offset, length] in floats
//   case:    {fn: "gemm_packed"|"gemm_dot", m, n, k, a, w, bias (or null), last: "a"|"w"|"bias"}
//   bench:   {fn, m, n, k, bias, reps}: random data, seconds per call (after a warm-up)
// Writes C of every case to `outputs` (concatenated, float32) and a JSON report to
// `results`: module imports/exports, per case {ok, error, guards_ok, out: [offset, length]}.
//
// The module gets its own WebAssembly.Memory of one page and every case runs in memory
// grown after instantiation, its arrays placed so the array named by `last` ends exactly
// at the end of memory (an over-read traps) and C sits between two guard zones filled
// with a sentinel that must survive (an over-write shows).
import fs from "node:fs";

const GUARD = 64;             // floats of sentinel on each side of C
const SENTINEL = 0x7fc0dead;  // a NaN bit pattern no kernel produces
const PAGE = 65536;

const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const bytes = fs.readFileSync(job.wasm);
const report = {valid: WebAssembly.validate(bytes), cases: [], bench: []};
const module = new WebAssembly.Module(bytes);
report.imports = WebAssembly.Module.imports(module);
report.exports = WebAssembly.Module.exports(module);
const memory = new WebAssembly.Memory({initial: 1});
const kernels = new WebAssembly.Instance(module, {env: {memory}}).exports;

function readFloats(path) {
  const buf = fs.readFileSync(path);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

// Grow by at least one page, then lay out `parts` ([name, floats]) back to back so that
// the last one ends at the end of memory. Returns {name: byte address}.
function placeAtEnd(parts) {
  const total = 4 * parts.reduce((s, [, len]) => s + len, 0);
  memory.grow(1 + Math.ceil(total / PAGE));  // detaches old views; later code makes new ones
  let at = memory.buffer.byteLength - total;
  const addr = {};
  for (const [name, len] of parts) { addr[name] = at; at += 4 * len; }
  return addr;
}

function runCase(c, input) {
  const cLen = c.m * c.n;
  const reads = [["a", c.a[1]], ["w", c.w[1]]];
  if (c.bias) reads.push(["bias", c.bias[1]]);
  reads.sort((x, y) => (x[0] === c.last) - (y[0] === c.last));  // `last` goes last
  const addr = placeAtEnd([["lo", GUARD], ["c", cLen], ["hi", GUARD], ...reads]);
  const f32 = new Float32Array(memory.buffer);
  const u32 = new Uint32Array(memory.buffer);
  for (const [name] of reads) {
    const [off, len] = c[name];
    f32.set(input.subarray(off, off + len), addr[name] / 4);
  }
  u32.fill(SENTINEL, addr.lo / 4, addr.lo / 4 + GUARD + cLen + GUARD);  // C starts as sentinel too
  kernels[c.fn](addr.a, addr.w, c.bias ? addr.bias : 0, addr.c, c.m, c.n, c.k);
  const after = new Uint32Array(memory.buffer);  // same buffer unless the kernel grew memory
  let guardsOk = true;
  for (const start of [addr.lo / 4, addr.hi / 4]) {
    for (let i = start; i < start + GUARD; i++) if (after[i] !== SENTINEL) guardsOk = false;
  }
  return {guardsOk, c: new Float32Array(memory.buffer, addr.c, cLen).slice()};
}

const input = job.inputs ? readFloats(job.inputs) : new Float32Array(0);
const outputs = [];
let outOffset = 0;
for (const c of job.cases ?? []) {
  try {
    const {guardsOk, c: out} = runCase(c, input);
    report.cases.push({ok: true, guards_ok: guardsOk, out: [outOffset, out.length]});
    outputs.push(out);
    outOffset += out.length;
  } catch (e) {
    report.cases.push({ok: false, error: String(e)});
  }
}

for (const b of job.bench ?? []) {
  const kPanel = 8 * Math.ceil(b.n / 8);
  const wLen = b.fn === "gemm_packed" ? kPanel * b.k : b.n * b.k;
  const addr = placeAtEnd([["a", b.m * b.k], ["w", wLen], ["bias", b.n], ["c", b.m * b.n]]);
  const f32 = new Float32Array(memory.buffer);
  for (let i = addr.a / 4; i < addr.c / 4; i++) f32[i] = Math.random() - 0.5;
  const call = () => kernels[b.fn](addr.a, addr.w, b.bias ? addr.bias : 0, addr.c, b.m, b.n, b.k);
  for (let i = 0; i < 20; i++) call();  // tier up to TurboFan
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < b.reps; i++) call();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9 / b.reps);
  }
  report.bench.push({...b, seconds: best, gflops: 2 * b.m * b.n * b.k / best / 1e9});
}

if (job.outputs) {
  const all = new Float32Array(outOffset);
  let at = 0;
  for (const o of outputs) { all.set(o, at); at += o.length; }
  fs.writeFileSync(job.outputs, Buffer.from(all.buffer));
}
report.memory_pages = memory.buffer.byteLength / PAGE;
fs.writeFileSync(job.results, JSON.stringify(report));
