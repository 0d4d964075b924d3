// TinyVLM client: embed tiny-vlm in any page. No DOM access, no Pyodide here.
//
//   import { TinyVLM } from "./client.js";
//   const vlm = await TinyVLM.load({ onProgress: ({stage, label, loaded, total}) => {} });
//   const { text, stats, reason } = await vlm.infer(imageData, "Describe this image.", {
//     onToken: (delta, index) => {}, signal: abortController.signal, maxTokens: 32 });
//
// `infer` resolves on the worker's `done` (reason "stopped" after an abort, with the text
// so far) and rejects on its `error` (err.code: see ErrorCode in protocol.js). One
// inference at a time: a second call while one runs rejects with code "busy".

import * as P from "./protocol.js";

export class TinyVLMError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "TinyVLMError";
    this.code = code;
  }
}

export class TinyVLM {
  /**
   * Start the worker and load Pyodide, NumPy, tiny_vlm and the model.
   * options: {baseUrl (site root, default: this module's folder), onProgress, timeoutMs}
   */
  static async load(options = {}) {
    const base = new URL(options.baseUrl ?? ".", import.meta.url);
    const worker = new Worker(new URL("worker.js", base), { type: "module" });
    const vlm = new TinyVLM(worker);
    try {
      await vlm.#boot(
        {
          manifest: new URL("manifest.json", base).href,
          pyodideIndex: new URL("pyodide/", base).href,
          ...(options.numpyCdn ? { numpyCdn: options.numpyCdn } : {}),
        },
        options.onProgress ?? (() => {}),
        options.timeoutMs ?? 300_000,
      );
    } catch (err) {
      worker.terminate(); // a failed boot must not keep Pyodide and the model in memory, or report later
      throw err;
    }
    return vlm;
  }

  #worker;
  #nextId = 1;
  #pending = new Map(); // id -> {resolve, reject, onToken, text}
  #boot_handlers = null;
  #closed = null; // why this client will not answer any more (terminated, or its worker failed)
  info = null;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (event) => this.#onMessage(event.data);
    worker.onerror = (event) => this.#fail(`the worker failed: ${event.message || "it could not start (worker.js did not load, or this browser has no module workers)"}`);
    worker.onmessageerror = () => this.#fail("the worker sent a message that could not be read");
  }

  /** True while an inference is running. */
  get busy() {
    return this.#pending.size > 0;
  }

  #boot(urls, onProgress, timeoutMs) {
    return new Promise((resolve, reject) => {
      // The timeout ends the boot like any other failure: no progress or `ready` is reported after it.
      const timer = setTimeout(() => this.#fail(`loading took longer than ${timeoutMs / 1000} s`), timeoutMs);
      this.#boot_handlers = {
        onProgress,
        resolve: (info) => (clearTimeout(timer), resolve(info)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.#worker.postMessage(P.init(urls));
    });
  }

  /**
   * Answer `prompt` about `image` (ImageData or {width, height, data: Uint8ClampedArray|Uint8Array} RGBA).
   * options: {onToken(delta, index), signal, maxTokens, temperature, topK, topP, seed}
   */
  infer(image, prompt, options = {}) {
    const { onToken, signal, ...params } = options;
    if (this.#closed) return Promise.reject(new TinyVLMError(P.ErrorCode.FAILED, `this client is closed: ${this.#closed}`));
    if (this.busy) return Promise.reject(new TinyVLMError(P.ErrorCode.BUSY, "busy: one inference at a time"));
    if (signal?.aborted) return Promise.reject(new DOMException("aborted before it started", "AbortError"));
    const id = this.#nextId++;
    // Copy the pixels into a buffer of their own and transfer it: the caller keeps its ImageData.
    const rgba = new Uint8Array(image.data).buffer;
    const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
    return new Promise((resolve, reject) => {
      const onAbort = () => this.#worker.postMessage(P.stop(id));
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = () => signal?.removeEventListener("abort", onAbort);
      this.#pending.set(id, {
        text: "",
        onToken,
        resolve: (v) => (settle(), resolve(v)),
        reject: (e) => (settle(), reject(e)),
      });
      this.#worker.postMessage(P.generate(id, prompt, { width: image.width, height: image.height, rgba }, clean), [rgba]);
    });
  }

  /** Stop the worker for good (frees Pyodide and the model). */
  terminate() {
    this.#fail("terminated");
  }

  #onMessage(msg) {
    switch (msg.type) {
      case P.MessageType.PROGRESS:
        return this.#boot_handlers?.onProgress({ ...msg, label: P.STAGE_LABELS[msg.stage] ?? msg.stage });
      case P.MessageType.READY:
        this.info = msg.info;
        this.#boot_handlers?.resolve(this);
        this.#boot_handlers = null;
        return;
      case P.MessageType.TOKEN: {
        const job = this.#pending.get(msg.id);
        if (!job) return;
        job.text += msg.text;
        job.onToken?.(msg.text, msg.index);
        return;
      }
      case P.MessageType.DONE: {
        const job = this.#pending.get(msg.id);
        if (!job) return;
        this.#pending.delete(msg.id);
        job.resolve({ text: job.text, stats: msg.stats, reason: msg.reason });
        return;
      }
      case P.MessageType.ERROR: {
        const err = new TinyVLMError(msg.code, msg.message);
        if (msg.id !== null && this.#pending.has(msg.id)) {
          const job = this.#pending.get(msg.id);
          this.#pending.delete(msg.id);
          job.reject(err);
        } else if (this.#boot_handlers) {
          this.#boot_handlers.reject(err);
          this.#boot_handlers = null;
        } else {
          console.warn("tiny-vlm worker error without a request:", msg.message);
        }
        return;
      }
      default:
        console.warn("tiny-vlm: unknown message from the worker", msg);
    }
  }

  #fail(message) {
    // The worker is gone or cannot be trusted: nothing sent to it would be answered.
    this.#closed ??= message;
    this.#worker.terminate();
    const err = new TinyVLMError(this.#boot_handlers ? P.ErrorCode.BOOT : P.ErrorCode.FAILED, message);
    this.#boot_handlers?.reject(err);
    this.#boot_handlers = null;
    for (const job of this.#pending.values()) job.reject(err);
    this.#pending.clear();
  }
}
