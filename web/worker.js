// tiny-vlm worker (module worker): owns Pyodide, never touches the DOM.
//
// Boot: manifest -> Pyodide core -> tiny_vlm wheel -> NumPy -> (WASM kernels) -> model.
// The wheel and the model files are fetched (and verified) while Pyodide starts; their
// progress is reported when their stage comes.
// Then it serves the protocol of protocol.js: one generation at a time, decoded step by
// step from JS with a yield to the event loop before the first step and then every few ms,
// so a `stop` message is seen between two tokens (no SharedArrayBuffer needed: WebKit has none).
//
// PyProxy lifetime: the bridge functions are taken once at boot and live as long as the
// worker; each generation holds exactly one PyProxy (its session), destroyed in `finally`.
// Every other value crossing the boundary is a string, number, boolean or typed array.

import * as P from "./protocol.js";

const PYODIDE_VERSION = "314.0.4";
const CDN_INDEX = `https://cdn.jsdelivr.net/pyodide/v${PYODIDE_VERSION}/full/`;
// A wrong .wasm MIME type makes loadPyodide() hang forever: never wait without a limit.
const BOOT_TIMEOUT_MS = 180_000;
const MODEL_DIR = "/model";
const PROGRESS_INTERVAL_MS = 50;
// Decoding yields to the event loop (to see a `stop`) before the first step and then at most
// every this many ms, not after every token: a yield costs about as much as a decode step's
// Python overhead, and a stop is still seen within a few ms.
const YIELD_INTERVAL_MS = 4;
const SNAPSHOT_CACHE = "tiny-vlm-v2-pyodide-snapshot"; // sw.js keeps caches named tiny-vlm-v2*
const BYTECODE_DELAY_MS = 1000;
const PYC_PATH = /^\/lib\/python3\.\d+\/site-packages\/([\w.-]+\/)*__pycache__\/[\w.-]+\.pyc$/;
// Modules that pyodide.loadPackage and `import tiny_vlm.bridge` import after start-up (listed
// by diffing sys.modules in Pyodide 314.0.4); all pure Python or built into the core.
const SNAPSHOT_IMPORTS = ["encodings.cp437", "tarfile", "email", "importlib.metadata", "datetime", "numbers", "pickle",
  "sysconfig", "ctypes", "platform", "unicodedata", "py_compile", "zipfile", "shutil", "pathlib", "json", "struct", "dataclasses"];

const state = {
  phase: "idle", // idle -> booting -> ready | failed
  py: null, // bridge functions (PyProxy each), see BRIDGE_FUNCTIONS
  model: null, // PyProxy of the loaded FastVLM
  current: null, // {id, stopRequested} of the running generation
  bytecodeStore: null, // where to store compiled bytecode once ready (first boot only)
};

const BRIDGE_FUNCTIONS = ["load_model", "model_info", "start", "prefill", "step", "is_done", "stop", "finish_reason", "stats_json", "compiled_modules"];

const post = (msg, transfer) => self.postMessage(msg, transfer ?? []);
// Our own fetches bypass the byte counter that withFetchProgress puts on self.fetch for Pyodide's.
const nativeFetch = self.fetch.bind(self);

self.onmessage = (event) => {
  const msg = event.data;
  switch (msg?.type) {
    case P.MessageType.INIT:
      return onInit(msg);
    case P.MessageType.GENERATE:
      return onGenerate(msg);
    case P.MessageType.STOP:
      return onStop(msg);
    default:
      return post(P.error(msg?.id, P.ErrorCode.BAD_REQUEST, `unknown message type ${JSON.stringify(msg?.type)}`));
  }
};

// --- boot -------------------------------------------------------------------------

async function onInit(msg) {
  if (state.phase !== "idle") {
    return post(P.error(null, P.ErrorCode.BAD_REQUEST, `init: worker is already ${state.phase}`));
  }
  state.phase = "booting";
  try {
    const info = await boot(msg.urls);
    state.phase = "ready";
    post(P.ready(info));
    setTimeout(warmUp, 0);
    if (state.bytecodeStore) setTimeout(storeBytecode, BYTECODE_DELAY_MS);
  } catch (err) {
    state.phase = "failed";
    post(P.error(null, P.ErrorCode.BOOT, errorMessage(err)));
  }
}

