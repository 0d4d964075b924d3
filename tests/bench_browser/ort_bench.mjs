// onnxruntime-web peer of tests/bench_browser.py: the same ONNX export as the CPython bench
// (tiny_vlm.bench.export_onnx: encoder.onnx = vision tower + projector, decoder.onnx = one
// decoder call with the KV cache as explicit tensors), WASM SIMD, one thread (or ?threads=N
// where the page is cross-origin isolated, which multi-threaded WASM needs).
// The page does what the tiny-vlm worker does for one answer: centre crop + area resize +
// normalise (JS), encode, prefill, greedy decode with argmax; token ids are not turned into
// text (tiny-vlm's detokenizer is a dictionary lookup per token).
//
//   window.ortBench.ready -> {load_ms}; window.ortBench.answer(rgba, width, height, maxTokens) -> timings
import * as ort from "./ort/ort.wasm.min.mjs";

const wantThreads = Number(new URL(location.href).searchParams.get("threads") ?? 1);
const threads = self.crossOriginIsolated ? wantThreads : 1;
ort.env.wasm.numThreads = threads;
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;

async function fetchJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

// Area resize of one axis (box filter with fractional coverage), like tiny_vlm.image.
function areaWeights(nIn, nOut) {
  const scale = nIn / nOut;
  const rows = [];
  for (let i = 0; i < nOut; i++) {
    const a = i * scale, b = (i + 1) * scale, taps = [];
    for (let j = Math.floor(a); j < Math.min(Math.ceil(b), nIn); j++) {
      const w = Math.min(b, j + 1) - Math.max(a, j);
      if (w > 0) taps.push([j, w / scale]);
    }
    rows.push(taps);
  }
  return rows;
}

function preprocess(rgba, width, height, meta) {  // -> Float32Array [1, 3, S, S]
  const S = meta.image_size, side = Math.min(width, height);
  const top = (height - side) >> 1, left = (width - side) >> 1;
  const wts = areaWeights(side, S);
  const tmp = new Float32Array(S * side * 3);  // rows resized: [S, side, 3]
  for (let i = 0; i < S; i++) {
    for (const [j, w] of wts[i]) {
      const src = ((top + j) * width + left) * 4, dst = i * side * 3;
      for (let x = 0; x < side; x++) {
        tmp[dst + 3 * x] += w * rgba[src + 4 * x];
        tmp[dst + 3 * x + 1] += w * rgba[src + 4 * x + 1];
        tmp[dst + 3 * x + 2] += w * rgba[src + 4 * x + 2];
      }
    }
  }
  const out = new Float32Array(3 * S * S);
  for (let i = 0; i < S; i++) {
    for (let x = 0; x < S; x++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (const [j, w] of wts[x]) v += w * tmp[(i * side + j) * 3 + c];
        out[c * S * S + i * S + x] = (v / 255 - meta.image_mean[c]) / meta.image_std[c];
      }
    }
  }
  return out;
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

async function load() {
  const t0 = performance.now();
  const meta = await fetchJSON("meta.json");
  const embedBytes = await fetchBytes("embed.bin");
  const embed = new Float32Array(embedBytes.buffer);  // [V, D]
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const encoder = await ort.InferenceSession.create("encoder.onnx", options);
  const decoder = await ort.InferenceSession.create("decoder.onnx", options);
  return { meta, embed, encoder, decoder, load_ms: performance.now() - t0 };
}

const state = load();

async function answer(rgba, width, height, maxTokens) {
  const { meta, embed, encoder, decoder } = await state;
  const D = meta.d_model, S = meta.image_size;
  const t0 = performance.now();
  const pixels = preprocess(rgba, width, height, meta);
  const t1 = performance.now();
  const { embeds } = await encoder.run({ pixels: new ort.Tensor("float32", pixels, [1, 3, S, S]) });
  const nImg = embeds.dims[0];
  const t2 = performance.now();
  const ids = [...meta.before, ...Array(nImg).fill(-1), ...meta.after];
  const seq = new Float32Array(ids.length * D);
  ids.forEach((id, i) => {
    if (id >= 0) seq.set(embed.subarray(id * D, (id + 1) * D), i * D);
  });
  seq.set(embeds.data, meta.before.length * D);
  const kvDims = [meta.n_layers, 1, meta.n_kv_heads, 0, meta.head_dim];
  let out = await decoder.run({
    embeds: new ort.Tensor("float32", seq, [1, ids.length, D]),
    past_k: new ort.Tensor("float32", new Float32Array(0), kvDims),
    past_v: new ort.Tensor("float32", new Float32Array(0), kvDims),
  });
  const t3 = performance.now();
  const tokens = [];
  let ttft = 0, decodeMs = 0, steps = 0;
  for (;;) {
    const next = argmax(out.logits.data);
    if (!ttft) ttft = performance.now() - t0;
    if (meta.eos.includes(next)) break;
    tokens.push(next);
    if (tokens.length >= maxTokens) break;
    const ts = performance.now();
    const prev = out;
    out = await decoder.run({
      embeds: new ort.Tensor("float32", embed.slice(next * D, (next + 1) * D), [1, 1, D]),
      past_k: prev.present_k, past_v: prev.present_v,
    });
    for (const name of ["logits", "present_k", "present_v"]) prev[name].dispose?.();
    decodeMs += performance.now() - ts;
    steps++;
  }
  const t4 = performance.now();
  return {
    preprocess_ms: t1 - t0, encode_ms: t2 - t1, prefill_ms: t3 - t2, ttft_ms: ttft,
    decode_ms_per_token: decodeMs / Math.max(steps, 1), answer_ms: t4 - t0, tokens: tokens.length, ids: tokens,
  };
}

window.ortBench = { ready: state.then((s) => ({ load_ms: s.load_ms, threads })), answer };
