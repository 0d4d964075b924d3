// Offline use and fast reloads. Cache first: once a file of the site is stored, it is served
// from the cache, so a reload reads nothing from the network (and V8 can reuse its
// compiled WebAssembly). Updates happen in the background: after the app is ready the page
// sends `update`; this worker then fetches manifest.json from the network and, when it
// differs from the stored one, downloads the files whose sha256 changed into a staging
// cache, then moves them and the new manifest into the live cache together and tells the
// page (`update-checked`, result `updated`), which offers a reload. Files missing from the cache (those fetched
// before this worker took control on the first visit) are filled in the same way, mostly
// as 304 revalidations of the HTTP cache. Cross-origin requests (the NumPy CDN fallback)
// are left to the browser.

const CACHE = "tiny-vlm-v2";
const STAGING = "tiny-vlm-v2-staging";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(activate()));

async function activate() {
  for (const name of await caches.keys()) {
    if (name.startsWith("tiny-vlm-") && !name.startsWith(CACHE)) await caches.delete(name); // keeps the worker's snapshot cache
  }
  await self.clients.claim();
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(cacheFirst(event, request));
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "update" || event.data?.type === "precache") event.waitUntil(update(event.source));
});

async function cacheFirst(event, request) {
  const cache = await caches.open(CACHE);
  const home = new URL("./", self.registration.scope).href;
  // A navigation to the app (/, /?utm=..., /index.html) gets the stored page the updates keep
  // fresh; one to another file (/model/README.md) gets that file.
  const path = new URL(request.url).pathname.slice(new URL(self.registration.scope).pathname.length);
  const toApp = request.mode === "navigate" && (path === "" || path === "index.html");
  const cached = toApp ? (await cache.match(home)) ?? (await cache.match(request)) : await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.status === 200 && response.type === "basic") event.waitUntil(store(cache, request, response.clone()));
  return response;
}

// Store a file fetched from the network only if it is the version the stored manifest lists:
// after a deploy, a file missing from the cache arrives in its new version, which must not sit
// next to the old manifest (the next update check fetches both).
async function store(cache, request, response) {
  const scope = self.registration.scope;
  const path = request.url.startsWith(scope) ? request.url.slice(scope.length) : null;
  const manifestResponse = path && path !== "manifest.json" ? await cache.match(new URL("manifest.json", scope).href) : null;
  const entry = manifestResponse ? (await manifestResponse.json()).files?.[path] : null;
  if (!entry) return cache.put(request, response);
  const body = await response.arrayBuffer();
  if (body.byteLength === entry.bytes && (await sha256(body)) === entry.sha256) {
    return cache.put(request, new Response(body, { status: response.status, statusText: response.statusText, headers: decodedHeaders(response) }));
  }
  return update(null);
}

// The headers for a Response rebuilt from a decoded body: serve.py (like most hosts) sends
// large files gzip-encoded, and the encoding and compressed length no longer describe it.
function decodedHeaders(response) {
  const headers = new Headers(response.headers);
  headers.delete("Content-Encoding");
  headers.delete("Content-Length");
  return headers;
}

async function sha256(buffer) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

// One update at a time; every page that asked while it ran hears whether it found a new version.
let updating = null;
const waiting = new Set();
function update(client) {
  if (client) waiting.add(client);
  updating ??= doUpdate()
    .then(
      (changed) => {
        for (const c of waiting) c.postMessage({ type: "update-checked", result: changed ? "updated" : "current" });
      },
      (err) => {
        console.warn("tiny-vlm: update check failed:", err?.message ?? err);
        for (const c of waiting) c.postMessage({ type: "update-checked", result: "failed", message: String(err?.message ?? err) });
      },
    )
    .finally(() => {
      waiting.clear();
      updating = null;
    });
  return updating;
}

// -> true when a new version was stored.
async function doUpdate() {
  const scope = self.registration.scope;
  const url = (path) => new URL(path, scope).href;
  const response = await fetch(url("manifest.json"), { cache: "no-cache" });
  if (!response.ok) return false;
  const text = await response.clone().text();
  const manifest = JSON.parse(text);
  const cache = await caches.open(CACHE);
  const storedResponse = await cache.match(url("manifest.json"));
  const stored = storedResponse ? await storedResponse.json() : null;
  const changed = stored !== null && JSON.stringify(stored) !== JSON.stringify(manifest);
  const wanted = [];
  for (const [path, entry] of Object.entries(manifest.files)) {
    const same = stored?.files?.[path]?.sha256 === entry.sha256;
    if (!same || !(await cache.match(url(path)))) wanted.push(path);
  }
  if (manifest.files["index.html"] && (changed || !(await cache.match(url("./"))))) wanted.push("./");
  if (wanted.length === 0 && !changed && storedResponse) return false;
  // Stage everything first: a reload during the download still sees one consistent version.
  await caches.delete(STAGING);
  const staging = await caches.open(STAGING);
  for (const path of wanted) {
    const fresh = await fetch(url(path), { cache: "no-cache" });
    if (!fresh.ok) throw new Error(`update: GET ${path}: HTTP ${fresh.status}`);
    const body = await fresh.arrayBuffer();
    const entry = manifest.files[path];
    if (entry && (body.byteLength !== entry.bytes || (await sha256(body)) !== entry.sha256)) {
      throw new Error(`update: ${path} does not match the new manifest (a deploy in progress?); kept the old version`);
    }
    await staging.put(url(path), new Response(body, { status: fresh.status, statusText: fresh.statusText, headers: decodedHeaders(fresh) }));
  }
  for (const request of await staging.keys()) await cache.put(request, await staging.match(request));
  await cache.put(url("manifest.json"), new Response(text, { headers: decodedHeaders(response) }));
  await caches.delete(STAGING);
  // Files the new version no longer lists (an old wheel, an old NumPy) would sit in the
  // device's storage for good: remove them.
  const keep = new Set([url("./"), url("manifest.json"), ...Object.keys(manifest.files).map(url)]);
  for (const request of await cache.keys()) {
    if (!keep.has(request.url)) await cache.delete(request);
  }
  return changed;
}