async function boot(urls) {
  const t0 = performance.now();
  const timings = {};
  const mark = (name, since) => (timings[name] = round(performance.now() - since));

  // 1. The manifest: every file of the site with its size and sha256.
  let t = performance.now();
  reportProgress(P.Stage.MANIFEST, 0, 0, true);
  const manifest = await fetchJson(urls.manifest);
  const siteBase = new URL(".", urls.manifest);
  reportProgress(P.Stage.MANIFEST, 1, 1, true);

  // The wheel and the model: fetched now, in parallel with Pyodide's start, used below.
  const wheelJob = startFetch(siteBase, manifest, manifest.wheel);
  const modelJobs = manifest.model.files.map((path) => startFetch(siteBase, manifest, path));

  // 2. Pyodide core. Its own fetches are counted for the progress bar. After the first
  //    visit it starts from a memory snapshot of an interpreter that has just booted (about
  //    10x faster than running Python's start-up again); see openSnapshotStore.
  t = performance.now();
  const { loadPyodide } = await import(new URL("pyodide.mjs", urls.pyodideIndex).href);
  const coreBytes = sumBytes(manifest, manifest.pyodide.core);
  const numpyLocal = manifest.numpy.source === "local";
  const snapshots = urls.snapshot === false ? null : await openSnapshotStore(siteBase, manifest);
  const bytecodeStore = urls.snapshot === false ? null : await openBytecodeStore(siteBase, manifest);
  const bytecodeRead = (bytecodeStore?.read() ?? Promise.resolve(null)).catch(() => null);
  const startPyodide = async (extra) => {
    const capture = manifest.kernels ? captureExportedMemory() : null;
    try {
      const instance = await withFetchProgress(P.Stage.PYODIDE, coreBytes, () =>
        withTimeout(
          loadPyodide({
            indexURL: urls.pyodideIndex,
            // NumPy is resolved through pyodide-lock.json (its sha256 is checked by Pyodide)
            // relative to this base: the site itself, or the official CDN for this version.
            packageBaseUrl: numpyLocal ? urls.pyodideIndex : (urls.numpyCdn ?? CDN_INDEX),
            checkAPIVersion: true,
            ...extra,
          }),
          BOOT_TIMEOUT_MS,
          `Pyodide did not start within ${BOOT_TIMEOUT_MS / 1000} s (a very slow connection, or a server that does not send .wasm as application/wasm)`,
        ),
      );
      return { pyodide: instance, memory: capture?.memory };
    } finally {
      capture?.restore();
    }
  };
  let started = null;
  let snapshot = snapshots ? "made" : "off";
  const saved = await snapshots?.read();
  if (saved) {
    try {
      started = await startPyodide({ _loadSnapshot: saved });
      snapshot = "restored";
      // Pyodide keeps its options, so the snapshot (31 MB) would stay alive as long as the
      // worker: detach its buffer (the copy made by the transfer is dropped at once).
      structuredClone(saved.buffer, { transfer: [saved.buffer] });
    } catch (err) {
      snapshot = `failed to restore (${errorMessage(err)}); made a new one`;
      await snapshots.remove();
    }
  }
  started ??= await startPyodide(snapshots ? { _makeSnapshot: true } : {});
  const pyodide = started.pyodide;
  if (snapshots && snapshot !== "restored") {
    // Pure-Python standard modules that loading NumPy and importing the runtime need anyway go
    // into the snapshot too; then the snapshot is taken, before any shared library is loaded.
    try {
      pyodide.runPython(`for _name in ${JSON.stringify(SNAPSHOT_IMPORTS)}:\n    __import__(_name)\ndel _name`);
      snapshots.write(pyodide.makeMemorySnapshot());
    } catch (err) { // out of memory on a small phone, say: boot without a snapshot
      snapshot = `not made (${errorMessage(err)})`;
    }
  }
  mark("pyodide_ms", t);

  // 3. The tiny_vlm wheel: fetched, checked against the manifest, unpacked into
  //    site-packages (imported only after NumPy is in).
  t = performance.now();
  const wheel = await wheelJob.finish((n, force) => reportProgress(P.Stage.WHEEL, n, manifest.files[manifest.wheel].bytes, force));
  pyodide.unpackArchive(wheel, "wheel");
  mark("wheel_ms", t);

  // 4. NumPy (integrity checked by Pyodide against pyodide-lock.json).
  t = performance.now();
  const numpyErrors = [];
  try {
    await withFetchProgress(P.Stage.NUMPY, manifest.numpy.bytes ?? 0, () =>
      pyodide.loadPackage("numpy", { checkIntegrity: true, messageCallback: () => {}, errorCallback: (m) => numpyErrors.push(m) }),
    );
  } catch (err) {
    numpyErrors.push(String(err?.message ?? err));
  }
  if (!pyodide.loadedPackages.numpy) {
    const where = numpyLocal ? "from this site" : `from ${urls.numpyCdn ?? CDN_INDEX}`;
    throw new Error(`NumPy could not be loaded ${where}: ${numpyErrors.join("; ") || "unknown error"}`);
  }
  mark("numpy_ms", t);

  // Bytecode compiled on an earlier visit: NumPy and tiny_vlm then import without compiling.
  t = performance.now();
  let bytecode = bytecodeStore ? "none yet" : "off";
  const pack = await bytecodeRead;
  if (pack) {
    try {
      bytecode = `${installBytecode(pyodide, pack)} modules`;
    } catch (err) {
      bytecode = `bad pack (${err.message})`;
      await bytecodeStore.remove();
    }
  }
  let bridgeModule;
  try {
    bridgeModule = pyodide.pyimport("tiny_vlm.bridge"); // imports numpy and the runtime
  } catch (err) {
    // A C extension cannot be imported twice in one process, so there is no retry here: drop
    // the stored bytecode and let the next load compile from source.
    if (pack) await bytecodeStore.remove();
    throw new Error(`${errorMessage(err)}${pack ? " (the stored bytecode was removed: reload the page)" : ""}`);
  }
  const py = {};
  // Attribute proxies are borrowed from the module proxy: copy them so they outlive it.
  for (const name of BRIDGE_FUNCTIONS) py[name] = bridgeModule[name].copy();
  bridgeModule.destroy();
  state.py = py;
  if (bytecodeStore && !bytecode.endsWith(" modules")) state.bytecodeStore = bytecodeStore; // stored after ready
  mark("import_ms", t);

  // 5. Optional WASM SIMD GEMM kernels.
  t = performance.now();
  const kernels = await loadKernels(started.memory, siteBase, manifest);
  if (kernels) mark("kernels_ms", t);

  // 6. The model files: fetched with progress, verified, written to the in-memory FS.
  t = performance.now();
  const modelFiles = manifest.model.files;
  const modelTotal = sumBytes(manifest, modelFiles);
  const modelLoaded = () => modelJobs.reduce((sum, job) => sum + job.loaded, 0);
  pyodide.FS.mkdirTree(MODEL_DIR);
  for (const [i, path] of modelFiles.entries()) {
    const bytes = await modelJobs[i].finish((n, force) => reportProgress(P.Stage.MODEL, modelLoaded(), modelTotal, force));
    pyodide.FS.writeFile(`${MODEL_DIR}/${path.split("/").pop()}`, bytes);
  }
  reportProgress(P.Stage.MODEL, modelTotal, modelTotal, true);
  mark("model_fetch_ms", t); // what was left of the download once Pyodide and NumPy were up

  t = performance.now();
  reportProgress(P.Stage.LOAD_MODEL, 0, 0, true);
  state.model = py.load_model(MODEL_DIR, kernels?.exports);
  const modelInfo = JSON.parse(py.model_info(state.model));
  reportProgress(P.Stage.LOAD_MODEL, 1, 1, true);
  mark("model_load_ms", t);
  mark("boot_ms", t0);

  return {
    protocol: P.PROTOCOL_VERSION,
    pyodide: pyodide.version,
    numpy: { source: manifest.numpy.source, version: manifest.numpy.version },
    model: { ...modelInfo, dir: manifest.model.name, labels: manifest.model.files.includes("model/labels.json") ? "model/labels.json" : null },
    kernels: kernels ? kernels.path : null,
    crossOriginIsolated: self.crossOriginIsolated === true,
    snapshot,
    bytecode,
    timings,
  };
}

