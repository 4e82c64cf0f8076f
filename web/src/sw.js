// The workers' app service worker: the app shell offline, and the visit queue synced when online.
import { getMeta, syncQueue } from "/web/queue.js";

const SHELL = [
  "/app", "/web/app.js", "/web/app.css", "/web/common.js", "/web/queue.js", "/web/config.js",
  "/web/idb.js", "/web/session.js", "/web/reasons.js", "/web/password.js", "/web/recurring.js", "/web/task_detail.js", "/web/task_steps.js", "/web/task_pages.js", "/web/report_problem.js", "/web/task_detail.css", "/web/manifest.webmanifest", "/web/icons/icon-192.png", "/web/icons/icon-512.png",
];
const CACHE = "gridwork-app-" + new URL(self.location.href).searchParams.get("v");

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("gridwork-app-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The shell comes from the network when it can (fresh after a deploy), else from the cache:
// when the network fails, and when the server answers but cannot serve it (a 503 while a deploy
// rebuilds web/dist, a proxy's 502 while the server restarts: the worker got that error page
// instead of the app kept here). API calls are never cached: the app keeps its own data in
// IndexedDB. The copy is this version's, as installed, and nothing fetched later goes into it:
// every file fetched was copied in, so a new version met on a weak signal (some files new from
// the network, one failed and taken from the copy) left a copy of two versions, a new app.js
// importing from an old queue.js what it lacks, and offline the app no longer started. A new
// version's copy is made whole by its own service worker's install.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  const key = url.pathname === "/app/" ? "/app" : url.pathname;
  if (!SHELL.includes(key)) return;
  event.respondWith(
    fetch(event.request)
      .then(async (response) => (response.status < 500 ? response : (await caches.match(key, { cacheName: CACHE })) || response))
      .catch(() => caches.match(key, { cacheName: CACHE })),
  );
});

// Background Sync (where the browser has it): the queue goes out even with the app closed.
self.addEventListener("sync", (event) => {
  if (event.tag === "visits") event.waitUntil(syncQueue().then(() => notifyClients()));
});

self.addEventListener("message", (event) => {
  if (event.data === "sync") event.waitUntil(syncQueue().then(() => notifyClients(), () => notifyClients()));
});

async function notifyClients(message = "queue-changed") {
  for (const client of await self.clients.matchAll()) client.postMessage(message);
}

// A push that finds nobody signed in on this phone shows none of its words. A sign-out with no
// signal reaches the server only once the phone is back (`common.js`, gridwork.signOuts): until
// then the server still pushes to it, and a task's title (a resident's address, their plight)
// showed on the screen of a phone handed back or lent. The browser asks every push to show a
// notification (userVisibleOnly; left without one, it shows its own "updated in the
// background"): it says only that there is something to sign in for, and the subscription still
// held is let go of, so none comes after it (a sign-in turns push on again: "Enable push").
const SIGNED_OUT = { title: "网格员", body: "请登录后查看" };

/** Someone is signed in on this phone: the tokens the page keeps for the service worker. */
async function signedIn() {
  return Boolean(await getMeta("token").catch(() => null));
}

self.addEventListener("push", (event) => {
  event.waitUntil((async () => {
    if (!(await signedIn())) {
      return Promise.all([
        self.registration.showNotification(SIGNED_OUT.title, {
          body: SIGNED_OUT.body, tag: "signed-out", icon: "/web/icons/icon-192.png",
        }),
        self.registration.pushManager.getSubscription().then((held) => held?.unsubscribe()).catch(() => {}),
      ]);
    }
    let data = {};
    try { data = event.data ? event.data.json() : {}; } catch { data = { body: event.data && event.data.text() }; }
    const title = data.title || "gridwork";
    return Promise.all([
      self.registration.showNotification(title, {
        // The tag (collapse key, else message id): a push sent again replaces itself, not shown twice.
        body: data.body || "", tag: data.tag || undefined, data,
        icon: "/web/icons/icon-192.png",
      }),
      // Every push is a notice in the inbox: the open app reads it again (its badge, its list).
      notifyClients("inbox-changed"),
    ]);
  })());
});

// Tapping the notification opens the notice it mirrors (its id in the push's data), as a tap in
// the inbox does (read, its task's page open): in the open app if there is one, told `{notice}`,
// else in a new one opened at `/app?notice=ID`. It only showed the app, at whatever it showed:
// the worker found the inbox, the notice, and tapped it again, the notice unread meanwhile.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const notice = Number(event.notification.data?.data?.notification_id) || null;
  event.waitUntil((async () => {
    const open = (await self.clients.matchAll({ type: "window" })).find((c) => new URL(c.url).pathname.startsWith("/app"));
    if (!open) return self.clients.openWindow(notice ? `/app?notice=${notice}` : "/app");
    open.postMessage(notice ? { notice } : "inbox-changed");
    return open.focus();
  })());
});
