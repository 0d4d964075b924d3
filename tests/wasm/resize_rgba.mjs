// Runs the module's resize_rgba export in Node on one frame and writes the result.
//
//   node [--experimental-wasm-relaxed-simd] tests/wasm/resize_rgba.mjs module.wasm case.json in.bin out.f32
//
// case.json: {h, w, top, left, side, s, k}; in.bin holds the uint8 RGBA frame [h * w * 4],
// then idx int32 [s * k], wt float32 [s * k] and sb float32 [8] back to back. The frame is
// placed flush against the end of a freshly grown memory (an over-read traps); dst
// [s * s * 3] sits between two guard zones of a sentinel NaN that must survive. out.f32 gets
// dst, then one float: 1 when the guards survived, else 0.
import fs from "node:fs";

const [wasmPath, casePath, inPath, outPath] = process.argv.slice(2);
const { h, w, top, left, side, s, k } = JSON.parse(fs.readFileSync(casePath, "utf8"));
const GUARD = 16, SENTINEL = 0x7fc0dead, PAGE = 65536;
const input = fs.readFileSync(inPath);
const nFrame = h * w * 4, nTaps = s * k, nDst = s * s * 3, nTmp = s * side * 4;
const memory = new WebAssembly.Memory({ initial: 1 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } });
memory.grow(1 + Math.ceil((nFrame + 4 * (2 * nTaps + 8 + nTmp + nDst + 2 * GUARD) + 64) / PAGE));
const bytes = memory.buffer.byteLength;
const frame = bytes - nFrame;                          // flush against the end
const idx = (frame - 4 * (2 * nTaps + 8 + nTmp + nDst + 2 * GUARD)) & ~15;
const wt = idx + 4 * nTaps, sb = wt + 4 * nTaps, tmp = sb + 32, dst = tmp + 4 * nTmp + 4 * GUARD;
const u8 = new Uint8Array(memory.buffer), u32 = new Uint32Array(memory.buffer), f = new Float32Array(memory.buffer);
u8.set(input.subarray(0, nFrame), frame);
u8.set(input.subarray(nFrame, nFrame + 4 * (2 * nTaps + 8)), idx);
u32.fill(SENTINEL, dst / 4 - GUARD, dst / 4 + nDst + GUARD);
exports.resize_rgba(frame + 4 * (top * w + left), 4 * w, side, idx, wt, k, tmp, dst, s, sb);
let ok = 1;
for (let i = dst / 4 - GUARD; i < dst / 4; i++) if (u32[i] !== SENTINEL) ok = 0;
for (let i = dst / 4 + nDst; i < dst / 4 + nDst + GUARD; i++) if (u32[i] !== SENTINEL) ok = 0;
const result = new Float32Array(nDst + 1);
result.set(f.subarray(dst / 4, dst / 4 + nDst));
result[nDst] = ok;
fs.writeFileSync(outPath, Buffer.from(result.buffer));