// The WASM SIMD GEMM hook (py/tiny_vlm/wasm): when build.py put the generated modules in
// the site, `manifest.kernels` is {relaxed, simd128} (paths). The relaxed-SIMD build (FMA)
// is used where the browser validates it, else plain SIMD128. The module's only import is
// Pyodide's own memory, so NumPy array addresses are kernel arguments; the exports go to
// `bridge.load_model`, which wraps them in the runtime's SimdBackend. No kernels listed:
// returns null and the runtime uses its NumPy kernels.
async function loadKernels(memory, siteBase, manifest) {
  const choices = manifest.kernels;
  if (!choices) return null;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error("could not find Pyodide's WebAssembly.Memory for the SIMD kernels");
  for (const path of [choices.relaxed, choices.simd128].filter(Boolean)) {
    const bytes = await fetchVerified(siteBase, manifest, path, P.Stage.KERNELS);
    if (!WebAssembly.validate(bytes)) continue; // e.g. no relaxed SIMD in this browser
    const { instance } = await WebAssembly.instantiate(bytes, { env: { memory } });
    return { path, exports: instance.exports };
  }
  throw new Error("none of the WASM SIMD kernel modules validates in this browser");
}

// Pyodide memory snapshots (Pyodide's private `_makeSnapshot` / `_loadSnapshot` options of
// loadPyodide, present in 314.0.4): the WebAssembly heap of an interpreter that has just
// started, before NumPy or any other shared library is loaded (a snapshot holds the heap
// only, not the dynamically linked modules). Kept in Cache Storage under a key made of the
// Pyodide core's sha256, so a site with another Pyodide never restores an old one; Pyodide
// itself also refuses a snapshot of another build. A failed restore deletes the snapshot
// and boots normally. null where Cache Storage is unavailable (insecure context).
async function openSnapshotStore(siteBase, manifest) {
  const wasm = manifest.files["pyodide/pyodide.asm.wasm"];
  return wasm ? openBootCache(new URL(`pyodide-snapshot/${wasm.sha256}.bin`, siteBase).href) : null;
}

