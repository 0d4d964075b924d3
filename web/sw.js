// Offline support. Network first, the cache when the network fails: online the freshest
// files always win, offline the last good copy is served. Every same-origin GET that
// succeeds is stored; after the app has loaded, the page sends `precache` and the files of
// manifest.json not stored yet (fetched before this worker took control) are added, mostly
// as 304 revalidations of the HTTP cache. Cross-origin requests (the NumPy CDN fallback)
// are left to the browser.

const CACHE = "tiny-vlm-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(networkFirst(event, request));
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "precache") event.waitUntil(precache());
});

async function networkFirst(event, request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.status === 200) event.waitUntil(cache.put(request, response.clone()));
    return response;
  } catch (err) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    throw err;
  }
}

async function precache() {
  const cache = await caches.open(CACHE);
  const manifestUrl = new URL("manifest.json", self.registration.scope).href;
  const response = await fetch(manifestUrl);
  if (!response.ok) return;
  await cache.put(manifestUrl, response.clone());
  const manifest = await response.json();
  const urls = ["./", ...Object.keys(manifest.files)].map((p) => new URL(p, self.registration.scope).href);
  for (const url of urls) {
    if (!(await cache.match(url))) await cache.add(url);
  }
}
