// The page: camera or uploaded image -> TinyVLM client -> streamed answer. UI only:
// Pyodide lives in the worker behind client.js. The worker is the single source of truth
// for "running": the UI leaves that state only when infer() settles (done or error).

import { TinyVLM } from "./client.js";

const DEFAULT_SIDE = 256; // crop side before the model's own image size is known
const CAMERA_CONSTRAINTS = {
  audio: false,
  // Rear camera on phones; 640x480 is what the page asks for (and what the tests fake).
  video: { facingMode: { ideal: "environment" }, width: { ideal: 640 }, height: { ideal: 480 } },
};
const PRESET_FALLBACK = { name: "dog", plural: "dogs" };
const HISTORY_SIZE = 50;
const SW_CONTROL_WAIT_MS = 2000; // first visit: how long the boot waits for the service worker to take control
const CONTINUOUS_MIN_INTERVAL_MS = 250; // continuous mode: at most four answers a second (a phone's battery)
const MAX_STILL_SIDE = 1024; // uploaded photos are cropped and scaled down to this side (canvas limits on phones)

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  progress: $("progress"),
  progressBar: $("progress-bar"),
  progressText: $("progress-text"),
  error: $("error"),
  dropzone: $("dropzone"),
  video: $("preview"),
  still: $("still"),
  cameraMessage: $("camera-message"),
  upload: $("upload"),
  useCamera: $("use-camera"),
  prompt: $("prompt"),
  continuous: $("continuous"),
  speak: $("speak"),
  start: $("start"),
  stop: $("stop"),
  answer: $("answer"),
  stats: $("stats"),
  modelName: $("model-name"),
  update: $("update"),
  aboutModel: $("about-model"),
  aboutSummary: $("about-summary"),
  aboutText: $("about-text"),
  labelList: $("label-list"),
};

const app = {
  vlm: null,
  source: null, // "camera" | "image" | null
  stream: null,
  running: false, // an answer loop is active (set by Start, cleared when infer settles)
  wantStop: false, // the user pressed Stop; the loop ends after the current answer settles
  abort: null, // AbortController of the running inference
  answers: 0,
  lastResult: null,
  history: [], // the last HISTORY_SIZE results: {text, reason, stats, prompt}
  labels: [],
  cameraAllowed: false, // the camera started once: "Use camera" may start it again
  lastSpoken: null, // continuous mode reads an answer aloud only when it differs from the last one
};

// Tests and other scripts: window.tinyVLM.ready resolves to the loaded client.
let resolveReady, rejectReady;
const progressLog = [];
window.tinyVLM = {
  progress: progressLog,
  ready: new Promise((res, rej) => ((resolveReady = res), (rejectReady = rej))),
  get client() { return app.vlm; },
  get answers() { return app.answers; },
  get lastResult() { return app.lastResult; },
  get history() { return app.history; },
  get running() { return app.running; },
};
window.tinyVLM.ready.catch(() => {}); // reported in the page; no unhandled rejection

async function main() {
  const unsupported = browserProblem();
  if (unsupported) {
    setStatus("This browser cannot run tiny-vlm.");
    showError(unsupported);
    for (const part of document.querySelectorAll("#source, .ask, .result")) part.hidden = true; // nothing here can work
    rejectReady(new Error(unsupported));
    return;
  }
  wireControls();
  startCamera(); // in parallel with loading; it reports its own problems
  await registerServiceWorker();
  try {
    setStatus("Loading…");
    app.vlm = await TinyVLM.load({ onProgress: showProgress });
  } catch (err) {
    ui.progress.hidden = true;
    setStatus("Could not load the model.");
    showError(`Loading failed: ${err.message}`);
    rejectReady(err);
    // A stored copy may be what failed: let the service worker compare it with the site.
    navigator.serviceWorker?.ready.then((reg) => reg.active?.postMessage({ type: "update" }));
    return;
  }
  ui.progress.hidden = true;
  const info = app.vlm.info;
  ui.modelName.textContent = `model ${info.model.dir} · NumPy ${info.numpy.source === "local" ? "from this site" : "from the Pyodide CDN"}`;
  showAbout(info.model.about);
  loadLabels(info.model.labels).then(showLabels);
  setStatus(`Ready (loaded in ${(info.timings.boot_ms / 1000).toFixed(1)} s).`);
  // The service worker stores what is missing and checks for a new version (sw.js).
  navigator.serviceWorker?.ready.then((reg) => reg.active?.postMessage({ type: "update" }));
  updateButtons();
  resolveReady(app.vlm);
}

// --- capability checks ------------------------------------------------------------