// Compiled bytecode of NumPy and tiny_vlm (bridge.compiled_modules), keyed by everything its
// sources come from: the Pyodide core, the NumPy wheel and the tiny_vlm wheel.
async function openBytecodeStore(siteBase, manifest) {
  const wasm = manifest.files["pyodide/pyodide.asm.wasm"];
  const wheel = manifest.files[manifest.wheel];
  if (!wasm || !wheel || !manifest.numpy.sha256) return null;
  const id = [wasm.sha256, manifest.numpy.sha256, wheel.sha256].map((h) => h.slice(0, 16)).join("-");
  return openBootCache(new URL(`pyodide-bytecode/${id}.bin`, siteBase).href);
}

/** One entry of the worker's Cache Storage: read() -> Uint8Array | null, write(bytes), remove(). */
async function openBootCache(key) {
  if (typeof caches === "undefined") return null;
  let cache;
  try {
    cache = await caches.open(SNAPSHOT_CACHE);
  } catch {
    return null;
  }
  return {
    async read() {
      // An entry that cannot be read is removed: it is a cache, never a reason to fail a boot.
      try {
        const hit = await cache.match(key);
        return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
      } catch (err) {
        console.warn(`tiny-vlm: ${key} could not be read, removed:`, err?.message);
        await cache.delete(key).catch(() => false);
        return null;
      }
    },
    async write(bytes) {
      try {
        // older versions' entries of this kind go first: with little storage left, the new one may need their room
        const folder = key.slice(0, key.lastIndexOf("/") + 1);
        for (const request of await cache.keys()) if (request.url.startsWith(folder) && request.url !== key) await cache.delete(request);
        await cache.put(key, new Response(bytes));
      } catch (err) {
        console.warn(`tiny-vlm: ${key} not stored:`, err.message);
      }
    },
    remove: () => cache.delete(key).catch(() => false),
  };
}

