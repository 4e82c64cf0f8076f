// The offline visit queue in IndexedDB, shared by the app page and its service worker.

const DB_NAME = "gridwork";
const STORE = "visits";
const META = "meta";
export const BATCH_LIMIT = 500;

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: "id" });
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(storeName, mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeName, mode);
    const result = work(tx.objectStore(storeName));
    tx.oncomplete = () => { db.close(); resolve(result && "result" in result ? result.result : result); };
    tx.onerror = () => { db.close(); reject(tx.error); };
  });
}

/** The user id (the JWT's `sub`) a token was issued to, or null. */
export function tokenUser(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(payload)).sub ?? "") || null;
  } catch {
    return null;
  }
}

/**
 * Queue one visit recorded by `user` (the record is {id, visit, user, state: "pending"|"rejected",
 * reason}). A visit syncs only under its own worker's token: the server files it under the caller.
 */
export function enqueue(visit, user) {
  return run(STORE, "readwrite", (store) => store.put({ id: visit.id, visit, user, state: "pending", queuedAt: Date.now() }));
}
/** Every queued visit, of whichever user. */
export function listQueued() {
  return run(STORE, "readonly", (store) => store.getAll());
}
/** Empty the queue and forget the token (sign-out). */
export async function clearQueue() {
  await run(STORE, "readwrite", (store) => store.clear());
  await run(META, "readwrite", (store) => store.clear());
}
export function setMeta(key, value) {
  return run(META, "readwrite", (store) => store.put(value, key));
}
export function getMeta(key) {
  return run(META, "readonly", (store) => store.get(key));
}

let syncing = null;

/**
 * Send the signed-in user's pending visits through POST /api/v1/visits/batch (another user's stay
 * where they are). Created and duplicate visits leave the queue; rejected ones stay, marked with
 * the reason; a network failure leaves all as they were. Returns {sent, created, duplicate,
 * rejected, left}, `left` counting the user's pending visits.
 */
export function syncQueue() {
  if (!syncing) syncing = doSync().finally(() => { syncing = null; });
  return syncing;
}

async function doSync() {
  const token = await getMeta("token");
  const user = tokenUser(token);
  const mine = async () => (await listQueued()).filter((r) => r.state === "pending" && user && r.user === user);
  const pending = await mine();
  const summary = { sent: 0, created: 0, duplicate: 0, rejected: 0, left: 0 };
  for (let i = 0; i < pending.length; i += BATCH_LIMIT) {
    const chunk = pending.slice(i, i + BATCH_LIMIT);
    const response = await fetch("/api/v1/visits/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ visits: chunk.map((r) => r.visit) }),
    });
    if (!response.ok) throw new Error(`batch answered ${response.status}`);
    const { results = [] } = await response.json();
    summary.sent += chunk.length;
    await run(STORE, "readwrite", (store) => {
      for (const result of results) {
        if (result.status === "created" || result.status === "duplicate") {
          store.delete(result.id);
          summary[result.status] += 1;
        } else if (result.status === "rejected") {
          const record = chunk.find((r) => r.id === result.id);
          if (record) store.put({ ...record, state: "rejected", reason: result.reason || result.detail || "" });
          summary.rejected += 1;
        }
      }
    });
  }
  summary.left = (await mine()).length;
  return summary;
}