// A minimal module using one SIMD instruction (i32x4.splat): validates only with WASM SIMD.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 17, 11]);

function browserProblem() {
  if (typeof WebAssembly !== "object") return "This browser has no WebAssembly. tiny-vlm runs Python compiled to WebAssembly; please use a current Chrome, Edge, Firefox or Safari.";
  if (!WebAssembly.validate(SIMD_PROBE)) return "This browser does not support WebAssembly SIMD, which tiny-vlm needs. Please update your browser (Chrome 98+, Edge 98+, Firefox 114+, Safari 16.4+) or turn SIMD back on.";
  if (typeof Worker !== "function") return "This browser has no Web Workers, which tiny-vlm needs.";
  return null;
}

async function registerServiceWorker() {
  // Offline use and fast reloads (sw.js). Optional: the app works without it. On the first
  // visit, wait (briefly) until it controls the page, so that the worker's downloads go
  // through it and are stored as they arrive instead of being fetched a second time.
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data?.type !== "update-checked") return;
    window.tinyVLM.updateCheck = event.data.result; // current, updated or failed: for tests and tools
    if (event.data.result === "updated") {
      window.tinyVLM.updateReady = true;
      ui.update.hidden = false; // its own line: answers' status updates do not overwrite it
    }
  });
  const registered = navigator.serviceWorker.register("sw.js").then(
    (reg) => reg,
    (err) => (console.warn("tiny-vlm: no offline cache:", err.message), null),
  );
  if (navigator.serviceWorker.controller) return; // a later visit: boot at once
  const reg = await registered;
  if (!reg || navigator.serviceWorker.controller) return;
  if (reg.active && !reg.installing && !reg.waiting) return; // a hard reload: this page stays uncontrolled
  await new Promise((resolve) => {
    navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true });
    setTimeout(resolve, SW_CONTROL_WAIT_MS);
  });
}

// --- loading ----------------------------------------------------------------------

function showProgress({ stage, label, loaded, total }) {
  progressLog.push({ stage, loaded, total, t: Math.round(performance.now()) });
  ui.progress.hidden = false;
  ui.progress.dataset.stage = stage;
  if (total) {
    ui.progressBar.max = total;
    ui.progressBar.value = loaded;
  } else {
    ui.progressBar.removeAttribute("value"); // size unknown: an indeterminate bar, not 0%
  }
  ui.progressText.textContent = total > 1 ? `${formatBytes(loaded)} / ${formatBytes(total)}` : "";
  setStatus(`${label}…`);
}

async function loadLabels(url) {
  // labels.json ships with a trained model; presets use it to suggest a real object, and
  // "What can it see?" lists it.
  if (!url) return;
  try {
    const resp = await fetch(url);
    if (!resp.ok) return;
    const data = await resp.json();
    const list = Array.isArray(data) ? data : (data.labels ?? data.objects ?? []);
    app.labels = list.filter((l) => typeof l?.name === "string");
  } catch {
    app.labels = []; // presets fall back to a fixed object
  }
}

// What the model can see, so that nobody expects more of it: its own words (the weights'
// `about` metadata) and the objects it knows (labels.json). Hidden when the model says neither.
function showAbout(about) {
  if (typeof about !== "string" || !about.trim()) return;
  ui.aboutText.textContent = about.trim();
  ui.aboutText.hidden = false;
  ui.aboutModel.hidden = false;
}

function showLabels() {
  if (!app.labels.length) return;
  ui.labelList.textContent = app.labels.map((l) => (l.emoji ? `${l.emoji} ${l.name}` : l.name)).join(" · ");
  ui.labelList.hidden = false;
  ui.aboutSummary.textContent = `What can it see? (${app.labels.length} objects)`;
  ui.aboutModel.hidden = false;
}

// --- image sources ----------------------------------------------------------------

/** Start the camera. On its own (at load) it never replaces an image the user chose;
 * `userAsked` (the "Use camera" button) switches to it. */