/** Write the .pyc files of a bridge.compiled_modules() pack into Pyodide's file system. */
function installBytecode(pyodide, pack) {
  const view = new DataView(pack.buffer, pack.byteOffset, pack.byteLength);
  const headerLength = view.getUint32(0, true);
  const entries = JSON.parse(new TextDecoder().decode(pack.subarray(4, 4 + headerLength)));
  // Check every entry before writing any: only .pyc files in a __pycache__ folder under
  // site-packages (never next to the standard library), sizes that add up to the pack.
  let total = 4 + headerLength;
  for (const [path, size] of entries) {
    if (typeof path !== "string" || !PYC_PATH.test(path) || path.includes("/../") || !Number.isInteger(size) || size < 16) {
      throw new Error(`bad bytecode entry ${JSON.stringify(path)}`);
    }
    total += size;
  }
  if (total !== pack.byteLength) throw new Error(`bytecode pack is ${pack.byteLength} bytes, its header says ${total}`);
  let at = 4 + headerLength;
  for (const [path, size] of entries) {
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    pyodide.FS.writeFile(path, pack.subarray(at, at + size));
    at += size;
  }
  return entries.length;
}

// Pyodide does not expose its WebAssembly.Memory; its main module exports it. Watch the
// instantiations made while loadPyodide runs and keep the first exported Memory.
function captureExportedMemory() {
  const original = { instantiate: WebAssembly.instantiate, instantiateStreaming: WebAssembly.instantiateStreaming };
  const capture = { memory: null };
  const grab = (result) => {
    const exports = (result.instance ?? result).exports;
    if (!capture.memory && exports?.memory instanceof WebAssembly.Memory) capture.memory = exports.memory;
    return result;
  };
  WebAssembly.instantiate = (...args) => original.instantiate.apply(WebAssembly, args).then(grab);
  WebAssembly.instantiateStreaming = (...args) => original.instantiateStreaming.apply(WebAssembly, args).then(grab);
  capture.restore = () => Object.assign(WebAssembly, original);
  return capture;
}

// One short answer on a blank frame right after ready, in a single task (a request that
// arrives meanwhile waits for it, ~0.1 s): WebAssembly code runs on the baseline tier until V8
// sees it hot, so the user's first answer used to take 2-3x longer than later ones.
function warmUp() {
  if (state.current || state.phase !== "ready") return;
  let session = null;
  try {
    const side = 64;
    session = state.py.start(state.model, new Uint8Array(side * side * 4).fill(128), side, side, "Describe this image.", '{"max_tokens": 3}');
    state.py.prefill(session);
    while (!state.py.is_done(session)) state.py.step(session);
  } catch (err) {
    console.warn("tiny-vlm: warm-up failed:", errorMessage(err));
  } finally {
    session?.destroy();
  }
}

// After the first boot: compile the imported modules to bytecode for the next boot (about
// 0.3 s of work, so it waits until the worker is idle rather than delay an answer).
function storeBytecode() {
  if (state.current) return setTimeout(storeBytecode, BYTECODE_DELAY_MS);
  const store = state.bytecodeStore;
  state.bytecodeStore = null;
  try {
    const result = state.py.compiled_modules();
    const bytes = result instanceof Uint8Array ? result : result.toJs();
    result.destroy?.();
    store.write(bytes);
  } catch (err) {
    console.warn("tiny-vlm: bytecode not stored:", errorMessage(err));
  }
}

// --- generation -------------------------------------------------------------------

