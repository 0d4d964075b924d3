// The worker protocol (DESIGN.md §5): every message type, in one place.
//
// One key `type` both ways. Every request carries an `id` that every reply to it echoes.
//   main -> worker: init {urls} · generate {id, prompt, image, params} · stop {id}
//   worker -> main: progress {stage, loaded, total} · ready {info}
//                   token {id, index, text} · done {id, reason, stats} · error {id?, code, message}

export const PROTOCOL_VERSION = 1;

export const MessageType = Object.freeze({
  // main -> worker
  INIT: "init",
  GENERATE: "generate",
  STOP: "stop",
  // worker -> main
  PROGRESS: "progress",
  READY: "ready",
  TOKEN: "token",
  DONE: "done",
  ERROR: "error",
});

// Loading stages reported by `progress`, in order; `loaded`/`total` are bytes
// (total 0 when unknown).
export const Stage = Object.freeze({
  MANIFEST: "manifest",
  PYODIDE: "pyodide",
  WHEEL: "wheel",
  NUMPY: "numpy",
  KERNELS: "kernels",
  MODEL: "model",
  LOAD_MODEL: "load-model",
});

export const STAGE_LABELS = Object.freeze({
  [Stage.MANIFEST]: "Reading the site manifest",
  [Stage.PYODIDE]: "Starting Python (Pyodide)",
  [Stage.WHEEL]: "Installing tiny_vlm",
  [Stage.NUMPY]: "Installing NumPy",
  [Stage.KERNELS]: "Loading WASM kernels",
  [Stage.MODEL]: "Downloading the model",
  [Stage.LOAD_MODEL]: "Loading the model",
});

// Why a generation ended (a stop string counts as "eos": see bridge.finish_reason).
export const DoneReason = Object.freeze({ EOS: "eos", LENGTH: "length", STOPPED: "stopped" });

// `error.code`: lets callers react without parsing the message.
export const ErrorCode = Object.freeze({
  BUSY: "busy", // a generation is already running; one request at a time
  NOT_READY: "not_ready", // generate before ready
  BAD_REQUEST: "bad_request", // malformed message
  BOOT: "boot", // loading failed (network, integrity, timeout, Python error)
  GENERATE: "generate", // the runtime raised during a generation
  FAILED: "failed", // the worker's boot failed or it was terminated: it will not answer; load a new one
});

// Limits of one request: a frame is copied into WebAssembly memory, which never shrinks (scale
// large photos down first), and only about 90 prompt tokens fit beside the image anyway.
export const MAX_PIXELS = 4096 * 4096;
export const MAX_PROMPT_CHARS = 2000;

export const DEFAULT_PARAMS = Object.freeze({ maxTokens: 32, temperature: 0, topK: 0, topP: 1, seed: 0 });

// --- main -> worker ---------------------------------------------------------------

/** urls: {manifest, pyodideIndex, numpyCdn?}, all absolute. */
export const init = (urls) => ({ type: MessageType.INIT, urls });

/** image: {width, height, rgba: ArrayBuffer (transferred)}; params: see DEFAULT_PARAMS. */
export const generate = (id, prompt, image, params) => ({
  type: MessageType.GENERATE,
  id,
  prompt,
  image,
  params: { ...DEFAULT_PARAMS, ...params },
});

export const stop = (id) => ({ type: MessageType.STOP, id });

// --- worker -> main ---------------------------------------------------------------

export const progress = (stage, loaded, total) => ({ type: MessageType.PROGRESS, stage, loaded, total });
export const ready = (info) => ({ type: MessageType.READY, info });
export const token = (id, index, text) => ({ type: MessageType.TOKEN, id, index, text });
export const done = (id, reason, stats) => ({ type: MessageType.DONE, id, reason, stats });
export const error = (id, code, message) => ({ type: MessageType.ERROR, id: id ?? null, code, message });

/** Returns a message naming what is wrong with a `generate` request, or null when valid. */
export function checkGenerate(msg) {
  if (typeof msg.id !== "number" && typeof msg.id !== "string") return "generate: `id` must be a number or string";
  if (typeof msg.prompt !== "string" || msg.prompt.trim() === "") return "generate: `prompt` must be a non-empty string";
  if (msg.prompt.length > MAX_PROMPT_CHARS) return `generate: \`prompt\` has ${msg.prompt.length} characters, at most ${MAX_PROMPT_CHARS}`;
  const image = msg.image;
  if (!image || !Number.isInteger(image.width) || !Number.isInteger(image.height) || image.width < 1 || image.height < 1)
    return "generate: `image` needs integer `width` and `height` >= 1";
  if (image.width * image.height > MAX_PIXELS)
    return `generate: the image has ${image.width}x${image.height} pixels, at most ${MAX_PIXELS} (scale it down first: the model sees a small square)`;
  if (!(image.rgba instanceof ArrayBuffer) && !ArrayBuffer.isView(image.rgba)) return "generate: `image.rgba` must be an ArrayBuffer or a typed array of RGBA bytes";
  const bytes = image.rgba?.byteLength;
  if (bytes !== image.width * image.height * 4)
    return `generate: \`image.rgba\` has ${bytes} bytes, expected width*height*4 = ${image.width * image.height * 4}`;
  const p = msg.params ?? {};
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 1) return `generate: \`params.maxTokens\` must be an integer >= 1, got ${p.maxTokens}`;
  if (!Number.isFinite(p.temperature) || p.temperature < 0) return `generate: \`params.temperature\` must be a finite number >= 0, got ${p.temperature}`;
  if (!Number.isInteger(p.topK) || p.topK < 0) return `generate: \`params.topK\` must be an integer >= 0 (0 = off), got ${p.topK}`;
  if (!Number.isFinite(p.topP) || p.topP <= 0 || p.topP > 1) return `generate: \`params.topP\` must be in (0, 1], got ${p.topP}`;
  if (!Number.isInteger(p.seed) || p.seed < 0) return `generate: \`params.seed\` must be an integer >= 0, got ${p.seed}`;
  return null;
}