async function startCamera(userAsked = false) {
  if (!navigator.mediaDevices?.getUserMedia) {
    cameraUnavailable(window.isSecureContext
      ? "No camera API in this browser. Upload an image instead."
      : "The camera only works on https:// or localhost. Upload an image instead.");
    return;
  }
  try {
    app.stream = await navigator.mediaDevices.getUserMedia(CAMERA_CONSTRAINTS);
  } catch (err) {
    const denied = err?.name === "NotAllowedError" || err?.name === "SecurityError";
    const missing = err?.name === "NotFoundError" || err?.name === "OverconstrainedError";
    if (userAsked) showError(`The camera could not start again (${err?.name ?? "error"}).`); // the image stays shown
    cameraUnavailable(denied
      ? "Camera access was denied. Upload an image or drop one here instead (or allow the camera in the browser settings and reload)."
      : missing ? "No camera found. Upload an image or drop one here instead." : `The camera could not start (${err?.name ?? "error"}). Upload an image instead.`);
    return;
  }
  ui.video.srcObject = app.stream;
  ui.cameraMessage.hidden = true;
  app.cameraAllowed = true;
  app.stream.getVideoTracks()[0]?.addEventListener("ended", () => {
    if (app.source !== "camera") return;
    app.source = null;
    app.stream = null;
    cameraUnavailable("The camera stopped (another app may be using it). Upload an image, or reload to try again.");
  });
  if (app.source === "image" && !userAsked) {
    // The user chose an image while the browser asked about the camera: keep their image.
    ui.useCamera.hidden = false;
  } else {
    showCamera();
  }
  try {
    await ui.video.play();
  } catch {
    // autoplay of a muted inline video is allowed; if not, the first frame still arrives
  }
  updateButtons();
}

function showCamera() {
  ui.video.hidden = false;
  ui.still.hidden = true;
  ui.useCamera.hidden = true;
  app.source = "camera";
  ui.dropzone.dataset.source = "camera";
}

function cameraUnavailable(message) {
  ui.cameraMessage.textContent = message;
  ui.cameraMessage.hidden = app.source === "image";
  ui.dropzone.dataset.camera = "unavailable";
  updateButtons();
}

async function useImageFile(file) {
  if (!file || !file.type.startsWith("image/")) {
    showError(`Not an image: ${file?.name ?? "nothing"} (${file?.type || "unknown type"}).`);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    showError(`Could not decode ${file.name}. Try a JPEG or PNG.`);
    return;
  }
  try {
    // The centre square, scaled down to at most MAX_STILL_SIDE: a 24 MP photo's square is
    // past what phone browsers allow a canvas, and the model sees 224 px anyway.
    const crop = Math.min(bitmap.width, bitmap.height);
    const side = Math.min(crop, MAX_STILL_SIDE);
    ui.still.width = side;
    ui.still.height = side;
    ui.still.getContext("2d").drawImage(bitmap, (bitmap.width - crop) / 2, (bitmap.height - crop) / 2, crop, crop, 0, 0, side, side);
  } catch (err) {
    showError(`Could not show ${file.name}: ${err.message}`);
    return;
  } finally {
    bitmap.close();
  }
  ui.still.hidden = false;
  ui.video.hidden = true;
  ui.cameraMessage.hidden = true;
  if (app.stream) { // the camera is off while an image is shown (its light too); "Use camera" starts it again
    for (const track of app.stream.getTracks()) track.stop();
    app.stream = null;
    ui.video.srcObject = null;
  }
  ui.useCamera.hidden = !app.cameraAllowed;
  app.source = "image";
  ui.dropzone.dataset.source = "image";
  clearError();
  setStatus(app.vlm ? "Image ready. Press Start." : ui.status.textContent);
  updateButtons();
}

/** The newest frame, square center crop scaled to the model's input side. */
function grabFrame() {
  const side = app.vlm?.info?.model?.image_size ?? DEFAULT_SIDE;
  const canvas = grabFrame.canvas ?? (grabFrame.canvas = document.createElement("canvas"));
  canvas.width = side;
  canvas.height = side;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let src, w, h;
  if (app.source === "camera") {
    [src, w, h] = [ui.video, ui.video.videoWidth, ui.video.videoHeight];
    if (!w || !h) throw new Error("The camera has not delivered a frame yet.");
  } else {
    [src, w, h] = [ui.still, ui.still.width, ui.still.height];
  }
  const crop = Math.min(w, h);
  ctx.drawImage(src, (w - crop) / 2, (h - crop) / 2, crop, crop, 0, 0, side, side);
  return ctx.getImageData(0, 0, side, side);
}

// --- answering --------------------------------------------------------------------