async function onGenerate(msg) {
  const id = msg.id;
  if (state.phase === "failed") {
    return post(P.error(id, P.ErrorCode.FAILED, "generate: this worker failed to load the model and will not answer; start a new one"));
  }
  if (state.phase !== "ready") {
    return post(P.error(id, P.ErrorCode.NOT_READY, `generate: the model is not loaded yet (worker is ${state.phase})`));
  }
  if (state.current) {
    return post(P.error(id, P.ErrorCode.BUSY, `busy: request ${state.current.id} is still running; send stop or wait for its done`));
  }
  const problem = P.checkGenerate(msg);
  if (problem) return post(P.error(id, P.ErrorCode.BAD_REQUEST, problem));

  const run = { id, stopRequested: false };
  state.current = run;
  const py = state.py;
  let session = null;
  try {
    const t0 = performance.now();
    const { width, height, rgba } = msg.image;
    const p = msg.params;
    const params = { max_tokens: p.maxTokens, temperature: p.temperature, top_k: p.topK, top_p: p.topP, seed: p.seed };
    // the bytes themselves (a Uint32Array of packed pixels must not be converted element by element)
    const bytes = rgba instanceof ArrayBuffer ? new Uint8Array(rgba) : new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength);
    try {
      session = py.start(state.model, bytes, width, height, msg.prompt, JSON.stringify(params));
    } catch (err) {
      // what Python refuses here is the request (a prompt that does not fit, a bad value), not the runtime
      const refused = ["BridgeError", "ValueError", "ImageError"].includes(err?.type);
      return post(P.error(id, refused ? P.ErrorCode.BAD_REQUEST : P.ErrorCode.GENERATE, errorMessage(err)));
    }
    py.prefill(session);
    let index = 0;
    let firstTokenMs = null;
    let lastYield = -Infinity; // the first step yields: a stop sent with the request is seen before any token
    while (!py.is_done(session)) {
      if (performance.now() - lastYield >= YIELD_INTERVAL_MS) {
        await yieldToEventLoop(); // a pending `stop` is handled here
        lastYield = performance.now();
      }
      if (run.stopRequested) {
        py.stop(session);
        break;
      }
      const text = py.step(session);
      if (text) post(P.token(id, index, text));
      if (firstTokenMs === null) {
        firstTokenMs = performance.now() - t0;
        // Yield right after the first token: measured in Chromium, the page otherwise saw it
        // only with the last ones (2-4 ms later, when this task ended); later tokens go out
        // every YIELD_INTERVAL_MS.
        lastYield = -Infinity;
      }
      index += 1;
    }
    const reason = py.finish_reason(session); // "stopped" after py.stop
    const stats = JSON.parse(py.stats_json(session));
    stats.wall_ms = round(performance.now() - t0);
    stats.worker_ttft_ms = firstTokenMs === null ? null : round(firstTokenMs);
    post(P.done(id, reason, stats));
  } catch (err) {
    post(P.error(id, P.ErrorCode.GENERATE, errorMessage(err)));
  } finally {
    session?.destroy();
    state.current = null;
  }
}

function onStop(msg) {
  // Stopping a request that already finished (or never ran) is not an error: the
  // `done` for it has been or will be sent, and races are normal.
  if (state.current && state.current.id === msg.id) state.current.stopRequested = true;
}

// Zero-delay yield: a MessageChannel task is not clamped like nested setTimeout(0).
const yieldChannel = new MessageChannel();
const yieldQueue = [];
yieldChannel.port1.onmessage = () => yieldQueue.shift()?.();
function yieldToEventLoop() {
  return new Promise((resolve) => {
    yieldQueue.push(resolve);
    yieldChannel.port2.postMessage(null);
  });
}

// --- fetching ---------------------------------------------------------------------

/** fetch() whose network failure names the URL and says when the device is offline. */
async function fetchOrExplain(url, init) {
  try {
    return await nativeFetch(url, init);
  } catch (err) {
    const offline = self.navigator?.onLine === false
      ? " (this device is offline: the app starts offline only after one complete load)" : "";
    throw new Error(`could not fetch ${url}: ${err.message}${offline}`);
  }
}

async function fetchJson(url) {
  const resp = await fetchOrExplain(url, { cache: "no-cache" });
  if (!resp.ok) throw new Error(`GET ${url}: HTTP ${resp.status}`);
  return resp.json();
}

/** Fetch `path` of the site with byte progress and check its size and sha256 against the manifest. */
async function fetchVerified(siteBase, manifest, path, stage, onBytes) {
  const entry = manifest.files[path];
  if (!entry) throw new Error(`manifest has no entry for ${path}`);
  const url = new URL(path, siteBase).href;
  const resp = await fetchOrExplain(url);
  if (!resp.ok) throw new Error(`GET ${url}: HTTP ${resp.status}`);
  const report = onBytes ?? ((n, force) => reportProgress(stage, n, entry.bytes, force));
  const bytes = await readWithProgress(resp, report);
  report(bytes.byteLength, true);
  if (bytes.byteLength !== entry.bytes) {
    throw new Error(`${path}: got ${bytes.byteLength} bytes, the manifest says ${entry.bytes}`);
  }
  // Plain http on another host (a phone on the LAN) has no crypto.subtle: the size check above
  // is all there is then. The sha256 guards against a half-finished deploy, not an attacker.
  if (!self.crypto?.subtle) return bytes;
  const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
  if (digest !== entry.sha256) {
    throw new Error(`${path}: sha256 ${digest} does not match the manifest (${entry.sha256})`);
  }
  return bytes;
}

/**
 * Start fetchVerified(path) now; `job.finish(onBytes)` later reports the bytes so far, then
 * each new chunk, through onBytes, and resolves to the verified bytes. An error surfaces at
 * finish(), not as an unhandled rejection.
 */
function startFetch(siteBase, manifest, path) {
  const job = { loaded: 0, report: null };
  const promise = fetchVerified(siteBase, manifest, path, null, (n, force) => {
    job.loaded = n;
    job.report?.(n, force);
  });
  promise.catch(() => {});
  job.finish = (onBytes) => {
    job.report = onBytes;
    onBytes(job.loaded, true);
    return promise;
  };
  return job;
}

async function readWithProgress(resp, onBytes) {
  const chunks = [];
  let n = 0;
  const reader = resp.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.byteLength;
    onBytes(n);
  }
  const bytes = new Uint8Array(n);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

// Count the bytes of every fetch made while `fn` runs (Pyodide fetches its own files).
async function withFetchProgress(stage, total, fn) {
  const originalFetch = self.fetch;
  let loaded = 0;
  self.fetch = async (input, init) => {
    const resp = await originalFetch(input, init);
    if (!resp.ok || !resp.body) return resp;
    const counter = new TransformStream({
      transform(chunk, controller) {
        loaded += chunk.byteLength;
        reportProgress(stage, loaded, Math.max(total, loaded));
        controller.enqueue(chunk);
      },
    });
    // The body is decoded already: drop the gzip encoding and compressed length of serve.py's twins.
    const headers = new Headers(resp.headers);
    headers.delete("Content-Encoding");
    headers.delete("Content-Length");
    return new Response(resp.body.pipeThrough(counter), { status: resp.status, statusText: resp.statusText, headers });
  };
  reportProgress(stage, 0, total, true);
  try {
    return await fn();
  } finally {
    self.fetch = originalFetch;
    reportProgress(stage, Math.max(total, loaded), Math.max(total, loaded), true);
  }
}

let lastProgressAt = 0;
function reportProgress(stage, loaded, total, force = false) {
  const now = performance.now();
  if (!force && now - lastProgressAt < PROGRESS_INTERVAL_MS) return;
  lastProgressAt = now;
  post(P.progress(stage, loaded, total));
}

/** A Python exception's last line ("ValueError: ..."), not its whole traceback. */
function errorMessage(err) {
  const text = String(err?.message ?? err);
  if (err?.constructor?.name !== "PythonError") return text;
  const lines = text.trim().split("\n");
  return lines[lines.length - 1];
}

// --- small helpers ----------------------------------------------------------------

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sumBytes = (manifest, paths) => paths.reduce((sum, p) => sum + (manifest.files[p]?.bytes ?? 0), 0);
const round = (ms) => Math.round(ms * 100) / 100;
const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