const continuing = () => ui.continuous.checked && app.source === "camera" && !app.wantStop;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run() {
  if (app.running || !app.vlm || !app.source) return;
  const hadFocus = document.activeElement === ui.start;
  app.running = true;
  app.wantStop = false;
  app.lastSpoken = null;
  clearError();
  updateButtons();
  if (hadFocus) ui.stop.focus(); // Start is disabled now: keep keyboard users on the button that acts
  let result = null;
  try {
    setStatus(continuing() ? "Answering continuously…" : "Answering…"); // once, not per answer (screen readers)
    do {
      const began = performance.now();
      result = await answerOnce();
      if (continuing()) await pace(began);
    } while (continuing());
    setStatus(result?.reason === "stopped" || app.wantStop ? "Stopped." : "Done.");
  } catch (err) {
    showError(`Answering failed: ${err.message}`);
    setStatus("Error.");
  } finally {
    ui.answer.removeAttribute("aria-busy");
    const stopHadFocus = document.activeElement === ui.stop || app.stopHadFocus;
    app.stopHadFocus = false;
    app.running = false;
    app.abort = null;
    updateButtons();
    if (stopHadFocus) ui.start.focus();
  }
}

/** Continuous mode, between answers: a minimum interval, nothing while the page is hidden,
 * and no new answer while the last one is still being read aloud. */
async function pace(began) {
  await sleep(Math.max(0, CONTINUOUS_MIN_INTERVAL_MS - (performance.now() - began)));
  while (!app.wantStop && (document.hidden || (ui.speak.checked && window.speechSynthesis?.speaking))) await sleep(100);
}

async function answerOnce() {
  const frame = grabFrame(); // taken now: the newest frame, never a queued one
  const prompt = ui.prompt.value.trim() || "Describe this image.";
  app.abort = new AbortController();
  ui.answer.textContent = "";
  ui.answer.dataset.state = "streaming";
  ui.answer.setAttribute("aria-busy", "true"); // screen readers read the answer once, when it is whole
  const result = await app.vlm.infer(frame, prompt, {
    signal: app.abort.signal,
    maxTokens: 32,
    onToken: (delta) => ui.answer.append(delta),
  });
  app.answers += 1;
  app.lastResult = result;
  app.history.push({ ...result, prompt });
  if (app.history.length > HISTORY_SIZE) app.history.shift();
  if (ui.answer.textContent !== result.text) ui.answer.textContent = result.text; // no re-announcement
  ui.answer.dataset.state = result.reason;
  ui.answer.dataset.count = String(app.answers);
  ui.answer.removeAttribute("aria-busy");
  showStats(result);
  if (ui.speak.checked && result.text && "speechSynthesis" in window && result.text !== app.lastSpoken) {
    speechSynthesis.cancel();
    speechSynthesis.speak(new SpeechSynthesisUtterance(result.text));
    app.lastSpoken = result.text;
  }
  return result;
}

function stop() {
  app.stopHadFocus = document.activeElement === ui.stop; // Stop is disabled next: Start gets the focus when it is back
  app.wantStop = true;
  app.abort?.abort();
  setStatus("Stopping…");
  updateButtons();
}

function showStats({ stats }) {
  const ms = (v) => (typeof v === "number" ? `${Math.round(v)} ms` : "–");
  const perToken = typeof stats.decode_ms_per_token === "number" ? `${stats.decode_ms_per_token.toFixed(1)} ms/token` : "– ms/token";
  ui.stats.textContent = `TTFT ${ms(stats.ttft_ms)} · ${perToken} · ${stats.tokens} tokens`;
  ui.stats.dataset.ttftMs = String(stats.ttft_ms);
}

// --- controls ---------------------------------------------------------------------

function wireControls() {
  ui.start.addEventListener("click", run);
  ui.stop.addEventListener("click", stop);
  ui.prompt.addEventListener("keydown", (e) => e.key === "Enter" && !e.isComposing && run());
  ui.upload.addEventListener("change", () => {
    const file = ui.upload.files?.[0];
    ui.upload.value = ""; // choosing the same file again fires `change` again
    useImageFile(file);
  });
  ui.useCamera.addEventListener("click", () => startCamera(true));
  for (const chip of document.querySelectorAll("[data-prompt]")) {
    chip.addEventListener("click", () => {
      const label = app.labels.length ? app.labels[Math.floor(Math.random() * app.labels.length)] : PRESET_FALLBACK;
      const plural = label.plural ?? `${label.name}s`;
      ui.prompt.value = chip.dataset.prompt.replace("{name}", label.name).replace("{plural}", plural);
      // No focus on the text box: on a phone that would open the keyboard over the preview.
    });
  }
  const zone = ui.dropzone;
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    useImageFile(e.dataTransfer?.files?.[0]);
  });
}

function updateButtons() {
  ui.start.disabled = !app.vlm || !app.source || app.running;
  ui.stop.disabled = !app.running || app.wantStop;
  ui.upload.disabled = false;
}

function setStatus(text) {
  if (ui.status.textContent !== text) ui.status.textContent = text; // a live region: no repeats
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

main(); // last: every module-level const above is initialised
